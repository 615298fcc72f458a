"""
Env throughput: NES frames/s of MarioShaped vs the bare emulator, and across vectorised envs.

    python scripts/bench_env.py                # single env vs raw emulator (+ notebook pipeline)
    python scripts/bench_env.py --n-envs 2     # also 1 vs N envs under DummyVecEnv / SubprocVecEnv
"""

import argparse
import os
import platform

from sb3_mario.throughput import VEC_ENV_CLASSES, best_of, notebook_pipeline_fps, record_mario_shaped, replay_raw, vec_env_fps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1000, help="agent steps per measurement")
    parser.add_argument("--repeats", type=int, default=6, help="interleaved repetitions (raw/shaped totals are compared)")
    parser.add_argument("--n-envs", type=int, default=0, help="also measure N vectorised envs (0: skip)")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")

    # Short runs, interleaved: the machine's speed drifts, and both sides must see the same drift.
    shaped_seconds, raw_seconds, n_frames = 0.0, 0.0, 0
    for repeat in range(args.repeats):
        elapsed, episodes = record_mario_shaped(args.steps, seed=repeat)
        shaped_seconds += elapsed
        raw_seconds += replay_raw(episodes)
        n_frames += sum(len(episode) for episode in episodes)
    shaped_fps, raw_fps = n_frames / shaped_seconds, n_frames / raw_seconds
    notebook_fps = best_of(3, lambda: notebook_pipeline_fps(n_frames=4 * args.steps))
    print(f"frames played:             {n_frames}  ({args.repeats} x {args.steps} random agent steps)")
    print(f"raw emulator (nes_py):     {raw_fps:8.0f} NES frames/s")
    print(f"MarioShaped:               {shaped_fps:8.0f} NES frames/s   ratio to raw {shaped_fps / raw_fps:.3f}")
    print(f"notebook pipeline:         {notebook_fps:8.0f} NES frames/s   ratio to raw {notebook_fps / raw_fps:.3f}")

    if args.n_envs > 0:
        one_env = best_of(3, lambda: vec_env_fps(1, VEC_ENV_CLASSES["dummy"], n_steps=args.steps))
        print(f"1 env (DummyVecEnv):       {one_env:8.0f} NES frames/s")
        for name, vec_env_cls in VEC_ENV_CLASSES.items():
            fps = best_of(3, lambda: vec_env_fps(args.n_envs, vec_env_cls, n_steps=args.steps))
            print(f"{args.n_envs} envs ({vec_env_cls.__name__}): {fps:8.0f} NES frames/s   scaling {fps / one_env:.2f}x")


if __name__ == "__main__":
    main()
