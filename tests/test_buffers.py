"""Sum tree, prioritized replay and the compressed replay buffer, on constructed and real Mario data."""

import cramjam
import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import NStepReplayBuffer, ReplayBuffer
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

import sb3_mario  # noqa: F401  (registers MarioShaped)
from sb3_mario.dqn.buffers import CODECS, CompressedReplayBuffer, PrioritizedReplayBuffer
from sb3_mario.dqn.sum_tree import SumTree

SMALL_OBS = spaces.Box(0, 255, (2, 3), np.uint8)
ACTIONS = spaces.Discrete(4)


# ---- sum tree ------------------------------------------------------------------------------------


def test_sum_tree_nodes_are_the_sums_of_their_children_after_random_updates() -> None:
    rng = np.random.default_rng(0)
    tree = SumTree(37)  # not a power of two: padded leaves must stay zero
    for _ in range(200):
        indices = rng.integers(0, 37, size=rng.integers(1, 10))
        tree.update(indices, rng.random(len(indices)) * 10)
    internal = np.arange(1, tree.n_leaves)
    np.testing.assert_allclose(tree.nodes[internal], tree.nodes[2 * internal] + tree.nodes[2 * internal + 1])
    assert tree.total == pytest.approx(tree.priorities.sum())
    assert not tree.nodes[tree.n_leaves + 37 :].any()


def test_sum_tree_update_with_repeated_index_keeps_the_last_value() -> None:
    tree = SumTree(4)
    tree.update([2, 2], [5.0, 1.5])
    assert tree.priorities.tolist() == [0, 0, 1.5, 0] and tree.total == 1.5


def test_sum_tree_find_is_the_inverse_of_the_prefix_sums() -> None:
    priorities = np.array([1.0, 0.0, 2.0, 3.0, 0.0, 4.0])
    tree = SumTree(len(priorities))
    tree.update(np.arange(len(priorities)), priorities)
    values = np.linspace(0, priorities.sum(), 1000, endpoint=False)
    expected = np.searchsorted(np.cumsum(priorities), values, side="right")
    np.testing.assert_array_equal(tree.find(values), expected)
    assert not np.isin(tree.find(values), [1, 4]).any()  # zero priority: never found


def test_sum_tree_samples_in_proportion_to_priority() -> None:
    priorities = np.array([1.0, 2.0, 3.0, 4.0, 0.0, 10.0])
    tree = SumTree(len(priorities))
    tree.update(np.arange(len(priorities)), priorities)
    rng = np.random.default_rng(42)
    draws = np.concatenate([tree.sample(rng.random(64)) for _ in range(2000)])
    frequencies = np.bincount(draws, minlength=len(priorities)) / len(draws)
    # 128,000 draws: the standard error of each frequency is below 0.0014; a sampler that is off by
    # one leaf, uniform, or proportional to rank misses by more than 0.02.
    np.testing.assert_allclose(frequencies, priorities / priorities.sum(), atol=0.005)


def test_sum_tree_refuses_bad_input() -> None:
    tree = SumTree(3)
    with pytest.raises(IndexError, match=r"\[0, 3\)"):
        tree.update([3], [1.0])
    with pytest.raises(ValueError, match="non-negative"):
        tree.update([0], [-1.0])
    with pytest.raises(ValueError, match="all zero"):
        tree.sample(np.array([0.5]))
    with pytest.raises(ValueError, match="capacity=0"):
        SumTree(0)


# ---- prioritized replay ----------------------------------------------------------------------------


def fill(buffer: ReplayBuffer, n: int, done_every: int = 0, seed: int = 0, truncate_every: int = 0) -> None:
    """
    Add ``n`` transitions of distinct small observations (obs t+1 = next obs t). Env ``e``'s episodes
    end at steps ``t`` with ``(t + 1 + e) % done_every == 0`` (terminated) or likewise with
    ``truncate_every`` (truncated by a time limit), so that envs end episodes at different steps.
    """
    rng = np.random.default_rng(seed)
    n_envs = buffer.n_envs
    obs = rng.integers(0, 256, size=(n_envs, *SMALL_OBS.shape), dtype=np.uint8)
    for step in range(n):
        next_obs = rng.integers(0, 256, size=obs.shape, dtype=np.uint8)
        terminated = _episode_ends(step, done_every, n_envs)
        truncated = _episode_ends(step, truncate_every, n_envs) & ~terminated
        action = rng.integers(0, 4, size=(n_envs, 1))
        reward = rng.normal(size=n_envs).astype(np.float32)
        infos = [{"TimeLimit.truncated": bool(flag)} for flag in truncated]
        buffer.add(obs, next_obs, action, reward, terminated | truncated, infos)
        obs = next_obs


def _episode_ends(step: int, every: int, n_envs: int) -> np.ndarray:
    return np.array([bool(every) and (step + 1 + env) % every == 0 for env in range(n_envs)])


def test_importance_weights_on_a_constructed_case() -> None:
    buffer = PrioritizedReplayBuffer(4, SMALL_OBS, ACTIONS, device="cpu", alpha=1.0, epsilon=1e-9)
    fill(buffer, 4)
    # TD errors 1, 2, 4, 8 -> priorities (alpha 1) 1, 2, 4, 8: P = p / 15, N = 4.
    buffer.update_priorities(np.arange(4), np.array([1.0, -2.0, 4.0, -8.0]))
    np.random.seed(0)
    batch = buffer.sample(400, beta=0.5)
    p = np.array([1, 2, 4, 8]) + 1e-9
    # w_i = (N P(i))^-beta / max_k (N P(k))^-beta = (p_i / p_min)^-0.5: 1, 0.7071, 0.5, 0.3536.
    expected = (p[batch.indices] / p.min()) ** -0.5
    np.testing.assert_allclose(batch.weights.numpy().ravel(), expected, rtol=1e-6)
    np.testing.assert_allclose(np.unique(batch.weights.numpy()), [0.5**1.5, 0.5, 0.5**0.5, 1.0], rtol=1e-6)
    frequencies = np.bincount(batch.indices, minlength=4) / 400
    np.testing.assert_allclose(frequencies, p / p.sum(), atol=0.02)  # stratified: nearly exact
    # The samples are the stored transitions the indices name.
    np.testing.assert_array_equal(batch.actions.numpy().ravel(), buffer.actions[batch.indices, 0, 0])


def test_new_transitions_get_the_largest_priority_so_far() -> None:
    buffer = PrioritizedReplayBuffer(8, SMALL_OBS, ACTIONS, device="cpu", alpha=0.5, epsilon=0.01)
    fill(buffer, 2)
    assert buffer.tree.priorities[:2].tolist() == [1.0, 1.0]
    buffer.update_priorities(np.array([0, 1]), np.array([15.99, 0.0]))
    assert buffer.tree.priorities[0] == pytest.approx(4.0) and buffer.tree.priorities[1] == pytest.approx(0.1)
    fill(buffer, 1, seed=1)
    assert buffer.tree.priorities[2] == pytest.approx(4.0)


def test_prioritized_leaves_cover_every_env() -> None:
    buffer = PrioritizedReplayBuffer(10, SMALL_OBS, ACTIONS, device="cpu", n_envs=2, alpha=1.0)
    fill(buffer, 5)
    assert buffer.tree.priorities[:10].tolist() == [1.0] * 10
    buffer.update_priorities(np.arange(10), np.array([0.0] * 9 + [5.0]))  # only (pos 4, env 1) matters
    np.random.seed(0)
    batch = buffer.sample(32)
    assert (batch.indices == 9).mean() > 0.99
    np.testing.assert_array_equal(batch.observations.numpy()[0], buffer.observations[4, 1])


STORAGES = {"plain": dict(storage="arrays"), "lz4": dict(storage="lz4"), "on device": dict(storage="device")}


# name -> (n_envs, transitions added to a 50-transition buffer, done_every, truncate_every)
N_STEP_CASES = {
    "one env, wrapped, write head mid-episode": (1, 69, 7, 0),
    "one env, time-limit truncations": (1, 40, 0, 6),
    "two envs, wrapped, ends and truncations": (2, 40, 7, 5),
}


@pytest.mark.parametrize("storage", STORAGES)
@pytest.mark.parametrize("case", N_STEP_CASES)
def test_n_step_returns_match_sb3(storage: str, case: str) -> None:
    # SB3's NStepReplayBuffer and ours read the same transitions: same returns, discounts, dones and
    # next observations, across episode ends, truncations, the wrap-around and the write head.
    n_envs, n_added, done_every, truncate_every = N_STEP_CASES[case]
    common = dict(device="cpu", n_envs=n_envs, n_steps=3, gamma=0.9, handle_timeout_termination=True)
    ours = PrioritizedReplayBuffer(50, SMALL_OBS, ACTIONS, alpha=0.0, **common, **STORAGES[storage])
    sb3 = NStepReplayBuffer(50, SMALL_OBS, ACTIONS, **common)
    for buffer in (ours, sb3):
        fill(buffer, n_added, done_every=done_every, truncate_every=truncate_every)
    rows = 50 // n_envs
    if done_every:  # the case is what its name says
        assert not ours.dones[ours.pos - 1].all() and (n_added > rows) == ours.full
    inds = np.arange(ours.size()).repeat(n_envs)  # every stored row n_envs times: SB3 draws the env of each
    np.random.seed(0)
    theirs = sb3._get_samples(inds)
    np.random.seed(0)
    mine = ours._gather(inds, np.random.randint(0, n_envs, size=inds.shape), None)
    for field in ("observations", "actions", "next_observations", "dones", "rewards", "discounts"):
        np.testing.assert_allclose(_numpy(getattr(mine, field)), _numpy(getattr(theirs, field)), rtol=1e-6, err_msg=field)
    discounts = mine.discounts.numpy().ravel()
    assert (discounts > 0.9**3 + 1e-6).any() and np.isclose(discounts, 0.9**3).any()  # windows cut short, and full ones


@pytest.mark.parametrize("n_steps", [1, 3])
def test_normalized_clipped_rewards_match_sb3(n_steps: int) -> None:
    # VecNormalize's clip_reward clips single rewards: SB3 normalizes each reward, then sums.
    vec_normalize = VecNormalize(DummyVecEnv([lambda: gym.make("CartPole-v1")]), norm_obs=False, clip_reward=0.5)
    vec_normalize.ret_rms.var = np.array(4.0 - vec_normalize.epsilon)  # rewards / 2, then clipped to [-0.5, 0.5]
    common = dict(device="cpu", n_steps=n_steps, gamma=0.9)
    ours = PrioritizedReplayBuffer(50, SMALL_OBS, ACTIONS, alpha=0.0, storage="lz4", **common)
    sb3 = NStepReplayBuffer(50, SMALL_OBS, ACTIONS, **common)
    for buffer in (ours, sb3):
        fill(buffer, 69, done_every=7)
    assert (np.abs(sb3.rewards[:, 0]) > 1.0).sum() > 10  # many rewards are clipped
    inds = np.arange(50)
    theirs = sb3._get_samples(inds, vec_normalize)
    mine = ours._gather(inds, np.zeros(50, dtype=np.int64), vec_normalize)
    np.testing.assert_allclose(mine.rewards.numpy(), theirs.rewards.numpy(), rtol=1e-6)
    assert mine.rewards.dtype == th.float32


def every_transition(buffer: CompressedReplayBuffer) -> dict[str, np.ndarray]:
    """Every stored transition, oldest first, env by env, as sampled (n-step returns included), with its priority."""
    rows = np.arange(buffer.pos - buffer.size(), buffer.pos) % buffer.buffer_size
    inds, envs = rows.repeat(buffer.n_envs), np.tile(np.arange(buffer.n_envs), len(rows))
    samples = buffer._gather(inds, envs, None)
    fields = ("observations", "actions", "next_observations", "dones", "rewards", "discounts")
    return {
        **{field: _numpy(getattr(samples, field)) for field in fields},
        "priorities": buffer.tree.priorities[inds * buffer.n_envs + envs].copy(),
    }


@pytest.mark.parametrize("storage", STORAGES)
@pytest.mark.parametrize("case", N_STEP_CASES)
@pytest.mark.parametrize("new_size", [80, 20])
def test_a_resized_buffer_keeps_its_transitions_in_order(storage: str, case: str, new_size: int) -> None:
    n_envs, n_added, done_every, truncate_every = N_STEP_CASES[case]
    buffer = PrioritizedReplayBuffer(
        50, SMALL_OBS, ACTIONS, device="cpu", n_envs=n_envs, n_steps=3, gamma=0.9, alpha=1.0, **STORAGES[storage]
    )
    fill(buffer, n_added, done_every=done_every, truncate_every=truncate_every)
    buffer.update_priorities(np.arange(buffer.size() * n_envs), np.arange(buffer.size() * n_envs) + 1.0)
    before = every_transition(buffer)
    kept = buffer.resize(new_size)
    rows = new_size // n_envs
    assert buffer.buffer_size == rows and buffer.size() == len(kept) == min(rows, len(before["actions"]) // n_envs)
    after = every_transition(buffer)
    newest = len(kept) * n_envs  # shrinking keeps the newest transitions
    for field, values in after.items():
        np.testing.assert_allclose(values, before[field][-newest:], rtol=1e-6, err_msg=field)
    # New transitions go after the kept ones (growing: into the new rows, nothing overwritten) and
    # take the largest priority so far.
    fill(buffer, 3, seed=1)
    assert buffer.size() == min(len(kept) + 3, rows)
    if len(kept) + 3 <= rows:
        np.testing.assert_array_equal(
            every_transition(buffer)["actions"][: newest - n_envs], after["actions"][: newest - n_envs]
        )
        assert buffer.tree.priorities[(buffer.pos - 1) * n_envs] == buffer.max_priority


def _numpy(tensor: th.Tensor) -> np.ndarray:
    return tensor.cpu().numpy()


# ---- compressed buffer -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mario_transitions() -> list[tuple]:
    env = gym.make("MarioShaped")
    obs, _ = env.reset(seed=3)
    rng = np.random.default_rng(3)
    transitions = []
    while len(transitions) < 300:
        action = int(rng.integers(env.action_space.n))
        next_obs, reward, terminated, truncated, _ = env.step(action)
        transitions.append((obs, next_obs, action, reward, terminated))
        obs = env.reset()[0] if terminated or truncated else next_obs
    env.close()
    return transitions


@pytest.mark.slow
@pytest.mark.parametrize("codec", sorted(CODECS))
def test_compressed_buffer_returns_exactly_what_was_stored(mario_transitions, codec: str) -> None:
    space = spaces.Box(0, 255, (4, 96, 96), np.uint8)
    compressed = CompressedReplayBuffer(200, space, spaces.Discrete(7), device="cpu", storage=codec)
    plain = ReplayBuffer(200, space, spaces.Discrete(7), device="cpu")
    for buffer in (compressed, plain):
        for obs, next_obs, action, reward, terminated in mario_transitions:  # 300 into 200: wraps
            buffer.add(obs[None], next_obs[None], np.array([[action]]), np.array([reward]), np.array([terminated]), [{}])
    inds = np.random.default_rng(0).integers(0, 200, size=64)
    np.random.seed(1)
    ours = compressed._get_samples(inds)
    np.random.seed(1)
    theirs = plain._get_samples(inds)
    for field in ("observations", "actions", "next_observations", "dones", "rewards"):
        assert th_equal(getattr(ours, field), getattr(theirs, field)), field
    assert ours.discounts is None
    # Each observation is stored once: the next observation of step t is the observation of step t+1.
    distinct = {
        id(blob) for storage in (compressed.observations, compressed.next_observations) for blob in storage.blobs.ravel()
    }
    assert len(distinct) < 200 * 1.1
    assert compressed.observation_nbytes() < plain.observations.nbytes / 8


def th_equal(a, b) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and bool((a == b).all())


@pytest.mark.slow
def test_compressed_buffer_survives_pickling(tmp_path, mario_transitions) -> None:
    from stable_baselines3.common.save_util import load_from_pkl, save_to_pkl

    space = spaces.Box(0, 255, (4, 96, 96), np.uint8)
    buffer = PrioritizedReplayBuffer(100, space, spaces.Discrete(7), device="cpu", storage="zstd")
    for obs, next_obs, action, reward, terminated in mario_transitions[:50]:
        buffer.add(obs[None], next_obs[None], np.array([[action]]), np.array([reward]), np.array([terminated]), [{}])
    save_to_pkl(tmp_path / "buffer.pkl", buffer)
    loaded = load_from_pkl(tmp_path / "buffer.pkl")
    inds = np.arange(50)
    np.testing.assert_array_equal(loaded.observations[inds, np.zeros(50, int)], buffer.observations[inds, np.zeros(50, int)])
    np.testing.assert_array_equal(loaded.tree.nodes, buffer.tree.nodes)


def test_observations_on_device_are_tensors_there_and_survive_pickling(tmp_path) -> None:
    from stable_baselines3.common.save_util import load_from_pkl, save_to_pkl

    device = "cuda" if th.cuda.is_available() else "cpu"
    buffer = PrioritizedReplayBuffer(20, SMALL_OBS, ACTIONS, device=device, storage="device", n_envs=2)
    fill(buffer, 15, done_every=4)
    assert isinstance(buffer.observations.data, th.Tensor) and buffer.observations.data.device.type == device
    assert buffer.observation_nbytes() == 2 * (10 * 2) * 6  # stored and next: 20 transitions (10 rows x 2 envs) of 6 bytes
    save_to_pkl(tmp_path / "buffer.pkl", buffer)
    loaded = load_from_pkl(tmp_path / "buffer.pkl")
    rows, envs = np.arange(10), np.arange(10) % 2
    assert th.equal(loaded.next_observations[rows, envs], buffer.next_observations[rows, envs])
    assert loaded.next_observations[rows, envs].device.type == device


@pytest.mark.slow
def test_lz4_frames_of_older_buffers_still_decompress(mario_transitions) -> None:
    # Buffers saved before lz4 blobs became bare blocks hold lz4 frames: sampling must read both.
    space = spaces.Box(0, 255, (4, 96, 96), np.uint8)
    buffer = CompressedReplayBuffer(10, space, spaces.Discrete(7), device="cpu", storage="lz4")
    for obs, next_obs, action, reward, terminated in mario_transitions[:4]:
        buffer.add(obs[None], next_obs[None], np.array([[action]]), np.array([reward]), np.array([terminated]), [{}])
    assert not buffer.observations.blobs[0, 0].startswith(b"\x04\x22\x4d\x18")  # stored as a block
    buffer.observations.blobs[1, 0] = bytes(cramjam.lz4.compress(mario_transitions[1][0].tobytes()))  # a frame
    rows = np.arange(4)
    np.testing.assert_array_equal(buffer.observations[rows, np.zeros(4, int)], np.stack([t[0] for t in mario_transitions[:4]]))


def test_both_buffers_keep_observations_lz4_compressed_by_default() -> None:
    for buffer_class in (CompressedReplayBuffer, PrioritizedReplayBuffer):
        buffer = buffer_class(10, SMALL_OBS, ACTIONS)
        assert buffer.storage == "lz4" and buffer.observations.codec == "lz4"


@pytest.mark.parametrize(
    "old_attributes, storage",
    [
        (dict(codec="zstd"), "zstd"),
        (dict(codec=None), "arrays"),
        (dict(codec=None, observations_on_device=True), "device"),
        (dict(codec="lz4"), "lz4"),
    ],
)
def test_a_buffer_pickled_with_codec_and_observations_on_device_loads_with_its_storage(
    old_attributes: dict, storage: str
) -> None:
    buffer = PrioritizedReplayBuffer(10, SMALL_OBS, ACTIONS, storage=storage)
    state = {key: value for key, value in buffer.__dict__.items() if key != "storage"}
    old = PrioritizedReplayBuffer.__new__(PrioritizedReplayBuffer)
    old.__setstate__({**state, **old_attributes})
    assert old.storage == storage and "codec" not in old.__dict__ and "observations_on_device" not in old.__dict__


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(storage="gzip"), "storage='gzip' is not valid; valid choices: lz4, zstd, arrays, device"),
        (dict(optimize_memory_usage=True, handle_timeout_termination=False), "optimize_memory_usage=True"),
        (dict(n_steps=3), "n_steps=3 needs the discount"),
        (dict(n_steps=0), "n_steps=0 must be an integer >= 1"),
    ],
)
def test_compressed_buffer_refuses_bad_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        CompressedReplayBuffer(10, SMALL_OBS, ACTIONS, **kwargs)


def test_prioritized_buffer_refuses_bad_arguments() -> None:
    with pytest.raises(ValueError, match="alpha=-1"):
        PrioritizedReplayBuffer(10, SMALL_OBS, ACTIONS, alpha=-1)
    with pytest.raises(ValueError, match="epsilon=0"):
        PrioritizedReplayBuffer(10, SMALL_OBS, ACTIONS, epsilon=0)


def test_an_observation_shared_by_consecutive_transitions_is_stored_once() -> None:
    buffer = CompressedReplayBuffer(10, SMALL_OBS, ACTIONS, device="cpu", n_envs=2)
    fill(buffer, 4)  # obs of step t + 1 is next_obs of step t, as SB3 adds them
    stored, following = buffer.observations.blobs, buffer.next_observations.blobs
    for step in range(3):
        for env_index in range(2):
            assert stored[step + 1, env_index] is following[step, env_index]  # the same bytes object
    assert stored[0, 0] is not stored[0, 1]
    distinct = {id(blob): len(blob) for blob in [*stored[:4].ravel(), *following[:4].ravel()]}
    assert len(distinct) == 2 * 5  # 5 distinct observations per env: the first, then one new per step
    assert buffer.observation_nbytes() == sum(distinct.values()) + stored.nbytes + following.nbytes
