"""The dueling policy: the math, BatchNorm modes under SB3's DQN, aliases, save/load round trip."""

import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3 import DQN

from sb3_mario.dqn.policies import DuelingCnnPolicy, DuelingDQNPolicy, DuelingQNetwork, MarioCNN

OBS_SPACE = spaces.Box(0, 255, (4, 96, 96), np.uint8)
ACTION_SPACE = spaces.Discrete(7)


def make_policy(**kwargs) -> DuelingCnnPolicy:
    return DuelingCnnPolicy(OBS_SPACE, ACTION_SPACE, lr_schedule=lambda _: 1e-4, **kwargs)


def random_obs(batch: int, seed: int = 0) -> th.Tensor:
    return th.as_tensor(np.random.default_rng(seed).integers(0, 256, size=(batch, *OBS_SPACE.shape), dtype=np.uint8))


def test_notebook_architecture() -> None:
    policy = make_policy()
    q_net = policy.q_net
    assert isinstance(q_net, DuelingQNetwork) and isinstance(q_net.features_extractor, MarioCNN)
    convs = [m for m in q_net.features_extractor.cnn if isinstance(m, th.nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size, c.stride) for c in convs] == [
        (32, (8, 8), (4, 4)),
        (64, (4, 4), (2, 2)),
        (64, (3, 3), (1, 1)),
    ]
    assert sum(isinstance(m, th.nn.BatchNorm2d) for m in q_net.features_extractor.cnn) == 3
    assert q_net.features_dim == 64 * 8 * 8  # 96 -> 23 -> 10 -> 8
    linear_shapes = lambda net: [(m.in_features, m.out_features) for m in net if isinstance(m, th.nn.Linear)]  # noqa: E731
    assert linear_shapes(q_net.q_net) == [(4096, 256), (256, 7)]  # advantage stream
    assert linear_shapes(q_net.value_net) == [(4096, 256), (256, 1)]
    # Online and target networks do not share modules.
    assert policy.q_net_target.features_extractor is not q_net.features_extractor


def test_options_change_the_network() -> None:
    policy = make_policy(net_arch=[64, 32], features_extractor_kwargs=dict(batch_norm=False))
    assert not any(isinstance(m, th.nn.BatchNorm2d) for m in policy.q_net.modules())
    assert [m.out_features for m in policy.q_net.value_net if isinstance(m, th.nn.Linear)] == [64, 32, 1]


def test_value_and_advantage_shapes() -> None:
    q_net = make_policy().q_net.eval()
    values, advantages = q_net.value_and_advantages(q_net.obs_to_tensor(random_obs(5).numpy())[0])
    assert values.shape == (5, 1) and advantages.shape == (5, 7)
    q_values = q_net(random_obs(5))
    th.testing.assert_close(q_values, values + advantages - advantages.mean(dim=1, keepdim=True))
    # The mean advantage is removed: Q averages to V over the actions.
    th.testing.assert_close(q_values.mean(dim=1, keepdim=True), values)


def test_constant_shift_of_advantages_leaves_q_unchanged() -> None:
    q_net = make_policy().q_net.eval()
    obs = random_obs(3)
    with th.no_grad():
        before = q_net(obs)
        _, advantages = q_net.value_and_advantages(obs.float() / 255)
        q_net.q_net[-1].bias += 5.0  # every advantage + 5
        after = q_net(obs)
        _, shifted_advantages = q_net.value_and_advantages(obs.float() / 255)
    th.testing.assert_close(shifted_advantages, advantages + 5.0)  # the shift reached the advantages...
    th.testing.assert_close(after, before)  # ...and not Q
    with th.no_grad():
        q_net.value_net[-1].bias += 5.0  # a shift of V does move Q
        th.testing.assert_close(q_net(obs), before + 5.0)


@pytest.mark.slow
def test_batchnorm_modes_under_dqn(tmp_path) -> None:
    env = gym.make("MarioShaped")
    model = DQN("DuelingCnnPolicy", env, buffer_size=500, learning_starts=32, batch_size=16, train_freq=4, seed=0)
    assert isinstance(model.policy, DuelingCnnPolicy)
    batch_norm = model.q_net.features_extractor.cnn[1]
    assert isinstance(batch_norm, th.nn.BatchNorm2d)
    assert not model.q_net_target.training  # the target net only ever runs in eval mode
    model.learn(80)
    assert not model.q_net_target.training
    trained_stats = batch_norm.running_mean.clone()
    assert batch_norm.num_batches_tracked > 0  # training batches went through in train mode
    # Acting runs in eval mode: it neither updates running statistics nor depends on the batch.
    obs = random_obs(4).numpy()
    actions, _ = model.predict(obs, deterministic=True)
    th.testing.assert_close(batch_norm.running_mean, trained_stats)
    single = [model.predict(o, deterministic=True)[0] for o in obs]
    np.testing.assert_array_equal(actions, np.array(single))
    env.close()


def test_mlp_alias_on_vector_observations() -> None:
    model = DQN("DuelingMlpPolicy", "CartPole-v1", learning_starts=10, buffer_size=100, seed=0)
    assert isinstance(model.policy, DuelingDQNPolicy) and isinstance(model.q_net, DuelingQNetwork)
    before = [parameter.detach().clone() for parameter in model.q_net.parameters()]
    model.learn(30)
    assert model._n_updates == 6  # after the 4-step rollouts ending at steps 12, 16, ..., 32 (past learning_starts)
    assert any(not th.equal(old, new) for old, new in zip(before, model.q_net.parameters(), strict=True))
    obs = th.as_tensor(np.random.default_rng(0).normal(size=(3, 4)), dtype=th.float32)
    with th.no_grad():
        values, advantages = model.q_net.value_and_advantages(obs)
        th.testing.assert_close(model.q_net(obs), values + advantages - advantages.mean(dim=1, keepdim=True))


@pytest.mark.slow
def test_saved_model_gives_same_q_values_in_a_fresh_process(tmp_path) -> None:
    env = gym.make("MarioShaped")
    model = DQN(DuelingCnnPolicy, env, buffer_size=500, learning_starts=32, batch_size=16, train_freq=4, seed=1)
    model.learn(80)
    model.save(tmp_path / "model.zip")
    obs = random_obs(6, seed=3).numpy()
    np.save(tmp_path / "obs.npy", obs)
    model.policy.set_training_mode(False)  # learn() may end inside a gradient step (train mode)
    with th.no_grad():
        expected_q = model.q_net(model.policy.obs_to_tensor(obs)[0]).numpy()
    expected_actions, _ = model.predict(obs, deterministic=True)
    script = f"""
import numpy as np, torch as th
from stable_baselines3 import DQN
model = DQN.load({str(tmp_path / "model.zip")!r})
obs = np.load({str(tmp_path / "obs.npy")!r})
model.policy.set_training_mode(False)
with th.no_grad():
    np.save({str(tmp_path / "q.npy")!r}, model.q_net(model.policy.obs_to_tensor(obs)[0]).numpy())
np.save({str(tmp_path / "actions.npy")!r}, model.predict(obs, deterministic=True)[0])
"""
    subprocess.run([sys.executable, "-c", script], check=True, cwd=tmp_path)
    np.testing.assert_array_equal(np.load(tmp_path / "q.npy"), expected_q)
    np.testing.assert_array_equal(np.load(tmp_path / "actions.npy"), expected_actions)
    env.close()


def test_bf16_precision_runs_under_autocast_and_returns_float32() -> None:
    fp32 = make_policy(features_extractor_kwargs=dict(batch_norm=False))
    bf16 = make_policy(features_extractor_kwargs=dict(batch_norm=False), precision="bf16")
    bf16.load_state_dict(fp32.state_dict())
    obs = random_obs(8)
    with th.no_grad():
        q_fp32, q_bf16 = fp32.q_net(obs.float()), bf16.q_net(obs.float())
        target_bf16 = bf16.q_net_target(obs.float())
    assert q_bf16.dtype == target_bf16.dtype == th.float32  # SB3's loss sees float32 Q-values
    assert bf16.q_net.precision == bf16.q_net_target.precision == "bf16"
    # Same weights: close, but not equal (the forward pass really ran in bfloat16).
    assert not th.equal(q_fp32, q_bf16)
    th.testing.assert_close(q_bf16, q_fp32, rtol=0.05, atol=0.02)
    # Gradients reach the float32 weights.
    bf16.q_net(obs.float()).sum().backward()
    weight = bf16.q_net.features_extractor.cnn[0].weight
    assert weight.dtype == weight.grad.dtype == th.float32 and weight.grad.abs().sum() > 0


@pytest.mark.slow
def test_bf16_precision_survives_save_and_load(tmp_path) -> None:
    env = gym.make("MarioShaped", actions="right_only")
    kwargs = dict(features_extractor_kwargs=dict(batch_norm=False), precision="bf16")
    model = DQN("DuelingCnnPolicy", env, policy_kwargs=kwargs, buffer_size=200, learning_starts=50, batch_size=8, seed=0)
    model.learn(80)
    assert model._n_updates > 0
    model.save(tmp_path / "model.zip")
    loaded = DQN.load(tmp_path / "model.zip")
    assert loaded.policy.q_net.precision == "bf16"
    obs = random_obs(4).numpy()
    np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0])


def test_bad_precision_is_named() -> None:
    with pytest.raises(ValueError, match=r"precision='fp16' is not valid; valid choices: fp32, bf16"):
        make_policy(precision="fp16")
