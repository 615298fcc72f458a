"""
Training throughput of the rl-zoo3 entries: env steps/s and gradient steps/s, one short run each.

    python scripts/bench_training.py                          # notebook entry and CPU entry
    python scripts/bench_training.py --steps 3000 --conf hyperparams/dqn_cpu.yml
"""

import argparse
import os
import platform
import tempfile

import torch as th
import yaml

from sb3_mario.throughput import zoo_training_fps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conf", nargs="+", default=["hyperparams/dqn.yml", "hyperparams/dqn_cpu.yml"])
    parser.add_argument("--steps", type=int, default=1500, help="env steps per run (training starts after 100)")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {th.__version__} ({th.get_num_threads()} threads)")
    for conf in args.conf:
        with open(conf) as file:
            entry = yaml.safe_load(file)["MarioShaped"]
        gradient_steps_per_env_step = entry.get("gradient_steps", 1) / entry.get("train_freq", 4)
        with tempfile.TemporaryDirectory() as log_folder:
            fps = zoo_training_fps(conf, args.steps, log_folder)
        print(
            f"{conf:28s} batch {entry['batch_size']:4d}  train_freq {entry.get('train_freq', 4)}: "
            f"{fps:6.1f} env steps/s, {fps * gradient_steps_per_env_step:6.1f} gradient steps/s"
        )


if __name__ == "__main__":
    main()
