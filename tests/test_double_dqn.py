"""DoubleDQN: the double-Q target, prioritized training, save/load, and the rl-zoo3 runs of each variant."""

import inspect
import json
import warnings
import zipfile

import numpy as np
import pytest
import torch as th
import yaml
from stable_baselines3 import DQN
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.save_util import load_from_pkl
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv, VecEnvWrapper

import sb3_mario  # noqa: F401  (registers MarioShaped and the policy aliases)
from sb3_mario.dqn.buffers import CompressedReplayBuffer, PrioritizedReplayBuffer
from sb3_mario.dqn.double_dqn import DoubleDQN
from sb3_mario.dqn.overlap import DeferredTraining, TrainWhileStepping
from sb3_mario.dqn.schedules import BoostableSchedule
from sb3_mario.envs.vec_env import LeanVecNormalize
from tests.zoo_runner import REPO, SMALL, zoo


def cartpole_model(env: VecEnv | str = "CartPole-v1", **kwargs) -> DoubleDQN:
    """A small DoubleDQN on CartPole; ``kwargs`` add to or override its settings."""
    settings = dict(policy_kwargs=dict(net_arch=[8]), learning_starts=0, batch_size=8, buffer_size=500, seed=0, device="cpu")
    return DoubleDQN("MlpPolicy", env, **{**settings, **kwargs})


def set_output_bias(q_net: th.nn.Module, bias: list[float]) -> None:
    """Make a Q-network output ``bias`` for every input: zero last-layer weights."""
    last = [module for module in q_net.modules() if isinstance(module, th.nn.Linear)][-1]
    with th.no_grad():
        last.weight.zero_()
        last.bias.copy_(th.tensor(bias))


def test_double_q_target_differs_from_vanilla_on_a_constructed_pair() -> None:
    model = cartpole_model()
    set_output_bias(model.q_net, [0.0, 1.0])  # online net prefers action 1
    set_output_bias(model.q_net_target, [5.0, 2.0])  # target net values action 0 higher
    next_obs = th.zeros(3, 4)
    # Double DQN: Q_target(s', argmax_a Q(s', a)) = Q_target(s', 1) = 2; vanilla: max_a Q_target = 5.
    assert model.next_q_values(next_obs).tolist() == [[2.0]] * 3
    model.double_q = False
    assert model.next_q_values(next_obs).tolist() == [[5.0]] * 3


def test_target_epsilon_values_the_next_state_as_the_epsilon_greedy_policy_plays_it() -> None:
    model = cartpole_model(target_epsilon=0.2)
    set_output_bias(model.q_net, [0.0, 1.0])  # online net prefers action 1
    set_output_bias(model.q_net_target, [5.0, 2.0])
    next_obs = th.zeros(3, 4)
    # 0.8 * Q_target(s', 1) + 0.2 * mean(5, 2) = 1.6 + 0.7 (double); 0.8 * 5 + 0.7 (vanilla).
    assert model.next_q_values(next_obs).flatten().tolist() == pytest.approx([2.3] * 3)
    model.double_q = False
    assert model.next_q_values(next_obs).flatten().tolist() == pytest.approx([4.7] * 3)
    model.target_epsilon = 0.0  # greedy targets again, exactly
    assert model.next_q_values(next_obs).tolist() == [[5.0]] * 3


def test_target_epsilon_with_n_step_returns_warns_that_it_values_only_their_last_state() -> None:
    with pytest.warns(UserWarning, match=r"target_epsilon=0.2 values random actions at the last state of each 3-step"):
        cartpole_model(target_epsilon=0.2, n_steps=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cartpole_model(target_epsilon=0.2, n_steps=1)
        cartpole_model(n_steps=3)


def test_an_old_zip_without_target_epsilon_loads_with_greedy_targets(tmp_path) -> None:
    model = cartpole_model()
    del model.target_epsilon  # as a model saved before the option existed
    model.save(tmp_path / "old.zip")
    assert "target_epsilon" not in json.loads(zipfile.ZipFile(tmp_path / "old.zip").read("data"))
    assert DoubleDQN.load(tmp_path / "old.zip", device="cpu").target_epsilon == 0.0
    assert DoubleDQN.load(tmp_path / "old.zip", device="cpu", target_epsilon=0.05).target_epsilon == 0.05  # as -params does


def test_double_q_training_step_moves_towards_the_double_target() -> None:
    losses = {}
    for double_q in (True, False):
        model = cartpole_model(double_q=double_q, gamma=0.5)
        model.learn(50)  # fills the buffer (and trains a little)
        set_output_bias(model.q_net, [0.0, 1.0])
        set_output_bias(model.q_net_target, [5.0, 2.0])
        model.replay_buffer.rewards[:] = 0.0
        model.replay_buffer.dones[:] = 0.0
        model.train(gradient_steps=1, batch_size=8)
        losses[double_q] = model.logger.name_to_value["train/loss"]
    # Current Q of the taken actions is 0 or 1; targets are 0.5 * 2 = 1 (double) or 0.5 * 5 = 2.5.
    assert losses[True] < losses[False]


def test_prioritized_training_updates_priorities_and_saves(tmp_path) -> None:
    model = cartpole_model(prioritized_replay=True, prioritized_replay_alpha=1.0, n_steps=3)
    assert isinstance(model.replay_buffer, PrioritizedReplayBuffer)
    assert model.replay_buffer.n_steps == 3 and model.replay_buffer.gamma == model.gamma
    model.learn(200)
    priorities = model.replay_buffer.tree.priorities[: model.replay_buffer.size()]
    assert len(set(priorities.round(6))) > 20  # TD errors replaced the uniform initial priority
    assert model.logger.name_to_value["train/per_beta"] == pytest.approx(1.0, abs=0.03)  # beta at the end
    model._current_progress_remaining = 0.75
    assert model._beta() == pytest.approx(0.4 + 0.25 * 0.6)
    model.save(tmp_path / "per.zip")
    loaded = DoubleDQN.load(tmp_path / "per.zip", device="cpu")
    assert loaded.prioritized_replay and loaded.double_q and loaded.prioritized_replay_alpha == 1.0
    assert isinstance(loaded.replay_buffer, PrioritizedReplayBuffer)
    obs = np.zeros((5, 4), dtype=np.float32)
    np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0])


def test_prioritized_update_on_constructed_networks() -> None:
    # Fixed networks make every quantity of one PER step computable by hand: the n-step Double-DQN
    # target, the new priorities (|TD error| + eps)^alpha, the importance weights at the current
    # beta over the stored part of a partly filled two-env buffer, and the weighted Huber loss.
    env = make_vec_env("CartPole-v1", n_envs=2, seed=0)
    model = cartpole_model(
        env=env, prioritized_replay=True, prioritized_replay_alpha=0.6, n_steps=3, gamma=0.9, learning_starts=10_000
    )
    model.learn(120)  # 120 of 500 transitions (250 rows x 2 envs), no update yet
    buffer = model.replay_buffer
    n_stored = buffer.size() * buffer.n_envs
    assert n_stored == 120 and not buffer.full
    buffer.update_priorities(np.arange(n_stored), np.random.default_rng(0).random(n_stored) + 0.1)
    before = buffer.tree.priorities[:n_stored].copy()
    set_output_bias(model.q_net, [0.0, 1.0])  # Q(s, .) = (0, 1): argmax 1 everywhere
    set_output_bias(model.q_net_target, [5.0, 2.0])  # Q_target(s', 1) = 2 (vanilla DQN would take 5)
    model._current_progress_remaining = 0.5  # beta = 0.4 + 0.5 * (1.0 - 0.4) = 0.7
    batches = []
    sample = buffer.sample
    buffer.sample = lambda *args, **kwargs: batches.append(sample(*args, **kwargs)) or batches[-1]
    np.random.seed(3)
    model.train(gradient_steps=1, batch_size=32)
    batch = batches[0]
    indices = batch.indices

    # Importance weights: (N P(i))^-beta / max_j (N P(j))^-beta over the 120 stored transitions.
    scaled = n_stored * before / before.sum()
    expected_weights = scaled[indices] ** -0.7 / (scaled**-0.7).max()
    np.testing.assert_allclose(batch.weights.numpy().ravel(), expected_weights, rtol=1e-5)

    discounts = batch.discounts.numpy().ravel()
    assert np.isclose(discounts, 0.9**3).any()  # full 3-step windows: gamma would be wrong for them
    rewards, dones = batch.rewards.numpy().ravel(), batch.dones.numpy().ravel()
    current = batch.actions.numpy().ravel().astype(np.float32)  # Q(s, a) = a
    target = rewards + (1 - dones) * discounts * 2.0
    td = target - current
    expected_priorities = (np.abs(td) + model.prioritized_replay_eps) ** 0.6
    np.testing.assert_allclose(buffer.tree.priorities[indices], expected_priorities, rtol=1e-5)
    untouched = np.setdiff1d(np.arange(n_stored), indices)
    np.testing.assert_array_equal(buffer.tree.priorities[untouched], before[untouched])
    huber = np.where(np.abs(td) < 1, 0.5 * td**2, np.abs(td) - 0.5)
    assert model.logger.name_to_value["train/loss"] == pytest.approx(float(np.mean(expected_weights * huber)), rel=1e-5)


def test_observations_on_device_train_exactly_as_in_host_arrays() -> None:
    # Same seed, same samples: gathering on the device (the CPU here) must not change a single update.
    models = []
    for storage in ("arrays", "device"):  # one after the other: each seeds the global RNGs it samples with
        models.append(cartpole_model(prioritized_replay=True, n_steps=3, replay_buffer_kwargs=dict(storage=storage)))
        models[-1].learn(300)
    assert [model.replay_buffer.storage for model in models] == ["arrays", "device"]
    for plain, on_device in zip(models[0].q_net.parameters(), models[1].q_net.parameters(), strict=True):
        assert th.equal(plain, on_device)
    np.testing.assert_array_equal(models[0].replay_buffer.tree.nodes, models[1].replay_buffer.tree.nodes)


def test_compressed_buffer_with_sb3_dqn_gets_n_steps_from_double_dqn() -> None:
    model = cartpole_model(n_steps=2, replay_buffer_class=CompressedReplayBuffer)
    assert model.replay_buffer.n_steps == 2 and model.replay_buffer.gamma == model.gamma


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(prioritized_replay=True, replay_buffer_class=CompressedReplayBuffer), "needs a PrioritizedReplayBuffer"),
        (dict(prioritized_replay_beta=1.5), r"prioritized_replay_beta=1.5 must be in \[0, 1\]"),
        (dict(target_epsilon=1.5), r"target_epsilon=1.5 must be in \[0, 1\]"),
        (dict(random_shift=-1), "random_shift=-1 must be a whole number of pixels >= 0"),
        (dict(random_shift=2.5), "random_shift=2.5 must be a whole number of pixels >= 0"),
        (
            dict(replay_buffer_class=PrioritizedReplayBuffer),  # prioritized_replay=False: priorities never updated
            "replay_buffer_class=PrioritizedReplayBuffer with prioritized_replay=False would sample uniformly",
        ),
    ],
)
def test_bad_options_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        cartpole_model(**kwargs)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(target_epsilon=1.5), r"target_epsilon=1.5 must be in \[0, 1\]"),
        (dict(prioritized_replay_final_beta=-0.1), r"prioritized_replay_final_beta=-0.1 must be in \[0, 1\]"),
        (dict(random_shift=-2), "random_shift=-2 must be a whole number of pixels >= 0"),
    ],
)
def test_bad_options_given_to_load_are_refused_and_the_zip_is_kept(tmp_path, kwargs: dict, message: str) -> None:
    # rl-zoo3 passes a resumed run's -params to load(), which sets them after the constructor.
    cartpole_model().save(tmp_path / "model.zip")
    saved = (tmp_path / "model.zip").read_bytes()
    with pytest.raises(ValueError, match=message):
        DoubleDQN.load(tmp_path / "model.zip", device="cpu", **kwargs)
    assert (tmp_path / "model.zip").read_bytes() == saved


def test_learn_has_sb3s_signature_and_logs_as_double_dqn(tmp_path) -> None:
    stock = inspect.signature(DQN.learn).parameters
    ours = inspect.signature(DoubleDQN.learn).parameters
    assert list(ours) == list(stock)
    assert ours["tb_log_name"].default == "DoubleDQN"
    model = cartpole_model(tensorboard_log=str(tmp_path))
    model.learn(20)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["DoubleDQN_1"]


def test_a_loaded_buffer_takes_the_algorithms_n_steps_gamma_and_alpha_with_a_warning(tmp_path) -> None:
    saved = cartpole_model(prioritized_replay=True, n_steps=3, gamma=0.9, prioritized_replay_alpha=0.6)
    saved.learn(30)
    saved.save_replay_buffer(tmp_path / "buffer.pkl")
    same = cartpole_model(prioritized_replay=True, n_steps=3, gamma=0.9, prioritized_replay_alpha=0.6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to say when the settings agree
        same.load_replay_buffer(tmp_path / "buffer.pkl")
    model = cartpole_model(prioritized_replay=True, n_steps=5, gamma=0.99, prioritized_replay_alpha=0.5)
    with pytest.warns(UserWarning, match=r"n_steps 3 -> 5, gamma 0.9 -> 0.99, alpha 0.6 -> 0.5"):
        model.load_replay_buffer(tmp_path / "buffer.pkl")
    buffer = model.replay_buffer
    assert buffer.size() == saved.replay_buffer.size() > 0
    assert (buffer.n_steps, buffer.gamma, buffer.alpha) == (5, 0.99, 0.5)
    sample = buffer.sample(8)
    # 5-step windows of gamma 0.99 (shorter where an episode ends): 0.99 ** 5 = 0.951, never 0.9 ** k
    assert sample.discounts.min().item() >= 0.99**5 - 1e-6


@pytest.mark.parametrize("buffer", ["prioritized", "compressed", "sb3"])
def test_a_loaded_buffer_takes_the_algorithms_buffer_size_with_a_warning(tmp_path, buffer: str) -> None:
    extra = {
        "prioritized": {"prioritized_replay": True},
        "compressed": {"replay_buffer_class": CompressedReplayBuffer},
        "sb3": {},  # SB3's ReplayBuffer
    }[buffer]
    saved = cartpole_model(buffer_size=1_000, **extra)
    saved.learn(30)
    saved.save_replay_buffer(tmp_path / "buffer.pkl")
    model = cartpole_model(buffer_size=4_000, **extra)
    outcome = "kept at its size" if buffer == "sb3" else "resized to 4,000"
    with pytest.warns(UserWarning, match=rf"holds 1,000 transitions, this DoubleDQN's buffer_size is 4,000: {outcome}"):
        model.load_replay_buffer(tmp_path / "buffer.pkl")
    assert model.replay_buffer.buffer_size == (1_000 if buffer == "sb3" else 4_000)
    assert model.replay_buffer.size() == saved.replay_buffer.size() > 0
    np.testing.assert_array_equal(model.replay_buffer.actions[:30], saved.replay_buffer.actions[:30])


@pytest.mark.slow
@pytest.mark.parametrize(
    "variant, extra",
    [
        ("double+per", []),  # the ddqn entry as written: Double DQN, PER, 3-step returns, lz4 observations
        ("double", ["prioritized_replay:False", "replay_buffer_kwargs:dict(handle_timeout_termination=False)"]),
        (
            "double+per on device",
            ["replay_buffer_kwargs:dict(handle_timeout_termination=False, storage='device')"],
        ),
    ],
)
def test_zoo_trains_each_ddqn_variant(tmp_path, variant: str, extra: list[str]) -> None:
    out = zoo(
        "train",
        "--algo",
        "ddqn",
        "--env",
        "MarioShaped",
        "-n",
        "300",
        "-f",
        str(tmp_path),
        "--eval-freq",
        "-1",
        "--seed",
        "2",
        *SMALL,
        *extra,
    )
    assert f"Loading hyperparameters from: {REPO / 'hyperparams' / 'ddqn.yml'}" in out
    run = tmp_path / "ddqn" / "MarioShaped_1"
    model = DoubleDQN.load(run / "MarioShaped.zip", device="cpu")
    assert model.num_timesteps == 300 and model.double_q
    assert model.prioritized_replay == variant.startswith("double+per")
    assert isinstance(model.replay_buffer, PrioritizedReplayBuffer) == variant.startswith("double+per")
    assert (getattr(model.replay_buffer, "storage", None) == "device") == variant.endswith("on device")
    # The entry's reward-only normalization ran (and was saved) without observation copies.
    vec_normalize = load_from_pkl(run / "MarioShaped" / "vecnormalize.pkl")
    assert type(vec_normalize) is LeanVecNormalize and not vec_normalize.norm_obs
    assert model.exploration_schedule.__class__.__name__ == "LinearSchedule"  # adaptive epsilon restored it
    out = zoo(
        "enjoy", "--algo", "ddqn", "--env", "MarioShaped", "-f", str(tmp_path), "--exp-id", "1", "-n", "600", "--no-render"
    )
    assert "Mean reward:" in out or "Episode Length" in out


@pytest.mark.slow
def test_zoo_trains_sb3_dqn_with_the_compressed_buffer(tmp_path) -> None:
    entry = yaml.safe_load((REPO / "hyperparams" / "dqn_cpu.yml").read_text())["MarioShaped"]
    del entry["n_steps"]  # SB3's DQN hands n_steps only to its own buffers: it goes in replay_buffer_kwargs
    entry["replay_buffer_class"] = "sb3_mario.dqn.buffers.CompressedReplayBuffer"
    entry["replay_buffer_kwargs"] = "dict(handle_timeout_termination=False, n_steps=3, gamma=0.95)"
    conf = tmp_path / "dqn_compressed.yml"
    conf.write_text(yaml.safe_dump({"MarioShaped": entry}))
    zoo(
        "train",
        "--algo",
        "dqn",
        "--env",
        "MarioShaped",
        "--conf-file",
        str(conf),
        "-n",
        "300",
        "-f",
        str(tmp_path),
        "--eval-freq",
        "-1",
        "--save-replay-buffer",
        *SMALL,
    )
    run = tmp_path / "dqn" / "MarioShaped_1"
    from stable_baselines3 import DQN

    model = DQN.load(run / "MarioShaped.zip", device="cpu")
    assert model.replay_buffer_class is CompressedReplayBuffer
    model.load_replay_buffer(run / "replay_buffer.pkl")
    buffer = model.replay_buffer
    assert isinstance(buffer, CompressedReplayBuffer) and buffer.size() == 300 and buffer.n_steps == 3
    sample = buffer.sample(16)
    assert sample.observations.shape == (16, 4, 96, 96) and sample.discounts is not None


class EventRecorder(VecEnvWrapper):
    """Records the env calls (and, through ``record``, the learner's updates) in order."""

    def __init__(self, venv: VecEnv) -> None:
        super().__init__(venv)
        self.events: list[str] = []

    def step_async(self, actions: np.ndarray) -> None:
        self.events.append("send")
        self.venv.step_async(actions)

    def step_wait(self):
        self.events.append("collect")
        return self.venv.step_wait()

    def reset(self):
        return self.venv.reset()


def recorded_run(overlap_env_steps: bool) -> tuple[DoubleDQN, list[str]]:
    env = EventRecorder(make_vec_env("CartPole-v1", n_envs=1, seed=0))
    model = cartpole_model(env=env, overlap_env_steps=overlap_env_steps, train_freq=4)
    train = model._train
    model._train = lambda *args: (env.events.append("train"), train(*args))
    model.learn(40)
    return model, env.events


def test_overlapped_updates_run_while_an_env_step_is_under_way(tmp_path) -> None:
    model, events = recorded_run(overlap_env_steps=True)
    del model._train  # the recording wrapper
    model.save(tmp_path / "overlap.zip")
    assert DoubleDQN.load(tmp_path / "overlap.zip", device="cpu").overlap_env_steps
    trains = [index for index, event in enumerate(events) if event == "train"]
    assert len(trains) == 10 and model._n_updates == 10  # one per 4-step rollout, the last one before learn returns
    # Each update but the last runs between sending an env step and collecting it.
    assert all(events[index - 1] == "send" and events[index + 1] == "collect" for index in trains[:-1])
    assert trains[-1] == len(events) - 1
    sync_model, sync_events = recorded_run(overlap_env_steps=False)
    assert sync_model._n_updates == 10
    assert all(sync_events[index - 1] == "collect" for index, event in enumerate(sync_events) if event == "train")


def test_train_while_stepping_runs_deferred_training_between_sending_and_collecting() -> None:
    env = EventRecorder(make_vec_env("CartPole-v1", n_envs=1, seed=0))
    calls: list[tuple[int, int]] = []
    deferred = DeferredTraining(lambda steps, batch: (env.events.append("train"), calls.append((steps, batch))))
    stepping = TrainWhileStepping(env, deferred)
    stepping.reset()
    stepping.step(np.array([0]))  # nothing deferred: nothing trains
    deferred.defer(2, 32)
    stepping.step(np.array([1]))
    stepping.step(np.array([0]))  # run once only
    assert env.events == ["send", "collect", "send", "train", "collect", "send", "collect"]
    assert calls == [(2, 32)]


@pytest.mark.slow
def test_overlapped_runs_are_identical_with_subprocess_envs() -> None:
    params = []
    for vec_env_cls in (DummyVecEnv, SubprocVecEnv):
        env = make_vec_env("CartPole-v1", n_envs=2, seed=0, vec_env_cls=vec_env_cls)
        model = cartpole_model(env=env, overlap_env_steps=True, prioritized_replay=True, n_steps=3, train_freq=2)
        model.learn(300)
        env.close()
        params.append([parameter.detach().clone() for parameter in model.q_net.parameters()])
    assert all(th.equal(dummy, subproc) for dummy, subproc in zip(*params, strict=True))


# Every constructor argument but policy and env: a value that is not the default, and where SB3 (or
# DoubleDQN) keeps it on the built model.
NOT_DEFAULT = {
    "learning_rate": (3e-3, lambda m: m.learning_rate),
    "buffer_size": (321, lambda m: m.replay_buffer.buffer_size),
    "learning_starts": (7, lambda m: m.learning_starts),
    "batch_size": (12, lambda m: m.batch_size),
    "tau": (0.5, lambda m: m.tau),
    "gamma": (0.9, lambda m: m.gamma),
    "train_freq": (5, lambda m: (m.train_freq.frequency, m.train_freq.unit.value)),
    "gradient_steps": (2, lambda m: m.gradient_steps),
    "replay_buffer_class": (CompressedReplayBuffer, lambda m: type(m.replay_buffer)),
    "replay_buffer_kwargs": (dict(storage="zstd"), lambda m: m.replay_buffer.storage),
    "optimize_memory_usage": (False, lambda m: m.optimize_memory_usage),  # sb3-mario's buffers refuse True: below
    "n_steps": (3, lambda m: (m.n_steps, m.replay_buffer.n_steps)),
    "target_update_interval": (77, lambda m: m.target_update_interval),
    "exploration_fraction": (0.3, lambda m: m.exploration_fraction),
    "exploration_initial_eps": (0.8, lambda m: m.exploration_initial_eps),
    "exploration_final_eps": (0.02, lambda m: m.exploration_final_eps),
    "max_grad_norm": (3.0, lambda m: m.max_grad_norm),
    "double_q": (False, lambda m: m.double_q),
    "prioritized_replay": (False, lambda m: m.prioritized_replay),
    "prioritized_replay_alpha": (0.7, lambda m: m.prioritized_replay_alpha),
    "prioritized_replay_beta": (0.5, lambda m: m.prioritized_replay_beta),
    "prioritized_replay_final_beta": (0.9, lambda m: m.prioritized_replay_final_beta),
    "prioritized_replay_eps": (1e-4, lambda m: m.prioritized_replay_eps),
    "overlap_env_steps": (True, lambda m: m.overlap_env_steps),
    "random_shift": (2, lambda m: m.random_shift),
    "per_env_exploration": (True, lambda m: m.per_env_exploration),
    "target_epsilon": (0.1, lambda m: m.target_epsilon),
    "stats_window_size": (17, lambda m: m._stats_window_size),
    "tensorboard_log": ("tb-logs", lambda m: m.tensorboard_log),
    "policy_kwargs": (dict(net_arch=[6]), lambda m: m.policy.net_arch),
    "verbose": (1, lambda m: m.verbose),
    "seed": (11, lambda m: m.seed),
    "device": ("cpu", lambda m: m.device.type),
}
EXPECTED = {
    "train_freq": (5, "step"),
    "replay_buffer_kwargs": "zstd",
    "n_steps": (3, 3),
    "policy_kwargs": [6],
}
# Prioritized replay's own arguments, checked where prioritized_replay=True uses them.
PER_ARGUMENTS = {
    "prioritized_replay_alpha": (0.7, lambda m: m.replay_buffer.alpha),
    "prioritized_replay_eps": (1e-4, lambda m: m.replay_buffer.epsilon),
}


def test_every_constructor_argument_reaches_the_model_and_survives_save_load(tmp_path) -> None:
    parameters = set(inspect.signature(DoubleDQN.__init__).parameters) - {"self", "policy", "env", "_init_setup_model"}
    assert parameters == set(NOT_DEFAULT)  # a new argument needs a line here
    model = DoubleDQN("MlpPolicy", "CartPole-v1", **{name: value for name, (value, _) in NOT_DEFAULT.items()})
    model.save(tmp_path / "model.zip")
    loaded = DoubleDQN.load(tmp_path / "model.zip", device="cpu")
    loaded.set_env(make_vec_env("CartPole-v1"))
    loaded._setup_model()  # rebuilds the buffer and networks from the loaded arguments, as training does
    for built in (model, loaded):
        for name, (value, read) in NOT_DEFAULT.items():
            assert read(built) == EXPECTED.get(name, value), name
    prioritized = DoubleDQN(
        "MlpPolicy", "CartPole-v1", prioritized_replay=True, **{name: value for name, (value, _) in PER_ARGUMENTS.items()}
    )
    for name, (value, read) in PER_ARGUMENTS.items():
        assert read(prioritized) == value, name
    sb3_buffer = DoubleDQN(
        "MlpPolicy",
        "CartPole-v1",
        replay_buffer_class=ReplayBuffer,
        optimize_memory_usage=True,
        replay_buffer_kwargs=dict(handle_timeout_termination=False),
    )
    assert sb3_buffer.optimize_memory_usage and sb3_buffer.replay_buffer.optimize_memory_usage


def exploring_actions(per_env_exploration: bool, env_boosts: list[float], steps: int = 400) -> np.ndarray:
    """Actions of a DoubleDQN whose greedy action is 1 in every env, with epsilon 0 and ``env_boosts``."""
    model = cartpole_model(make_vec_env("CartPole-v1", n_envs=len(env_boosts)), per_env_exploration=per_env_exploration)
    set_output_bias(model.q_net, [0.0, 1.0])
    model.exploration_schedule = BoostableSchedule(lambda _: 0.0)
    model.exploration_schedule.env_boosts = np.array(env_boosts)
    model.exploration_schedule.boost = max(env_boosts)
    model.exploration_rate = model.exploration_schedule(1.0)  # as DQN._on_step sets it: the largest boost
    model.action_space.seed(0)
    np.random.seed(0)
    observations = np.zeros((len(env_boosts), 4), np.float32)
    return np.array([model.predict(observations)[0] for _ in range(steps)])  # (steps, n_envs)


def test_per_env_exploration_draws_each_envs_coin_with_its_own_epsilon() -> None:
    # Env 0 boosted to epsilon 1, env 1 at 0. One coin for both (SB3): every action of both envs is
    # random. One coin each: env 0 random (half of them 0), env 1 always greedy.
    shared = exploring_actions(False, [1.0, 0.0])
    assert 150 < (shared[:, 0] == 0).sum() < 250 and 150 < (shared[:, 1] == 0).sum() < 250
    per_env = exploring_actions(True, [1.0, 0.0])
    assert 150 < (per_env[:, 0] == 0).sum() < 250
    assert (per_env[:, 1] == 1).all()
    # Epsilon 0.5 for env 1 only: it explores on about half the steps (a random action is 0 half the time).
    assert 70 < (exploring_actions(True, [0.0, 0.5])[:, 1] == 0).sum() < 130
    # Without per-env boosts (e.g. no AdaptiveEpsilonCallback), every env draws with exploration_rate.
    model = cartpole_model(make_vec_env("CartPole-v1", n_envs=3), per_env_exploration=True)
    model.exploration_rate = 0.3
    np.testing.assert_array_equal(model.env_exploration_rates(3), [0.3, 0.3, 0.3])


def test_per_env_exploration_with_one_env_draws_as_sb3() -> None:
    for boost in (0.0, 0.3, 1.0):
        np.testing.assert_array_equal(exploring_actions(True, [boost]), exploring_actions(False, [boost]))


def test_a_checkpoint_taken_while_training_overlaps_pickles_no_training_machinery(tmp_path) -> None:
    class SaveMidRun(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps == 20:
                self.model.save(tmp_path / "mid_run.zip")
            return True

    model = cartpole_model(overlap_env_steps=True, train_freq=4)
    model.learn(40, callback=SaveMidRun())
    with zipfile.ZipFile(tmp_path / "mid_run.zip") as archive:
        data = json.loads(archive.read("data"))
    assert data["overlap_env_steps"] is True
    assert not {"_deferred_training", "_stepping_env"} & set(data)
    assert DoubleDQN.load(tmp_path / "mid_run.zip", device="cpu").num_timesteps == 20


def test_a_saved_model_with_the_contradictory_pair_still_loads(tmp_path) -> None:
    # Trained before the pair was refused: it plays and trains on (uniformly, as it did), it is not lost.
    model = cartpole_model()
    model.replay_buffer_class = PrioritizedReplayBuffer  # what such a model saved
    model.save(tmp_path / "old.zip")
    loaded = DoubleDQN.load(tmp_path / "old.zip", env=make_vec_env("CartPole-v1"), device="cpu")
    assert loaded.replay_buffer_class is PrioritizedReplayBuffer and not loaded.prioritized_replay
