"""
Training episodes that start along the furthest run so far of their stage: the notebook's "explore
past the frontier" taken further, in the manner of Go-Explore (Ecoffet et al., 2021: return to a
promising state, then explore from it) and backplay (Resnick et al., 2018: starts along a
demonstration, here the agent's own best run).
"""

from collections import deque
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium.utils import seeding

from sb3_mario.envs.wrappers import ShapedFrameSkip, StageSnapshot

START_WEIGHTINGS = ("uniform", "failures")


def check_start_weights(start_weights: str) -> str:
    """``start_weights`` if it is a weighting, else a ``ValueError`` naming it and the valid ones."""
    if start_weights not in START_WEIGHTINGS:
        raise ValueError(
            f"frontier_start_weights={start_weights!r} is not valid; valid choices: {', '.join(START_WEIGHTINGS)}"
        )
    return start_weights


class FrontierStarts(gym.Wrapper[np.ndarray, int, np.ndarray, int]):
    """
    Start a share of the episodes from a snapshot of the emulator taken along the stage's best run.

    While Mario plays, the wrapper snapshots the emulator (:meth:`ShapedFrameSkip.snapshot`) each
    time he first stands on the ground ``spacing`` pixels past the last snapshot (on the ground: a
    snapshot in mid-jump over a pit could be a death already decided). When an episode ends further
    right (``max_x``) than the stage's best run so far, its snapshots become that stage's. At reset,
    with probability ``probability``, the episode continues from one of them instead of the stage's
    start: the late parts of a stage, which episodes from the start rarely reach, are played as often
    as the early ones. The rest start at the start.

    The snapshot is drawn uniformly (``start_weights="uniform"``) or, with ``"failures"``, half
    uniformly and half where the stage's last ``window`` episodes from its start ended without the
    flag: each such end at ``x`` weighs on the snapshots less than ``2 * spacing`` pixels before it (the
    run-up to the jump that failed). An episode from the start clears the stage only if it passes
    every obstacle, so practice goes to the obstacles it fails most (in the world-1 run, from-start
    episodes of 1-3 ended in a few clusters: docs/results.md); the uniform half keeps the rest of the
    stage played. Episodes started from a snapshot are not counted: a start just before an obstacle
    would add failures there and feed itself.

    For training only: ``info["frontier_start"]`` says whether an episode started from a snapshot
    (its ``max_x`` counts from there), and evaluation must start at the stage's start
    (:func:`sb3_mario.envs.mario.evaluation_env_kwargs` drops ``frontier_starts`` from an env's arguments).
    Snapshots live in the env's process and are not saved: a resumed run collects them again.

    :param env: The shaped frame-skip env (directly: the wrapper calls its snapshot methods).
    :param probability: Share of the episodes started from a snapshot, once the stage has one.
    :param spacing: Pixels between the snapshots along a run.
    :param start_weights: How the snapshot is drawn: ``"uniform"`` or ``"failures"`` (above).
    :param window: Episodes from the start per stage whose ends ``"failures"`` weighs by.
    """

    def __init__(
        self,
        env: ShapedFrameSkip,
        probability: float = 0.5,
        spacing: int = 128,
        start_weights: str = "uniform",
        window: int = 100,
    ) -> None:
        if not isinstance(env, ShapedFrameSkip):
            raise TypeError(f"FrontierStarts wraps a ShapedFrameSkip directly, not {type(env).__name__}")
        if not 0 <= probability <= 1:
            raise ValueError(f"frontier_starts={probability!r} must be a probability in [0, 1] (0: always the stage's start)")
        if isinstance(spacing, bool) or not isinstance(spacing, int) or spacing < 1:
            raise ValueError(f"spacing={spacing!r} must be a positive number of pixels")
        check_start_weights(start_weights)
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise ValueError(f"window={window!r} must be a positive number of episodes")
        super().__init__(env)
        self.shaped = env
        self.probability = probability
        self.spacing = spacing
        self.start_weights = start_weights
        self.failures: dict[str, deque[int]] = {}  # per stage: x_pos where episodes from the start failed
        self.window = window
        self.best_runs: dict[str, tuple[int, list[StageSnapshot]]] = {}  # per stage: max_x, its snapshots
        self._rng, _ = seeding.np_random()
        self._run: list[StageSnapshot] = []
        self._next_x = 0
        self._from_snapshot = False

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        if seed is not None:
            self._rng, _ = seeding.np_random(seed)
        observation, info = self.env.reset(seed=seed, options=options)
        self._run, self._from_snapshot = [], False
        _, snapshots = self.best_runs.get(info["level"], (0, []))
        if snapshots and self._rng.random() < self.probability:
            if self.start_weights == "uniform":  # the draw of the runs before the weighting existed
                index = int(self._rng.integers(len(snapshots)))
            else:
                index = int(self._rng.choice(len(snapshots), p=self.snapshot_weights(info["level"])))
            observation, restored = self.shaped.restore(snapshots[index])
            info = {**info, **restored}
            # The way here is the best run's: a new best from this start keeps the whole path.
            self._run, self._from_snapshot = snapshots[: index + 1], True
        self._next_x = info["x_pos"] + self.spacing
        info["frontier_start"] = self._from_snapshot
        return observation, info

    def step(self, action: int) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        observation, reward, terminated, truncated, info = self.env.step(action)
        info["frontier_start"] = self._from_snapshot
        if terminated or truncated:
            if not self._from_snapshot and not info["flag_get"]:
                self.failures.setdefault(info["level"], deque(maxlen=self.window)).append(info["x_pos"])
            best_x, _ = self.best_runs.get(info["level"], (0, []))
            if info["max_x"] > best_x:
                self.best_runs[info["level"]] = (info["max_x"], self._run)
        elif info["x_pos"] >= self._next_x and self.shaped.on_ground():
            self._run.append(self.shaped.snapshot())
            self._next_x = info["x_pos"] + self.spacing
        return observation, reward, terminated, truncated, info

    def snapshot_weights(self, level: str) -> np.ndarray:
        """The probability of starting from each snapshot of ``level``'s best run, in their order."""
        _, snapshots = self.best_runs[level]
        uniform = np.full(len(snapshots), 1 / len(snapshots))
        if self.start_weights == "uniform":
            return uniform
        positions = np.array([snapshot.x_pos for snapshot in snapshots])
        failed_after = np.zeros(len(snapshots))
        for x in self.failures.get(level, ()):
            before = (positions < x) & (positions >= x - 2 * self.spacing)
            failed_after[before] += 1 / max(before.sum(), 1)
        if not failed_after.any():  # no failure past a snapshot yet
            return uniform
        return (uniform + failed_after / failed_after.sum()) / 2
