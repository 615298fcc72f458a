"""
Gradient steps overlapped with env steps: an off-policy learner trains while its subprocess envs play.

SB3's off-policy loop alternates: collect a rollout, then train. With envs in worker processes the
workers sit idle while the learner trains, and the learner while they step. :class:`DeferredTraining`
holds back the gradient steps due after a rollout, and :class:`TrainWhileStepping` runs them between
sending the next step to the workers (``step_async``) and collecting it (``step_wait``). The action of
that one step comes from the network one update behind; the update samples the same buffer it would
have, so a fixed seed gives the same run with ``DummyVecEnv`` and subprocess envs alike.
"""

from collections.abc import Callable

import numpy as np
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper
from stable_baselines3.common.vec_env.base_vec_env import VecEnvObs, VecEnvStepReturn


class DeferredTraining:
    """
    Gradient steps held back until the envs are stepping.

    :param train: The learner's training function, ``train(gradient_steps, batch_size)``.
    """

    def __init__(self, train: Callable[[int, int], None]) -> None:
        self.train = train
        self.pending: tuple[int, int] | None = None  # (gradient_steps, batch_size)

    def defer(self, gradient_steps: int, batch_size: int) -> None:
        """
        Hold back a rollout's gradient steps (run by the next :meth:`run_pending`).

        :param gradient_steps: Gradient steps due.
        :param batch_size: Their batch size.
        """
        self.pending = (gradient_steps, batch_size)

    def run_pending(self) -> None:
        """Run the gradient steps held back, if any."""
        if self.pending is not None:
            gradient_steps, batch_size = self.pending
            self.pending = None
            self.train(gradient_steps, batch_size)


class TrainWhileStepping(VecEnvWrapper):
    """
    The env as the learner's rollout sees it: each ``step`` sends the actions, runs the training held
    back in ``deferred``, then collects the results.

    :param venv: The learner's env.
    :param deferred: The training held back.
    """

    def __init__(self, venv: VecEnv, deferred: DeferredTraining) -> None:
        super().__init__(venv)
        self.deferred = deferred

    def step(self, actions: np.ndarray) -> VecEnvStepReturn:
        self.venv.step_async(actions)
        self.deferred.run_pending()
        return self.venv.step_wait()

    def reset(self) -> VecEnvObs:
        return self.venv.reset()

    def step_wait(self) -> VecEnvStepReturn:
        return self.venv.step_wait()
