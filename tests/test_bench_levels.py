"""The level-matrix script refuses a command line it would not honour, naming the option."""

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parent.parent / "scripts" / "bench_levels.py"
AGENT = "1-1=rl-trained-agents/ddqn/MarioShaped_1"


def _refusal(*arguments: str) -> str:
    """The script's error line for this command line (it must exit with argparse's status 2)."""
    done = subprocess.run([sys.executable, str(SCRIPT), *arguments], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    return done.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("arguments", "option"),
    [(["--at", "40000"], "--at"), (["--evaluate-only"], "--evaluate-only"), (["--steps", "1000"], "--steps"),
     (["--params", "gamma:0.9"], "--params")],
)  # fmt: skip
def test_models_refuses_the_runs_options(arguments: list[str], option: str) -> None:
    # --models trains nothing: an option of the trained runs would be silently ignored.
    error = _refusal("--models", AGENT, *arguments)
    assert error.startswith(f"bench_levels.py: error: {option} applies to the trained runs")


def test_models_refuses_a_bad_pair() -> None:
    assert "'no-separator' is not NAME=PATH" in _refusal("--models", "no-separator")
    assert "does/not/exist does not exist" in _refusal("--models", "1-1=does/not/exist")
