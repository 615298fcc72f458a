"""
Does it learn? Train an entry on 1-1 with several seeds side by side (one process and one torch
thread each), or one after the other (``--one-at-a-time``, for entries that use both cores), then
evaluate every seed's models against random play and report, per seed, the first training-time flag
and the evaluation flag rate.

    python scripts/bench_learning.py --seeds 0 1                          # the flag entry: hyperparams/ddqn.yml, 500k steps
    python scripts/bench_learning.py --seeds 0 1 --evaluate-only          # evaluate what the runs have saved so far
    python scripts/bench_learning.py --algo dqn --conf hyperparams/dqn_cpu.yml --steps 100000 --seeds 0 --output bench/learning
    python scripts/bench_learning.py --seeds 0 --evaluate-only --curve --compare bench/flag   # flag rate per checkpoint

``--curve`` evaluates every checkpoint (``--episodes`` episodes with epsilon 0.05, one greedy episode:
greedy play on the deterministic emulator is one episode) and reports, per seed, the env steps and
wall time to the first checkpoint with >= 80% epsilon-0.05 clears and to the first that also clears
greedily; it draws ``flag_rate_curves.png``, flag rate against env steps and against wall time,
beside the curves of every ``--compare`` output (another entry's results.json). Evaluated
checkpoints are kept in results.json and not evaluated again.

Resumable: re-running with the same --output continues each seed from its newest checkpoint (or
only re-evaluates a finished run). Each seed trains in <output>/seed_<N>/. Writes
<output>/results.json and <output>/learning_curves_seed<N>.png (episode reward, max_x, flag rate
and epsilon against env steps).

Evaluated per seed: the final model (or, for a run still going, its newest checkpoint) and the best
one (rl-zoo3's evaluation callback's ``best_model.zip``), each over --episodes episodes of 1-1 with
epsilon 0.05 and one greedy episode; a random policy (with the run's action set) on the same seeds.
The summary row per seed is the final model's, with the env steps and wall time it trained (the
best model's flag rate beside it: picked afterwards, it is not what a run gives its user); every
episode (max_x, how it ended) is in results.json.

``--timed`` trains as the entry's own command would, for wall-time figures (the one-hour check:
``python scripts/bench_learning.py --conf hyperparams/ddqn_fast.yml --vec-env subproc --threads 2
--one-at-a-time --timed --seeds 1 2 --output bench/hour``): rl-zoo3's default evaluation instead of
one every 10k steps, and checkpoints of the model alone every 20k steps instead of model and replay
buffer every 10k.
"""

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
from harness import CHECKPOINT_STEPS, ENV_ID, checkpoints, final_model, launch_or_resume, run_dirs

from sb3_mario.evaluate import evaluate, format_table
from sb3_mario.loading import load_agent
from sb3_mario.plots import plot_learning_curves, read_monitor_episodes

EVALUATION_MODES = {"epsilon_0.05": 0.05, "greedy": 0.0}
GOAL_FLAG_RATE = 0.8  # the one-hour goal: >= 80% of epsilon-0.05 episodes clear 1-1
BLOCK_STEPS = 20_000  # training episodes are compared per block of env steps
TIMED_CHECKPOINT_STEPS = 20_000  # --timed: model-only checkpoints, no replay buffer (seconds each)


def start_training(seed_dir: Path, args: argparse.Namespace, seed: int) -> subprocess.Popen | None:
    """Start (or continue) one seed's run in the background; ``None`` if it already finished."""
    if final_model(seed_dir, args.algo) is not None:
        return None
    command = [
        sys.executable, "-m", "rl_zoo3.train", "--algo", args.algo, "--env", ENV_ID, "--conf-file", args.conf,
        "-f", str(seed_dir / "logs"), "--seed", str(seed), "-tb", str(seed_dir / "tensorboard"),
        "--num-threads", str(args.threads), "--vec-env", args.vec_env,
    ]  # fmt: skip
    if args.timed:  # as a user's command: rl-zoo3's evaluation defaults, light checkpoints
        command += ["--save-freq", str(TIMED_CHECKPOINT_STEPS)]
    else:
        command += ["--eval-freq", str(CHECKPOINT_STEPS), "--eval-episodes", "5"]
        command += ["--save-freq", str(CHECKPOINT_STEPS), "--save-replay-buffer"]
    return launch_or_resume(seed_dir, command, args)


def training_episodes(seed_dir: Path, algo: str) -> pd.DataFrame:
    """
    Every training episode of the seed's runs: env steps done and wall seconds since the first run
    started at its end (a continued run's clock goes on from where the previous run's stopped), and
    whether it reached the flag from the stage's start (not from a frontier start's snapshot).
    """
    frames, steps_before, seconds_before = [], 0, 0.0
    for run in run_dirs(seed_dir, algo):
        if not any(run.glob("*monitor.csv")):
            continue
        episodes = read_monitor_episodes(run)
        frames.append(
            pd.DataFrame(
                {
                    "steps": steps_before + episodes["steps"],
                    "seconds": seconds_before + episodes["t"],
                    "flag": episodes["flag"].astype(bool) & episodes["from_start"],  # flags from the start only
                    "max_x": episodes["max_x"],
                    "from_start": episodes["from_start"],
                }
            )
        )
        steps_before += int(episodes["l"].sum())
        seconds_before += float(episodes["t"].max())
    columns: dict[str, list] = {"steps": [], "seconds": [], "flag": [], "max_x": [], "from_start": []}
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns)


def training_blocks(episodes: pd.DataFrame, block: int = BLOCK_STEPS) -> list[dict]:
    """
    Training episodes from the start per block of ``block`` env steps (by the step at their end): their
    mean max_x, flags and count, and the wall seconds at the block's last episode. Runs of different
    entries compare by these blocks (what the learning-speed tables of docs/results.md show).

    :param episodes: A seed's :func:`training_episodes`.
    """
    episodes = episodes[episodes["from_start"].astype(bool)]
    rows = []
    for start, group in episodes.groupby((episodes["steps"] // block) * block):
        rows.append(
            {
                "start": int(start),
                "max_x_mean": round(float(group["max_x"].mean())),
                "flags": int(group["flag"].sum()),
                "episodes": len(group),
                "seconds": round(float(group["seconds"].max())),
            }
        )
    return rows


def blocks_row(label: str, blocks: list[dict]) -> str:
    """A table row: mean max_x (flags) of each block."""
    return f"| {label} | " + " | ".join(f"{b['max_x_mean']} ({b['flags']})" for b in blocks) + " |"


def checkpoint_curve(seed_dir: Path, algo: str, seed: int, n_episodes: int, known: list[dict]) -> list[dict]:
    """
    The flag rate of every checkpoint (epsilon 0.05, ``n_episodes`` episodes) and whether its greedy
    episode clears, with the env steps and wall seconds at which it was saved.

    :param known: Points evaluated before (results.json), by env steps: not evaluated again.
    """
    done = {point["steps"]: point for point in known}
    clock = training_episodes(seed_dir, algo)
    curve = []
    for steps, path in checkpoints(seed_dir, algo):
        if steps not in done:
            agent = load_agent(path)
            noisy = evaluate(agent, ["1-1"], n_episodes, 0.05, seed=seed, progress_bar=False)["levels"]["1-1"]["agent"]
            greedy = evaluate(agent, ["1-1"], 1, 0.0, seed=seed, progress_bar=False)["levels"]["1-1"]["agent"]
            reached = clock["seconds"][clock["steps"] <= steps]
            done[steps] = {
                "steps": steps,
                "seconds": round(float(reached.max()) if len(reached) else 0.0),
                "flag_rate": noisy["summary"]["flag_rate"],
                "greedy_clears": greedy["summary"]["flag_rate"] == 1.0,
            }
            print(f"seed {seed}, {steps:,} steps: {done[steps]}")
        curve.append(done[steps])
    return curve


def first_goal(curve: list[dict], greedy: bool) -> dict | None:
    """The first checkpoint with >= 80% epsilon-0.05 clears (and, if ``greedy``, a greedy clear)."""
    return next((p for p in curve if p["flag_rate"] >= GOAL_FLAG_RATE and (p["greedy_clears"] or not greedy)), None)


def plot_flag_rate_curves(curves: dict[str, list[dict]], output: Path) -> Path:
    """
    Flag rate at epsilon 0.05 against env steps and against wall time, one line per labelled curve
    (a filled dot where the greedy episode clears too).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (by_steps, by_time) = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    for label, curve in curves.items():
        steps = [p["steps"] / 1000 for p in curve]
        minutes = [p["seconds"] / 60 for p in curve]
        rates = [100 * p["flag_rate"] for p in curve]
        for axis, xs in ((by_steps, steps), (by_time, minutes)):
            (line,) = axis.plot(xs, rates, marker="o", fillstyle="none", label=label)
            greedy = [(x, rate) for x, rate, p in zip(xs, rates, curve, strict=True) if p["greedy_clears"]]
            if greedy:
                axis.plot(*zip(*greedy, strict=True), "o", color=line.get_color())
    for axis, label in ((by_steps, "env steps (thousands)"), (by_time, "wall time (minutes)")):
        axis.axhline(100 * GOAL_FLAG_RATE, color="grey", linestyle=":")
        axis.set_xlabel(label)
        axis.grid(alpha=0.3)
    by_steps.set_ylabel("1-1 clears, epsilon 0.05 (%)")
    by_steps.legend(fontsize=8)
    figure.suptitle("Checkpoints on 1-1: filled dots also clear greedily")
    figure.tight_layout()
    figure.savefig(output, dpi=100)
    plt.close(figure)
    return output


def trained_budget(episodes: pd.DataFrame) -> dict[str, int] | None:
    """The env steps and wall seconds at the end of the last training episode: the final model's budget."""
    if not len(episodes):
        return None
    return {"steps": int(episodes["steps"].max()), "seconds": round(float(episodes["seconds"].max()))}


def first_training_flag(episodes: pd.DataFrame) -> dict[str, float] | None:
    """
    Env steps and wall seconds (from the run's start) to the first training episode that reached the flag.

    :param episodes: A seed's :func:`training_episodes`.
    """
    flags = episodes[episodes["flag"].astype(bool)]
    if flags.empty:
        return None
    return {"steps": int(flags["steps"].iloc[0]), "seconds": round(float(flags["seconds"].iloc[0]))}


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
    episodes = training_episodes(seed_dir, algo)  # every Monitor file of the seed's runs, read once
    result: dict = {
        "first_training_flag": first_training_flag(episodes),
        "training_blocks": training_blocks(episodes),
        "trained": trained_budget(episodes),
        "models": {},
    }
    env_kwargs: dict = {}
    for name, path in models_to_evaluate(seed_dir, algo).items():
        agent = load_agent(path)
        env_kwargs = agent.env_kwargs
        result["models"][name] = {"path": str(path), "evaluations": {}}
        for mode, epsilon in EVALUATION_MODES.items():
            episodes_of_mode = n_episodes if epsilon else 1  # greedy play on the deterministic emulator is one episode
            report = evaluate(agent, ["1-1"], episodes_of_mode, epsilon, seed=seed, progress_bar=False)
            print(f"\nseed {seed}, {name} model ({path}), {mode}:\n{format_table(report)}")
            agent_result = report["levels"]["1-1"]["agent"]
            result["models"][name]["evaluations"][mode] = agent_result["summary"]
            result["models"][name]["episodes"] = {**result["models"][name].get("episodes", {}), mode: agent_result["episodes"]}
    # Random play with the run's own action set.
    random_report = evaluate(None, ["1-1"], n_episodes, seed=seed, progress_bar=False, env_kwargs=env_kwargs)
    result["random"] = random_report["levels"]["1-1"]["random"]["summary"]
    return result


def summary_row(seed: int, result: dict) -> str:
    """
    One table row: the final model (or the newest checkpoint of a run still going) at epsilon 0.05 and
    greedily, with the steps and wall time it trained, the first training flag, and the best model
    (rl-zoo3's pick by its evaluations) at epsilon 0.05 beside it.
    """
    evaluated = result["models"]
    final = next((name for name in evaluated if name != "best"), None)
    if final is None:
        return f"| {seed} | no model yet | | | | | | |"
    epsilon, greedy = evaluated[final]["evaluations"]["epsilon_0.05"], evaluated[final]["evaluations"]["greedy"]
    trained = result["trained"]
    budget = f"{trained['steps']:,} steps, {trained['seconds'] / 60:.0f} min" if trained else ""
    flag = result["first_training_flag"]
    first = f"{flag['steps']:,} steps, {flag['seconds'] / 60:.0f} min" if flag else "none"
    ratio = epsilon["max_x_mean"] / result["random"]["max_x_mean"]
    best = evaluated.get("best", {}).get("evaluations", {}).get("epsilon_0.05")
    return (
        f"| {seed} | {final}: {budget} | {first} | {100 * epsilon['flag_rate']:.0f}% "
        f"| {'clears' if greedy['flag_rate'] else 'no'} "
        f"| {epsilon['max_x_mean']:.0f} ({ratio:.2f}x random's {result['random']['max_x_mean']:.0f}) "
        f"| {100 * epsilon['death_rate']:.0f}% / {100 * epsilon['stall_rate']:.0f}% "
        f"| {f'{100 * best["flag_rate"]:.0f}%' if best else ''} |"
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
    parser.add_argument("--vec-env", default="dummy", choices=["dummy", "subproc"], help="rl-zoo3's --vec-env")
    parser.add_argument("--one-at-a-time", action="store_true", help="train the seeds one after the other")
    parser.add_argument("--curve", action="store_true", help="evaluate every checkpoint: flag rate over steps and time")
    parser.add_argument(
        "--timed",
        action="store_true",
        help="train as the entry's own command would (rl-zoo3's evaluation defaults, model-only checkpoints every "
        "20k steps, no replay buffer), for wall-time figures such as the one-hour check; not resumable with its buffer",
    )
    parser.add_argument("--compare", type=Path, nargs="*", default=[], help="other outputs whose curves to draw beside")
    args = parser.parse_args()
    missing = [str(other) for other in args.compare if not (other / "results.json").is_file()]
    if missing:
        parser.error(f"--compare {' '.join(missing)}: no results.json there (an output of this script)")

    start = time.time()
    seed_dirs = {seed: args.output / f"seed_{seed}" for seed in args.seeds}
    if not args.evaluate_only:
        processes = {}
        for seed, seed_dir in seed_dirs.items():
            seed_dir.mkdir(parents=True, exist_ok=True)
            processes[seed] = start_training(seed_dir, args, seed)
            if args.one_at_a_time:
                wait_for_training(seed, processes.pop(seed), seed_dir)
        for seed, process in processes.items():
            wait_for_training(seed, process, seed_dirs[seed])
    train_minutes = (time.time() - start) / 60

    results = {
        "command": " ".join(sys.orig_argv),
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, Python {platform.python_version()}",
        "conf": args.conf, "algo": args.algo, "params": args.params, "steps": args.steps,
        "train_wall_minutes_this_call": round(train_minutes), "seeds": {},
    }  # fmt: skip
    previous = json.loads((args.output / "results.json").read_text()) if (args.output / "results.json").is_file() else {}
    rows, curve_rows, curves = [], [], {}
    for seed, seed_dir in seed_dirs.items():
        results["seeds"][seed] = evaluate_seed(seed_dir, args.algo, seed, args.episodes)
        rows.append(summary_row(seed, results["seeds"][seed]))
        if args.curve:
            known = previous.get("seeds", {}).get(str(seed), {}).get("curve", [])
            curve = checkpoint_curve(seed_dir, args.algo, seed, args.episodes, known)
            results["seeds"][seed]["curve"] = curve
            curves[f"{args.output.name}, seed {seed}"] = curve
            curve_rows.append(curve_row(seed, curve))
        runs = run_dirs(seed_dir, args.algo)
        if runs:
            tensorboard = sorted((seed_dir / "tensorboard" / ENV_ID).glob("*")) or [None]
            plot_learning_curves(runs, args.output / f"learning_curves_seed{seed}.png", tensorboard[0])
    (args.output / "results.json").write_text(json.dumps(results, indent=2))
    header = (
        "| seed | final model: trained | first training flag | flag rate, eps 0.05 | greedy | mean max_x, eps 0.05 "
        "| deaths / stalls | best model, eps 0.05 |"
    )
    print(f"\n{header}")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    blocks = {seed: result["training_blocks"] for seed, result in results["seeds"].items()}
    widest = max(blocks.values(), key=len, default=[])
    if widest:
        print(f"\nTraining episodes from the start per {BLOCK_STEPS // 1000}k env steps: mean max_x (flags)")
        print("| seed | " + " | ".join(f"{b['start'] // 1000}-{(b['start'] + BLOCK_STEPS) // 1000}k" for b in widest) + " |")
        print("|---|" + "---|" * len(widest))
        print("\n".join(blocks_row(f"seed {seed}", rows) for seed, rows in blocks.items()))
    if args.curve:
        print("\n| seed | first checkpoint >= 80% (eps 0.05) | ... and greedy clear | last checkpoint, flag rate, greedy |")
        print("|---|---|---|---|")
        print("\n".join(curve_rows))
        for other in args.compare:
            for seed, result in json.loads((other / "results.json").read_text())["seeds"].items():
                if result.get("curve"):
                    curves[f"{other.name}, seed {seed}"] = result["curve"]
        print(plot_flag_rate_curves(curves, args.output / "flag_rate_curves.png"))
    print(f"\n{args.output / 'results.json'}")


def wait_for_training(seed: int, process: subprocess.Popen | None, seed_dir: Path) -> None:
    """Wait for a seed's run; stop the script if it failed."""
    if process is not None and process.wait() != 0:
        sys.exit(f"seed {seed}'s training failed: see {seed_dir / 'train.log'}")


def curve_row(seed: int, curve: list[dict]) -> str:
    """One table row: steps and wall time to the goal's checkpoints, and the last checkpoint."""

    def when(point: dict | None) -> str:
        return f"{point['steps']:,} steps, {point['seconds'] / 60:.0f} min" if point else "not yet"

    last = curve[-1] if curve else None
    described = ""
    if last:
        described = f"{last['steps']:,}, {100 * last['flag_rate']:.0f}%, {'clears' if last['greedy_clears'] else 'no'}"
    return f"| {seed} | {when(first_goal(curve, greedy=False))} | {when(first_goal(curve, greedy=True))} | {described} |"


if __name__ == "__main__":
    main()
