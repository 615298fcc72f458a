"""Training steps spent more on the stages the agent fails most."""

from collections import deque
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np

from sb3_mario.envs.wrappers import StageSampler

# The power each failure weighting raises a stage's failure rate to.
FAILURE_POWERS = {"failures": 1.0, "failures_squared": 2.0}
STAGE_WEIGHTINGS = ("uniform", *FAILURE_POWERS)


def check_stage_weights(stage_weights: str) -> str:
    """``stage_weights`` if it is a weighting, else a ``ValueError`` naming it and the valid ones."""
    if stage_weights not in STAGE_WEIGHTINGS:
        raise ValueError(f"stage_weights={stage_weights!r} is not valid; valid choices: {', '.join(STAGE_WEIGHTINGS)}")
    return stage_weights


class FailureWeightedStages(gym.Wrapper[np.ndarray, int, np.ndarray, int]):
    """
    Give each stage a share of the training steps that grows with how often the agent fails it:
    ``max(1 - flag rate, min_weight)``, the flag rate over the stage's last ``window`` episodes from
    its start (episodes started from a snapshot, ``info["frontier_start"]``, are not counted). A stage
    not played yet weighs 1. While no stage is cleared every stage gets the same share; a stage the
    agent clears every time keeps a share (``min_weight``), so that what it learnt there is still replayed.
    With ``power`` 2 the weight is that failure rate squared: a stage failed twice as often gets four
    times the share (tried on the world-1 run, where it moved the flag rates by 1-3 points:
    docs/results.md).

    The shares are of env steps, not of episodes: each stage is drawn with its weight divided by the
    mean length of its last ``window`` episodes (all of them, snapshot starts included). Drawn by
    episodes, the stage the agent fails fastest would get the least experience (measured in the
    world-1 run: docs/results.md).

    Each env process weighs by its own episodes. For training only
    (:func:`sb3_mario.envs.mario.evaluation_env_kwargs` drops ``stage_weights``): an evaluation
    plays every stage as often.

    :param env: The env whose stages ``sampler`` draws (above :class:`~sb3_mario.envs.frontier_starts.FrontierStarts`,
        if any: it reads ``info["frontier_start"]``).
    :param sampler: The env's :class:`~sb3_mario.envs.wrappers.StageSampler` (random order).
    :param window: Episodes per stage the flag rate and the mean length cover.
    :param min_weight: Smallest failure rate a stage is weighed by (before ``power``).
    :param power: The power the failure rate is raised to.
    """

    def __init__(
        self, env: gym.Env, sampler: StageSampler, window: int = 50, min_weight: float = 0.25, power: float = 1.0
    ) -> None:
        if sampler.order != "random":
            raise ValueError(f"stage_weights weighs stages drawn at random; stage_order={sampler.order!r} takes them in turn")
        if not 0 < min_weight <= 1:
            raise ValueError(f"min_weight={min_weight!r} must be in (0, 1]")
        if not power > 0:
            raise ValueError(f"power={power!r} must be > 0")
        super().__init__(env)
        self.sampler = sampler
        self.window = window
        self.min_weight = min_weight
        self.power = power
        self.flags: dict[str, deque[bool]] = {level: deque(maxlen=window) for level in sampler.levels}
        self.lengths: dict[str, deque[int]] = {level: deque(maxlen=window) for level in sampler.levels}
        self.episode_steps = 0

    def stage_weights(self) -> np.ndarray:
        """The probability of drawing each of the sampler's stages, in its order."""
        failures = np.array(
            [
                max(1.0 - float(np.mean(self.flags[level])), self.min_weight) if self.flags[level] else 1.0
                for level in self.sampler.levels
            ]
        )
        failures = failures**self.power
        known = [float(np.mean(lengths)) for lengths in self.lengths.values() if lengths]
        # A stage not played yet is taken to last as long as the others do on average.
        unknown = float(np.mean(known)) if known else 1.0
        mean_lengths = np.array(
            [float(np.mean(self.lengths[level])) if self.lengths[level] else unknown for level in self.sampler.levels]
        )
        weights = failures / mean_lengths
        return weights / weights.sum()

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        self.sampler.weights = self.stage_weights()
        self.episode_steps = 0
        return self.env.reset(seed=seed, options=options)

    def step(self, action: int) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        observation, reward, terminated, truncated, info = self.env.step(action)
        self.episode_steps += 1
        if terminated or truncated:
            self.lengths[info["level"]].append(self.episode_steps)
            if not info["frontier_start"]:
                self.flags[info["level"]].append(info["termination_cause"] == "flag")
        return observation, reward, terminated, truncated, info
