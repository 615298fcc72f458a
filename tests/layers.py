"""Reaching one wrapper inside a wrapped env, for the tests to read or set its state."""

from typing import Any

import gymnasium as gym


def layer(env: gym.Env, wrapper: type) -> Any:
    """The outermost layer of ``env`` that is a ``wrapper`` (following each layer's ``env``)."""
    while not isinstance(env, wrapper):
        env = env.env
    return env
