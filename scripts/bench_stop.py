"""
How long a clean stop takes to save: the grace period a job scheduler must give between SIGTERM and
SIGKILL. After the signal the run finishes its env step, and rl-zoo3 saves the model, then (with
``--save-replay-buffer``) the replay buffer, then the ``VecNormalize`` statistics. This script
times those saves for the flag entry's learner with a full buffer of real Mario transitions.

    python scripts/bench_stop.py                      # a 50,000-transition buffer (lz4, as the flag entry)
    python scripts/bench_stop.py --buffer-size 100000
"""

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import gymnasium as gym
from harness import record_transitions

import sb3_mario  # noqa: F401  (registers MarioShaped)
from sb3_mario.dqn.double_dqn import DoubleDQN


def seconds(save, path: Path, repeats: int = 3) -> float:
    """Best of ``repeats`` timed calls of ``save(path)``."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        save(path)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--buffer-size", type=int, default=50_000)
    parser.add_argument("--distinct", type=int, default=2_000, help="real transitions recorded, added in turn")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")

    env = gym.make("MarioShaped", actions="right_only")
    model = DoubleDQN(
        "DuelingCnnPolicy",
        env,
        buffer_size=args.buffer_size,
        prioritized_replay=True,
        n_steps=3,
        replay_buffer_kwargs=dict(handle_timeout_termination=False, storage="lz4"),
        policy_kwargs=dict(features_extractor_kwargs=dict(batch_norm=False), precision="bf16"),
        device="cpu",
    )
    transitions = record_transitions(args.distinct, actions="right_only")
    for index in range(args.buffer_size):
        model.replay_buffer.add(*transitions[index % len(transitions)])
    with tempfile.TemporaryDirectory() as folder:
        model_path, buffer_path = Path(folder) / "MarioShaped.zip", Path(folder) / "replay_buffer.pkl"
        model_seconds = seconds(model.save, model_path)
        buffer_seconds = seconds(model.save_replay_buffer, buffer_path)
        sizes = model_path.stat().st_size / 1e6, buffer_path.stat().st_size / 1e6
    print(f"flag entry's learner, {args.buffer_size:,}-transition lz4 buffer (PER, 3-step), best of 3:")
    print(f"model.save:               {model_seconds:6.2f} s  ({sizes[0]:.0f} MB)")
    print(f"model.save_replay_buffer: {buffer_seconds:6.2f} s  ({sizes[1]:.0f} MB)")
    print(f"grace period to give: > {model_seconds:.1f} s, > {model_seconds + buffer_seconds:.1f} s with --save-replay-buffer")


if __name__ == "__main__":
    main()
