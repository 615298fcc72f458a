"""
Replay buffers on real Mario transitions: bytes per transition, insert and sample throughput, and
DQN training speed, sb3-mario's compressed buffers against SB3's ReplayBuffer with
optimize_memory_usage (its most compact form). All figures come from one run, interleaved.

    python scripts/bench_buffer.py                     # 5,000 transitions; 2 x 3,000 training steps each
    python scripts/bench_buffer.py --train-steps 0     # buffers only
"""

import argparse
import os
import platform
import time

import gymnasium as gym
import torch as th
from harness import record_transitions
from stable_baselines3 import DQN
from stable_baselines3.common.buffers import ReplayBuffer

import sb3_mario  # noqa: F401  (registers MarioShaped)
from sb3_mario.dqn.buffers import CompressedReplayBuffer, PrioritizedReplayBuffer
from sb3_mario.dqn.double_dqn import DoubleDQN

# name -> (buffer class, keyword arguments)
BUFFERS: dict[str, tuple[type[ReplayBuffer], dict]] = {
    "SB3 ReplayBuffer": (ReplayBuffer, dict()),
    "SB3 ReplayBuffer, optimize_memory_usage": (ReplayBuffer, dict(optimize_memory_usage=True)),
    "CompressedReplayBuffer, lz4": (CompressedReplayBuffer, dict(storage="lz4")),
    "CompressedReplayBuffer, zstd": (CompressedReplayBuffer, dict(storage="zstd")),
    "PrioritizedReplayBuffer, lz4": (PrioritizedReplayBuffer, dict(storage="lz4")),
    "PrioritizedReplayBuffer, lz4, 3-step": (PrioritizedReplayBuffer, dict(storage="lz4", n_steps=3, gamma=0.97)),
    "PrioritizedReplayBuffer, plain": (PrioritizedReplayBuffer, dict(storage="arrays")),
    # On a CPU-only machine "the device" is host memory: the torch-indexing path, without the GPU's gain.
    "PrioritizedReplayBuffer, on device, 3-step": (
        PrioritizedReplayBuffer,
        dict(storage="device", n_steps=3, gamma=0.97),
    ),
}


def buffer_bytes(buffer: ReplayBuffer) -> int:
    """Bytes a buffer holds: observations (compressed or not), actions, rewards, dones, timeouts, priorities."""
    observations = (
        buffer.observation_nbytes()
        if isinstance(buffer, CompressedReplayBuffer)
        else (buffer.observations.nbytes + (0 if buffer.optimize_memory_usage else buffer.next_observations.nbytes))
    )
    tree = buffer.tree.nodes.nbytes if isinstance(buffer, PrioritizedReplayBuffer) else 0
    return observations + tree + sum(array.nbytes for array in (buffer.actions, buffer.rewards, buffer.dones, buffer.timeouts))


def fill_buffer(buffer_cls: type[ReplayBuffer], kwargs: dict, transitions: list[tuple]) -> tuple[ReplayBuffer, float]:
    """A buffer holding ``transitions``, and the inserts/s it took."""
    env = gym.make("MarioShaped")
    buffer = buffer_cls(
        len(transitions), env.observation_space, env.action_space, device="cpu", handle_timeout_termination=False, **kwargs
    )
    start = time.perf_counter()
    for transition in transitions:
        buffer.add(*transition)
    return buffer, len(transitions) / (time.perf_counter() - start)


def sampled_transitions_per_second(buffers: dict[str, ReplayBuffer], batch_size: int, rounds: int = 3) -> dict[str, float]:
    """
    Each buffer's sampling speed: best of ``rounds`` x 300 batches, the buffers taking turns within
    each round so that the machine's drift (and its costly first touches of fresh memory) hits all alike.
    """
    n_batches = 300
    for buffer in buffers.values():
        for _ in range(50):  # warm-up: the first batches of a process pay one-off allocation costs
            buffer.sample(batch_size)
    best = dict.fromkeys(buffers, float("inf"))
    for _ in range(rounds):
        for name, buffer in buffers.items():
            start = time.perf_counter()
            for _ in range(n_batches):
                buffer.sample(batch_size)
            best[name] = min(best[name], time.perf_counter() - start)
    return {name: n_batches * batch_size / seconds for name, seconds in best.items()}


# name -> (algorithm, its replay settings): the CPU entry's DQN with each buffer, and DoubleDQN with PER.
NO_TIMEOUTS = dict(handle_timeout_termination=False)
TRAINING: dict[str, tuple[type[DQN], dict]] = {
    "DQN, SB3 ReplayBuffer (optimize)": (
        DQN,
        dict(replay_buffer_class=ReplayBuffer, optimize_memory_usage=True, replay_buffer_kwargs=NO_TIMEOUTS),
    ),
    "DQN, CompressedReplayBuffer lz4": (
        DQN,
        dict(replay_buffer_class=CompressedReplayBuffer, replay_buffer_kwargs=dict(**NO_TIMEOUTS, storage="lz4")),
    ),
    "DoubleDQN + PER, lz4": (
        DoubleDQN,
        dict(prioritized_replay=True, replay_buffer_kwargs=dict(**NO_TIMEOUTS, storage="lz4")),
    ),
}


def training_seconds(algorithm: type[DQN], replay_settings: dict, steps: int, seed: int) -> float:
    """Seconds ``steps`` of the CPU entry's settings (1-step returns) take with some replay settings."""
    model = algorithm(
        "DuelingCnnPolicy",
        "MarioShaped",
        learning_rate=2e-4,
        gamma=0.95,
        buffer_size=50_000,
        batch_size=64,
        learning_starts=500,
        train_freq=4,
        target_update_interval=5000,
        **replay_settings,
        policy_kwargs=dict(features_extractor_kwargs=dict(batch_norm=False)),
        seed=seed,
        device="cpu",
    )
    start = time.perf_counter()
    model.learn(steps)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--transitions", type=int, default=5000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--train-steps", type=int, default=3000, help="DQN steps per training measurement (0: skip)")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved training rounds")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, torch {th.__version__}")

    transitions = record_transitions(args.transitions)
    print(f"{args.transitions} transitions of random play on 1-1 (observation 4x96x96 uint8 = 36,864 bytes)\n")
    filled = {name: fill_buffer(cls, kwargs, transitions) for name, (cls, kwargs) in BUFFERS.items()}
    samples = sampled_transitions_per_second({name: buffer for name, (buffer, _) in filled.items()}, args.batch_size)
    results = {
        name: {"bytes": buffer_bytes(buffer) / len(transitions), "inserts": inserts, "samples": samples[name]}
        for name, (buffer, inserts) in filled.items()
    }
    # Bytes against SB3's most compact form, sampling speed against its plain arrays.
    least_bytes, plain_samples = (
        results["SB3 ReplayBuffer, optimize_memory_usage"]["bytes"],
        results["SB3 ReplayBuffer"]["samples"],
    )
    header = f"{'buffer':40s} {'bytes/transition':>17s} {'vs SB3':>7s} {'inserts/s':>10s} {'sampled transitions/s':>22s}"
    print(f"{header} {'vs SB3':>7s}")
    for name, result in results.items():
        print(
            f"{name:40s} {result['bytes']:17,.0f} {result['bytes'] / least_bytes:7.3f} "
            f"{result['inserts']:10,.0f} {result['samples']:22,.0f} {result['samples'] / plain_samples:7.3f}"
        )

    if args.train_steps > 0:
        training_seconds(*TRAINING[next(iter(TRAINING))], steps=600, seed=0)  # warm-up, untimed
        seconds = dict.fromkeys(TRAINING, 0.0)
        for round_index in range(args.rounds):
            names = list(TRAINING) if round_index % 2 == 0 else list(reversed(TRAINING))  # no favoured slot
            for name in names:
                seconds[name] += training_seconds(*TRAINING[name], steps=args.train_steps, seed=round_index)
        print(f"\nTraining (CPU entry settings, {args.rounds} x {args.train_steps} steps, learning from step 500):")
        base_fps = args.rounds * args.train_steps / seconds[next(iter(TRAINING))]
        for name in TRAINING:
            fps = args.rounds * args.train_steps / seconds[name]
            print(f"{name:40s} {fps:6.1f} env steps/s   ratio {fps / base_fps:.3f}")


if __name__ == "__main__":
    main()
