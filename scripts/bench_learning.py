"""
Does it learn? Train the CPU MarioShaped entry on 1-1, then evaluate it against a random policy.

    python scripts/bench_learning.py                          # 100k steps into bench/learning/, ~30 min here
    python scripts/bench_learning.py --steps 20000 --output bench/quick
    python scripts/bench_learning.py --algo ddqn --conf hyperparams/ddqn.yml --output bench/learning_ddqn

Resumable: re-running with the same --output continues from the latest checkpoint (or only
re-evaluates a finished run). Writes <output>/results.json and <output>/learning_curves.png.
"""

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

from sb3_mario.evaluate import evaluate, format_table
from sb3_mario.loading import load_agent
from sb3_mario.plots import plot_learning_curves

CHECKPOINT_STEPS = 10_000


def latest_checkpoint(run_dir: Path) -> tuple[Path, int] | None:
    checkpoints = [(path, int(path.stem.split("_")[2])) for path in run_dir.glob("rl_model_*_steps.zip")]
    return max(checkpoints, key=lambda item: item[1]) if checkpoints else None


def train(output: Path, steps: int, conf: str, seed: int, algo: str, params: list[str], threads: int) -> tuple[Path, float]:
    """Train (or continue) the run in ``output``; return its run folder and the wall time it took."""
    run_dir = output / "logs" / algo / "MarioShaped_1"
    final = run_dir / "MarioShaped.zip"
    if final.is_file() and not (output / "continued").is_dir():
        return run_dir, 0.0
    command = [
        sys.executable,
        "-m",
        "rl_zoo3.train",
        "--algo",
        algo,
        "--env",
        "MarioShaped",
        "--conf-file",
        conf,
        "-f",
        str(output / "logs"),
        "--seed",
        str(seed),
        "--eval-freq",
        str(CHECKPOINT_STEPS),
        "--eval-episodes",
        "5",
        "--save-freq",
        str(CHECKPOINT_STEPS),
        "-tb",
        str(output / "tensorboard"),
        "--progress",
        "--num-threads",
        str(threads),
    ]
    if params:
        command += ["-params", *params]
    checkpoint = latest_checkpoint(run_dir)
    if checkpoint is not None:  # resume: rl-zoo3 writes the continuation to a new run folder
        command += ["-i", str(checkpoint[0]), "-n", str(steps - checkpoint[1])]
    else:
        command += ["-n", str(steps)]
    start = time.time()
    subprocess.run(command, check=True)
    return run_dir, time.time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--conf", default="hyperparams/dqn_cpu.yml")
    parser.add_argument("--algo", default="dqn")
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=Path("bench/learning"))
    parser.add_argument("--params", nargs="+", default=[], help="rl-zoo3 -params overrides, e.g. gamma:0.99")
    parser.add_argument(
        "--threads", type=int, default=-1, help="torch threads (-1: torch's default); 1 lets two runs share a 2-core machine"
    )
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)

    run_dir, train_seconds = train(args.output, args.steps, args.conf, args.seed, args.algo, args.params, args.threads)
    results = {
        "command": " ".join(sys.orig_argv),
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, Python {platform.python_version()}",
        "conf": args.conf,
        "algo": args.algo,
        "params": args.params,
        "threads": args.threads,
        "steps": args.steps,
        "train_wall_seconds": round(train_seconds),
        "evaluations": {},
    }
    for model_name, best in (("final", False), ("best", True)):
        if best and not (run_dir / "best_model.zip").is_file():
            continue
        agent = load_agent(run_dir, best=best)
        for mode, epsilon in (("epsilon_0.05", 0.05), ("greedy", 0.0)):
            report = evaluate(agent, ["1-1"], args.episodes, epsilon, random_baseline=True, seed=args.seed)
            print(f"\n{model_name} model, {mode}:\n{format_table(report)}")
            results["evaluations"][f"{model_name}_{mode}"] = {
                policy: result["summary"] for policy, result in report["levels"]["1-1"].items()
            }
    (args.output / "results.json").write_text(json.dumps(results, indent=2))
    tensorboard_runs = sorted((args.output / "tensorboard" / "MarioShaped").glob("DQN_*")) or [None]
    plot_learning_curves(run_dir, args.output / "learning_curves.png", tensorboard_runs[0])
    print(f"\n{args.output / 'results.json'}\n{args.output / 'learning_curves.png'}")


if __name__ == "__main__":
    main()
