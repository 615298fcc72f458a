"""MarioShaped under SB3's vectorised envs: subprocess and pinned workers, identical results, rl-zoo3 --vec-env subproc."""

import os
import subprocess
import sys

import numpy as np
import pytest
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecNormalize

import sb3_mario  # noqa: F401  (registers MarioShaped)
from sb3_mario.envs.vec_env import LeanVecNormalize, worker_cores
from tests.zoo_runner import SMALL, zoo

# In a fresh interpreter: the plain id must work in SubprocVecEnv workers, and give what DummyVecEnv gives.
SUBPROC_SCRIPT = """
import os
import numpy as np
import sb3_mario
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv
from sb3_mario.envs.vec_env import PinnedSubprocVecEnv

if __name__ == "__main__":
    actions = np.random.default_rng(0).integers(0, 7, size=(60, 2))
    traces = []
    for vec_env_cls in (DummyVecEnv, SubprocVecEnv, PinnedSubprocVecEnv):
        vec_env = make_vec_env("MarioShaped", n_envs=2, seed=5, vec_env_cls=vec_env_cls)
        if vec_env_cls is PinnedSubprocVecEnv:
            cores = sorted(os.sched_getaffinity(0))
            pinned = [os.sched_getaffinity(process.pid) for process in vec_env.processes]
            assert pinned == [{cores[0]}, {cores[1 % len(cores)]}], pinned
            assert os.sched_getaffinity(0) == set(cores)  # the main process stays free
        obs = vec_env.reset()
        assert obs.shape == (2, 4, 96, 96) and obs.dtype == np.uint8, (obs.shape, obs.dtype)
        trace = [obs]
        for action in actions:
            obs, rewards, dones, infos = vec_env.step(action)
            trace += [obs, rewards, dones, np.array([info["max_x"] for info in infos])]
        traces.append(trace)
        vec_env.close()
    for dummy, *subprocs in zip(*traces):
        for subproc in subprocs:
            # DummyVecEnv keeps rewards in a float32 buffer, SubprocVecEnv stacks Python floats (float64).
            np.testing.assert_array_equal(dummy, np.asarray(subproc, dtype=np.asarray(dummy).dtype))
    print("identical", len(traces[0]))
"""


def run_script(tmp_path, source: str, timeout: float) -> subprocess.CompletedProcess:
    """Run ``source`` as a script in a fresh Python process (subprocess envs need a real ``__main__``); it must succeed."""
    script = tmp_path / "script.py"
    script.write_text(source)
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.mark.slow
def test_subproc_and_pinned_workers_know_mario_shaped_and_match_dummy(tmp_path) -> None:
    result = run_script(tmp_path, SUBPROC_SCRIPT, timeout=300)
    assert "identical 241" in result.stdout


@pytest.mark.slow
def test_zoo_trains_with_subprocess_envs(tmp_path) -> None:
    out = zoo(
        "train",
        "--algo",
        "dqn",
        "--env",
        "MarioShaped",
        "--conf-file",
        "hyperparams/dqn_cpu.yml",
        "-n",
        "400",
        "-f",
        str(tmp_path),
        "--eval-freq",
        "-1",
        "--vec-env",
        "subproc",
        *SMALL,
        "n_envs:2",
        "train_freq:2",
    )
    assert "Using 2 environments" in out
    assert (tmp_path / "dqn" / "MarioShaped_1" / "MarioShaped.zip").is_file()
    monitors = sorted((tmp_path / "dqn" / "MarioShaped_1").glob("*.monitor.csv"))
    assert len(monitors) == 2  # one Monitor per worker


def test_worker_cores_go_round_robin_over_the_allowed_cores() -> None:
    cores = sorted(os.sched_getaffinity(0))
    assert worker_cores(len(cores) * 2 + 1) == [*cores, *cores, cores[0]]


@pytest.mark.slow
@pytest.mark.parametrize("norm_obs", [False, True])
def test_lean_vec_normalize_matches_sb3_and_copies_no_observation_it_keeps(norm_obs: bool) -> None:
    actions = np.random.default_rng(1).integers(0, 7, size=(300, 2))
    traces = []
    for normalize_cls in (VecNormalize, LeanVecNormalize):
        vec_env = normalize_cls(make_vec_env("MarioShaped", n_envs=2, seed=3), norm_obs=norm_obs, norm_reward=True)
        trace = [vec_env.reset()]
        for action in actions:
            obs, rewards, dones, infos = vec_env.step(action)
            trace += [obs, rewards, dones, *(info["terminal_observation"] for info in infos if "terminal_observation" in info)]
        traces.append(trace)
        vec_env.close()
    assert len(traces[0]) == len(traces[1]) > 3 * len(actions) + 1  # some episodes ended (terminal observations)
    for sb3, lean in zip(*traces, strict=True):
        np.testing.assert_array_equal(lean, sb3)
    obs = traces[1][0]
    assert (LeanVecNormalize(make_vec_env("MarioShaped"), norm_obs=norm_obs).normalize_obs(obs) is obs) != norm_obs


DEAD_WORKER_SCRIPT = """
import os, signal
import sb3_mario
from stable_baselines3.common.env_util import make_vec_env
from sb3_mario.envs.vec_env import PinnedSubprocVecEnv

if __name__ == "__main__":
    vec_env = make_vec_env("CartPole-v1", n_envs=2, vec_env_cls=PinnedSubprocVecEnv)
    vec_env.reset()
    os.kill(vec_env.processes[0].pid, signal.SIGKILL)  # out of memory, say
    vec_env.processes[0].join()
    vec_env.close()  # the live worker ignores SIGTERM: close must still end it
    print("closed", [process.is_alive() for process in vec_env.processes])
"""


def test_close_ends_the_workers_when_one_died(tmp_path) -> None:
    result = run_script(tmp_path, DEAD_WORKER_SCRIPT, timeout=120)
    assert "closed [False, False]" in result.stdout


NEVER_CLOSED_SCRIPT = """
import sb3_mario
from stable_baselines3.common.env_util import make_vec_env
from sb3_mario.envs.vec_env import PinnedSubprocVecEnv

if __name__ == "__main__":
    # As rl-zoo3 does with its eval env: made, used, never closed.
    vec_env = make_vec_env("CartPole-v1", n_envs=2, vec_env_cls=PinnedSubprocVecEnv)
    vec_env.reset()
    print("pids", *[process.pid for process in vec_env.processes])
"""


def test_a_process_exits_with_workers_never_closed(tmp_path) -> None:
    # The workers ignore SIGTERM, which multiprocessing's exit handler sends them: without sb3-mario's
    # own exit handler, the process would wait for them forever.
    result = run_script(tmp_path, NEVER_CLOSED_SCRIPT, timeout=60)
    for pid in result.stdout.split()[1:]:
        assert not os.path.exists(f"/proc/{pid}"), f"worker {pid} outlived the process"


@pytest.mark.parametrize("norm_obs", [False, True])
def test_lean_vec_normalize_keeps_the_flags_it_was_given_on_a_small_env(norm_obs: bool) -> None:
    # The fast twin of the Mario test above: CartPole, both classes side by side, the same steps.
    pair = [
        cls(make_vec_env("CartPole-v1", n_envs=2, seed=0), norm_obs=norm_obs, norm_reward=True)
        for cls in (VecNormalize, LeanVecNormalize)
    ]
    lean = pair[1]
    assert (lean.norm_obs, lean.norm_reward) == (norm_obs, True)
    observations = [env.reset() for env in pair]
    np.testing.assert_array_equal(*observations)
    for step in range(30):
        actions = np.array([step % 2, (step // 2) % 2])
        (obs_sb3, rewards_sb3, *_), (obs_lean, rewards_lean, *_) = (env.step(actions) for env in pair)
        np.testing.assert_array_equal(obs_lean, obs_sb3)
        np.testing.assert_allclose(rewards_lean, rewards_sb3)
    assert not np.allclose(rewards_lean, 1.0)  # CartPole pays 1 a step: normalized, it is not 1
    raw = lean.get_original_obs()
    assert (lean.normalize_obs(raw) is raw) != norm_obs  # kept observations are not copied
    assert np.array_equal(obs_lean, raw) != norm_obs
