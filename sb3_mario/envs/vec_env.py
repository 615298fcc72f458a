"""
sb3-mario's vectorised-env classes: SB3's, changed for speed and for safe stops.

:class:`PinnedSubprocVecEnv` is ``SubprocVecEnv`` with each worker pinned to its own CPU core (and
kept alive through stop signals, so that the run can save); :class:`LeanVecNormalize` is
``VecNormalize`` without copies of the observations it does not normalize.

A ``SubprocVecEnv`` steps its workers in lock-step: the main process waits for the slowest worker,
then the workers wait while it handles the results. Left to the scheduler, the workers of an
emulator-bound env migrate between cores at every one of those hand-overs and keep running on caches
that another process just filled. Pinning worker ``i`` to core ``i`` (round robin over the cores this
process may use) and leaving the main process free to run wherever a core is idle runs them faster
than the stock ``SubprocVecEnv`` (``scripts/bench_env.py --n-envs 2``; figures in docs/benchmarks.md).
"""

import atexit
import functools
import os
import signal
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

    Same constructor, same results; only where the workers run changes, and two things for safe
    stops: the workers ignore SIGINT and SIGTERM (the main process decides when to stop, see
    :class:`~sb3_mario.zoo.checkpoints.GracefulInterruptCallback`), and ``close`` tolerates dead workers. rl-zoo3's
    ``--vec-env subproc`` uses it for sb3-mario's envs. With more workers than cores, workers share
    cores round robin. Where the OS has no CPU affinity it is a plain ``SubprocVecEnv``.

    :param env_fns: Functions that create the environments, one per worker.
    :param start_method: multiprocessing start method (as for ``SubprocVecEnv``).
    """

    def __init__(self, env_fns: list[Callable[[], gym.Env]], start_method: str | None = None) -> None:
        super().__init__([functools.partial(_make_env_ignoring_stop_signals, env_fn) for env_fn in env_fns], start_method)
        # A worker ignores SIGTERM, which is how multiprocessing ends the workers of an env never
        # closed (rl-zoo3's eval env) at exit: kill those first, or the exit would wait forever.
        atexit.register(_kill_workers_left_running, list(self.processes))
        cores = worker_cores(len(self.processes))
        if cores is not None:
            for process, core in zip(self.processes, cores, strict=True):
                os.sched_setaffinity(process.pid, {core})

    def close(self) -> None:
        try:
            super().close()
        except (BrokenPipeError, ConnectionResetError, EOFError):
            # A worker died (killed, out of memory): the others were told to close; end them all
            # (SIGKILL: the workers ignore SIGTERM, which terminate() sends).
            _kill_workers_left_running(self.processes)
            for process in self.processes:
                process.join()
            self.closed = True


def _kill_workers_left_running(processes: list) -> None:
    for process in processes:
        if process.is_alive():
            process.kill()


def _make_env_ignoring_stop_signals(env_fn: Callable[[], gym.Env]) -> gym.Env:
    """
    Run in each worker before its env is made: a worker ignores SIGINT and SIGTERM. The terminal's
    Ctrl-C, ``timeout`` and job schedulers signal the whole process group; a worker killed by them
    mid-step takes the run down before it can save. The main process stops the workers (``close``),
    and a worker whose main process died ends when its pipe closes.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    return env_fn()


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
