"""
The level matrix: one agent trained on a world's four stages against one agent per stage trained
with the same budget and settings, and random play, each evaluated on every stage of the world.

    python scripts/bench_levels.py                                  # world 1, the entry's 2M steps: ~13 h per run here
    python scripts/bench_levels.py --steps 500000 --params exploration_fraction:0.1
    python scripts/bench_levels.py --evaluate-only --at 120000     # evaluate what the runs have saved
    python scripts/bench_levels.py --models world_1=runs/world1/logs/ddqn/MarioShaped_6/MarioShaped.zip \
        1-1=rl-trained-agents/ddqn/MarioShaped_1 --episodes 20 --output bench/levels_final  # any saved agents

Trains side by side (one process and one torch thread each) the multi-stage entry
(``hyperparams/ddqn_world1.yml``) as it is, and the same entry with ``level`` set to each stage alone,
with the same seed: the runs differ only in the stages they play. Each run trains in
``<output>/<name>/`` (``world_1``, ``1-1``, ...); a folder that already holds a run of the same
entry (e.g. a symlink to a flag run of 1-1) is used as it is. Resumable: re-running continues each
run from its newest checkpoint.

Every run is evaluated at the same env step, ``--at`` (default: the newest checkpoint every run has
saved), on every stage, with epsilon 0.05, and random play with the entry's action set on the same
seeds. ``--models`` evaluates the agents it names instead (model zips or rl-zoo3 run folders, each
with the budget it was trained for: e.g. a long world-1 run against the single-stage agents at hand),
and trains nothing (the runs' options ``--steps``, ``--conf``, ``--params``, ``--at`` and ``--evaluate-only``
are refused beside it). Writes ``<output>/matrix.json`` (an evaluation report, one policy per agent: ``plots progress``
reads it), ``<output>/matrix.png`` and prints the table.
"""

import argparse
import json
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

from harness import CHECKPOINT_STEPS, ENV_ID, checkpoints, final_model, launch_or_resume

from sb3_mario.envs.stages import parse_levels
from sb3_mario.evaluate import evaluate
from sb3_mario.loading import load_agent
from sb3_mario.plots import plot_level_progress

RANDOM = "random"


def run_names(world: int) -> dict[str, str | int]:
    """Run folder name -> the ``level`` it trains on: the whole world, then each stage alone."""
    return {f"world_{world}": world, **{stage: stage for stage in parse_levels(world)}}


def start_training(run_dir: Path, level: str | int, args: argparse.Namespace) -> subprocess.Popen | None:
    """Start (or continue) one run in the background; ``None`` if it already finished."""
    if final_model(run_dir, args.algo) is not None:
        return None
    command = [
        sys.executable, "-m", "rl_zoo3.train", "--algo", args.algo, "--env", ENV_ID, "--conf-file", args.conf,
        "-f", str(run_dir / "logs"), "--seed", str(args.seed), "--eval-freq", "-1", "--save-freq", str(CHECKPOINT_STEPS),
        "-tb", str(run_dir / "tensorboard"), "--num-threads", "1",
        # --env-kwargs replaces the entry's env_kwargs as a whole: the action set is repeated.
        "--env-kwargs", f"level:{level!r}", f"actions:{args.actions!r}",
    ]  # fmt: skip
    return launch_or_resume(run_dir, command, args)


def common_step(run_dirs: dict[str, Path], algo: str) -> int:
    """The newest env step at which every run has saved a checkpoint."""
    steps = [{step for step, _ in checkpoints(run_dir, algo)} for run_dir in run_dirs.values()]
    shared = set.intersection(*steps) if steps else set()
    if not shared:
        raise SystemExit("error: no env step at which every run has saved a checkpoint yet")
    return max(shared)


def checkpoint_at(run_dir: Path, algo: str, step: int) -> Path:
    """The run's checkpoint saved at ``step`` env steps."""
    found = dict(checkpoints(run_dir, algo))
    if step not in found:
        raise SystemExit(f"error: {run_dir} has no checkpoint at {step} steps; it has {sorted(found)}")
    return found[step]


def level_matrix(models: dict[str, Path], args: argparse.Namespace, step: int | None) -> dict[str, Any]:
    """
    Every model and random play on every stage, as one evaluation report.

    :param models: Row name -> model zip or rl-zoo3 run folder.
    :param args: The command line (world, episodes, epsilon, seed, the entry it trained).
    :param step: The env step of every model (the runs' checkpoints), or ``None`` (``--models``: their own).
    """
    stages = parse_levels(args.world)
    matrix: dict[str, Any] = {
        "command": " ".join(sys.orig_argv),
        "machine": f"{platform.machine()}, Python {platform.python_version()}",
        "conf": args.conf, "params": args.params, "seed": args.seed, "steps_per_agent": step,
        "epsilon": args.epsilon, "episodes_per_level": args.episodes, "models": {},
        "levels": {stage: {} for stage in stages},
    }  # fmt: skip
    env_kwargs: dict[str, Any] = {}
    for name, path in models.items():
        agent = load_agent(path)
        env_kwargs = {key: value for key, value in agent.env_kwargs.items() if key != "level"}
        matrix["models"][name] = str(agent.path)
        report = evaluate(
            agent, stages, args.episodes, args.epsilon, seed=args.seed, progress_bar=False, env_kwargs=env_kwargs
        )
        for stage in stages:
            matrix["levels"][stage][f"{name} agent"] = report["levels"][stage]["agent"]
        print(f"evaluated {name} ({agent.path})", flush=True)
    report = evaluate(None, stages, args.episodes, seed=args.seed, progress_bar=False, env_kwargs=env_kwargs)
    for stage in stages:
        matrix["levels"][stage][RANDOM] = report["levels"][stage][RANDOM]
    return matrix


def named_models(pairs: list[str], parser: argparse.ArgumentParser) -> dict[str, Path]:
    """``--models`` ``NAME=PATH`` pairs as a dict, or a parser error naming the bad one."""
    models = {}
    for pair in pairs:
        name, separator, path = pair.partition("=")
        if not separator or not name or not path:
            parser.error(f"--models {pair!r} is not NAME=PATH (e.g. 1-1=rl-trained-agents/ddqn/MarioShaped_1)")
        if not Path(path).exists():
            parser.error(f"--models {pair!r}: {path} does not exist")
        models[name] = Path(path)
    return models


def format_matrix(matrix: dict[str, Any]) -> str:
    """A markdown table: a row per policy, a column per stage, flag rate and mean max_x in each cell."""
    stages = list(matrix["levels"])
    policies = list(matrix["levels"][stages[0]])
    rows = [
        "| policy | " + " | ".join(stages) + " |",
        "|---|" + "---|" * len(stages),
    ]
    for policy in policies:
        cells = []
        for stage in stages:
            summary = matrix["levels"][stage][policy]["summary"]
            cells.append(f"{100 * summary['flag_rate']:.0f}% / {summary['max_x_mean']:.0f}")
        rows.append(f"| {policy} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--world", type=int, default=1, help="the world whose four stages are played (1..8)")
    parser.add_argument("--steps", type=int, default=2_000_000, help="training steps of every run")
    parser.add_argument("--conf", default="hyperparams/ddqn_world1.yml")
    parser.add_argument("--algo", default="ddqn")
    parser.add_argument("--actions", default="right_only", help="the entry's action set (repeated in --env-kwargs)")
    parser.add_argument("--params", nargs="+", default=[], help="rl-zoo3 -params overrides, e.g. exploration_fraction:0.1")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--at", type=int, default=None, help="evaluate every run's checkpoint at this env step")
    parser.add_argument("--episodes", type=int, default=10, help="evaluation episodes per stage and policy")
    parser.add_argument("--epsilon", type=float, default=0.05, help="the agents' random-action probability")
    parser.add_argument("--output", type=Path, default=Path("bench/levels"))
    parser.add_argument("--evaluate-only", action="store_true", help="do not train: evaluate what is saved")
    parser.add_argument(
        "--models", nargs="+", default=[], metavar="NAME=PATH", help="evaluate these agents instead of the runs (no training)"
    )
    args = parser.parse_args()
    if not 1 <= args.world <= 8:
        parser.error(f"--world {args.world} is not an SMB1 world; valid worlds: 1..8")
    if args.at is not None and args.at % CHECKPOINT_STEPS:
        parser.error(f"--at {args.at} is not a checkpoint step; checkpoints are saved every {CHECKPOINT_STEPS:,} steps")

    models = named_models(args.models, parser)
    if models:
        # --models trains nothing and evaluates each agent at its own budget: the runs' options would be ignored.
        for option in ("steps", "conf", "params", "at", "evaluate_only"):
            if getattr(args, option) != parser.get_default(option):
                flag = "--" + option.replace("_", "-")
                parser.error(f"{flag} applies to the trained runs, not to --models (which evaluates the agents as saved)")
    step = None
    if not models:
        run_dirs = {name: args.output / name for name in run_names(args.world)}
        if not args.evaluate_only:
            processes = {}
            for name, level in run_names(args.world).items():
                run_dirs[name].mkdir(parents=True, exist_ok=True)
                processes[name] = start_training(run_dirs[name], level, args)
            for name, process in processes.items():
                if process is not None and process.wait() != 0:
                    sys.exit(f"{name}'s training failed: see {run_dirs[name] / 'train.log'}")
        step = args.at if args.at is not None else common_step(run_dirs, args.algo)
        models = {name: checkpoint_at(run_dir, args.algo, step) for name, run_dir in run_dirs.items()}

    args.output.mkdir(parents=True, exist_ok=True)
    matrix = level_matrix(models, args, step)
    report_path = args.output / "matrix.json"
    report_path.write_text(json.dumps(matrix, indent=2))
    plot_level_progress(report_path, args.output / "matrix.png")
    budget = f"{step:,} steps per agent" if step is not None else "each agent's own budget"
    print(f"\nflag rate / mean max_x, {args.episodes} episodes per stage, epsilon {args.epsilon}, {budget}:")
    print(format_matrix(matrix))
    print(f"\n{report_path}, {args.output / 'matrix.png'}")


if __name__ == "__main__":
    main()
