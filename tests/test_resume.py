"""Interrupted runs leave loadable models; killed runs resume from checkpoints with their replay buffer and frontier."""

import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from stable_baselines3 import DQN
from stable_baselines3.common.save_util import load_from_pkl
from stable_baselines3.common.utils import LinearSchedule

from tests.zoo_runner import REPO, zoo

# Small and quick: a checkpoint (and replay buffer) every 200 steps, a frontier that moves after every
# episode that beats it, so that it is not still at its start value when the run stops.
RUN = [
    "--algo",
    "dqn",
    "--env",
    "MarioShaped",
    "--conf-file",
    "hyperparams/dqn_cpu.yml",
    "--eval-freq",
    "-1",
    "--save-freq",
    "200",
    "--save-replay-buffer",
    "--seed",
    "3",
    "-params",
    "buffer_size:2000",
    "learning_starts:150",
    "batch_size:16",
    "callback:[{'sb3_mario.dqn.exploration.AdaptiveEpsilonCallback': {'frontier_window': 1, 'verbose': 1}}]",
]
# The same with a frontier that moves every second frontier-beating episode, so that a checkpoint
# holds episodes waiting for the next move.
RUN_WINDOW_2 = [*RUN[:-1], RUN[-1].replace("'frontier_window': 1", "'frontier_window': 2")]


def start_training(log_folder: Path, n_timesteps: int = 100_000, run: list[str] = RUN) -> subprocess.Popen:
    command = [sys.executable, "-m", "rl_zoo3.train", *run, "-n", str(n_timesteps), "-f", str(log_folder)]
    return subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_for(path: Path, process: subprocess.Popen, timeout: float = 900) -> None:
    # Only a guard against a hung run (the runs end by themselves): 300 s was too short beside a
    # training run on this 2-core machine, where the first checkpoint once took longer.
    deadline = time.time() + timeout
    while not path.exists():
        assert process.poll() is None, f"training stopped early:\n{process.stdout.read()[-3000:]}"
        assert time.time() < deadline, f"{path} never appeared"
        time.sleep(0.2)


def saved_data(zip_path: Path) -> dict:
    """The JSON part of an SB3 zip (read without unpickling anything)."""
    with zipfile.ZipFile(zip_path) as archive:
        return json.loads(archive.read("data"))


@pytest.mark.slow
def test_ctrl_c_saves_a_loadable_model(tmp_path) -> None:
    process = start_training(tmp_path)
    run = tmp_path / "dqn" / "MarioShaped_1"
    wait_for(run / "rl_model_400_steps.zip", process)
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 0, output[-3000:]
    assert "Saving to" in output
    model = DQN.load(run / "MarioShaped.zip")
    assert 400 <= model.num_timesteps < 100_000
    assert (run / "replay_buffer.pkl").is_file()
    assert saved_data(run / "MarioShaped.zip")["adaptive_epsilon_state"]["frontiers"]["1-1"]["frontier"] > 40


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_total(tmp_path) -> None:
    process = start_training(tmp_path, n_timesteps=1000, run=RUN_WINDOW_2)
    run = tmp_path / "dqn" / "MarioShaped_1"
    wait_for(run / "rl_model_600_steps.zip", process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (run / "MarioShaped.zip").exists()  # killed: no final save...
    checkpoints = sorted(run.glob("rl_model_*_steps.zip"), key=lambda p: int(p.stem.split("_")[2]))
    checkpoint = checkpoints[-1]  # ...but the latest checkpoint loads (checkpoints are written atomically)
    steps = DQN.load(checkpoint).num_timesteps
    assert steps == int(checkpoint.stem.split("_")[2])
    data = saved_data(checkpoint)
    state = data["adaptive_epsilon_state"]["frontiers"]["1-1"]
    assert state["recent_beats"]  # frontier-beating episodes the resumed run must remember
    # The checkpoint's replay buffer was written before it: it holds exactly the checkpoint's transitions.
    buffer_path = run / f"rl_model_replay_buffer_{steps}_steps.pkl"
    buffer_size = load_from_pkl(buffer_path).size()
    assert buffer_size == steps - 1  # callbacks run before the step's transition is stored

    # The reward normalization's statistics were saved with the checkpoint (the entry normalizes rewards).
    statistics = run / f"rl_model_vecnormalize_{steps}_steps.pkl"
    checkpoint_count = load_from_pkl(statistics).ret_rms.count
    assert checkpoint_count == pytest.approx(steps, abs=1)

    # Resume without -n, as the README says: the run goes on to the entry's total (here the 1000 steps
    # of the first run, given as the entry's n_timesteps).
    out = zoo("train", *RUN_WINDOW_2, "n_timesteps:1000", "-f", str(tmp_path), "-i", str(checkpoint), "--verbose", "1")
    assert f"Loading the replay buffer saved with the checkpoint: {buffer_path}" in out
    assert f"Loading the VecNormalize statistics saved with the checkpoint: {statistics}" in out
    # The adaptive exploration starts where the checkpoint left it: frontier, the episodes waiting for
    # its next move, and epsilon: the schedule's value at the checkpoint's step, without the boost the
    # checkpoint's saved exploration_rate holds if Mario was past the frontier when it was written.
    schedule = LinearSchedule(data["exploration_initial_eps"], data["exploration_final_eps"], data["exploration_fraction"])
    epsilon = schedule(data["_current_progress_remaining"])
    recent = [round(x) for x in state["recent_beats"]]
    assert (
        f"resumed at epsilon {epsilon:.6f}; 1-1: frontier at x={state['frontier']:.0f}, "
        f"recent frontier-beating max_x {recent} ({state['beats_since_update']} since the last update)"
    ) in out
    resumed_run = tmp_path / "dqn" / "MarioShaped_2"
    resumed_statistics = load_from_pkl(resumed_run / "MarioShaped" / "vecnormalize.pkl")
    assert resumed_statistics.ret_rms.count == pytest.approx(1000, abs=1)  # carried on from the checkpoint's
    resumed = DQN.load(resumed_run / "MarioShaped.zip")
    assert resumed.num_timesteps == 1000  # the same total as an uninterrupted run
    # The replay buffer carried on too: the checkpoint's transitions plus the resumed run's.
    assert load_from_pkl(resumed_run / "replay_buffer.pkl").size() == buffer_size + (1000 - steps)
    resumed_state = saved_data(resumed_run / "MarioShaped.zip")["adaptive_epsilon_state"]["frontiers"]["1-1"]
    assert resumed_state["frontier"] >= state["frontier"]


@pytest.mark.slow
def test_a_run_continued_without_its_replay_buffer_warms_up_before_learning(tmp_path) -> None:
    # 300 steps, learning from step 150; then 300 more from the final model with its buffer deleted
    # (a shipped agent, or checkpoints saved without --save-replay-buffer).
    zoo("train", *RUN, "-n", "300", "-f", str(tmp_path))
    first = tmp_path / "dqn" / "MarioShaped_1"
    (first / "replay_buffer.pkl").unlink()
    first_updates = saved_data(first / "MarioShaped.zip")["_n_updates"]
    assert first_updates > 0

    out = zoo("train", *RUN, "-n", "300", "-f", str(tmp_path), "-i", str(first / "MarioShaped.zip"))
    assert "No replay buffer was loaded: collecting 150 transitions (learning_starts)" in out
    continued = saved_data(tmp_path / "dqn" / "MarioShaped_2" / "MarioShaped.zip")
    assert continued["num_timesteps"] == 600
    assert continued["learning_starts"] == 450
    # The same 150 steps of learning as the first run: none on the nearly empty buffer of steps 300-450.
    assert continued["_n_updates"] - first_updates == first_updates


def test_atomic_checkpoints_write_every_file_sb3_writes(tmp_path) -> None:
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.save_util import load_from_pkl
    from stable_baselines3.common.vec_env import VecNormalize

    from sb3_mario.zoo.checkpoints import AtomicCheckpointCallback

    env = VecNormalize(make_vec_env("CartPole-v1", n_envs=1, seed=0), norm_obs=False, norm_reward=True)
    model = DQN("MlpPolicy", env, learning_starts=1000, buffer_size=1000, seed=0, device="cpu")
    model.learn(100, callback=AtomicCheckpointCallback(50, str(tmp_path), save_replay_buffer=True, save_vecnormalize=True))
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "rl_model_100_steps.zip",
        "rl_model_50_steps.zip",
        "rl_model_replay_buffer_100_steps.pkl",
        "rl_model_replay_buffer_50_steps.pkl",
        "rl_model_vecnormalize_100_steps.pkl",
        "rl_model_vecnormalize_50_steps.pkl",
    ]
    buffer = load_from_pkl(tmp_path / "rl_model_replay_buffer_100_steps.pkl")
    assert buffer.size() == 99  # callbacks run before the step's transition is stored, as in SB3
    saved = VecNormalize.load(str(tmp_path / "rl_model_vecnormalize_100_steps.pkl"), make_vec_env("CartPole-v1"))
    assert saved.ret_rms.count == env.ret_rms.count > 1


def test_a_checkpoint_model_is_written_after_its_buffer_and_older_buffers_go(tmp_path) -> None:
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    from sb3_mario.zoo.checkpoints import AtomicCheckpointCallback

    env = VecNormalize(make_vec_env("CartPole-v1", n_envs=1, seed=0), norm_obs=False, norm_reward=True)
    model = DQN("MlpPolicy", env, learning_starts=1000, buffer_size=1000, seed=0, device="cpu")
    callback = AtomicCheckpointCallback(50, str(tmp_path), save_replay_buffer=True, latest_replay_buffer_only=True)
    model.learn(100, callback=callback)
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "rl_model_100_steps.zip",
        "rl_model_50_steps.zip",
        "rl_model_replay_buffer_100_steps.pkl",  # the 50-step buffer went once the 100-step checkpoint was complete
    ]

    # A run killed while writing a model: that checkpoint's buffer exists, its zip does not, and the
    # previous checkpoint keeps its own buffer (deleted only after the new zip is complete).
    def killed(path) -> None:
        raise KeyboardInterrupt

    model.save = killed
    with pytest.raises(KeyboardInterrupt):
        model.learn(50, callback=callback, reset_num_timesteps=False)
    assert sorted(path.name for path in tmp_path.glob("rl_model_*")) == [
        "rl_model_100_steps.zip",
        "rl_model_50_steps.zip",
        "rl_model_replay_buffer_100_steps.pkl",
        "rl_model_replay_buffer_150_steps.pkl",
    ]


def test_a_checkpoint_write_that_fails_half_way_leaves_the_previous_one_loadable(tmp_path) -> None:
    from sb3_mario.zoo.checkpoints import save_atomically

    model = DQN("MlpPolicy", "CartPole-v1", learning_starts=1000, seed=0, device="cpu")
    path = tmp_path / "rl_model_50_steps.zip"
    save_atomically(model.save, path)
    complete = path.read_bytes()

    def crash_half_way(target: Path) -> None:
        target.write_bytes(complete[: len(complete) // 2])
        raise OSError("No space left on device")

    with pytest.raises(OSError, match="No space left"):
        save_atomically(crash_half_way, path)
    assert path.read_bytes() == complete
    loaded = DQN.load(path, device="cpu")
    obs = np.zeros((2, 4), dtype=np.float32)
    np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0])


@pytest.mark.slow
@pytest.mark.parametrize(
    "signals", [(signal.SIGINT,), (signal.SIGINT, signal.SIGINT), (signal.SIGTERM,)], ids=["INT", "INT INT", "TERM"]
)
def test_stop_signals_to_the_process_group_save_a_model_with_subprocess_envs(tmp_path, signals: tuple) -> None:
    # What `timeout -s INT`, a terminal's Ctrl-C and job schedulers do: signal the whole group, the
    # env workers included, possibly twice in a row.
    subproc = ["n_envs:2", "train_freq:2", "--vec-env", "subproc"]  # two more -params (the last option of RUN)
    command = [sys.executable, "-m", "rl_zoo3.train", *RUN, *subproc, "-n", "100000", "-f", str(tmp_path)]
    process = subprocess.Popen(
        command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    run = tmp_path / "dqn" / "MarioShaped_1"
    wait_for(run / "rl_model_400_steps.zip", process)
    for signum in signals:
        os.killpg(process.pid, signum)
        time.sleep(0.05)
    output, _ = process.communicate(timeout=180)
    assert process.returncode == 0, output[-3000:]
    assert "BrokenPipeError" not in output and "Traceback" not in output, output[-3000:]
    steps = DQN.load(run / "MarioShaped.zip").num_timesteps
    logged = [int(line.split("|")[2]) for line in output.splitlines() if "total_timesteps" in line]
    assert 400 <= steps < 100_000 and steps >= max(logged, default=0)
    assert (run / "replay_buffer.pkl").is_file()
    if signals == (signal.SIGTERM,):  # and the run continues from it
        zoo("train", *RUN, *subproc, "-n", "100", "-f", str(tmp_path), "-i", str(run / "MarioShaped.zip"))
        continued = DQN.load(tmp_path / "dqn" / "MarioShaped_2" / "MarioShaped.zip").num_timesteps
        assert steps + 100 <= continued < steps + 104  # 4-transition rollouts may overshoot by 2


def test_checkpoint_files_are_found_beside_their_checkpoint(tmp_path) -> None:
    from sb3_mario.zoo.hook import checkpoint_file

    (tmp_path / "rl_model_400_steps.zip").touch()
    assert checkpoint_file(tmp_path / "rl_model_400_steps.zip", "vecnormalize") is None  # none saved (older runs)
    (tmp_path / "rl_model_vecnormalize_400_steps.pkl").touch()
    (tmp_path / "rl_model_replay_buffer_200_steps.pkl").touch()
    assert (
        checkpoint_file(tmp_path / "rl_model_400_steps.zip", "vecnormalize")
        == tmp_path / "rl_model_vecnormalize_400_steps.pkl"
    )
    assert checkpoint_file(tmp_path / "rl_model_400_steps.zip", "replay_buffer") is None  # another step's buffer
    assert checkpoint_file(tmp_path / "MarioShaped.zip", "vecnormalize") is None  # a final model: rl-zoo3's own files


STUB_LOOP = """
import signal, time
from sb3_mario.zoo.checkpoints import GracefulInterruptCallback

callback = GracefulInterruptCallback(verbose=1)
callback._on_training_start()  # what learn() does first: the stop handlers go in
print("ready", flush=True)
for step in range(3000):  # a training loop's env steps, ~30 s at most
    if not callback._on_step():
        print(f"stopped after step {step}", flush=True)
        break
    time.sleep(0.01)
callback._on_training_end()
time.sleep(1.0)  # rl-zoo3 saves the model now: a second signal comes in here
print("handler kept until exit:", signal.getsignal(signal.SIGTERM) == callback._request_stop, flush=True)
"""


@pytest.mark.parametrize("signals", [(signal.SIGTERM,), (signal.SIGTERM, signal.SIGINT)], ids=["TERM", "TERM INT"])
def test_a_stop_signal_ends_a_stub_training_loop_cleanly(signals: tuple) -> None:
    # The fast twin of the rl-zoo3 signal tests: no training, only the callback's loop in a child.
    child = subprocess.Popen([sys.executable, "-c", STUB_LOOP], cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "ready"
    for signum in signals:
        child.send_signal(signum)
        time.sleep(0.1)
    output, _ = child.communicate(timeout=60)
    assert child.returncode == 0, output
    assert "stopping after this step and saving the model" in output and "stopped after step" in output
    assert ("already stopping" in output) == (len(signals) > 1)  # a second signal is acknowledged, not obeyed
    assert "handler kept until exit: True" in output  # stopped runs keep ignoring signals while they save
