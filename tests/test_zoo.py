"""rl-zoo3 launches sb3-mario: the no-flag command, the explicit form, continue, enjoy, record_video, qrdqn."""

import argparse

import pytest
import yaml
from rl_zoo3.exp_manager import ExperimentManager
from stable_baselines3 import DQN
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

from sb3_mario.dqn.double_dqn import DoubleDQN
from sb3_mario.dqn.policies import DuelingCnnPolicy
from sb3_mario.envs.vec_env import PinnedSubprocVecEnv
from sb3_mario.zoo.hook import project_config, project_hyperparams_dir
from tests.zoo_runner import REPO, SMALL, zoo


def test_project_config_only_for_envs_it_has() -> None:
    assert project_hyperparams_dir() == REPO / "hyperparams"
    assert project_config("dqn", "MarioShaped") == REPO / "hyperparams" / "dqn.yml"
    assert project_config("qrdqn", "MarioShaped") == REPO / "hyperparams" / "qrdqn.yml"
    assert project_config("dqn", "CartPole-v1") is None
    assert project_config("ppo", "MarioShaped") is None


@pytest.mark.parametrize(
    "env_id, config, expected",
    [
        ("MarioShaped", None, str(REPO / "hyperparams" / "dqn.yml")),
        ("CartPole-v1", None, "rl_zoo3/hyperparams/dqn.yml"),  # other envs keep rl-zoo3's defaults
        ("MarioShaped", "my.yml", "my.yml"),  # an explicit --conf-file always wins
    ],
)
def test_experiment_manager_picks_the_config(tmp_path, env_id: str, config: str | None, expected: str) -> None:
    manager = ExperimentManager(argparse.Namespace(), "dqn", env_id, str(tmp_path), config=config)
    assert manager.config.endswith(expected)


@pytest.mark.parametrize(
    "env_id, vec_env, expected",
    [
        ("MarioShaped", "subproc", PinnedSubprocVecEnv),
        ("MarioShaped", "dummy", DummyVecEnv),
        ("CartPole-v1", "subproc", SubprocVecEnv),  # other envs keep rl-zoo3's choice
    ],
)
def test_experiment_manager_pins_mario_workers(tmp_path, env_id: str, vec_env: str, expected: type) -> None:
    manager = ExperimentManager(argparse.Namespace(), "dqn", env_id, str(tmp_path), vec_env_type=vec_env)
    assert manager.vec_env_class is expected


@pytest.mark.parametrize(
    "command_line, expected",
    [
        ({}, {"actions": "right_only"}),  # the entry's own
        ({"level": "1-2"}, {"actions": "right_only", "level": "1-2"}),  # merged, not replaced
        ({"actions": "simple"}, {"actions": "simple"}),  # the command line's key wins
        ({"frontier_starts": 0.5}, {"actions": "right_only", "frontier_starts": 0.5}),  # training only: below
    ],
)
def test_entry_env_kwargs_reach_every_env_and_args_yml(tmp_path, command_line: dict, expected: dict) -> None:
    # hyperparams/ddqn.yml has env_kwargs: {actions: right_only}
    args = argparse.Namespace(env_kwargs=dict(command_line) or None)
    manager = ExperimentManager(args, "ddqn", "MarioShaped", str(tmp_path), env_kwargs=dict(command_line))
    hyperparams, saved_hyperparams = manager.read_hyperparameters()
    assert hyperparams["env_kwargs"] == saved_hyperparams["env_kwargs"] == expected
    # The evaluation env and args.yml (which record_video reads) get the same, not only the training envs;
    # evaluations start at the stage's start.
    assert manager.args.env_kwargs == expected
    assert manager.eval_env_kwargs == {key: value for key, value in expected.items() if key != "frontier_starts"}


@pytest.mark.slow
def test_train_continue_enjoy_and_record(tmp_path) -> None:
    logs = tmp_path / "logs"
    # The README's command, as typed (plus a short budget and a temporary log folder).
    out = zoo(
        "train",
        "--algo",
        "dqn",
        "--env",
        "MarioShaped",
        "-n",
        "300",
        "-f",
        str(logs),
        "--seed",
        "1",
        "--eval-freq",
        "-1",
        "--save-freq",
        "200",
        "-tb",
        str(tmp_path / "tb"),
        "--progress",
        *SMALL,
    )
    assert f"Loading hyperparameters from: {REPO / 'hyperparams' / 'dqn.yml'}" in out
    run = logs / "dqn" / "MarioShaped_1"
    config = dict(yaml.unsafe_load((run / "MarioShaped" / "config.yml").read_text()))
    assert config["policy"] == "sb3_mario.dqn.policies.DuelingCnnPolicy" and config["gamma"] == 0.95
    assert (run / "rl_model_200_steps.zip").is_file()
    assert any((tmp_path / "tb" / "MarioShaped").glob("DQN_1/events.out.tfevents.*"))
    model = DQN.load(run / "MarioShaped.zip")
    assert isinstance(model.policy, DuelingCnnPolicy) and model.num_timesteps == 300
    assert model.exploration_schedule.__class__.__name__ == "LinearSchedule"  # the boost schedule was restored

    # Continue training from the saved zip.
    zoo(
        "train",
        "--algo",
        "dqn",
        "--env",
        "MarioShaped",
        "-n",
        "200",
        "-f",
        str(logs),
        "--eval-freq",
        "-1",
        "-i",
        str(run / "MarioShaped.zip"),
        *SMALL,
    )
    # sb3-mario keeps counting: 300 steps, then 200 more.
    assert DQN.load(logs / "dqn" / "MarioShaped_2" / "MarioShaped.zip").num_timesteps == 500

    # The greedy untrained agent runs into the first Goomba: episodes of a few dozen steps.
    out = zoo("enjoy", "--algo", "dqn", "--env", "MarioShaped", "-f", str(logs), "--exp-id", "1", "-n", "300", "--no-render")
    assert "Episode Length" in out and "Mean reward:" in out

    videos = tmp_path / "videos"
    zoo(
        "record_video",
        "--algo",
        "dqn",
        "--env",
        "MarioShaped",
        "-f",
        str(logs),
        "--exp-id",
        "1",
        "-n",
        "60",
        "-o",
        str(videos),
    )
    mp4s = list(videos.glob("*.mp4"))
    assert len(mp4s) == 1 and mp4s[0].stat().st_size > 10_000


@pytest.mark.slow
def test_enjoy_and_record_a_checkpoint_or_the_best_model_of_a_run_still_training(tmp_path) -> None:
    logs, videos = tmp_path / "logs", tmp_path / "videos"
    train = ["--algo", "ddqn", "--env", "MarioShaped", "-f", str(logs), "--save-freq", "100", "--eval-freq", "100"]
    zoo("train", *train, "-n", "200", "--eval-episodes", "1", *SMALL)
    run = logs / "ddqn" / "MarioShaped_1"
    assert (run / "best_model.zip").is_file() and (run / "best_model_vecnormalize.pkl").is_file()
    # While a run trains, rl-zoo3 has written neither its final model nor its statistics.
    (run / "MarioShaped.zip").unlink()
    (run / "MarioShaped" / "vecnormalize.pkl").unlink()
    play = ["--algo", "ddqn", "--env", "MarioShaped", "-f", str(logs), "--exp-id", "1"]
    out = zoo("enjoy", *play, "--load-checkpoint", "100", "--no-render", "-n", "50")
    assert f"statistics saved with the model: {run / 'rl_model_vecnormalize_100_steps.pkl'}" in out
    out = zoo("enjoy", *play, "--load-best", "--no-render", "-n", "50")
    assert f"statistics saved with the model: {run / 'best_model_vecnormalize.pkl'}" in out
    out = zoo("record_video", *play, "--load-checkpoint", "200", "-n", "30", "-o", str(videos))
    assert f"statistics saved with the model: {run / 'rl_model_vecnormalize_200_steps.pkl'}" in out
    assert len(list(videos.glob("*.mp4"))) == 1


@pytest.mark.slow
def test_the_fast_entry_trains_with_overlapped_subprocess_envs_and_a_stop(tmp_path) -> None:
    conf = REPO / "hyperparams" / "ddqn_fast.yml"
    train = ["--algo", "ddqn", "--env", "MarioShaped", "--conf-file", str(conf), "--vec-env", "subproc"]
    run = ["-f", str(tmp_path), "-n", "400", "--eval-freq", "200", "--eval-episodes", "1", "--seed", "1"]
    out = zoo("train", *train, *run, *SMALL)
    # The evaluation ran. Its outcome is not asserted: some untrained networks' greedy right-only play
    # (always run-jump) clears 1-1 (seed 2 does, and then 4 of 20 epsilon-0.05 episodes: no stop), so the
    # seed is fixed too. 400 steps: the flag-rate stop did not cut the run.
    assert "Eval num_timesteps=200" in out and "Success rate: " in out
    model = DoubleDQN.load(tmp_path / "ddqn" / "MarioShaped_1" / "MarioShaped.zip", device="cpu")
    assert model.num_timesteps == 400 and model.overlap_env_steps and model.n_envs == 2
    assert model.observation_space.shape == (4, 64, 64) and model.replay_buffer_kwargs["storage"] == "lz4"


def test_a_flag_rate_stop_in_the_entry_follows_rl_zoo3s_evaluation(tmp_path) -> None:
    from types import SimpleNamespace

    from stable_baselines3.common.callbacks import CallbackList, EvalCallback
    from stable_baselines3.common.env_util import make_vec_env

    from sb3_mario.callbacks import StopTrainingOnFlagRate
    from sb3_mario.zoo.checkpoints import SaveBestModelStatistics
    from sb3_mario.zoo.hook import _follow_evaluation

    stop = StopTrainingOnFlagRate()
    evaluation = EvalCallback(make_vec_env("CartPole-v1"), best_model_save_path=str(tmp_path))
    manager = SimpleNamespace(callbacks=[stop, evaluation])
    _follow_evaluation(manager)
    assert manager.callbacks == [evaluation]
    assert evaluation.callback is stop and stop.parent is evaluation
    assert isinstance(evaluation.callback_on_new_best, CallbackList)
    assert [type(c) for c in evaluation.callback_on_new_best.callbacks] == [SaveBestModelStatistics]
    # Without an evaluation (--eval-freq 0) the stop has nothing to follow: said, and the run trains on.
    manager = SimpleNamespace(callbacks=[StopTrainingOnFlagRate()])
    with pytest.warns(UserWarning, match="trains its whole budget"):
        _follow_evaluation(manager)
    assert manager.callbacks == []


@pytest.mark.slow
def test_explicit_flags_without_the_hook(tmp_path) -> None:
    logs = tmp_path / "logs"
    out = zoo(
        "train",
        "--algo",
        "dqn",
        "--env",
        "MarioShaped",
        "--gym-packages",
        "sb3_mario",
        "--conf-file",
        "hyperparams/dqn.yml",
        "-n",
        "200",
        "-f",
        str(logs),
        "--env-kwargs",
        "level:'2-2'",
        "--eval-freq",
        "100",
        "--eval-episodes",
        "1",
        *SMALL,
        hook=False,
    )
    assert "Loading hyperparameters from: hyperparams/dqn.yml" in out
    run = logs / "dqn" / "MarioShaped_1"
    args = yaml.unsafe_load((run / "MarioShaped" / "args.yml").read_text())
    assert dict(args)["env_kwargs"] == {"level": "2-2"}
    assert (run / "evaluations.npz").is_file() and (run / "best_model.zip").is_file()
    monitor = next(run.glob("*.monitor.csv")).read_text()
    assert '"env_id": "MarioShaped"' in monitor.splitlines()[0]


@pytest.mark.slow
def test_qrdqn_entry(tmp_path) -> None:
    out = zoo(
        "train", "--algo", "qrdqn", "--env", "MarioShaped", "-n", "200", "-f", str(tmp_path), "--eval-freq", "-1", *SMALL
    )
    assert f"Loading hyperparameters from: {REPO / 'hyperparams' / 'qrdqn.yml'}" in out
    assert (tmp_path / "qrdqn" / "MarioShaped_1" / "MarioShaped.zip").is_file()


def test_installing_the_hook_twice_wraps_once() -> None:
    from rl_zoo3.hyperparams_opt import HYPERPARAMS_SAMPLER

    from sb3_mario.zoo import install
    from sb3_mario.zoo.patching import is_patched

    install()  # conftest imported custom_envs, which installed once already
    patched = [getattr(ExperimentManager, name) for name in ("__init__", "read_hyperparameters", "learn", "create_callbacks")]
    patched += [ExperimentManager.objective, ExperimentManager.hyperparameters_optimization, HYPERPARAMS_SAMPLER["dqn"]]
    for function in patched:
        assert is_patched(function) and not is_patched(function.__wrapped__), function.__qualname__


def test_a_model_file_has_the_statistics_saved_with_it(tmp_path) -> None:
    from sb3_mario.zoo.hook import model_statistics

    for name in ("rl_model_100_steps.zip", "rl_model_vecnormalize_100_steps.pkl", "best_model.zip", "MarioShaped.zip"):
        (tmp_path / name).touch()
    assert model_statistics(tmp_path / "rl_model_100_steps.zip") == tmp_path / "rl_model_vecnormalize_100_steps.pkl"
    assert model_statistics(tmp_path / "best_model.zip") is None  # saved before best models kept theirs
    (tmp_path / "best_model_vecnormalize.pkl").touch()
    assert model_statistics(tmp_path / "best_model.zip") == tmp_path / "best_model_vecnormalize.pkl"
    assert model_statistics(tmp_path / "MarioShaped.zip") is None  # the final model: rl-zoo3's own statistics
