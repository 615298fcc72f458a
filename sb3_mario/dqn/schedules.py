"""Exploration schedules for SB3's ``DQN``: the notebook's exponential decay, and a boostable wrapper."""

import numpy as np
from stable_baselines3.common.type_aliases import Schedule


class ExponentialSchedule:
    """
    The notebook's per-step exploration: ``max(final, initial * decay ** t)`` after ``t`` env steps.

    SB3 calls schedules with the remaining progress (1 -> 0); with the run's total timesteps
    known, ``t = (1 - progress_remaining) * total_timesteps`` is the number of steps taken.

    :param initial: Epsilon at step 0 (notebook: 0.99).
    :param decay: Factor applied every env step (notebook: 0.999985, the floor is reached after ~153k steps).
    :param final: Floor (notebook: 0.1).
    :param total_timesteps: Steps of the training run (set by :class:`~sb3_mario.dqn.exploration.AdaptiveEpsilonCallback`).
    """

    def __init__(self, initial: float = 0.99, decay: float = 0.999985, final: float = 0.1, total_timesteps: int = 0) -> None:
        self.initial = initial
        self.decay = decay
        self.final = final
        self.total_timesteps = total_timesteps

    def __call__(self, progress_remaining: float) -> float:
        steps_taken = (1.0 - progress_remaining) * self.total_timesteps
        return max(self.final, self.initial * self.decay**steps_taken)

    def __repr__(self) -> str:
        return f"ExponentialSchedule(initial={self.initial}, decay={self.decay}, final={self.final})"


class BoostableSchedule:
    """
    Stand-in for ``DQN.exploration_schedule`` that returns ``max(base(progress), boost)``.

    SB3's ``DQN._on_step`` recomputes ``exploration_rate`` from ``exploration_schedule`` after every
    env step, *after* callbacks ran, so a callback cannot set ``exploration_rate`` itself; it sets
    ``boost`` here instead. Picklable, so checkpoints saved mid-training still load.

    With several envs the callback also sets each env's boost (``env_boosts``, one per env); ``boost``
    is their largest. :meth:`env_rates` gives each env's epsilon, for algorithms that draw one
    exploration coin per env (:class:`~sb3_mario.dqn.double_dqn.DoubleDQN`'s ``per_env_exploration``).

    :param base: The schedule being wrapped.
    """

    env_boosts: np.ndarray | None = None  # a class default: schedules pickled before it existed load

    def __init__(self, base: Schedule) -> None:
        self.base = base
        self.boost = 0.0

    def __call__(self, progress_remaining: float) -> float:
        return max(self.base(progress_remaining), self.boost)

    def env_rates(self, progress_remaining: float, n_envs: int) -> np.ndarray:
        """
        Each env's epsilon: ``max(base(progress), env_boosts[i])``; without per-env boosts, the same for all.

        :param progress_remaining: SB3's remaining progress (1 -> 0).
        :param n_envs: Number of envs.
        """
        if self.env_boosts is None or len(self.env_boosts) != n_envs:
            return np.full(n_envs, self(progress_remaining))
        return np.maximum(self.base(progress_remaining), self.env_boosts)

    def __repr__(self) -> str:
        return f"BoostableSchedule({self.base!r}, boost={self.boost})"
