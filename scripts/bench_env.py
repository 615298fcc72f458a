"""
Env throughput: NES frames/s of MarioShaped vs the bare emulator, and across vectorised envs.

    python scripts/bench_env.py                # single env vs raw emulator (+ notebook pipeline)
    python scripts/bench_env.py --n-envs 2     # also 1 vs N envs: DummyVecEnv, SubprocVecEnv, PinnedSubprocVecEnv
"""

import argparse
import os
import platform

from harness import VEC_ENV_CLASSES, notebook_pipeline_fps, record_mario_shaped, replay_raw, vec_env_seconds

from sb3_mario.envs.reward import DEFAULT_FRAME_SKIP


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
    notebook_fps = max(notebook_pipeline_fps(n_frames=DEFAULT_FRAME_SKIP * args.steps) for _ in range(3))
    print(f"frames played:             {n_frames}  ({args.repeats} x {args.steps} random agent steps)")
    print(f"raw emulator (nes_py):     {raw_fps:8.0f} NES frames/s")
    print(f"MarioShaped:               {shaped_fps:8.0f} NES frames/s   ratio to raw {shaped_fps / raw_fps:.3f}")
    print(f"notebook pipeline:         {notebook_fps:8.0f} NES frames/s   ratio to raw {notebook_fps / raw_fps:.3f}")

    if args.n_envs > 0:
        # Interleaved rounds again: 1 env in-process, then N envs in each kind of VecEnv.
        configs = [(1, "dummy"), *((args.n_envs, name) for name in VEC_ENV_CLASSES)]
        seconds = dict.fromkeys(configs, 0.0)
        for _ in range(args.repeats):
            for n_envs, name in configs:
                seconds[n_envs, name] += vec_env_seconds(n_envs, VEC_ENV_CLASSES[name], n_steps=args.steps // n_envs)
        frames_per_config = args.repeats * DEFAULT_FRAME_SKIP * (args.steps // args.n_envs) * args.n_envs
        one_env = args.repeats * DEFAULT_FRAME_SKIP * args.steps / seconds[1, "dummy"]
        print(f"{'1 env (DummyVecEnv):':32s}{one_env:8.0f} NES frames/s")
        for n_envs, name in configs[1:]:
            fps = frames_per_config / seconds[n_envs, name]
            label = f"{n_envs} envs ({VEC_ENV_CLASSES[name].__name__}):"
            print(f"{label:32s}{fps:8.0f} NES frames/s   scaling {fps / one_env:.2f}x")


if __name__ == "__main__":
    main()
