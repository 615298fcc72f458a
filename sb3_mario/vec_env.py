"""
sb3-mario's vectorised-env classes: SB3's, each changed in one respect for speed.

:class:`PinnedSubprocVecEnv` is ``SubprocVecEnv`` with each worker pinned to its own CPU core.

A ``SubprocVecEnv`` steps its workers in lock-step: the main process waits for the slowest worker,
then the workers wait while it handles the results. Left to the scheduler, the workers of an
emulator-bound env migrate between cores at every one of those hand-overs and keep running on caches
that another process just filled. Pinning worker ``i`` to core ``i`` (round robin over the cores this
process may use) and leaving the main process free to run wherever a core is idle measured
2 x MarioShaped at 1.88x one env here, against 1.71x for the stock ``SubprocVecEnv``
(``scripts/bench_env.py --n-envs 2``).
"""

import os
from collections.abc import Callable

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env import SubprocVecEnv, VecNormalize


def worker_cores(n_workers: int) -> list[int] | None:
    """
    The core each worker is pinned to: the cores this process may run on, in turn.

    :param n_workers: Number of worker processes.
    :return: One core id per worker, or ``None`` where the OS has no CPU affinity (macOS, Windows).
    """
    if not hasattr(os, "sched_getaffinity"):
        return None
    cores = sorted(os.sched_getaffinity(0))
    return [cores[index % len(cores)] for index in range(n_workers)]


class PinnedSubprocVecEnv(SubprocVecEnv):
    """
    SB3's ``SubprocVecEnv``, with worker ``i`` pinned to the ``i``-th core this process may use.

    Same constructor, same results; only where the workers run changes. rl-zoo3's
    ``--vec-env subproc`` uses it for sb3-mario's envs. With more workers than cores, workers share
    cores round robin. Where the OS has no CPU affinity it is a plain ``SubprocVecEnv``.

    :param env_fns: Functions that create the environments, one per worker.
    :param start_method: multiprocessing start method (as for ``SubprocVecEnv``).
    """

    def __init__(self, env_fns: list[Callable[[], gym.Env]], start_method: str | None = None) -> None:
        super().__init__(env_fns, start_method)
        cores = worker_cores(len(self.processes))
        if cores is not None:
            for process, core in zip(self.processes, cores, strict=True):
                os.sched_setaffinity(process.pid, {core})


class LeanVecNormalize(VecNormalize):
    """
    SB3's ``VecNormalize`` that hands observations on as they are when it does not normalize them.

    SB3's version deep-copies every observation (and every terminal observation) it passes through,
    also with ``norm_obs=False``: with reward-only normalization (the CPU entries'
    ``normalize: dict(norm_obs=False, norm_reward=True)``) that is a copy of each env's frame stack
    per step for nothing. Statistics, saving (``vecnormalize.pkl``) and loading are SB3's; with
    ``norm_obs=True`` it is SB3's class exactly. rl-zoo3 runs of sb3-mario's envs use it.
    """

    def normalize_obs(self, obs: np.ndarray | dict[str, np.ndarray]) -> np.ndarray | dict[str, np.ndarray]:
        return super().normalize_obs(obs) if self.norm_obs else obs

    def unnormalize_obs(self, obs: np.ndarray | dict[str, np.ndarray]) -> np.ndarray | dict[str, np.ndarray]:
        return super().unnormalize_obs(obs) if self.norm_obs else obs
