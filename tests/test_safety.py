"""Safe loading refuses pickled payloads; mistyped hyperparameters are named; seeded runs are reproducible."""

import base64
import pickle
import re
import subprocess
import sys
import zipfile

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3 import DQN

from sb3_mario import evaluate
from sb3_mario.loading import UnsafeModelError, load_agent
from sb3_mario.zoo.hook import check_entry_keys
from tests.zoo_runner import REPO, SMALL


class Payload:
    """Unpickling this runs code: it creates the file ``marker``."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture(scope="module")
def genuine_zip(tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "genuine.zip"
    DQN("DuelingCnnPolicy", gym.make("MarioShaped"), buffer_size=100, seed=0).save(path)
    return path


def rewrite_zip(source, target, replace: dict[str, bytes]) -> None:
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(target, "w") as copy:
        for name in original.namelist():
            copy.writestr(name, replace.get(name, original.read(name)))


def test_pickle_payload_in_the_weights_is_refused_and_never_runs(genuine_zip, tmp_path) -> None:
    marker = tmp_path / "pwned"
    malicious = tmp_path / "malicious.zip"
    rewrite_zip(genuine_zip, malicious, {"policy.pth": pickle.dumps({"q_net.q_net.0.weight": Payload(str(marker))})})
    with pytest.raises(UnsafeModelError, match="refusing to load .*malicious.zip: its policy.pth is not plain weights"):
        load_agent(malicious)
    assert not marker.exists()
    # The payload is live: unpickling it the ordinary way does create the marker.
    with zipfile.ZipFile(malicious) as archive:
        pickle.loads(archive.read("policy.pth"))
    assert marker.exists()


def test_pickled_entries_of_data_are_never_decoded(genuine_zip, tmp_path) -> None:
    import json

    marker = tmp_path / "pwned"
    with zipfile.ZipFile(genuine_zip) as archive:
        data = json.loads(archive.read("data"))
    data["policy_class"][":serialized:"] = base64.b64encode(pickle.dumps(Payload(str(marker)))).decode()
    tampered = tmp_path / "tampered.zip"
    rewrite_zip(genuine_zip, tampered, {"data": json.dumps(data).encode()})
    agent = load_agent(tampered)  # the weights are genuine: it loads, ignoring the pickled entries
    assert not marker.exists()
    obs = np.zeros((4, 96, 96), np.uint8)
    assert 0 <= int(agent.model.predict(obs, deterministic=True)[0]) < 7


def test_safe_and_unpickling_loaders_agree(genuine_zip) -> None:
    obs = np.random.default_rng(0).integers(0, 256, size=(8, 4, 96, 96), dtype=np.uint8)
    safe_actions, _ = load_agent(genuine_zip).model.predict(obs, deterministic=True)
    trusted_actions, _ = DQN.load(genuine_zip).predict(obs, deterministic=True)
    np.testing.assert_array_equal(safe_actions, trusted_actions)


def test_mistyped_hyperparameter_is_named() -> None:
    with pytest.raises(
        ValueError, match=r"unknown hyperparameter\(s\) for dqn on MarioShaped: 'learning_rat': did you mean \['learning_rate'"
    ):
        check_entry_keys("dqn", "MarioShaped", {"learning_rat": 1e-3, "policy": "CnnPolicy", "n_timesteps": 10})
    check_entry_keys("dqn", "MarioShaped", {"learning_rate": 1e-3, "policy": "CnnPolicy", "callback": [], "n_timesteps": 10})


@pytest.mark.slow
@pytest.mark.parametrize(
    "params, message",
    [
        (
            ["exploraton_fraction:0.2"],
            "error: unknown hyperparameter.*'exploraton_fraction': did you mean \\['exploration_fraction'",
        ),
        (["env_kwargs:dict(level='9-9')"], "error: level='9-9' is not an SMB1 stage; valid levels: 1-1"),
        (
            ["env_kwargs:dict(actions='left')"],
            "error: actions='left' is not an action set; valid choices: right_only, simple, complex",
        ),
        (["--env-kwargs", "frame_skip:0"], "error: frame_skip=0 is not valid: expected a positive integer"),
    ],
)
def test_user_errors_stop_rl_zoo_before_training(tmp_path, params: list, message: str) -> None:
    assert_refused_before_training(tmp_path, params, message)


@pytest.mark.slow
def test_command_line_env_kwargs_of_an_entry_without_any_are_checked(tmp_path) -> None:
    """An entry without ``env_kwargs`` trains with the command line's alone: those are checked too."""
    conf_file = tmp_path / "bare.yml"
    conf_file.write_text("MarioShaped:\n  n_timesteps: 100\n  policy: 'CnnPolicy'\n")
    params = ["--conf-file", str(conf_file), "--env-kwargs", "frame_skip:0"]
    assert_refused_before_training(tmp_path, params, "error: frame_skip=0 is not valid: expected a positive integer")


def assert_refused_before_training(tmp_path, params: list, message: str) -> None:
    """``rl_zoo3.train`` with ``params`` exits with status 2 and the error line ``message``, and saves no model."""
    command = [sys.executable, "-m", "rl_zoo3.train", "--algo", "dqn", "--env", "MarioShaped", "-n", "100"]
    result = subprocess.run(
        [*command, "-f", str(tmp_path), *SMALL, *params], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 2 and re.search(message, result.stderr), result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "dqn").exists() or not any((tmp_path / "dqn").rglob("*.zip"))


def test_existing_report_is_not_overwritten(genuine_zip, tmp_path, capsys) -> None:
    report = tmp_path / "report.json"
    report.write_text("{}")
    with pytest.raises(SystemExit):
        evaluate.main([str(genuine_zip), "--episodes", "1", "--json", str(report)])
    assert "already holds a report" in capsys.readouterr().err and report.read_text() == "{}"


@pytest.mark.slow
def test_seeded_runs_are_identical() -> None:
    """Same seed on CPU: the same first 1,000 transitions and the same weights after 300 updates."""
    runs = []
    for _ in range(2):
        model = DQN(
            "DuelingCnnPolicy",
            gym.make("MarioShaped"),
            buffer_size=2000,
            learning_starts=700,
            batch_size=16,
            train_freq=1,
            seed=42,
            device="cpu",
        )
        model.learn(1000)
        assert model._n_updates == 300
        buffer = model.replay_buffer
        runs.append(
            (
                buffer.observations[:1000].copy(),
                buffer.actions[:1000].copy(),
                buffer.rewards[:1000].copy(),
                buffer.dones[:1000].copy(),
                {k: v.clone() for k, v in model.policy.state_dict().items()},
            )
        )
    first, second = runs
    for a, b in zip(first[:4], second[:4], strict=True):
        np.testing.assert_array_equal(a, b)
    assert len(np.unique(first[1])) == 7  # the transitions are varied, not one action repeated
    for key in first[4]:
        th.testing.assert_close(first[4][key], second[4][key], rtol=0, atol=0)


# name -> (env id, policy, policy_kwargs): what the entries save, and the variants users make.
SAFE_LOADER_CASES = {
    "dueling CNN without BatchNorm (the CPU and flag entries)": (
        "MarioShaped",
        "DuelingCnnPolicy",
        dict(features_extractor_kwargs=dict(batch_norm=False)),
    ),
    "dueling CNN with BatchNorm, two hidden layers": ("MarioShaped", "DuelingCnnPolicy", dict(net_arch=[256, 128])),
    "dueling MLP": ("CartPole-v1", "DuelingMlpPolicy", dict(net_arch=[32, 16])),
    "dueling CNN in bf16 (the flag entry's precision)": (
        "MarioShaped",
        "DuelingCnnPolicy",
        dict(features_extractor_kwargs=dict(batch_norm=False), precision="bf16"),
    ),
    "DQN's CnnPolicy": ("MarioShaped", "CnnPolicy", dict(net_arch=[128])),
}


@pytest.mark.parametrize("case", SAFE_LOADER_CASES)
def test_safe_loader_rebuilds_each_policy_kind_exactly(case: str, tmp_path) -> None:
    env_id, policy, policy_kwargs = SAFE_LOADER_CASES[case]
    path = tmp_path / "model.zip"
    DQN(policy, env_id, buffer_size=100, policy_kwargs=policy_kwargs, seed=0, device="cpu").save(path)
    trusted = DQN.load(path, device="cpu").policy
    trusted.set_training_mode(False)
    safe = load_agent(path).model
    assert type(safe) is type(trusted)
    assert getattr(safe, "precision", None) == getattr(trusted, "precision", None)
    shape = trusted.observation_space.shape
    rng = np.random.default_rng(0)
    if env_id == "MarioShaped":
        obs = th.as_tensor(rng.integers(0, 256, size=(8, *shape), dtype=np.uint8))
    else:
        obs = th.as_tensor(rng.normal(size=(8, *shape)), dtype=th.float32)
    with th.no_grad():
        th.testing.assert_close(safe.q_net(obs.clone()), trusted.q_net(obs.clone()), rtol=0, atol=0)


def test_safe_loader_refuses_qrdqn_by_name(tmp_path) -> None:
    from sb3_contrib import QRDQN

    path = tmp_path / "qrdqn.zip"
    QRDQN("MlpPolicy", "CartPole-v1", buffer_size=100, seed=0, device="cpu").save(path)
    with pytest.raises(UnsafeModelError, match=r"QR-DQN .* --unsafe-pickle --algo qrdqn"):
        load_agent(path)
    assert load_agent(path, algo="qrdqn", safe=False).model.__class__.__name__ == "QRDQN"
