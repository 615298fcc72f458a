"""Callbacks that record what a model did during ``learn``, for the tests to read back."""

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback


class EpsilonRecorder(BaseCallback):
    """Runs after the callbacks under test and before DQN._on_step: sees the epsilon of the action just taken."""

    def __init__(self) -> None:
        super().__init__()
        self.epsilons: list[float] = []

    def _on_step(self) -> bool:
        self.epsilons.append(self.model.exploration_rate)
        return True


class EnvEpsilonRecorder(BaseCallback):
    """
    Each env's epsilon (``DoubleDQN.env_exploration_rates``); listed before the callbacks under test, it sees
    the epsilons of the actions just taken.
    """

    def __init__(self) -> None:
        super().__init__()
        self.epsilons: list[np.ndarray] = []

    def _on_step(self) -> bool:
        self.epsilons.append(self.model.env_exploration_rates(self.training_env.num_envs).copy())
        return True
