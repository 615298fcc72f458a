"""Failure-weighted stage draws: the weights from episode outcomes, the draws they give, training only."""

from types import SimpleNamespace
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from stable_baselines3.common.env_util import unwrap_wrapper

import sb3_mario  # noqa: F401  (registers MarioShaped)
from sb3_mario.envs.mario import evaluation_env_kwargs, make_mario_shaped
from sb3_mario.envs.stage_weights import FailureWeightedStages
from sb3_mario.envs.wrappers import StageSampler


class ScriptedEpisodes(gym.Env):
    """
    Episodes that end as ``endings`` say: (level, cause, from a snapshot, truncated), after two steps,
    or after ``lengths[i]`` steps for episode ``i``.
    """

    observation_space = spaces.Box(0, 255, (1,), np.uint8)
    action_space = spaces.Discrete(2)

    def __init__(self, endings: list[tuple[str, str | None, bool, bool]], lengths: list[int] | None = None) -> None:
        self.endings = endings
        self.lengths = lengths or [2] * len(endings)
        self.episode = -1
        self.steps = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        self.episode += 1
        self.steps = 0
        return np.zeros(1, np.uint8), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        self.steps += 1
        level, cause, from_snapshot, truncated = self.endings[self.episode]
        ended = self.steps == self.lengths[self.episode]
        info = {"level": level, "termination_cause": cause if ended else None, "frontier_start": from_snapshot}
        return np.zeros(1, np.uint8), 0.0, ended and not truncated, ended and truncated, info


def test_weights_grow_with_a_stages_failures_and_keep_a_floor() -> None:
    env = make_mario_shaped(level=["1-1", "1-2", "1-3"], stage_weights="failures", frame_size=32)
    weighting = unwrap_wrapper(env, FailureWeightedStages)
    weighting.flags["1-1"].extend([True, True, True, False])  # fails 1 in 4: weight 0.25
    weighting.flags["1-2"].extend([True] * 4)  # never fails: the floor, 0.25
    # 1-3 not played yet: weight 1
    np.testing.assert_allclose(weighting.stage_weights(), [0.25, 0.25, 1.0] / np.float64(1.5))
    env.close()


def test_squared_failures_pull_harder_towards_the_stage_failed_most() -> None:
    env = make_mario_shaped(level=["1-1", "1-2", "1-3"], stage_weights="failures_squared", frame_size=32)
    weighting = unwrap_wrapper(env, FailureWeightedStages)
    weighting.flags["1-1"].extend([True, False])  # fails 1 in 2: 0.25
    weighting.flags["1-2"].extend([True] * 4)  # never fails: the floor 0.25, squared 0.0625
    weighting.flags["1-3"].extend([False] * 4)  # always fails: 1
    np.testing.assert_allclose(weighting.stage_weights(), [0.25, 0.0625, 1.0] / np.float64(1.3125))
    env.close()


def test_episode_outcomes_from_the_start_set_the_next_draws_weights() -> None:
    endings = [
        ("1-1", "flag", False, False),
        ("1-1", "death", False, False),
        ("1-2", "flag", True, False),
        ("1-2", "stall", False, True),
    ]
    sampler = SimpleNamespace(order="random", levels=("1-1", "1-2"), weights=None)
    env = FailureWeightedStages(ScriptedEpisodes(endings), sampler, window=3)  # type: ignore[arg-type]
    for _ in endings:
        env.reset()
        np.testing.assert_allclose(sampler.weights, env.stage_weights())  # set before each episode's draw
        env.step(0)
        env.step(0)
    # 1-1: a flag and a death (weight 0.5); 1-2: the snapshot's flag is not counted, the stall is (weight 1).
    assert {level: list(flags) for level, flags in env.flags.items()} == {"1-1": [True, False], "1-2": [False]}
    np.testing.assert_allclose(env.stage_weights(), [1 / 3, 2 / 3])
    env.reset()
    np.testing.assert_allclose(sampler.weights, [1 / 3, 2 / 3])


def test_stages_share_the_steps_not_the_episodes() -> None:
    # Every episode fails. 1-1's last two episodes took 2 and 4 steps (mean 3), 1-2's 9 (one from a
    # snapshot: its length counts, its outcome does not): drawn 3:1, both get the same share of steps.
    endings = [("1-1", "death", False, False), ("1-2", "death", True, False), ("1-1", "stall", False, True)]
    sampler = SimpleNamespace(order="random", levels=("1-1", "1-2", "1-3"), weights=None)
    env = FailureWeightedStages(ScriptedEpisodes(endings, lengths=[2, 9, 4]), sampler)  # type: ignore[arg-type]
    for length in (2, 9, 4):
        env.reset()
        for _ in range(length):
            env.step(0)
    assert {level: list(lengths) for level, lengths in env.lengths.items()} == {"1-1": [2, 4], "1-2": [9], "1-3": []}
    # 1-3, not played yet, is taken to last the mean of the others' means, 6: weights 1/3, 1/9, 1/6.
    np.testing.assert_allclose(env.stage_weights(), np.array([6, 2, 3]) / 11)
    env.reset()
    np.testing.assert_allclose(sampler.weights, np.array([6, 2, 3]) / 11)


def test_the_sampler_draws_by_its_weights() -> None:
    env = make_mario_shaped(level=["1-1", "1-2", "1-3"], frame_size=32)
    sampler = unwrap_wrapper(env, StageSampler)
    sampler.weights = np.array([0.0, 1.0, 0.0])
    levels = [env.reset(seed=3)[1]["level"]] + [env.reset()[1]["level"] for _ in range(4)]
    env.close()
    assert levels == ["1-2"] * 5


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            dict(level=1, stage_weights="hard"),
            r"stage_weights='hard' is not valid; valid choices: uniform, failures, failures_squared",
        ),
        (dict(level="1-1", stage_weights="failures"), r"stage_weights='failures' weighs several stages; level='1-1' is one"),
        (dict(level=1, stage_weights="failures", stage_order="round_robin"), r"stage_order='round_robin' takes them in turn"),
    ],
)
def test_bad_stage_weights_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_mario_shaped(**kwargs)


def test_evaluations_play_every_stage_as_often() -> None:
    assert evaluation_env_kwargs({"level": 1, "stage_weights": "failures", "frame_size": 64}) == {"level": 1, "frame_size": 64}
