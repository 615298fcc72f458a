"""Glue that lets rl-zoo3 launch sb3-mario with no extra flags (filled in by the rl-zoo3 issue)."""

import sb3_mario  # noqa: F401  (registers MarioShaped)


def install() -> None:
    """Register sb3-mario's pieces with rl-zoo3."""
