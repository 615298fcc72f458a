"""DrQ's random shifts: the function on constructed images, and where DoubleDQN applies them."""

import gymnasium as gym
import numpy as np
import pytest
import torch as th

from sb3_mario.dqn.augmentation import random_shift
from sb3_mario.dqn.double_dqn import DoubleDQN


def shifted(image: th.Tensor, rows: int, columns: int) -> th.Tensor:
    """``image`` (channels, height, width) moved by ``(rows, columns)``, edge pixels repeated: by hand."""
    _, height, width = image.shape
    out = th.empty_like(image)
    for r in range(height):
        for c in range(width):
            out[:, r, c] = image[:, min(max(r + rows, 0), height - 1), min(max(c + columns, 0), width - 1)]
    return out


def test_each_observation_is_its_own_stack_moved_by_one_offset_within_pad() -> None:
    th.manual_seed(0)
    batch = th.randint(0, 256, (64, 3, 6, 7), dtype=th.uint8)
    out = random_shift(batch, pad=2)
    assert out.shape == batch.shape and out.dtype == th.uint8
    seen = set()
    for image, moved in zip(batch, out, strict=True):
        matches = [(r, c) for r in range(-2, 3) for c in range(-2, 3) if th.equal(shifted(image, r, c), moved)]
        assert matches, "not a shift of its own observation by at most 2 pixels"
        seen.add(matches[0])
    assert len(seen) > 15  # offsets are drawn per observation (25 possible), not one for the batch


def test_pad_zero_returns_the_batch_itself() -> None:
    batch = th.arange(2 * 4 * 4, dtype=th.float32).reshape(2, 1, 4, 4)
    assert random_shift(batch, pad=0) is batch


class SmallImageEnv(gym.Env):
    """Random 1x8x8 uint8 frames, two actions, episodes of 5 steps."""

    observation_space = gym.spaces.Box(0, 255, (1, 8, 8), dtype=np.uint8)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._t = 0
        return self.np_random.integers(0, 256, (1, 8, 8), dtype=np.uint8), {}

    def step(self, action):
        self._t += 1
        return self.np_random.integers(0, 256, (1, 8, 8), dtype=np.uint8), float(action), self._t == 5, False, {}


@pytest.mark.parametrize("pad", [0, 2])
def test_the_q_network_learns_from_shifted_replays_only_when_asked(pad: int) -> None:
    model = DoubleDQN(
        "MlpPolicy", SmallImageEnv(), random_shift=pad, learning_starts=0, batch_size=16, buffer_size=100,
        policy_kwargs=dict(net_arch=[8], normalize_images=False), seed=0, device="cpu",
    )  # fmt: skip
    model.learn(40)
    stored = {model.replay_buffer.observations[i].tobytes() for i in range(model.replay_buffer.size())}
    seen: list[th.Tensor] = []
    model.q_net.register_forward_pre_hook(lambda _module, args: seen.append(args[0].clone()))
    model.train(gradient_steps=1, batch_size=16)
    batch = seen[-1].to(th.uint8).numpy()  # the online network's last input: the loss's observations
    in_store = sum(observation.tobytes() in stored for observation in batch)
    assert in_store == 16 if pad == 0 else in_store < 8
