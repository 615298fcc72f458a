"""
Replay buffers for SB3's DQN: compressed observations, and prioritized replay.

Both are ordinary SB3 ``ReplayBuffer`` subclasses, chosen with ``replay_buffer_class`` (in code or
in a hyperparameter file). :class:`CompressedReplayBuffer` stores each observation losslessly
compressed: a Mario observation (4 x 96 x 96 uint8, 36,864 bytes) compresses to ~3 KB with lz4, and
the observation that starts a transition, being the one that ended the previous transition, is
stored once. :class:`PrioritizedReplayBuffer` adds proportional prioritized replay on top (with or
without compression); the algorithm that uses it must apply its importance weights and report TD
errors back, which :class:`sb3_mario.dqn.double_dqn.DoubleDQN` does.

Both also compute n-step returns (``n_steps``, ``gamma``), as SB3's ``NStepReplayBuffer`` does.
"""

import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import cramjam
import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.type_aliases import ReplayBufferSamples
from stable_baselines3.common.vec_env import VecNormalize

from sb3_mario.dqn.sum_tree import SumTree

# The start of every lz4 *frame*: what the lz4 codec stored before it stored bare blocks. A block
# never starts with it (its first sequence must hold literals), so buffers saved then still load.
_LZ4_FRAME_MAGIC = b"\x04\x22\x4d\x18"


def _lz4_compress(data: bytes) -> bytes:
    # A bare block without its size: the size is the observation's, known when decompressing.
    return bytes(cramjam.lz4.compress_block(data, store_size=False))


def _lz4_decompress_into(blob: bytes, out: np.ndarray) -> None:
    if blob[:4] == _LZ4_FRAME_MAGIC:
        cramjam.lz4.decompress_into(blob, out)
    else:
        cramjam.lz4.decompress_block_into(blob, out)


def _zstd_compress(data: bytes) -> bytes:
    return bytes(cramjam.zstd.compress(data, level=3))


def _zstd_decompress_into(blob: bytes, out: np.ndarray) -> None:
    cramjam.zstd.decompress_into(blob, out)


# compression name -> (compress, decompress into a preallocated array); module-level functions, so
# buffers stay picklable. Decompressing straight into the sampled batch saves a copy per
# observation: with lz4 a sample costs about what SB3's plain-array copy does.
CODECS: dict[str, tuple[Callable[[bytes], bytes], Callable[[bytes, np.ndarray], None]]] = {
    "lz4": (_lz4_compress, _lz4_decompress_into),  # the faster (docs/benchmarks.md has the figures)
    "zstd": (_zstd_compress, _zstd_decompress_into),  # the smaller
}


class _LastStored:
    """The last array compressed for each env, and its bytes: lets the next write reuse them."""

    def __init__(self, n_envs: int) -> None:
        self.arrays: list[np.ndarray | None] = [None] * n_envs
        self.blobs: list[bytes | None] = [None] * n_envs


def _rows_taken(array: np.ndarray, rows: np.ndarray, buffer_size: int) -> np.ndarray:
    """``array[rows]`` at the start of a ``buffer_size``-row array of the same kind; the rest empty."""
    taken = np.full((buffer_size, *array.shape[1:]), None if array.dtype == object else 0, dtype=array.dtype)
    taken[: len(rows)] = array[rows]
    return taken


def _rows_and_envs(key: tuple, storage_name: str) -> tuple[Any, Any]:
    """The ``(rows, envs)`` of a ``storage[rows, envs]`` (or ``[rows, envs, :]``) read: all SB3's buffers do."""
    if not isinstance(key, tuple) or len(key) not in (2, 3) or (len(key) == 3 and key[2] != slice(None)):
        raise IndexError(f"{storage_name} supports [rows, envs] indexing only, got {key!r}")
    return key[0], key[1]


class CompressedObservations:
    """
    Array-like storage of shape ``(buffer_size, n_envs, *obs_shape)`` holding every observation
    compressed. It supports exactly the indexing SB3's replay buffers use: ``storage[pos] = values``
    (one row: an observation per env) and ``storage[rows, envs]`` (optionally ``[rows, envs, :]``).

    A written observation equal to the last one written for the same env (by this storage or by
    the one sharing its ``last_stored``) reuses its compressed bytes instead of compressing again:
    SB3 writes ``next_obs`` of step ``t`` and then ``obs`` of step ``t + 1``, the same array.

    :param buffer_size: Rows.
    :param n_envs: Observations per row.
    :param obs_shape: Shape of one observation.
    :param dtype: Its dtype.
    :param codec: Compression, one of :data:`CODECS`.
    :param last_stored: Shared with the storage this one alternates writes with.
    """

    def __init__(
        self,
        buffer_size: int,
        n_envs: int,
        obs_shape: tuple[int, ...],
        dtype: np.dtype,
        codec: str,
        last_stored: _LastStored,
    ) -> None:
        self.blobs = np.full((buffer_size, n_envs), None, dtype=object)
        self.obs_shape = obs_shape
        self.dtype = np.dtype(dtype)
        self.codec = codec
        self.last_stored = last_stored

    def __setitem__(self, row: int, values: np.ndarray) -> None:
        compress = CODECS[self.codec][0]
        values = np.asarray(values, dtype=self.dtype)
        last = self.last_stored
        for env_index, value in enumerate(values):
            previous = last.arrays[env_index]
            if previous is None or not np.array_equal(previous, value):
                last.arrays[env_index] = value
                last.blobs[env_index] = compress(value.tobytes())
            self.blobs[row, env_index] = last.blobs[env_index]

    def take_rows(self, rows: np.ndarray, buffer_size: int) -> None:
        """Keep only ``rows``, in that order, first of ``buffer_size`` rows (:meth:`CompressedReplayBuffer.resize`)."""
        self.blobs = _rows_taken(self.blobs, rows, buffer_size)

    def __getitem__(self, key: tuple) -> np.ndarray:
        rows, envs = _rows_and_envs(key, type(self).__name__)
        blobs = np.atleast_1d(self.blobs[rows, envs])
        decompress_into = CODECS[self.codec][1]
        out = np.empty((len(blobs), *self.obs_shape), dtype=self.dtype)
        for index, blob in enumerate(blobs):
            if blob is None:
                raise IndexError("sampled an empty slot of the replay buffer")
            decompress_into(blob, out[index])
        return out[0] if np.ndim(rows) == np.ndim(envs) == 0 else out  # one observation, as numpy indexes


class DeviceObservations:
    """
    Array-like storage of shape ``(buffer_size, n_envs, *obs_shape)`` kept as one uncompressed torch
    tensor on the training device: a sampled batch is gathered there by torch indexing, without
    decompression or a host-to-device copy (a 100k-transition buffer of Mario observations, stored
    and next, takes 7.4 GB). Same indexing as :class:`CompressedObservations`; reads return tensors.

    :param buffer_size: Rows.
    :param n_envs: Observations per row.
    :param obs_shape: Shape of one observation.
    :param dtype: Its (numpy) dtype.
    :param device: Where the tensor lives.
    """

    def __init__(self, buffer_size: int, n_envs: int, obs_shape: tuple[int, ...], dtype: np.dtype, device: th.device) -> None:
        torch_dtype = th.from_numpy(np.empty(0, dtype=dtype)).dtype
        # Uninitialised: on the CPU, rows never written take no memory (only filled rows are sampled).
        self.data = th.empty((buffer_size, n_envs, *obs_shape), dtype=torch_dtype, device=device)

    @property
    def nbytes(self) -> int:
        return self.data.numel() * self.data.element_size()

    def __setitem__(self, row: int, values: np.ndarray) -> None:
        self.data[row].copy_(th.as_tensor(np.asarray(values)))

    def take_rows(self, rows: np.ndarray, buffer_size: int) -> None:
        """Keep only ``rows``, in that order, first of ``buffer_size`` rows (:meth:`CompressedReplayBuffer.resize`)."""
        data = th.empty((buffer_size, *self.data.shape[1:]), dtype=self.data.dtype, device=self.data.device)
        data[: len(rows)] = self.data[th.as_tensor(rows, device=self.data.device)]
        self.data = data

    def __getitem__(self, key: tuple) -> th.Tensor:
        rows, envs = _rows_and_envs(key, type(self).__name__)
        n_envs = self.data.shape[1]
        # index_select on the (row, env)-flattened tensor: much faster than indexing with two index
        # tensors (measured on the CPU, uint8 Mario observations).
        flat_indices = th.as_tensor(np.atleast_1d(rows) * n_envs + np.atleast_1d(envs), device=self.data.device)
        out = self.data.view(-1, *self.data.shape[2:]).index_select(0, flat_indices)
        return out[0] if np.ndim(rows) == np.ndim(envs) == 0 else out  # one observation, as numpy indexes


# What ReplayBuffer.__init__ is given instead of the real observation space, so that it does not
# allocate (or warn about) the uncompressed arrays that the compressed storage replaces.
_PLACEHOLDER_SPACE = spaces.Box(0, 255, (1,), np.uint8)


# Where and how a buffer keeps its observations (the ``storage`` argument): compressed with lz4 (the
# default: fastest) or zstd (smallest), as SB3's plain numpy arrays, or as one uncompressed tensor on
# the training device.
STORAGES = (*CODECS, "arrays", "device")


def storage_of_legacy_arguments(codec: str | None = None, observations_on_device: bool = False) -> str:
    """
    The ``storage`` that ``codec`` and ``observations_on_device``, the arguments it replaced, asked
    for: zips and pickled buffers saved before hold those.
    """
    return "device" if observations_on_device else codec or "arrays"


class CompressedReplayBuffer(ReplayBuffer):
    """
    SB3's ``ReplayBuffer`` with observations stored losslessly compressed: sampling returns exactly
    the arrays that were added. Use it as ``replay_buffer_class`` (e.g. ``replay_buffer_class:
    sb3_mario.dqn.buffers.CompressedReplayBuffer`` in a hyperparameter file).

    ``optimize_memory_usage`` is refused: consecutive observations are already stored once.

    :param buffer_size: Max number of transitions.
    :param observation_space: Observation space.
    :param action_space: Action space.
    :param device: PyTorch device.
    :param n_envs: Number of parallel environments.
    :param optimize_memory_usage: Must be ``False`` (see above).
    :param handle_timeout_termination: Treat time-limit truncations as non-terminal (as SB3 does).
    :param n_steps: Steps of reward summed into each sampled return (1: plain TD targets).
    :param gamma: Discount of the n-step return; required when ``n_steps > 1``. SB3's DQN passes its
        own ``gamma`` only to its own buffers: with a custom ``replay_buffer_class`` give both in
        ``replay_buffer_kwargs`` (:class:`~sb3_mario.dqn.double_dqn.DoubleDQN` fills them in).
    :param storage: How observations are kept: ``"lz4"`` (compressed, fastest), ``"zstd"``
        (compressed, smallest), ``"arrays"`` (SB3's plain numpy arrays) or ``"device"`` (one
        uncompressed tensor on ``device``, a GPU's memory, where sampled batches are gathered:
        :class:`DeviceObservations`; on the CPU the same code in host memory).
    :param legacy_storage: ``codec`` and ``observations_on_device``, which ``storage`` replaced, as
        models saved before name them (:func:`storage_of_legacy_arguments`); a ``DeprecationWarning``.
    """

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        device: th.device | str = "auto",
        n_envs: int = 1,
        optimize_memory_usage: bool = False,
        handle_timeout_termination: bool = True,
        n_steps: int = 1,
        gamma: float | None = None,
        storage: str = "lz4",
        **legacy_storage: Any,
    ) -> None:
        if legacy_storage:
            storage = storage_of_legacy_arguments(**legacy_storage)
            warnings.warn(
                f"replay buffer arguments {legacy_storage} are replaced by storage={storage!r}",
                DeprecationWarning,
                stacklevel=2,
            )
        if storage not in STORAGES:
            raise ValueError(f"storage={storage!r} is not valid; valid choices: {', '.join(STORAGES)}")
        if optimize_memory_usage:
            raise ValueError(
                f"{type(self).__name__} does not support optimize_memory_usage=True (nor need it: it stores "
                "an observation shared by consecutive transitions once); set optimize_memory_usage: False"
            )
        if not isinstance(n_steps, int) or n_steps < 1:
            raise ValueError(f"n_steps={n_steps!r} must be an integer >= 1")
        if n_steps > 1 and gamma is None:
            raise ValueError(f"n_steps={n_steps} needs the discount: pass gamma in replay_buffer_kwargs")
        space = observation_space if storage == "arrays" else _PLACEHOLDER_SPACE
        super().__init__(buffer_size, space, action_space, device, n_envs, False, handle_timeout_termination)
        self.n_steps = n_steps
        self.gamma = gamma
        self.storage = storage
        if storage != "arrays":
            self.observation_space = observation_space
            self.obs_shape = observation_space.shape
            shape = (self.buffer_size, self.n_envs, self.obs_shape, observation_space.dtype)
            if storage == "device":
                self.observations = DeviceObservations(*shape, self.device)
                self.next_observations = DeviceObservations(*shape, self.device)
            else:
                last_stored = _LastStored(self.n_envs)
                self.observations = CompressedObservations(*shape, storage, last_stored)
                self.next_observations = CompressedObservations(*shape, storage, last_stored)

    def __setstate__(self, state: dict[str, Any]) -> None:
        if "storage" not in state:  # pickled before ``storage`` replaced ``codec`` and ``observations_on_device``
            legacy = {name: state.pop(name) for name in ("codec", "observations_on_device") if name in state}
            state["storage"] = storage_of_legacy_arguments(**legacy)
        self.__dict__.update(state)

    def observation_nbytes(self) -> int:
        """Bytes the stored observations take: the plain arrays, or each distinct compressed one once."""
        if self.storage not in CODECS:
            return self.observations.nbytes + self.next_observations.nbytes
        storages = (self.observations, self.next_observations)
        distinct = {id(blob): len(blob) for storage in storages for blob in storage.blobs.ravel() if blob is not None}
        return sum(distinct.values()) + sum(storage.blobs.nbytes for storage in storages)

    def resize(self, buffer_size: int) -> np.ndarray:
        """
        Hold ``buffer_size`` transitions from now on (``buffer_size // n_envs`` rows, as SB3 counts),
        keeping those stored, oldest first; shrinking keeps the newest that fit. Consecutive
        transitions stay consecutive, so n-step windows read the same transitions as before.

        :param buffer_size: The new capacity, in transitions.
        :return: The rows kept, in their new order (row ``i`` now holds what row ``kept[i]`` held).
        """
        rows = max(buffer_size // self.n_envs, 1)
        kept = (np.arange(self.pos - self.size(), self.pos) % self.buffer_size)[-rows:]  # oldest first
        for name in ("actions", "rewards", "dones", "timeouts"):
            setattr(self, name, _rows_taken(getattr(self, name), kept, rows))
        for name in ("observations", "next_observations"):
            storage = getattr(self, name)
            if isinstance(storage, np.ndarray):  # storage="arrays"
                setattr(self, name, _rows_taken(storage, kept, rows))
            else:
                storage.take_rows(kept, rows)
        self.buffer_size = rows
        self.pos = len(kept) % rows
        self.full = len(kept) == rows
        return kept

    def _get_samples(self, batch_inds: np.ndarray, env: VecNormalize | None = None) -> ReplayBufferSamples:
        env_indices = np.random.randint(0, high=self.n_envs, size=(len(batch_inds),))
        return self._gather(batch_inds, env_indices, env)

    def _gather(self, batch_inds: np.ndarray, env_indices: np.ndarray, env: VecNormalize | None) -> ReplayBufferSamples:
        """
        The transitions at ``(batch_inds, env_indices)``, with n-step returns when ``n_steps > 1``.

        SB3's ``NStepReplayBuffer`` draws the env indices itself; prioritized replay must choose
        them, hence this version of its computation that takes them as arguments.
        """
        if self.storage == "device" and env is not None and env.norm_obs:
            raise ValueError(
                "storage='device' cannot normalize observations with VecNormalize (a numpy computation): "
                "use normalize: dict(norm_obs=False, ...) or another storage"
            )
        if self.n_steps == 1:
            rewards = self._normalize_reward(self.rewards[batch_inds, env_indices], env)
            dones = self.dones[batch_inds, env_indices] * (1 - self.timeouts[batch_inds, env_indices])
            last_inds, discounts = batch_inds, None
        else:
            # The write head is the end of the newest episode so far: mark it truncated while
            # sampling, so that no n-step window runs from the newest transitions into the oldest.
            head = self.pos - 1
            saved_timeouts = self.timeouts[head].copy()
            self.timeouts[head] = np.logical_or(saved_timeouts, np.logical_not(self.dones[head]))
            window = (batch_inds[:, None] + np.arange(self.n_steps)) % self.buffer_size
            ends = np.logical_or(self.dones[window, env_indices[:, None]], self.timeouts[window, env_indices[:, None]])
            # Each window stops at its first done or truncation (inclusive).
            length = np.where(ends.any(axis=1), ends.argmax(axis=1), self.n_steps - 1) + 1
            mask = np.arange(self.n_steps) < length[:, None]
            powers = self.gamma ** np.arange(self.n_steps, dtype=np.float32)
            # Each reward normalized (and clipped) before the sum, as SB3's NStepReplayBuffer does:
            # VecNormalize's clip_reward applies to single rewards, not to n-step returns.
            step_rewards = self._normalize_reward(self.rewards[window, env_indices[:, None]], env)
            rewards = (step_rewards * powers * mask).sum(axis=1)
            last_inds = (batch_inds + length - 1) % self.buffer_size
            dones = self.dones[last_inds, env_indices] * (1 - self.timeouts[last_inds, env_indices])
            discounts = (self.gamma**length).astype(np.float32).reshape(-1, 1)
            self.timeouts[head] = saved_timeouts
        # Every array here is freshly made (decompressed, gathered by fancy indexing or computed): on
        # the CPU the tensors share its memory instead of copying it again (SB3's to_torch copies by default).
        return ReplayBufferSamples(
            observations=self.to_torch(self._normalize_obs(self.observations[batch_inds, env_indices], env), copy=False),
            actions=self.to_torch(self.actions[batch_inds, env_indices], copy=False),
            next_observations=self.to_torch(
                self._normalize_obs(self.next_observations[last_inds, env_indices], env), copy=False
            ),
            dones=self.to_torch(dones.reshape(-1, 1), copy=False),
            rewards=self.to_torch(rewards.reshape(-1, 1).astype(np.float32), copy=False),
            discounts=None if discounts is None else self.to_torch(discounts, copy=False),
        )


class PrioritizedReplayBufferSamples(NamedTuple):
    """
    A prioritized batch: SB3's ``ReplayBufferSamples`` fields, the importance-sampling weights to
    multiply the per-sample loss by, and the items to report TD errors for.
    """

    observations: th.Tensor
    actions: th.Tensor
    next_observations: th.Tensor
    dones: th.Tensor
    rewards: th.Tensor
    discounts: th.Tensor | None
    weights: th.Tensor
    indices: np.ndarray


class PrioritizedReplayBuffer(CompressedReplayBuffer):
    """
    Proportional prioritized experience replay (Schaul et al., 2016): transition ``i`` is sampled
    with probability ``p_i^alpha / sum_k p_k^alpha``, where ``p_i = |TD error| + epsilon`` from the
    last time it was trained on (new transitions get the largest priority so far, so every one is
    seen at least once). Each transition (one per env per step) is a leaf of a :class:`SumTree`.

    :meth:`sample` returns :class:`PrioritizedReplayBufferSamples`: the learner must weight its
    per-sample loss by ``weights`` (``(N * P(i))^-beta``, divided by the largest possible weight)
    and call :meth:`update_priorities` with the batch's TD errors.

    Observations are kept as :class:`CompressedReplayBuffer` keeps them (``storage``, lz4 by default).

    :param buffer_size: Max number of transitions.
    :param observation_space: Observation space.
    :param action_space: Action space.
    :param device: PyTorch device.
    :param n_envs: Number of parallel environments.
    :param optimize_memory_usage: Must be ``False``.
    :param handle_timeout_termination: Treat time-limit truncations as non-terminal (as SB3 does).
    :param n_steps: Steps of reward summed into each sampled return.
    :param gamma: Discount of the n-step return; required when ``n_steps > 1``.
    :param storage: How observations are kept (see :class:`CompressedReplayBuffer`).
    :param alpha: How much prioritization is used (0: uniform sampling).
    :param epsilon: Added to ``|TD error|`` so that no transition becomes impossible to sample.
    :param legacy_storage: See :class:`CompressedReplayBuffer`.
    """

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        device: th.device | str = "auto",
        n_envs: int = 1,
        optimize_memory_usage: bool = False,
        handle_timeout_termination: bool = True,
        n_steps: int = 1,
        gamma: float | None = None,
        storage: str = "lz4",
        alpha: float = 0.6,
        epsilon: float = 1e-6,
        **legacy_storage: Any,
    ) -> None:
        if alpha < 0:
            raise ValueError(f"alpha={alpha!r} must be >= 0 (0: uniform sampling)")
        if epsilon <= 0:
            raise ValueError(f"epsilon={epsilon!r} must be > 0")
        super().__init__(
            buffer_size,
            observation_space,
            action_space,
            device,
            n_envs,
            optimize_memory_usage,
            handle_timeout_termination,
            n_steps,
            gamma,
            storage,
            **legacy_storage,
        )
        self.alpha = alpha
        self.epsilon = epsilon
        self.tree = SumTree(self.buffer_size * self.n_envs)
        self.max_priority = 1.0  # largest p^alpha so far: what new transitions get

    def add(self, *args: Any, **kwargs: Any) -> None:
        leaves = self.pos * self.n_envs + np.arange(self.n_envs)
        super().add(*args, **kwargs)
        self.tree.update(leaves, np.full(self.n_envs, self.max_priority))

    def sample(self, batch_size: int, env: VecNormalize | None = None, beta: float = 0.4) -> PrioritizedReplayBufferSamples:
        """
        Draw a batch proportionally to priority.

        :param batch_size: Number of transitions.
        :param env: VecNormalize to normalize observations/rewards with, if any.
        :param beta: Importance-sampling exponent (0: no correction, 1: full correction).
        """
        leaves = self.tree.sample(np.random.random(batch_size))
        n_stored = self.size() * self.n_envs
        priorities = self.tree.priorities
        # weight_i = (N P(i))^-beta / max_k (N P(k))^-beta = (p_i / p_min)^-beta
        weights = (priorities[leaves] / priorities[:n_stored].min()) ** -beta
        batch_inds, env_indices = np.divmod(leaves, self.n_envs)
        samples = self._gather(batch_inds, env_indices, env)
        return PrioritizedReplayBufferSamples(
            *samples, weights=self.to_torch(weights.astype(np.float32).reshape(-1, 1), copy=False), indices=leaves
        )

    def resize(self, buffer_size: int) -> np.ndarray:
        # Each kept transition keeps its priority, at its new leaf.
        priorities = self.tree.priorities
        kept = super().resize(buffer_size)
        old_leaves = (kept[:, None] * self.n_envs + np.arange(self.n_envs)).ravel()
        self.tree = SumTree(self.buffer_size * self.n_envs)
        self.tree.update(np.arange(len(old_leaves)), priorities[old_leaves])
        return kept

    def update_priorities(self, indices: np.ndarray, td_errors: np.ndarray) -> None:
        """
        Set the priorities of sampled transitions from their new TD errors.

        :param indices: ``indices`` of the batch the errors are for.
        :param td_errors: One TD error per sampled transition.
        """
        priorities = (np.abs(td_errors).ravel() + self.epsilon) ** self.alpha
        self.tree.update(indices, priorities)
        self.max_priority = max(self.max_priority, float(priorities.max()))
