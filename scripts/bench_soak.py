"""
Soak: train ~20k steps and sample the process's resident memory; it must stay within the replay
buffer's size plus a fixed margin, and stop growing once the buffer is full (no leak).

    python scripts/bench_soak.py                       # 20k steps, 10k-transition buffer
    python scripts/bench_soak.py --steps 50000 --buffer-size 20000
"""

import argparse
import os
import platform

import gymnasium as gym
import numpy as np
from stable_baselines3 import DQN
from stable_baselines3.common.callbacks import BaseCallback

import sb3_mario  # noqa: F401
from sb3_mario.callbacks import MarioEpisodeStatsCallback
from sb3_mario.dqn.exploration import AdaptiveEpsilonCallback


def rss_bytes() -> int:
    """Resident set size of this process (Linux)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


class RssSampler(BaseCallback):
    def __init__(self, every: int) -> None:
        super().__init__()
        self.every = every
        self.samples: list[tuple[int, int]] = []

    def _on_step(self) -> bool:
        if self.num_timesteps % self.every == 0:
            self.samples.append((self.num_timesteps, rss_bytes()))
        return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--buffer-size", type=int, default=10_000)
    parser.add_argument("--margin-mb", type=float, default=300.0, help="allowed growth beyond the replay buffer")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")

    env = gym.make("MarioShaped")
    # The CPU entry's network and batches (hyperparams/dqn_cpu.yml), 1-step returns in SB3's compact buffer, filling halfway.
    model = DQN(
        "DuelingCnnPolicy",
        env,
        buffer_size=args.buffer_size,
        learning_starts=1000,
        batch_size=64,
        train_freq=4,
        target_update_interval=5000,
        exploration_fraction=0.3,
        exploration_final_eps=0.05,
        optimize_memory_usage=True,
        replay_buffer_kwargs=dict(handle_timeout_termination=False),
        seed=0,
    )
    buffer = model.replay_buffer
    buffer_bytes = sum(array.nbytes for array in (buffer.observations, buffer.actions, buffer.rewards, buffer.dones))
    baseline = rss_bytes()
    sampler = RssSampler(every=1000)
    model.learn(args.steps, callback=[AdaptiveEpsilonCallback(), MarioEpisodeStatsCallback(), sampler])

    mb = 1024**2
    print(f"replay buffer: {args.buffer_size} transitions, {buffer_bytes / mb:.0f} MB allocated (filled lazily)")
    print(f"RSS before training: {baseline / mb:.0f} MB")
    for steps, rss in sampler.samples[:: max(len(sampler.samples) // 10, 1)]:
        print(f"  step {steps:6d}: RSS {rss / mb:7.0f} MB")
    full = [rss for steps, rss in sampler.samples if steps > args.buffer_size + 1000]
    peak = max(rss for _, rss in sampler.samples)
    growth_after_full = (full[-1] - full[0]) / mb if len(full) >= 2 else float("nan")
    bound = baseline + buffer_bytes + args.margin_mb * mb
    print(
        f"peak RSS {peak / mb:.0f} MB, bound (before + buffer + {args.margin_mb:.0f} MB margin) {bound / mb:.0f} MB: "
        f"{'within' if peak <= bound else 'EXCEEDED'}"
    )
    print(f"growth once the buffer was full (steps {args.buffer_size + 1000}..{args.steps}): {growth_after_full:+.1f} MB")
    np.testing.assert_array_less(peak, bound)


if __name__ == "__main__":
    main()
