"""
SB3's DQN with Double-DQN targets and optional prioritized replay.

rl-zoo3 runs it as ``--algo ddqn`` (``hyperparams/ddqn.yml``); in code it is used like ``DQN``.
"""

import io
import pathlib
import warnings
from typing import Any, TypeVar

import numpy as np
import torch as th
from stable_baselines3 import DQN
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, RolloutReturn, Schedule
from stable_baselines3.common.vec_env import VecEnv
from stable_baselines3.dqn.policies import DQNPolicy
from torch.nn import functional as F

from sb3_mario.dqn.augmentation import random_shift
from sb3_mario.dqn.buffers import CompressedReplayBuffer, PrioritizedReplayBuffer
from sb3_mario.dqn.overlap import DeferredTraining, TrainWhileStepping

SelfDoubleDQN = TypeVar("SelfDoubleDQN", bound="DoubleDQN")


class DoubleDQN(DQN):
    """
    SB3's ``DQN`` (same constructor, save/load, callbacks and logging) with these options:

    - **Double DQN** (van Hasselt et al., 2016), on by default: the online network chooses the next
      action and the target network values it, ``r + gamma * Q_target(s', argmax_a Q(s', a))``,
      which removes the overestimation that taking ``max_a Q_target(s', a)`` builds up.
    - **Prioritized replay** (Schaul et al., 2016), off by default: ``prioritized_replay=True``
      uses :class:`~sb3_mario.dqn.buffers.PrioritizedReplayBuffer` (or the ``replay_buffer_class`` given,
      if it is one), weights each sample's Huber loss by its importance weight, with ``beta`` rising
      linearly from ``prioritized_replay_beta`` to ``prioritized_replay_final_beta`` over training,
      and gives the batch's TD errors back to the buffer as new priorities.
    - **Env steps overlapped with gradient steps**, off by default: with ``overlap_env_steps=True``
      the gradient steps due after a rollout run while subprocess envs (``SubprocVecEnv``, rl-zoo3's
      ``--vec-env subproc``) play the next step (:mod:`sb3_mario.dqn.overlap`). The last gradient
      steps of ``learn`` run before it returns.
    - **Random shifts** (DrQ, Kostrikov et al., 2021), off by default: ``random_shift=4`` moves each
      replayed observation and next observation by its own random offset of up to 4 pixels
      (:func:`~sb3_mario.dqn.augmentation.random_shift`) before the TD target and loss: acting sees
      the frames as they are.
    - **One exploration coin per env**, off by default: SB3's ``DQN.predict`` draws one coin per
      vectorised step, so with several envs all of them act randomly or none does. With
      ``per_env_exploration=True`` each env draws its own, with its own epsilon where the exploration
      schedule gives one per env (:class:`~sb3_mario.dqn.exploration.AdaptiveEpsilonCallback`'s
      boosts: an env whose Mario passes a frontier explores more, the others do not). One env: the
      same draws as SB3's.
    - **Targets for the epsilon-greedy policy**, off by default: with ``target_epsilon=0.05`` the next
      state is valued as the policy that acts randomly 5% of the time would play it (expected SARSA,
      van Seijen et al., 2009): ``(1 - eps) * Q_target(s', a*) + eps * mean_a Q_target(s', a)``,
      ``a*`` chosen as above. The greedy target values a state where one random action is fatal as if
      no random action came; this one learns to keep a margin where an evaluation at that epsilon
      would lose the episode. With ``n_steps > 1`` only the last state of each n-step return is
      valued so: at the ``n_steps - 1`` states before it the return follows the actions played,
      random at the behaviour's epsilon. A risk one or two steps after a decision (a jump cut short)
      then weighs at the behaviour's epsilon whatever ``target_epsilon`` is; a warning says so, and
      ``n_steps=1`` values every state at ``target_epsilon``.

    Prioritized replay is asked for one way, ``prioritized_replay=True``: a
    :class:`~sb3_mario.dqn.buffers.PrioritizedReplayBuffer` given as ``replay_buffer_class`` without
    it is refused (its priorities would never be updated: uniform sampling in disguise).

    What combines: all options, SB3's ``n_steps`` (n-step returns, computed by sb3-mario's buffers:
    ``n_steps`` and ``gamma`` are passed to :class:`~sb3_mario.dqn.buffers.CompressedReplayBuffer` and
    its subclass), dueling policies, SB3's exploration schedule and callbacks such as
    :class:`~sb3_mario.dqn.exploration.AdaptiveEpsilonCallback`. Not with prioritized replay or sb3-mario's
    buffers: ``optimize_memory_usage`` (compressed storage stores an observation once), ``Dict`` observations.
    A replay buffer loaded with :meth:`load_replay_buffer` takes the algorithm's ``n_steps``, ``gamma``,
    prioritization exponent and ``buffer_size`` (sb3-mario's buffers are resized), with a warning when
    they differ from the ones it was saved with.

    :param double_q: Use Double-DQN targets.
    :param prioritized_replay: Use prioritized replay.
    :param prioritized_replay_alpha: Prioritization exponent (0: uniform).
    :param prioritized_replay_beta: Importance-sampling exponent at the start of training.
    :param prioritized_replay_final_beta: ... at the end of training.
    :param prioritized_replay_eps: Added to ``|TD error|`` to make a priority.
    :param overlap_env_steps: Train while the envs step (see above).
    :param random_shift: Largest random shift of replayed image observations, in pixels (0: none).
    :param per_env_exploration: Draw each env's exploration coin, with its own epsilon (see above).
    :param target_epsilon: Epsilon of the policy the TD target values (0: the greedy policy, as DQN's).

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
        random_shift: int = 0,
        per_env_exploration: bool = False,
        target_epsilon: float = 0.0,
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
        # Refused when asked for, not when a saved model is loaded (load() passes no buffer class here).
        prioritized_class = replay_buffer_class is not None and issubclass(replay_buffer_class, PrioritizedReplayBuffer)
        if prioritized_class and not prioritized_replay:
            raise ValueError(
                f"replay_buffer_class={replay_buffer_class.__name__} with prioritized_replay=False would sample "
                "uniformly and never update its priorities: set prioritized_replay=True (it picks that buffer), "
                "or use CompressedReplayBuffer for uniform replay"
            )
        self.double_q = double_q
        self.prioritized_replay = prioritized_replay
        self.prioritized_replay_alpha = prioritized_replay_alpha
        self.prioritized_replay_beta = prioritized_replay_beta
        self.prioritized_replay_final_beta = prioritized_replay_final_beta
        self.prioritized_replay_eps = prioritized_replay_eps
        self.overlap_env_steps = overlap_env_steps
        self.random_shift = random_shift
        self.per_env_exploration = per_env_exploration
        self.target_epsilon = target_epsilon
        self._deferred_training: DeferredTraining | None = None  # inside learn() with overlap_env_steps
        self._stepping_env: TrainWhileStepping | None = None
        if _init_setup_model:
            self._setup_model()

    def _setup_model(self) -> None:
        self._check_option_values()
        if self.target_epsilon and self.n_steps > 1:
            warnings.warn(
                f"target_epsilon={self.target_epsilon} values random actions at the last state of each "
                f"{self.n_steps}-step return only: the {self.n_steps - 1} states before it count the actions played "
                "(the behaviour's epsilon); n_steps=1 values every state at target_epsilon",
                stacklevel=2,
            )
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

    def _check_option_values(self) -> None:
        # Here rather than in __init__: load() sets its keyword arguments (rl-zoo3's -params on a
        # resumed run) after the constructor, then calls _setup_model.
        for name in ("prioritized_replay_beta", "prioritized_replay_final_beta", "target_epsilon"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ValueError(f"{name}={value!r} must be in [0, 1]")
        shift = self.random_shift
        if isinstance(shift, bool) or not isinstance(shift, int) or shift < 0:
            raise ValueError(f"random_shift={shift!r} must be a whole number of pixels >= 0 (0: no augmentation)")

    def learn(
        self: SelfDoubleDQN,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 4,
        tb_log_name: str = "DoubleDQN",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfDoubleDQN:
        deferred = DeferredTraining(self._train) if self.overlap_env_steps else None
        self._deferred_training = deferred
        try:
            super().learn(
                total_timesteps=total_timesteps,
                callback=callback,
                log_interval=log_interval,
                tb_log_name=tb_log_name,
                reset_num_timesteps=reset_num_timesteps,
                progress_bar=progress_bar,
            )
        finally:
            self._deferred_training = None
        if deferred is not None:
            deferred.run_pending()  # the updates of the last rollout
        return self

    def collect_rollouts(self, env: VecEnv, *args: Any, **kwargs: Any) -> RolloutReturn:
        if self._deferred_training is not None:
            if self._stepping_env is None or self._stepping_env.venv is not env:
                self._stepping_env = TrainWhileStepping(env, self._deferred_training)
            self._stepping_env.deferred = self._deferred_training
            env = self._stepping_env
        return super().collect_rollouts(env, *args, **kwargs)

    def predict(
        self,
        observation: np.ndarray | dict[str, np.ndarray],
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        if deterministic or not self.per_env_exploration or not self.policy.is_vectorized_observation(observation):
            return super().predict(observation, state, episode_start, deterministic)
        n_envs = len(observation[next(iter(observation))] if isinstance(observation, dict) else observation)
        explore = np.random.rand(n_envs) < self.env_exploration_rates(n_envs)
        if explore.all():  # as SB3: no forward pass when every action is random
            return np.array([self.action_space.sample() for _ in range(n_envs)]), state
        action, state = self.policy.predict(observation, state, episode_start, deterministic)
        for env_index in np.flatnonzero(explore):
            action[env_index] = self.action_space.sample()
        return action, state

    def env_exploration_rates(self, n_envs: int) -> np.ndarray:
        """
        Each env's epsilon now: the exploration schedule's per-env rates where it has them
        (``env_rates``, :class:`~sb3_mario.dqn.schedules.BoostableSchedule`), else ``exploration_rate`` for all.

        :param n_envs: Number of envs.
        """
        env_rates = getattr(self.exploration_schedule, "env_rates", None)
        if env_rates is None:
            return np.full(n_envs, self.exploration_rate)
        return env_rates(self._current_progress_remaining, n_envs)

    def load_replay_buffer(self, path: str | pathlib.Path | io.BufferedIOBase, truncate_last_traj: bool = True) -> None:
        super().load_replay_buffer(path, truncate_last_traj)
        buffer = self.replay_buffer
        capacity = buffer.buffer_size * buffer.n_envs
        wanted_capacity = max(self.buffer_size // buffer.n_envs, 1) * buffer.n_envs
        if capacity != wanted_capacity:
            # SB3 replaces the buffer whole: a buffer_size changed for a resumed run would silently not apply.
            if isinstance(buffer, CompressedReplayBuffer):
                buffer.resize(self.buffer_size)
                outcome = f"resized to {wanted_capacity:,}" + (" (the newest kept)" if capacity > wanted_capacity else "")
            else:
                outcome = "kept at its size (SB3's buffers cannot be resized)"
            warnings.warn(
                f"the loaded replay buffer holds {capacity:,} transitions, this {type(self).__name__}'s buffer_size is "
                f"{self.buffer_size:,}: {outcome}",
                stacklevel=2,
            )
        if not isinstance(buffer, CompressedReplayBuffer):
            return  # SB3's own buffers
        wanted = {"n_steps": self.n_steps, "gamma": self.gamma}
        if isinstance(buffer, PrioritizedReplayBuffer):
            wanted["alpha"] = self.prioritized_replay_alpha
        differ = {name: (getattr(buffer, name), value) for name, value in wanted.items() if getattr(buffer, name) != value}
        if differ:
            described = ", ".join(f"{name} {saved!r} -> {value!r}" for name, (saved, value) in differ.items())
            warnings.warn(
                f"the loaded replay buffer was saved with other settings than this {type(self).__name__}'s; it now "
                f"samples with the algorithm's ({described}); priorities already stored keep the old alpha until resampled",
                stacklevel=2,
            )
            for name, value in wanted.items():
                setattr(buffer, name, value)

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "_stepping_env", "_deferred_training"]

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
            greedy = th.gather(next_q_target, dim=1, index=next_actions)
        else:
            greedy = next_q_target.max(dim=1, keepdim=True)[0]
        if not self.target_epsilon:
            return greedy
        return (1 - self.target_epsilon) * greedy + self.target_epsilon * next_q_target.mean(dim=1, keepdim=True)

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        if self._deferred_training is not None:  # called by learn(): run while the envs play the next step
            self._deferred_training.defer(gradient_steps, batch_size)
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
            # Independent shifts of both ends of a transition, as DrQ's (K=1, M=1) variant for Atari.
            observations = random_shift(replay_data.observations, self.random_shift)
            next_observations = random_shift(replay_data.next_observations, self.random_shift)

            with th.no_grad():
                next_q_values = self.next_q_values(next_observations)
                target_q_values = replay_data.rewards + (1 - replay_data.dones) * discounts * next_q_values

            current_q_values = th.gather(self.q_net(observations), dim=1, index=replay_data.actions.long())
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
