"""
SB3's DQN with Double-DQN targets and optional prioritized replay.

rl-zoo3 runs it as ``--algo ddqn`` (``hyperparams/ddqn.yml``); in code it is used like ``DQN``.
"""

import warnings
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import torch as th
from stable_baselines3 import DQN
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.type_aliases import GymEnv, RolloutReturn, Schedule
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper
from stable_baselines3.common.vec_env.base_vec_env import VecEnvStepReturn
from stable_baselines3.dqn.policies import DQNPolicy
from torch.nn import functional as F

from sb3_mario.dqn.buffers import CompressedReplayBuffer, PrioritizedReplayBuffer

SelfDoubleDQN = TypeVar("SelfDoubleDQN", bound="DoubleDQN")


class _TrainWhileStepping(VecEnvWrapper):
    """
    The env as ``collect_rollouts`` sees it with ``overlap_env_steps``: each ``step`` sends the
    actions (``step_async``), runs the gradient steps waiting to be done, then collects the results
    (``step_wait``). With subprocess envs the workers play while the learner trains.

    :param venv: The algorithm's env.
    :param run_pending_training: Runs the waiting gradient steps, if any.
    """

    def __init__(self, venv: VecEnv, run_pending_training: Callable[[], None]) -> None:
        super().__init__(venv)
        self.run_pending_training = run_pending_training

    def step(self, actions: np.ndarray) -> VecEnvStepReturn:
        self.venv.step_async(actions)
        self.run_pending_training()
        return self.venv.step_wait()

    def reset(self):
        return self.venv.reset()

    def step_wait(self) -> VecEnvStepReturn:
        return self.venv.step_wait()


class DoubleDQN(DQN):
    """
    SB3's ``DQN`` (same constructor, save/load, callbacks and logging) with three options:

    - **Double DQN** (van Hasselt et al., 2016), on by default: the online network chooses the next
      action and the target network values it, ``r + gamma * Q_target(s', argmax_a Q(s', a))``,
      which removes the overestimation that taking ``max_a Q_target(s', a)`` builds up.
    - **Prioritized replay** (Schaul et al., 2016), off by default: ``prioritized_replay=True``
      uses :class:`~sb3_mario.dqn.buffers.PrioritizedReplayBuffer` (or the ``replay_buffer_class`` given,
      if it is one), weights each sample's Huber loss by its importance weight, with ``beta`` rising
      linearly from ``prioritized_replay_beta`` to ``prioritized_replay_final_beta`` over training,
      and gives the batch's TD errors back to the buffer as new priorities.
    - **Env steps overlapped with gradient steps**, off by default: with ``overlap_env_steps=True``
      the gradient steps due after a rollout run while the envs play the next step (sent with
      ``step_async``, collected with ``step_wait`` after training), so subprocess envs
      (``SubprocVecEnv``, rl-zoo3's ``--vec-env subproc``) use cores the learner leaves idle. The
      action of that one step is chosen by the network before the update (one update behind); the
      update samples the same buffer it would have, and a fixed seed gives identical runs with
      ``DummyVecEnv`` and subprocess envs alike. The last gradient steps of ``learn`` run before it
      returns.

    What combines: both options, SB3's ``n_steps`` (n-step returns, computed by sb3-mario's buffers:
    ``n_steps`` and ``gamma`` are passed to :class:`~sb3_mario.dqn.buffers.CompressedReplayBuffer` and
    its subclass), dueling policies, SB3's exploration schedule and callbacks such as
    :class:`~sb3_mario.dqn.exploration.AdaptiveEpsilonCallback`. Not with prioritized replay or sb3-mario's
    buffers: ``optimize_memory_usage`` (use ``codec`` compression instead), ``Dict`` observations.

    :param double_q: Use Double-DQN targets.
    :param prioritized_replay: Use prioritized replay.
    :param prioritized_replay_alpha: Prioritization exponent (0: uniform).
    :param prioritized_replay_beta: Importance-sampling exponent at the start of training.
    :param prioritized_replay_final_beta: ... at the end of training.
    :param prioritized_replay_eps: Added to ``|TD error|`` to make a priority.
    :param overlap_env_steps: Train while the envs step (see above).

    The other parameters are ``DQN``'s, with the same defaults.
    """

    def __init__(
        self,
        policy: str | type[DQNPolicy],
        env: GymEnv | str,
        learning_rate: float | Schedule = 1e-4,
        buffer_size: int = 1_000_000,
        learning_starts: int = 100,
        batch_size: int = 32,
        tau: float = 1.0,
        gamma: float = 0.99,
        train_freq: int | tuple[int, str] = 4,
        gradient_steps: int = 1,
        replay_buffer_class: type[ReplayBuffer] | None = None,
        replay_buffer_kwargs: dict[str, Any] | None = None,
        optimize_memory_usage: bool = False,
        n_steps: int = 1,
        target_update_interval: int = 10000,
        exploration_fraction: float = 0.1,
        exploration_initial_eps: float = 1.0,
        exploration_final_eps: float = 0.05,
        max_grad_norm: float = 10,
        double_q: bool = True,
        prioritized_replay: bool = False,
        prioritized_replay_alpha: float = 0.6,
        prioritized_replay_beta: float = 0.4,
        prioritized_replay_final_beta: float = 1.0,
        prioritized_replay_eps: float = 1e-6,
        overlap_env_steps: bool = False,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
    ) -> None:
        super().__init__(
            policy=policy,
            env=env,
            learning_rate=learning_rate,
            buffer_size=buffer_size,
            learning_starts=learning_starts,
            batch_size=batch_size,
            tau=tau,
            gamma=gamma,
            train_freq=train_freq,
            gradient_steps=gradient_steps,
            replay_buffer_class=replay_buffer_class,
            replay_buffer_kwargs=replay_buffer_kwargs,
            optimize_memory_usage=optimize_memory_usage,
            n_steps=n_steps,
            target_update_interval=target_update_interval,
            exploration_fraction=exploration_fraction,
            exploration_initial_eps=exploration_initial_eps,
            exploration_final_eps=exploration_final_eps,
            max_grad_norm=max_grad_norm,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            policy_kwargs=policy_kwargs,
            verbose=verbose,
            seed=seed,
            device=device,
            _init_setup_model=False,
        )
        for name, value in (
            ("prioritized_replay_beta", prioritized_replay_beta),
            ("prioritized_replay_final_beta", prioritized_replay_final_beta),
        ):
            if not 0 <= value <= 1:
                raise ValueError(f"{name}={value!r} must be in [0, 1]")
        self.double_q = double_q
        self.prioritized_replay = prioritized_replay
        self.prioritized_replay_alpha = prioritized_replay_alpha
        self.prioritized_replay_beta = prioritized_replay_beta
        self.prioritized_replay_final_beta = prioritized_replay_final_beta
        self.prioritized_replay_eps = prioritized_replay_eps
        self.overlap_env_steps = overlap_env_steps
        self._defer_training = False  # True inside learn() with overlap_env_steps
        self._pending_training: tuple[int, int] | None = None  # (gradient_steps, batch_size)
        self._stepping_env: _TrainWhileStepping | None = None
        if _init_setup_model:
            self._setup_model()

    def _setup_model(self) -> None:
        if self.prioritized_replay:
            if self.replay_buffer_class is None:
                self.replay_buffer_class = PrioritizedReplayBuffer
            elif not issubclass(self.replay_buffer_class, PrioritizedReplayBuffer):
                raise ValueError(
                    f"prioritized_replay=True needs a PrioritizedReplayBuffer, got replay_buffer_class="
                    f"{self.replay_buffer_class.__name__}; remove replay_buffer_class or set prioritized_replay=False"
                )
            # A new dict: the caller's (a hyperparameter entry's) stays as it was.
            self.replay_buffer_kwargs = {
                **self.replay_buffer_kwargs,
                "alpha": self.prioritized_replay_alpha,
                "epsilon": self.prioritized_replay_eps,
            }
        if self.replay_buffer_class is not None and issubclass(self.replay_buffer_class, CompressedReplayBuffer):
            self.replay_buffer_kwargs = {**self.replay_buffer_kwargs, "n_steps": self.n_steps, "gamma": self.gamma}
            with warnings.catch_warnings():
                # SB3 warns that n_steps is ignored with a custom buffer class; sb3-mario's buffers take it.
                warnings.filterwarnings("ignore", message=r"`n_steps=\d+` is ignored")
                super()._setup_model()
        else:
            super()._setup_model()

    def learn(self: SelfDoubleDQN, *args: Any, **kwargs: Any) -> SelfDoubleDQN:
        self._defer_training = self.overlap_env_steps
        try:
            super().learn(*args, **kwargs)
        finally:
            self._defer_training = False
        self._run_pending_training()  # the updates of the last rollout
        return self

    def collect_rollouts(self, env: VecEnv, *args: Any, **kwargs: Any) -> RolloutReturn:
        if self._defer_training:
            if self._stepping_env is None or self._stepping_env.venv is not env:
                self._stepping_env = _TrainWhileStepping(env, self._run_pending_training)
            env = self._stepping_env
        return super().collect_rollouts(env, *args, **kwargs)

    def _run_pending_training(self) -> None:
        if self._pending_training is not None:
            gradient_steps, batch_size = self._pending_training
            self._pending_training = None
            self._train(gradient_steps, batch_size)

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "_stepping_env", "_pending_training"]

    def _beta(self) -> float:
        """The importance-sampling exponent now (linear in training progress)."""
        progress = 1.0 - self._current_progress_remaining
        start, end = self.prioritized_replay_beta, self.prioritized_replay_final_beta
        return start + progress * (end - start)

    def next_q_values(self, next_observations: th.Tensor) -> th.Tensor:
        """
        Value of the next states in the TD target, shape ``(batch, 1)``.

        :param next_observations: Batch of next observations.
        """
        next_q_target = self.q_net_target(next_observations)
        if self.double_q:
            next_actions = self.q_net(next_observations).argmax(dim=1, keepdim=True)
            return th.gather(next_q_target, dim=1, index=next_actions)
        return next_q_target.max(dim=1, keepdim=True)[0]

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        if self._defer_training:  # called by learn(): run while the envs play the next step
            self._pending_training = (gradient_steps, batch_size)
            return
        self._train(gradient_steps, batch_size)

    def _train(self, gradient_steps: int, batch_size: int) -> None:
        # DQN.train with Double-DQN targets and PER: its loop, target and gradient clipping otherwise unchanged.
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        beta = self._beta()

        losses = []
        for _ in range(gradient_steps):
            if self.prioritized_replay:
                buffer: PrioritizedReplayBuffer = self.replay_buffer  # type: ignore[assignment]
                replay_data = buffer.sample(batch_size, env=self._vec_normalize_env, beta=beta)
            else:
                replay_data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)  # type: ignore[union-attr]
            discounts = replay_data.discounts if replay_data.discounts is not None else self.gamma

            with th.no_grad():
                next_q_values = self.next_q_values(replay_data.next_observations)
                target_q_values = replay_data.rewards + (1 - replay_data.dones) * discounts * next_q_values

            current_q_values = th.gather(self.q_net(replay_data.observations), dim=1, index=replay_data.actions.long())
            sample_losses = F.smooth_l1_loss(current_q_values, target_q_values, reduction="none")
            if self.prioritized_replay:
                loss = (replay_data.weights * sample_losses).mean()
                td_errors = (target_q_values - current_q_values).detach().cpu().numpy()
                self.replay_buffer.update_priorities(replay_data.indices, td_errors)  # type: ignore[union-attr]
            else:
                loss = sample_losses.mean()
            losses.append(loss.item())

            self.policy.optimizer.zero_grad()
            loss.backward()
            th.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
            self.policy.optimizer.step()

        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/loss", np.mean(losses))
        if self.prioritized_replay:
            self.logger.record("train/per_beta", beta)
