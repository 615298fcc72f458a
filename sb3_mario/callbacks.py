"""
Training callbacks for any SB3 algorithm on Mario envs: episode statistics (flag, death and stall
rates, furthest x) for the logger. The notebook's adaptive exploration, a DQN callback, is
:class:`sb3_mario.dqn.exploration.AdaptiveEpsilonCallback`; the callbacks that keep a run's work safe
(checkpoints, Ctrl-C) are in :mod:`sb3_mario.zoo.checkpoints`.
"""

from collections import deque

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

# Hyperparameter files written before the sub-packages name it here.
from sb3_mario.dqn.exploration import AdaptiveEpsilonCallback  # noqa: F401


class MarioEpisodeStatsCallback(BaseCallback):
    """
    Log Mario's episode outcomes next to SB3's ``rollout/ep_rew_mean``, over the same kind of
    window: mean and max ``max_x``, and the rates of flags, deaths and stall time-outs. With
    several stages (``info["level"]``), also each stage's mean ``max_x`` and flag rate over its own
    last ``window`` episodes (``mario/<stage>/ep_max_x_mean``, ``mario/<stage>/flag_rate``).

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
        ended = [info for info, done in zip(self.locals["infos"], self.locals["dones"], strict=True) if done]
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
