"""
Throughput measurements: NES frames per second of ``MarioShaped`` against the bare emulator.

Used by ``scripts/bench_env.py``. Every figure is a ratio between runs made in the same process,
interleaved and repeated, because this machine's absolute speed drifts from minute to minute.
"""

import re
import subprocess
import sys
import time
from collections.abc import Callable

import gymnasium as gym
import numpy as np
from gym_super_mario_bros import SuperMarioBrosEnv
from nes_py.wrappers import JoypadSpace
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv

from sb3_mario.env import ACTION_SETS


def record_mario_shaped(n_steps: int, seed: int = 0, **env_kwargs) -> tuple[float, list[list[int]]]:
    """
    Play ``n_steps`` random agent steps of ``MarioShaped``; time them and record every frame's buttons.

    :param n_steps: Agent steps to play (episodes are reset as they end).
    :param seed: Seed of the random actions.
    :param env_kwargs: ``MarioShaped`` arguments.
    :return: Seconds spent in ``reset``/``step``, and each episode's per-frame button bitmaps.
    """
    env = gym.make("MarioShaped", **env_kwargs)
    joypad = env.get_wrapper_attr("_action_map")  # action index -> NES button bitmap
    actions = np.random.default_rng(seed).integers(0, env.action_space.n, size=n_steps)
    episodes: list[list[int]] = [[]]
    start = time.perf_counter()
    env.reset(seed=seed)
    for action in actions:
        _, _, terminated, truncated, info = env.step(int(action))
        episodes[-1] += [joypad[int(action)]] * info["frames"]
        if terminated or truncated:
            env.reset()
            episodes.append([])
    elapsed = time.perf_counter() - start
    env.close()
    return elapsed, episodes


def replay_raw(episodes: list[list[int]], level: tuple[int, int] = (1, 1)) -> float:
    """
    Replay recorded frames on the bare emulator (``nes_py`` frame advance, same ROM and buttons).

    :param episodes: What :func:`record_mario_shaped` played.
    :param level: (world, stage) the episodes were played on.
    :return: Seconds spent.
    """
    nes = SuperMarioBrosEnv(target=level)
    start = time.perf_counter()
    for episode in episodes:
        nes.reset()
        for buttons in episode:
            nes._frame_advance(buttons)
    elapsed = time.perf_counter() - start
    nes.close()
    return elapsed


def notebook_pipeline_fps(n_frames: int, seed: int = 0) -> float:
    """
    NES frames/s of the notebook's per-frame pipeline: the stock ``step`` and an antialiased PIL
    resize on every frame (a reference point; it needs Pillow).

    :param n_frames: Frames to play, with random SIMPLE_MOVEMENT actions held for 4 frames.
    :param seed: Seed of the random actions.
    """
    from PIL import Image

    env = JoypadSpace(SuperMarioBrosEnv(target=(1, 1)), ACTION_SETS["simple"])
    actions = np.random.default_rng(seed).integers(0, env.action_space.n, size=n_frames // 4 + 1)
    env.reset()
    start = time.perf_counter()
    for frame in range(n_frames):
        screen, _, terminated, _, _ = env.step(int(actions[frame // 4]))
        Image.fromarray(screen).convert("L").resize((96, 96), Image.BILINEAR)
        if terminated:
            env.reset()
    elapsed = time.perf_counter() - start
    env.close()
    return n_frames / elapsed


def vec_env_fps(n_envs: int, vec_env_cls: type[VecEnv], n_steps: int, frame_skip: int = 4, seed: int = 0) -> float:
    """
    NES frames/s of ``n_envs`` ``MarioShaped`` envs stepped together with random actions.

    :param n_envs: Number of envs.
    :param vec_env_cls: ``DummyVecEnv`` (one process) or ``SubprocVecEnv`` (one process per env).
    :param n_steps: Vectorised steps to time (after a warm-up).
    :param frame_skip: Frames per agent step, to convert steps into frames.
    :param seed: Seed of the envs and the random actions.
    """
    # "module:id" makes each worker import sb3_mario (and so register MarioShaped) itself.
    vec_env = make_vec_env("sb3_mario:MarioShaped", n_envs=n_envs, seed=seed, vec_env_cls=vec_env_cls)
    rng = np.random.default_rng(seed)
    vec_env.reset()
    for _ in range(20):
        vec_env.step(rng.integers(0, vec_env.action_space.n, size=n_envs))
    start = time.perf_counter()
    for _ in range(n_steps):
        vec_env.step(rng.integers(0, vec_env.action_space.n, size=n_envs))
    elapsed = time.perf_counter() - start
    vec_env.close()
    return n_envs * n_steps * frame_skip / elapsed


VEC_ENV_CLASSES: dict[str, type[VecEnv]] = {"dummy": DummyVecEnv, "subproc": SubprocVecEnv}


def best_of(repeats: int, measure: Callable[[], float]) -> float:
    """Largest of ``repeats`` measurements: the run least disturbed by the rest of the machine."""
    return max(measure() for _ in range(repeats))


def zoo_training_fps(conf_file: str, n_timesteps: int, log_folder: str, extra_args: tuple[str, ...] = ()) -> float:
    """
    Env steps/s of ``python -m rl_zoo3.train --algo dqn --env MarioShaped`` with a hyperparameter file,
    as SB3 reports it (``time/fps`` of the last log), with training starting after 100 steps so that
    gradient steps weigh in from the start.

    :param conf_file: Hyperparameter file (``--conf-file``).
    :param n_timesteps: Env steps to train for.
    :param log_folder: Where rl-zoo3 may write the run.
    :param extra_args: More rl-zoo3 arguments (e.g. ``("--num-threads", "1")``).
    """
    command = [
        sys.executable, "-m", "rl_zoo3.train", "--algo", "dqn", "--env", "MarioShaped", "--conf-file", conf_file,
        "-n", str(n_timesteps), "-f", log_folder, "--eval-freq", "-1", "--log-interval", "1",
        "-params", "learning_starts:100", *extra_args,
    ]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    fps_values = re.findall(r"\|\s+fps\s+\|\s+(\d+)\s+\|", output)
    if not fps_values:
        raise RuntimeError(f"no fps in rl-zoo3's output:\n{output[-2000:]}")
    return float(fps_values[-1])
