"""Optuna sweeps: Mario sampler, embedded store, --trial-id, results, pruning, PostgreSQL workers."""

import os
import signal
import subprocess
import sys
import time

import optuna
import pytest
import yaml
from optuna.trial import FixedTrial, TrialState, create_trial
from rl_zoo3.hyperparams_opt import HYPERPARAMS_CONVERTER, HYPERPARAMS_SAMPLER

from sb3_mario import tuning_results
from sb3_mario.zoo import tuning
from tests.postgres_server import postgres_bin_dir, postgres_server
from tests.zoo_runner import REPO, zoo

MARIO_PARAMS = dict(
    learning_rate=1e-4,
    gamma=0.97,
    batch_size=64,
    buffer_size=50_000,
    target_update_interval=5_000,
    train_freq=4,
    exploration_fraction=0.2,
    exploration_final_eps=0.05,
    boost_epsilon=0.4,
    boost_decay=0.998,
    head_width=128,
    batch_norm=False,
)
# A tiny budget: 150 steps, one evaluation of one episode, no gradient step (learning_starts is 5000).
SWEEP = [
    "--algo",
    "dqn",
    "--env",
    "MarioShaped",
    "--conf-file",
    "hyperparams/dqn_cpu.yml",
    "-optimize",
    "-n",
    "150",
    "--n-evaluations",
    "1",
    "--eval-episodes",
    "1",
    "--no-optim-plots",
]


def test_mario_sampler_keeps_the_dueling_policy_options() -> None:
    params = tuning.sample_mario_dqn_params(FixedTrial(MARIO_PARAMS))
    hyperparams = tuning.convert_mario_params(params)
    assert hyperparams["policy_kwargs"] == dict(net_arch=[128], features_extractor_kwargs=dict(batch_norm=False))
    assert hyperparams["callback"][0] == {tuning.ADAPTIVE_EPSILON: dict(boost_epsilon=0.4, boost_decay=0.998)}
    assert hyperparams["gamma"] == 0.97 and hyperparams["gradient_steps"] == 1
    assert "policy" not in hyperparams  # the yml's DuelingCnnPolicy stays


def test_mario_trials_keep_the_entrys_untuned_policy_options() -> None:
    class Manager:  # what the sampler reads of rl-zoo3's ExperimentManager
        _hyperparams = dict(policy_kwargs=dict(precision="bf16", features_extractor_kwargs=dict(batch_norm=True, other=1)))
        specified_callbacks: list = []

    sample = tuning.mario_sampler(None, tuning.sample_mario_dqn_params)
    token = tuning._MARIO_MANAGER.set(Manager())
    try:
        hyperparams = sample(FixedTrial(MARIO_PARAMS), 7, 1, {})
    finally:
        tuning._MARIO_MANAGER.reset(token)
    # rl-zoo3 replaces the entry's policy_kwargs with these wholesale: the untuned options must be in them.
    assert hyperparams["policy_kwargs"] == dict(
        net_arch=[128], features_extractor_kwargs=dict(batch_norm=False, other=1), precision="bf16"
    )


def test_ddqn_sampler_adds_prioritized_replay_and_n_steps() -> None:
    import inspect

    from sb3_mario.dqn.double_dqn import DoubleDQN

    ddqn_params = {**MARIO_PARAMS, "prioritized_replay_alpha": 0.5, "prioritized_replay_beta": 0.3, "n_steps": 3}
    hyperparams = tuning.convert_mario_params(tuning.sample_mario_ddqn_params(FixedTrial(ddqn_params)))
    assert hyperparams["prioritized_replay"] is True and hyperparams["n_steps"] == 3
    assert hyperparams["prioritized_replay_alpha"] == 0.5 and hyperparams["prioritized_replay_beta"] == 0.3
    assert set(hyperparams) - {"callback"} <= set(inspect.signature(DoubleDQN.__init__).parameters)
    assert "prioritized_replay" not in tuning.convert_mario_params(MARIO_PARAMS)  # the DQN sampler's trials
    assert HYPERPARAMS_SAMPLER["ddqn"].sb3_mario_patch and HYPERPARAMS_CONVERTER["ddqn"].sb3_mario_patch
    assert tuning.sweep_algo(ddqn_params) == "ddqn" and tuning.sweep_algo(MARIO_PARAMS) == "dqn"


def test_other_envs_keep_the_stock_sampler_and_converter() -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    stock = HYPERPARAMS_SAMPLER["dqn"](trial, 2, 1, {"using_her_replay_buffer": False, "her_kwargs": {}})
    assert "one_minus_gamma" in trial.params and "boost_epsilon" not in trial.params
    assert "policy_kwargs" in stock and 0.9 < stock["gamma"] < 1
    assert HYPERPARAMS_CONVERTER["dqn"](dict(trial.params))["gamma"] == stock["gamma"]
    assert HYPERPARAMS_CONVERTER["dqn"](MARIO_PARAMS)["callback"][1] == tuning.EPISODE_STATS


def test_best_entry_lays_the_trial_over_the_base_entry() -> None:
    study = optuna.create_study(direction="maximize")
    study.add_trial(
        create_trial(
            value=1.0,
            params=MARIO_PARAMS,
            distributions={key: optuna.distributions.CategoricalDistribution([value]) for key, value in MARIO_PARAMS.items()},
        )
    )
    base = yaml.safe_load((REPO / "hyperparams" / "dqn.yml").read_text())["MarioShaped"]
    entry = tuning_results.best_entry(study, base)
    assert entry["policy"] == base["policy"] and entry["n_timesteps"] == base["n_timesteps"]
    assert entry["learning_rate"] == 1e-4 and entry["train_freq"] == 4
    adaptive = entry["callback"][0][tuning.ADAPTIVE_EPSILON]
    assert adaptive["base_schedule"] == "exponential" and adaptive["boost_epsilon"] == 0.4  # kept and tuned
    # The tuned network shape; the base entry's precision kept.
    expected = dict(net_arch=[128], features_extractor_kwargs=dict(batch_norm=False), precision="bf16")
    assert eval(entry["policy_kwargs"]) == expected


@pytest.mark.slow
def test_ddqn_sweep_samples_prioritized_replay_and_writes_a_ddqn_entry(tmp_path) -> None:
    sweep = [arg if arg != "hyperparams/dqn_cpu.yml" else "hyperparams/ddqn.yml" for arg in SWEEP]
    sweep[sweep.index("dqn")] = "ddqn"
    zoo("train", *sweep, "--n-trials", "2", "-f", str(tmp_path / "logs"))
    journal = tmp_path / "logs" / "optuna" / "MarioShaped_ddqn.log"
    study = optuna.load_study(study_name="MarioShaped_ddqn", storage=tuning_results.open_storage(str(journal)))
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2
    assert all(tuning.sweep_algo(t.params) == "ddqn" for t in study.trials)
    tuned = tmp_path / "ddqn_tuned.yml"
    args = [
        "--storage",
        str(journal),
        "--study-name",
        "MarioShaped_ddqn",
        "--base",
        "hyperparams/ddqn.yml",
        "--write",
        str(tuned),
    ]
    result = subprocess.run(
        [sys.executable, "-m", "sb3_mario.tuning_results", *args], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert f"python -m rl_zoo3.train --algo ddqn --env MarioShaped --conf-file {tuned}" in result.stdout
    entry = yaml.safe_load(tuned.read_text().split("\n", 1)[1])["MarioShaped"]
    assert entry["prioritized_replay"] is True and entry["n_steps"] == study.best_trial.params["n_steps"]


@pytest.mark.slow
def test_sweep_embedded_store_trial_id_and_results(tmp_path) -> None:
    logs = tmp_path / "logs"
    out = zoo("train", *SWEEP, "--n-trials", "2", "-f", str(logs))
    journal = logs / "optuna" / "MarioShaped_dqn.log"
    assert f"stored in {journal}" in out
    study = optuna.load_study(study_name="MarioShaped_dqn", storage=tuning_results.open_storage(str(journal)))
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2
    assert all(t.intermediate_values for t in study.trials)  # the evaluation was reported to Optuna
    assert all(tuning.is_mario_params(t.params) for t in study.trials)

    # Reload trial 1's parameters into a normal training run.
    out = zoo(
        "train",
        "--algo",
        "dqn",
        "--env",
        "MarioShaped",
        "--conf-file",
        "hyperparams/dqn_cpu.yml",
        "-n",
        "100",
        "-f",
        str(tmp_path / "retrain"),
        "--eval-freq",
        "-1",
        "--storage",
        str(journal),
        "--study-name",
        "MarioShaped_dqn",
        "--trial-id",
        "1",
    )
    assert "Loading from Optuna study..." in out
    config = dict(
        yaml.unsafe_load((tmp_path / "retrain" / "dqn" / "MarioShaped_1" / "MarioShaped" / "config.yml").read_text())
    )
    trial = study.trials[1]
    assert config["learning_rate"] == trial.params["learning_rate"]
    assert config["callback"][0][tuning.ADAPTIVE_EPSILON]["boost_epsilon"] == trial.params["boost_epsilon"]

    # Results: table, a ready-to-use entry (never overwriting), plots.
    tuned = tmp_path / "dqn_tuned.yml"
    args = ["--storage", str(journal), "--study-name", "MarioShaped_dqn", "--write", str(tuned), "--plots", str(tmp_path)]
    result = subprocess.run(
        [sys.executable, "-m", "sb3_mario.tuning_results", *args], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "study MarioShaped_dqn: 2 trials complete 2" in result.stdout
    entry = yaml.safe_load(tuned.read_text())["MarioShaped"]
    assert entry["learning_rate"] == study.best_trial.params["learning_rate"]
    assert (tmp_path / "MarioShaped_dqn_history.png").stat().st_size > 10_000
    again = subprocess.run([sys.executable, "-m", "sb3_mario.tuning_results", *args], cwd=REPO, capture_output=True, text=True)
    assert again.returncode == 2 and "exists; choose another --write path" in again.stderr
    missing = subprocess.run(
        [sys.executable, "-m", "sb3_mario.tuning_results", "--storage", str(journal), "--study-name", "nope"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert "no study 'nope'" in missing.stderr and "MarioShaped_dqn" in missing.stderr


def results_command(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "sb3_mario.tuning_results", *args]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True)


def test_results_command_refuses_bad_input_by_name(tmp_path) -> None:
    journal = str(tmp_path / "sweep.log")
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(journal))
    study = optuna.create_study(study_name="MarioShaped_dqn", storage=storage, direction="maximize")
    distributions = {key: optuna.distributions.CategoricalDistribution([value]) for key, value in MARIO_PARAMS.items()}
    study.add_trial(create_trial(value=1.0, params=MARIO_PARAMS, distributions=distributions))
    (tmp_path / "other.yml").write_text("CartPole-v1:\n  n_timesteps: 1000\n")
    write = ["--storage", journal, "--write"]
    cases = [
        (["--storage", str(tmp_path / "none.log")], "--storage: no Optuna journal at"),
        (["--storage", "postgresql://nobody@127.0.0.1:9/none"], "--storage postgresql://nobody@127.0.0.1:9/none: "),
        ([*write, str(tmp_path / "a.yml"), "--base", str(tmp_path / "no.yml")], "--base"),
        ([*write, str(tmp_path / "b.yml"), "--base", str(tmp_path / "other.yml")], "MarioShaped entry"),
    ]
    for args, message in cases:
        result = results_command(*args, "--study-name", "MarioShaped_dqn")
        assert result.returncode == 2, result.stderr
        assert "error: " in result.stderr and message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "a.yml").exists() and not (tmp_path / "b.yml").exists()


@pytest.mark.slow
def test_median_pruner_stops_a_worse_trial(tmp_path) -> None:
    """A study whose one finished trial scored 1e9 at evaluation 1: the next real trial must be pruned there."""
    logs = tmp_path / "logs"
    journal = tuning.default_journal(str(logs), "MarioShaped_dqn")
    os.makedirs(os.path.dirname(journal))
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(journal))
    study = optuna.create_study(study_name="MarioShaped_dqn", storage=storage, direction="maximize")
    study.add_trial(create_trial(value=1e9, params={}, distributions={}, intermediate_values={1: 1e9}))
    # The same command as a first sweep: it resumes the stored study by name.
    zoo("train", *SWEEP, "--n-trials", "1", "-f", str(logs), "--n-startup-trials", "1", "--pruner", "median")
    trials = optuna.load_study(study_name="MarioShaped_dqn", storage=tuning_results.open_storage(journal)).trials
    assert len(trials) == 2 and trials[1].state == TrialState.PRUNED
    assert list(trials[1].intermediate_values) == [1]


def start_worker(url: str, study: str, n_trials: int, log_folder) -> subprocess.Popen:
    env = {**os.environ, tuning.HEARTBEAT_ENV_VAR: "1"}
    command = [
        sys.executable,
        "-m",
        "rl_zoo3.train",
        *SWEEP,
        "--n-trials",
        str(n_trials),
        "-f",
        str(log_folder),
        "--storage",
        url,
        "--study-name",
        study,
    ]
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def postgres_url():
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed here (Debian: apt-get install postgresql; .ci/run installs it)")
    with postgres_server(bin_dir) as url:
        yield url


@pytest.mark.slow
def test_two_postgres_workers_share_one_study(postgres_url, tmp_path) -> None:
    workers = [start_worker(postgres_url, "shared", 2, tmp_path / f"worker{i}") for i in range(2)]
    for worker in workers:
        _, stderr = worker.communicate(timeout=600)
        assert worker.returncode == 0, stderr[-3000:]
    trials = optuna.load_study(study_name="shared", storage=postgres_url).trials
    assert sorted(t.number for t in trials) == [0, 1, 2, 3]  # no duplicate, none lost
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert len({t.datetime_start for t in trials}) == 4


@pytest.mark.slow
def test_killed_worker_leaves_the_study_usable(postgres_url, tmp_path) -> None:
    doomed = start_worker(postgres_url, "killed", 50, tmp_path / "doomed")
    storage = optuna.storages.RDBStorage(postgres_url)
    deadline = time.time() + 120
    previous_params = None
    while time.time() < deadline:  # wait until its first trial runs with all its parameters sampled
        try:
            study = optuna.load_study(study_name="killed", storage=storage)
            running = [t.params for t in study.trials if t.state == TrialState.RUNNING]
            # A trial is RUNNING from its first suggested parameter on: killed then, the retry would
            # re-run only the parameters sampled so far. Same parameters on two polls: sampling is done.
            if running and running[0] and running[0] == previous_params:
                break
            previous_params = running[0] if running else None
        except KeyError:
            pass
        time.sleep(1.0)
    else:
        pytest.fail("the first worker never started a trial")
    doomed.send_signal(signal.SIGKILL)
    doomed.wait()
    time.sleep(4)  # > the 3-heartbeat grace period
    survivor = start_worker(postgres_url, "killed", 2, tmp_path / "survivor")
    _, stderr = survivor.communicate(timeout=600)
    assert survivor.returncode == 0, stderr[-3000:]
    trials = optuna.load_study(study_name="killed", storage=postgres_url).trials
    states = [t.state for t in trials]
    assert TrialState.RUNNING not in states  # the dead worker's trial did not stay "running"
    assert states[0] == TrialState.FAIL
    assert states.count(TrialState.COMPLETE) >= 2
    # RetryFailedTrialCallback re-ran the failed trial's parameters.
    retried = [t for t in trials if t.system_attrs.get("failed_trial") == 0]
    assert retried and retried[0].params == trials[0].params
