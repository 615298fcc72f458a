"""
The benchmark harness every ``scripts/bench_*.py`` shares (not part of the installed package): NES
frames per second of ``MarioShaped`` against the bare emulator, recorded transitions, rl-zoo3
training runs timed in a subprocess, and resumable background rl-zoo3 runs with their checkpoints.

Every speed figure is a ratio between runs made in the same process, interleaved and repeated,
because this machine's absolute speed drifts from minute to minute.
"""

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
from gym_super_mario_bros import SuperMarioBrosEnv
from nes_py.wrappers import JoypadSpace
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv

from sb3_mario.envs.mario import ACTION_SETS
from sb3_mario.envs.reward import DEFAULT_FRAME_SKIP
from sb3_mario.envs.vec_env import PinnedSubprocVecEnv

LEARNING_STARTS = 200  # env steps before the timed runs start training
CHECKPOINT_STEPS = 10_000
ENV_ID = "MarioShaped"


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

    :param n_frames: Frames to play, with random SIMPLE_MOVEMENT actions held for the default frame skip.
    :param seed: Seed of the random actions.
    """
    from PIL import Image

    env = JoypadSpace(SuperMarioBrosEnv(target=(1, 1)), ACTION_SETS["simple"])
    actions = np.random.default_rng(seed).integers(0, env.action_space.n, size=n_frames // DEFAULT_FRAME_SKIP + 1)
    env.reset()
    start = time.perf_counter()
    for frame in range(n_frames):
        screen, _, terminated, _, _ = env.step(int(actions[frame // DEFAULT_FRAME_SKIP]))
        Image.fromarray(screen).convert("L").resize((96, 96), Image.BILINEAR)
        if terminated:
            env.reset()
    elapsed = time.perf_counter() - start
    env.close()
    return n_frames / elapsed


def vec_env_seconds(n_envs: int, vec_env_cls: type[VecEnv], n_steps: int, seed: int = 0) -> float:
    """
    Seconds that ``n_steps`` vectorised steps of ``n_envs`` ``MarioShaped`` envs take, with random
    actions, after a 20-step warm-up (each step plays ``n_envs`` agent steps of the default frame skip).

    :param n_envs: Number of envs.
    :param vec_env_cls: ``DummyVecEnv`` (one process), ``SubprocVecEnv`` or ``PinnedSubprocVecEnv``
        (one process per env).
    :param n_steps: Vectorised steps to time.
    :param seed: Seed of the envs and the random actions.
    """
    vec_env = make_vec_env("MarioShaped", n_envs=n_envs, seed=seed, vec_env_cls=vec_env_cls)
    actions = np.random.default_rng(seed).integers(0, vec_env.action_space.n, size=(n_steps + 20, n_envs))
    vec_env.reset()
    for action in actions[:20]:
        vec_env.step(action)
    start = time.perf_counter()
    for action in actions[20:]:
        vec_env.step(action)
    elapsed = time.perf_counter() - start
    vec_env.close()
    return elapsed


VEC_ENV_CLASSES: dict[str, type[VecEnv]] = {
    "dummy": DummyVecEnv,
    "subproc": SubprocVecEnv,
    "pinned": PinnedSubprocVecEnv,
}


def zoo_training_fps(
    conf_file: str,
    n_timesteps: int,
    log_folder: str,
    vec_env: str = "dummy",
    num_threads: int = -1,
    overrides: tuple[str, ...] = (),
    algo: str = "dqn",
    code: str | None = None,
    device: str = "auto",
) -> float:
    """
    Env steps/s of ``python -m rl_zoo3.train --algo dqn --env MarioShaped`` with a hyperparameter file
    while it trains: training starts after 200 steps, and the rate is measured from the first of SB3's
    logs (one per episode) after that to the last (``time_elapsed`` has a resolution of one second:
    give the run a minute or more).

    :param conf_file: Hyperparameter file (``--conf-file``).
    :param n_timesteps: Env steps to train for.
    :param log_folder: Where rl-zoo3 may write the run.
    :param vec_env: ``"dummy"`` or ``"subproc"`` (``--vec-env``).
    :param num_threads: torch threads (``--num-threads``; -1: torch's default).
    :param overrides: More ``-params`` overrides, e.g. ``("n_envs:2", "train_freq:2")``.
    :param algo: rl-zoo3 algorithm (``--algo``).
    :param code: Another checkout of sb3-mario to train with (put first on ``PYTHONPATH``), e.g. an
        older commit to compare against.
    :param device: torch device (``--device``): ``auto`` takes a GPU when there is one.
    """
    command = [
        sys.executable,
        "-m",
        "rl_zoo3.train",
        "--algo",
        algo,
        "--env",
        "MarioShaped",
        "--conf-file",
        conf_file,
        "-n",
        str(n_timesteps),
        "-f",
        log_folder,
        "--eval-freq",
        "-1",
        "--log-interval",
        "1",
        "--vec-env",
        vec_env,
        "--num-threads",
        str(num_threads),
        "--device",
        device,
        "-params",
        f"learning_starts:{LEARNING_STARTS}",
        *overrides,
    ]
    env = {**os.environ, "PYTHONPATH": code} if code else None
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise RuntimeError(f"rl-zoo3 failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    # The rate over the logs after training started, not SB3's time/fps (steps since the start over
    # time since the start), which counts the 200 steps without gradient steps at full weight.
    times = [int(seconds) for seconds in re.findall(r"\|\s+time_elapsed\s+\|\s+(\d+)\s+\|", result.stdout)]
    steps = [int(count) for count in re.findall(r"\|\s+total_timesteps\s+\|\s+(\d+)\s+\|", result.stdout)]
    training = [(t, n) for t, n in zip(times, steps, strict=True) if n > LEARNING_STARTS]
    if len(training) < 2 or training[-1][0] == training[0][0]:
        raise RuntimeError(f"fewer than two logs a second apart after training started:\n{result.stdout[-2000:]}")
    (start_time, start_steps), (end_time, end_steps) = training[0], training[-1]
    return (end_steps - start_steps) / (end_time - start_time)


def run_dirs(seed_dir: Path, algo: str) -> list[Path]:
    """The seed's rl-zoo3 run folders, first run first (a resumed run continues in the next one)."""
    runs = (seed_dir / "logs" / algo).glob(f"{ENV_ID}_*")
    return sorted(runs, key=lambda run: int(run.name.rsplit("_", 1)[1]))


def checkpoints(seed_dir: Path, algo: str) -> list[tuple[int, Path]]:
    """Every periodic checkpoint of the seed's runs, as (env steps, zip), oldest first."""
    found = [
        (int(path.stem.split("_")[2]), path) for run in run_dirs(seed_dir, algo) for path in run.glob("rl_model_*_steps.zip")
    ]
    return sorted(found)


def final_model(seed_dir: Path, algo: str) -> Path | None:
    """The last run's final model, if that run finished."""
    runs = run_dirs(seed_dir, algo)
    return runs[-1] / f"{ENV_ID}.zip" if runs and (runs[-1] / f"{ENV_ID}.zip").is_file() else None


def launch_or_resume(run_dir: Path, command: list[str], args: argparse.Namespace) -> subprocess.Popen:
    """
    Run an rl-zoo3 training ``command`` in the background, logging to ``<run_dir>/train.log``: with
    ``args.params`` as ``-params``, for ``args.steps`` in all, continuing from the newest checkpoint.
    """
    if args.params:
        command = [*command, "-params", *args.params]
    saved = checkpoints(run_dir, args.algo)
    if saved:  # resume: rl-zoo3 writes the continuation to a new run folder
        steps, path = saved[-1]
        command = [*command, "-i", str(path), "-n", str(args.steps - steps)]
    else:
        command = [*command, "-n", str(args.steps)]
    log = open(run_dir / "train.log", "a")
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)


def record_transitions(n: int, seed: int = 0, **env_kwargs) -> list[tuple]:
    """``n`` transitions of random play on 1-1 (``env_kwargs``: e.g. the action set), as ``ReplayBuffer.add`` takes them."""
    env = gym.make("MarioShaped", **env_kwargs)
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    transitions = []
    while len(transitions) < n:
        action = int(rng.integers(env.action_space.n))
        next_obs, reward, terminated, truncated, _ = env.step(action)
        transitions.append((obs[None], next_obs[None], np.array([[action]]), np.array([reward]), np.array([terminated]), [{}]))
        obs = env.reset()[0] if terminated or truncated else next_obs
    env.close()
    return transitions
