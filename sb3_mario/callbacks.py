"""
Training callbacks for any SB3 algorithm on Mario envs: episode statistics (flag, death and stall
rates, furthest x) for the logger, a stop once the agent clears its level and one after a wall-time
limit. The notebook's adaptive exploration, a DQN callback, is
:class:`sb3_mario.dqn.exploration.AdaptiveEpsilonCallback`; the callbacks that keep a run's work safe
(checkpoints, Ctrl-C) are in :mod:`sb3_mario.zoo.checkpoints`.
"""

import time
from collections import deque

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback, EvalCallback
from stable_baselines3.common.vec_env import VecEnv

# Hyperparameter files written before the sub-packages name it here.
from sb3_mario.dqn.exploration import AdaptiveEpsilonCallback  # noqa: F401
from sb3_mario.loading import epsilon_greedy_action


class MarioEpisodeStatsCallback(BaseCallback):
    """
    Log Mario's episode outcomes next to SB3's ``rollout/ep_rew_mean``, over the same kind of
    window: mean and max ``max_x``, and the rates of flags, deaths and stall time-outs. With
    several stages (``info["level"]``), also each stage's mean ``max_x`` and flag rate over its own
    last ``window`` episodes (``mario/<stage>/ep_max_x_mean``, ``mario/<stage>/flag_rate``).
    Episodes started from a snapshot (``info["frontier_start"]``, :mod:`sb3_mario.envs.frontier_starts`)
    are left out: the statistics stay those of episodes from the stage's start, comparable across runs.

    :param window: Number of most recent episodes the statistics cover.
    :param verbose: Verbosity level.
    """

    def __init__(self, window: int = 100, verbose: int = 0) -> None:
        super().__init__(verbose)
        self.window = window
        self.max_x: deque[float] = deque(maxlen=window)
        self.causes: deque[str | None] = deque(maxlen=window)
        self.stage_max_x: dict[str, deque[float]] = {}
        self.stage_flags: dict[str, deque[bool]] = {}

    def _on_step(self) -> bool:
        ended = [
            info
            for info, done in zip(self.locals["infos"], self.locals["dones"], strict=True)
            if done and not info.get("frontier_start", False)
        ]
        for info in ended:
            self.max_x.append(info["max_x"])
            self.causes.append(info.get("termination_cause"))
            level = info.get("level", "")
            self.stage_max_x.setdefault(level, deque(maxlen=self.window)).append(info["max_x"])
            self.stage_flags.setdefault(level, deque(maxlen=self.window)).append(info.get("termination_cause") == "flag")
        if ended:  # SB3's DQN writes its logs only when an episode ends
            self.logger.record("mario/ep_max_x_mean", float(np.mean(self.max_x)))
            self.logger.record("mario/ep_max_x_max", float(np.max(self.max_x)))
            for cause in ("flag", "death", "stall"):
                self.logger.record(f"mario/{cause}_rate", self.causes.count(cause) / len(self.causes))
            if len(self.stage_max_x) > 1:
                for level in sorted(self.stage_max_x):
                    self.logger.record(f"mario/{level}/ep_max_x_mean", float(np.mean(self.stage_max_x[level])))
                    self.logger.record(f"mario/{level}/flag_rate", float(np.mean(self.stage_flags[level])))
        return True


class StopTrainingOnFlagRate(BaseCallback):
    """
    Stop training once the agent clears its level, as SB3's ``StopTrainingOnRewardThreshold`` does
    for a reward: a child of an ``EvalCallback`` (its ``callback_after_eval``), called after each
    evaluation. In an rl-zoo3 entry, list it under ``callback:`` and sb3-mario's hook attaches it to
    rl-zoo3's periodic evaluation (``--eval-freq``).

    When at least ``flag_rate`` of the evaluation's episodes reached the flag (``info["is_success"]``;
    rl-zoo3 evaluates greedily, so on Mario's deterministic emulator its episodes are one episode
    played again), it plays ``n_episodes`` more on the evaluation env, each action random with
    probability ``epsilon``, and stops training when at least ``flag_rate`` of those reach the flag too.
    rl-zoo3 then saves the final model as it does at the end of a run. Logs ``eval/epsilon_flag_rate``.

    :param flag_rate: Share of episodes that must reach the flag, in both checks.
    :param n_episodes: Episodes of the epsilon check.
    :param epsilon: Probability of a random action in those episodes (the notebook evaluated with 0.05).
    :param seed: Seed of the epsilon check's random actions.
    :param verbose: Verbosity level: 1 prints each epsilon check.
    """

    parent: EvalCallback

    def __init__(self, flag_rate: float = 0.8, n_episodes: int = 20, epsilon: float = 0.05, seed: int = 0, verbose: int = 0):
        super().__init__(verbose)
        if not 0.0 < flag_rate <= 1.0:
            raise ValueError(f"flag_rate={flag_rate!r} must be in (0, 1]")
        if n_episodes < 1:
            raise ValueError(f"n_episodes={n_episodes!r} must be a positive integer")
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError(f"epsilon={epsilon!r} must be in [0, 1]")
        self.flag_rate = flag_rate
        self.n_episodes = n_episodes
        self.epsilon = epsilon
        self.seed = seed

    def _on_step(self) -> bool:
        if not isinstance(self.parent, EvalCallback):
            raise TypeError("StopTrainingOnFlagRate must be an EvalCallback's callback_after_eval")
        # The last evaluation's episode outcomes (evaluations_successes holds them only with a log_path).
        successes = self.parent._is_success_buffer
        if not successes or np.mean(successes) < self.flag_rate:
            return True
        rate = self.epsilon_flag_rate(self.parent.eval_env)
        self.logger.record("eval/epsilon_flag_rate", rate)
        if self.verbose >= 1:
            print(f"StopTrainingOnFlagRate: {rate:.0%} of {self.n_episodes} epsilon-{self.epsilon} episodes reached the flag")
        return rate < self.flag_rate

    def epsilon_flag_rate(self, env: VecEnv) -> float:
        """
        The share of ``n_episodes`` episodes on ``env`` (one env) that reach the flag, with random actions.

        :param env: The evaluation env.
        """
        rng = np.random.default_rng(self.seed)
        flags = 0
        for episode in range(self.n_episodes):
            env.seed(self.seed + episode)
            observation = env.reset()
            done = False
            while not done:
                action = epsilon_greedy_action(self.model, observation[0], self.epsilon, rng, int(env.action_space.n))
                observation, _, dones, infos = env.step(np.array([action]))
                done = bool(dones[0])
            flags += bool(infos[0].get("is_success"))
        return flags / self.n_episodes


class StopTrainingOnTimeLimit(BaseCallback):
    """
    Stop training after ``minutes`` of wall time, so that an entry's budget is a time, not a number of
    steps that takes a different time on each machine. rl-zoo3 then saves the final model as it does
    at the end of a run. The clock starts when training starts (a resumed run gets the whole limit
    again) and counts everything training does, periodic evaluations and checkpoints included.

    :param minutes: Wall time after which training stops.
    :param verbose: Verbosity level: 1 prints when the limit stops training.
    """

    def __init__(self, minutes: float, verbose: int = 0) -> None:
        super().__init__(verbose)
        if not minutes > 0:
            raise ValueError(f"minutes={minutes!r} must be a positive number")
        self.minutes = minutes
        self.start = 0.0

    def _on_training_start(self) -> None:
        self.start = time.monotonic()

    def _on_step(self) -> bool:
        elapsed = time.monotonic() - self.start
        if elapsed < 60 * self.minutes:
            return True
        if self.verbose >= 1:
            print(f"StopTrainingOnTimeLimit: {elapsed / 60:.1f} min of training, stopping at {self.num_timesteps} steps")
        return False
