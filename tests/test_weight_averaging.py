"""Checkpoint weight averaging: the mean of real saved models' weights, loadable, and refusals that keep files."""

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3 import DQN

from sb3_mario import weight_averaging
from sb3_mario.loading import load_agent

STEPS = (1000, 2000, 3000)


def save_model(path, seed: int, num_timesteps: int, **policy_kwargs) -> None:
    model = DQN(
        "DuelingCnnPolicy", gym.make("MarioShaped", frame_size=64), buffer_size=100, seed=seed, policy_kwargs=policy_kwargs
    )
    model.num_timesteps = num_timesteps
    model.save(path)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """An rl-zoo3 run folder with three checkpoints of differently seeded networks and its args.yml."""
    run = tmp_path_factory.mktemp("logs") / "dqn" / "MarioShaped_1"
    (run / "MarioShaped").mkdir(parents=True)
    (run / "MarioShaped" / "config.yml").write_text("!!python/object/apply:collections.OrderedDict\n- []\n")
    (run / "MarioShaped" / "args.yml").write_text("env_kwargs:\n  frame_size: 64\n")
    for seed, steps in enumerate(STEPS):
        save_model(run / f"rl_model_{steps}_steps.zip", seed, steps)
    return run


def weights(path) -> dict[str, th.Tensor]:
    return DQN.load(path, device="cpu").policy.state_dict()


def test_the_newest_checkpoints_are_averaged_into_a_model_that_loads(run_dir, capsys) -> None:
    weight_averaging.main([str(run_dir), "--last", "2"])
    output = run_dir / "rl_model_3000_steps_avg2.zip"
    assert f"-> {output}" in capsys.readouterr().out
    inputs = [weights(run_dir / f"rl_model_{steps}_steps.zip") for steps in STEPS[1:]]
    averaged = weights(output)
    assert averaged.keys() == inputs[0].keys()
    for name, tensor in averaged.items():
        expected = (inputs[0][name].double() + inputs[1][name].double()) / 2
        th.testing.assert_close(tensor, expected.to(tensor.dtype), rtol=0, atol=1e-7)
    name = "q_net.value_net.0.weight"  # seeds differ: the mean is neither input
    assert not th.equal(averaged[name], inputs[0][name]) and not th.equal(averaged[name], inputs[1][name])
    assert DQN.load(output, device="cpu").num_timesteps == 3000  # the rest is the newest checkpoint's

    # Written into the run folder: the safe loader finds the run's settings and the policy acts.
    agent = load_agent(output)
    assert agent.env_kwargs["frame_size"] == 64 and agent.observation_shape == (4, 64, 64)
    observation = np.random.default_rng(0).integers(0, 255, (4, 64, 64), dtype=np.uint8)
    assert 0 <= int(agent.model.predict(observation, deterministic=True)[0]) < agent.n_actions


def test_explicit_zips_average_all_of_them(run_dir, tmp_path) -> None:
    output = tmp_path / "averaged.zip"
    weight_averaging.main([str(run_dir / f"rl_model_{steps}_steps.zip") for steps in STEPS] + ["--output", str(output)])
    inputs = [weights(run_dir / f"rl_model_{steps}_steps.zip") for steps in STEPS]
    for name, tensor in weights(output).items():
        expected = sum(state_dict[name].double() for state_dict in inputs) / 3
        th.testing.assert_close(tensor, expected.to(tensor.dtype), rtol=0, atol=1e-7)


def refusal(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        weight_averaging.main(argv)
    assert exit_info.value.code == 2
    return capsys.readouterr().err


def test_refusals_name_the_bad_value_and_keep_existing_files(run_dir, tmp_path, capsys) -> None:
    other = tmp_path / "other.zip"
    save_model(other, 0, 10, net_arch=[32])
    newest = str(run_dir / "rl_model_3000_steps.zip")
    error = refusal([str(other), newest, "--output", str(tmp_path / "a.zip")], capsys)
    assert f"{other} is not the same network" in error and "q_net.q_net.0.weight has shape (32," in error
    assert not (tmp_path / "a.zip").exists()

    existing = tmp_path / "existing.zip"
    existing.write_bytes(b"saved before")
    error = refusal([str(run_dir / "rl_model_2000_steps.zip"), newest, "--output", str(existing)], capsys)
    assert f"{existing} exists" in error and existing.read_bytes() == b"saved before"

    assert "holds 3 checkpoints" in refusal([str(run_dir), "--last", "4"], capsys)
    assert "--last 1" in refusal([str(run_dir), "--last", "1"], capsys)
    assert "--last takes one run folder" in refusal([newest, "--last", "2"], capsys)
    assert "at least 2 models" in refusal([newest, "--output", str(tmp_path / "b.zip")], capsys)
    missing = str(tmp_path / "missing.zip")
    assert f"no model at {missing!r}" in refusal([missing, newest], capsys)
