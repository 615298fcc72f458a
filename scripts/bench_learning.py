"""
Does it learn? Train an entry on 1-1 with several seeds side by side (one process and one torch
thread each), then evaluate every seed's models against random play and report, per seed, the first
training-time flag and the evaluation flag rate.

    python scripts/bench_learning.py --seeds 0 1                          # the flag entry: hyperparams/ddqn.yml, 500k steps
    python scripts/bench_learning.py --seeds 0 1 --evaluate-only          # evaluate what the runs have saved so far
    python scripts/bench_learning.py --algo dqn --conf hyperparams/dqn_cpu.yml --steps 100000 --seeds 0 --output bench/learning

Resumable: re-running with the same --output continues each seed from its newest checkpoint (or
only re-evaluates a finished run). Each seed trains in <output>/seed_<N>/. Writes
<output>/results.json and <output>/learning_curves_seed<N>.png (episode reward, max_x, flag rate
and epsilon against env steps).

Evaluated per seed: the final model (or, for a run still going, its newest checkpoint) and the best
one (rl-zoo3's evaluation callback's ``best_model.zip``), each over --episodes episodes of 1-1 with
epsilon 0.05 and greedily; a random policy (with the run's action set) on the same seeds. The summary row per seed is the
better of the two models at epsilon 0.05; every episode (max_x, how it ended) is in results.json.
"""

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

from harness import CHECKPOINT_STEPS, ENV_ID, checkpoints, final_model, launch_or_resume, run_dirs

from sb3_mario.evaluate import evaluate, format_table
from sb3_mario.loading import load_agent
from sb3_mario.plots import plot_learning_curves, read_monitor_episodes

EVALUATION_MODES = {"epsilon_0.05": 0.05, "greedy": 0.0}


def start_training(seed_dir: Path, args: argparse.Namespace, seed: int) -> subprocess.Popen | None:
    """Start (or continue) one seed's run in the background; ``None`` if it already finished."""
    if final_model(seed_dir, args.algo) is not None:
        return None
    command = [
        sys.executable, "-m", "rl_zoo3.train", "--algo", args.algo, "--env", ENV_ID, "--conf-file", args.conf,
        "-f", str(seed_dir / "logs"), "--seed", str(seed), "--eval-freq", str(CHECKPOINT_STEPS), "--eval-episodes", "5",
        "--save-freq", str(CHECKPOINT_STEPS), "-tb", str(seed_dir / "tensorboard"), "--num-threads", str(args.threads),
    ]  # fmt: skip
    return launch_or_resume(seed_dir, command, args)


def first_training_flag(seed_dir: Path, algo: str) -> dict[str, float] | None:
    """Env steps and wall seconds (from the run's start) to the first training episode that reached the flag."""
    steps_before, seconds_before = 0, 0.0
    for run in run_dirs(seed_dir, algo):
        if not any(run.glob("*monitor.csv")):
            continue
        episodes = read_monitor_episodes(run)
        flags = episodes.index[episodes["flag_get"].astype(str).str.lower().eq("true")]
        if len(flags):
            episode = episodes.loc[flags[0]]
            return {"steps": int(steps_before + episode["steps"]), "seconds": round(seconds_before + float(episode["t"]))}
        steps_before += int(episodes["l"].sum())
        seconds_before += float(episodes["t"].iloc[-1]) if len(episodes) else 0.0
    return None


def models_to_evaluate(seed_dir: Path, algo: str) -> dict[str, Path]:
    """Name -> zip: the final model (or the newest checkpoint of an unfinished run), and the best model."""
    models: dict[str, Path] = {}
    final = final_model(seed_dir, algo)
    saved = checkpoints(seed_dir, algo)
    if final is not None:
        models["final"] = final
    elif saved:
        steps, path = saved[-1]
        models[f"checkpoint_{steps}"] = path
    best = [run / "best_model.zip" for run in run_dirs(seed_dir, algo) if (run / "best_model.zip").is_file()]
    if best:
        models["best"] = best[-1]
    return models


def evaluate_seed(seed_dir: Path, algo: str, seed: int, n_episodes: int) -> dict:
    """Evaluate the seed's models with each exploration mode, and a random policy on the same episodes."""
    result: dict = {"first_training_flag": first_training_flag(seed_dir, algo), "models": {}}
    env_kwargs: dict = {}
    for name, path in models_to_evaluate(seed_dir, algo).items():
        agent = load_agent(path)
        env_kwargs = agent.env_kwargs
        result["models"][name] = {"path": str(path), "evaluations": {}}
        for mode, epsilon in EVALUATION_MODES.items():
            report = evaluate(agent, ["1-1"], n_episodes, epsilon, seed=seed, progress_bar=False)
            print(f"\nseed {seed}, {name} model ({path}), {mode}:\n{format_table(report)}")
            agent_result = report["levels"]["1-1"]["agent"]
            result["models"][name]["evaluations"][mode] = agent_result["summary"]
            result["models"][name]["episodes"] = {**result["models"][name].get("episodes", {}), mode: agent_result["episodes"]}
    # Random play with the run's own action set.
    random_report = evaluate(None, ["1-1"], n_episodes, seed=seed, progress_bar=False, env_kwargs=env_kwargs)
    result["random"] = random_report["levels"]["1-1"]["random"]["summary"]
    return result


def summary_row(seed: int, result: dict) -> str:
    """One table row: the seed's better model at epsilon 0.05, its greedy flag rate, the first training flag."""
    evaluated = result["models"]
    if not evaluated:
        return f"| {seed} | no model yet | | | | | |"
    name = max(evaluated, key=lambda n: (evaluated[n]["evaluations"]["epsilon_0.05"]["flag_rate"],
                                         evaluated[n]["evaluations"]["epsilon_0.05"]["max_x_mean"]))  # fmt: skip
    epsilon, greedy = evaluated[name]["evaluations"]["epsilon_0.05"], evaluated[name]["evaluations"]["greedy"]
    flag = result["first_training_flag"]
    first = f"{flag['steps']:,} steps, {flag['seconds'] / 60:.0f} min" if flag else "none"
    ratio = epsilon["max_x_mean"] / result["random"]["max_x_mean"]
    return (
        f"| {seed} | {name} | {first} | {100 * epsilon['flag_rate']:.0f}% | {100 * greedy['flag_rate']:.0f}% "
        f"| {epsilon['max_x_mean']:.0f} ({ratio:.2f}x random's {result['random']['max_x_mean']:.0f}) "
        f"| {100 * epsilon['death_rate']:.0f}% / {100 * epsilon['stall_rate']:.0f}% |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--steps", type=int, default=500_000)
    parser.add_argument("--conf", default="hyperparams/ddqn.yml")
    parser.add_argument("--algo", default="ddqn")
    parser.add_argument("--episodes", type=int, default=20, help="evaluation episodes per model and mode")
    parser.add_argument("--output", type=Path, default=Path("bench/flag"))
    parser.add_argument("--params", nargs="+", default=[], help="rl-zoo3 -params overrides, e.g. gamma:0.99")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per seed's process")
    parser.add_argument("--evaluate-only", action="store_true", help="do not train: evaluate what is saved")
    args = parser.parse_args()

    start = time.time()
    seed_dirs = {seed: args.output / f"seed_{seed}" for seed in args.seeds}
    if not args.evaluate_only:
        processes = {}
        for seed, seed_dir in seed_dirs.items():
            seed_dir.mkdir(parents=True, exist_ok=True)
            processes[seed] = start_training(seed_dir, args, seed)
        for seed, process in processes.items():
            if process is not None and process.wait() != 0:
                sys.exit(f"seed {seed}'s training failed: see {seed_dirs[seed] / 'train.log'}")
    train_minutes = (time.time() - start) / 60

    results = {
        "command": " ".join(sys.orig_argv),
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, Python {platform.python_version()}",
        "conf": args.conf, "algo": args.algo, "params": args.params, "steps": args.steps,
        "train_wall_minutes_this_call": round(train_minutes), "seeds": {},
    }  # fmt: skip
    rows = []
    for seed, seed_dir in seed_dirs.items():
        results["seeds"][seed] = evaluate_seed(seed_dir, args.algo, seed, args.episodes)
        rows.append(summary_row(seed, results["seeds"][seed]))
        runs = run_dirs(seed_dir, args.algo)
        if runs:
            tensorboard = sorted((seed_dir / "tensorboard" / ENV_ID).glob("*")) or [None]
            plot_learning_curves(runs, args.output / f"learning_curves_seed{seed}.png", tensorboard[0])
    (args.output / "results.json").write_text(json.dumps(results, indent=2))
    header = "| seed | model | first training flag | flag rate, eps 0.05 | greedy | mean max_x, eps 0.05 | deaths / stalls |"
    print(f"\n{header}")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print(f"\n{args.output / 'results.json'}")


if __name__ == "__main__":
    main()
