"""
Training throughput of the rl-zoo3 entries: env steps/s and gradient steps/s, one short run each.

    python scripts/bench_training.py                    # notebook entry and CPU entry, 1 env
    python scripts/bench_training.py --scaling          # CPU entry with n_envs 1/2/4 and 1/2 torch threads

With n envs, ``train_freq`` is divided by n so that every configuration does the same number of
gradient steps per transition (SB3 counts ``train_freq`` in vectorised steps).
"""

import argparse
import os
import platform
import tempfile

import torch as th
import yaml
from throughput import zoo_training_fps


def measure(conf: str, steps: int, n_envs: int = 1, vec_env: str = "dummy", num_threads: int = -1) -> None:
    with open(conf) as file:
        entry = yaml.safe_load(file)["MarioShaped"]
    train_freq = max(entry["train_freq"] // n_envs, 1)
    gradient_steps = entry.get("gradient_steps", 1) * max(n_envs // entry["train_freq"], 1)
    overrides = (f"n_envs:{n_envs}", f"train_freq:{train_freq}", f"gradient_steps:{gradient_steps}")
    with tempfile.TemporaryDirectory() as log_folder:
        fps = zoo_training_fps(conf, steps, log_folder, vec_env, num_threads, overrides)
    gradient_steps_per_transition = gradient_steps / (train_freq * n_envs)
    threads = "default" if num_threads < 0 else num_threads
    print(
        f"{conf:26s} batch {entry['batch_size']:3d} n_envs {n_envs} {vec_env:7s} torch threads {threads:7}: "
        f"{fps:6.1f} env steps/s, {fps * gradient_steps_per_transition:5.1f} gradient steps/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1500, help="env steps per run (training starts after 200)")
    parser.add_argument("--scaling", action="store_true", help="CPU entry over n_envs and torch threads")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {th.__version__} ({th.get_num_threads()} threads)")
    if not args.scaling:
        for conf in ("hyperparams/dqn.yml", "hyperparams/dqn_cpu.yml"):
            measure(conf, args.steps)
        return
    for n_envs, vec_env in ((1, "dummy"), (2, "dummy"), (2, "subproc"), (4, "subproc")):
        for num_threads in (1, 2):
            measure("hyperparams/dqn_cpu.yml", args.steps, n_envs, vec_env, num_threads)


if __name__ == "__main__":
    main()
