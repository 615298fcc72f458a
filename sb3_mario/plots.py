"""
Plots of training and evaluation, as PNG.

    python -m sb3_mario.plots curves logs/dqn/MarioShaped_1 --tensorboard logs/tensorboard/MarioShaped/DQN_1
    python -m sb3_mario.plots progress logs/dqn/MarioShaped_1/evaluation.json
    python -m sb3_mario.plots stages logs/ddqn/MarioShaped_1
    python -m sb3_mario.plots ends logs/ddqn/MarioShaped_1 --since 1000000


``curves``: episode reward, ``max_x`` and flag rate against env steps, from the run's Monitor CSV files
(``max_x`` and ``flag_get`` are Monitor columns in the project's hyperparameter files; older runs fall
back on TensorBoard's ``mario/*`` scalars), and epsilon from TensorBoard's ``rollout/exploration_rate``.
``progress``: how far each policy got on each level of an evaluation report.
``stages``: per stage of a multi-stage run (the Monitor's ``level`` column), flag rate and ``max_x``
against env steps.
``ends``: per stage of a multi-stage run, where its episodes from the stage's start ended without the
flag (``max_x`` in bins), printed as a table and plotted: the obstacles it fails at.

Episodes started from a snapshot (``frontier_starts``; the Monitor's ``frontier_start`` column) are
left out of the ``max_x`` and flag curves: those count from the stage's start.
"""

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: files only
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def save_figure(fig: plt.Figure, output: Path) -> Path:
    """Lay ``fig`` out, write it to ``output`` (PNG, creating its folder) and free it; return ``output``."""
    fig.tight_layout()
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=100)
    plt.close(fig)
    return output


def read_monitor_episodes(*run_dirs: Path) -> pd.DataFrame:
    """
    Every episode of a run's Monitor CSV files, in time order, with the env steps done at its end
    (``steps``), whether it started at the stage's start (``from_start``) and, with a ``flag_get``
    column, whether it reached the flag (``flag``, 0 or 1). Several folders are a run and its
    continuations (rl-zoo3 ``-i`` writes each to a new folder), read one after the other: their steps add up.

    :param run_dirs: rl-zoo3 run folders (each holds ``*.monitor.csv``, one per env).
    """
    runs = []
    for run_dir in run_dirs:
        files = sorted(run_dir.glob("*monitor.csv"))
        if not files:
            raise FileNotFoundError(f"no Monitor CSV (*.monitor.csv) in {run_dir}: is it an rl-zoo3 run folder?")
        runs.append(pd.concat([pd.read_csv(file, skiprows=1) for file in files]).sort_values("t", kind="stable"))
    episodes = pd.concat(runs, ignore_index=True)
    episodes["steps"] = episodes["l"].cumsum()
    # Monitor CSVs hold booleans as text; a run without frontier starts has no such column.
    started_along = episodes.get("frontier_start", pd.Series(False, index=episodes.index))
    episodes["from_start"] = ~started_along.astype(str).str.lower().eq("true")
    if "flag_get" in episodes:
        episodes["flag"] = episodes["flag_get"].astype(str).str.lower().eq("true").astype(float)
    return episodes


def read_tensorboard_scalars(events_dir: Path, tags: tuple[str, ...]) -> dict[str, pd.DataFrame]:
    """``step``/``value`` frames of the given TensorBoard scalars (missing tags are left out)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    if not any(events_dir.rglob("events.out.tfevents.*")):
        raise FileNotFoundError(f"no TensorBoard event file under {events_dir}")
    accumulator = EventAccumulator(str(events_dir), size_guidance={"scalars": 0}).Reload()
    available = set(accumulator.Tags()["scalars"])
    return {
        tag: pd.DataFrame([(event.step, event.value) for event in accumulator.Scalars(tag)], columns=["step", "value"])
        for tag in tags
        if tag in available
    }


def plot_learning_curves(
    run_dir: Path | Sequence[Path], output: Path, tensorboard_dir: Path | None = None, window: int = 50
) -> Path:
    """
    Episode reward, ``max_x``, flag rate and epsilon against env steps, as one PNG (episodes from the
    stage's start).

    :param run_dir: rl-zoo3 run folder, or a run's folder followed by those of its continuations.
    :param output: PNG path.
    :param tensorboard_dir: The run's TensorBoard folder (for epsilon, and as fallback for Mario stats).
    :param window: Episodes in the rolling means.
    """
    run_dirs = [run_dir] if isinstance(run_dir, Path) else list(run_dir)
    episodes = read_monitor_episodes(*run_dirs)
    scalars = (
        read_tensorboard_scalars(tensorboard_dir, ("rollout/exploration_rate", "mario/ep_max_x_mean", "mario/flag_rate"))
        if tensorboard_dir is not None
        else {}
    )
    from_start = episodes[episodes["from_start"]]
    rolling = lambda column: from_start[column].astype(float).rolling(window, min_periods=1).mean()  # noqa: E731
    fig, axes = plt.subplots(2, 2, figsize=(12, 7), sharex=True)
    continued = f" (continued in {', '.join(run.name for run in run_dirs[1:])})" if len(run_dirs) > 1 else ""
    fig.suptitle(f"{run_dirs[0].name}{continued}: {len(episodes)} episodes, {int(episodes['steps'].iloc[-1]):,} steps")

    def panel(ax, title: str, column: str | None, tag: str | None, ylabel: str) -> None:
        ax.set_title(title)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if column is not None and column in episodes:
            ax.plot(from_start["steps"], from_start[column].astype(float), ".", alpha=0.25, markersize=3, label="episode")
            ax.plot(from_start["steps"], rolling(column), label=f"mean of last {window}")
            ax.legend(loc="best", fontsize=8)
        elif tag is not None and tag in scalars:
            ax.plot(scalars[tag]["step"], scalars[tag]["value"], label=tag)
            ax.legend(loc="best", fontsize=8)
        else:
            ax.text(0.5, 0.5, "no data (see --tensorboard)", ha="center", va="center", transform=ax.transAxes)

    panel(axes[0, 0], "Episode reward", "r", None, "reward")
    panel(axes[0, 1], "Furthest x reached (max_x)", "max_x", "mario/ep_max_x_mean", "x position")
    axes[1, 0].set_ylim(-0.05, 1.05)
    panel(axes[1, 0], "Flag rate (1 = flag reached)", "flag", "mario/flag_rate", "fraction of episodes")
    panel(axes[1, 1], "Exploration (epsilon used)", None, "rollout/exploration_rate", "epsilon")
    for ax in axes[1]:
        ax.set_xlabel("env steps")
    return save_figure(fig, output)


def read_stage_episodes(run_dirs: Sequence[Path]) -> pd.DataFrame:
    """:func:`read_monitor_episodes` of a multi-stage run, or a ``ValueError`` if its Monitor files lack the stage columns."""
    episodes = read_monitor_episodes(*run_dirs)
    if "level" not in episodes or "flag" not in episodes or "max_x" not in episodes:
        raise ValueError(
            f"{run_dirs[0]}'s Monitor files have no level/flag_get/max_x columns (ddqn_world1.yml's monitor_kwargs has them)"
        )
    return episodes


def stage_curves(episodes: pd.DataFrame, window: int) -> dict[str, pd.DataFrame]:
    """
    Per stage, at the end of each of its episodes from the start: the run's env steps, and the flag
    rate and mean ``max_x`` of the stage's last ``window`` such episodes.

    :param episodes: :func:`read_monitor_episodes` of a multi-stage run.
    :param window: Episodes of a stage in each mean.
    """
    curves = {}
    for level, stage in episodes[episodes["from_start"]].groupby("level"):
        rolling = stage.rolling(window, min_periods=1)
        curves[str(level)] = pd.DataFrame(
            {"steps": stage["steps"], "flag_rate": rolling["flag"].mean(), "max_x": rolling["max_x"].mean()}
        ).reset_index(drop=True)
    return curves


def plot_stage_curves(run_dir: Path | Sequence[Path], output: Path, window: int = 50) -> Path:
    """
    Per stage of a multi-stage run: flag rate and ``max_x`` (means over the stage's last ``window``
    episodes from its start) against the run's env steps, as one PNG.

    :param run_dir: rl-zoo3 run folder, or a run's folder followed by those of its continuations.
    :param output: PNG path.
    :param window: Episodes of a stage in each rolling mean.
    """
    run_dirs = [run_dir] if isinstance(run_dir, Path) else list(run_dir)
    episodes = read_stage_episodes(run_dirs)
    fig, (flags, progress) = plt.subplots(1, 2, figsize=(13, 4.5), sharex=True)
    for level, curve in stage_curves(episodes, window).items():
        flags.plot(curve["steps"], curve["flag_rate"], label=f"{level} ({len(curve)} episodes)")
        progress.plot(curve["steps"], curve["max_x"], label=level)
    flags.set_ylim(-0.05, 1.05)
    for ax, title in ((flags, "Flag rate"), (progress, "Furthest x reached (max_x)")):
        ax.set_title(f"{title}, mean of the stage's last {window} episodes")
        ax.set_xlabel("env steps (all stages)")
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=8)
    fig.suptitle(f"{run_dirs[-1].name}: training episodes from each stage's start, {int(episodes['steps'].iloc[-1]):,} steps")
    return save_figure(fig, output)


def stage_ends(episodes: pd.DataFrame, bin_width: int = 200) -> pd.DataFrame:
    """
    Per stage (a row), the episodes from its start (``episodes``), their flags (``flags``), and, per
    ``bin_width``-pixel bin of ``max_x`` (a column named by its left edge), how many of them ended
    there without the flag.

    :param episodes: :func:`read_monitor_episodes` of a multi-stage run.
    :param bin_width: Pixels per bin.
    """
    from_start = episodes[episodes["from_start"]]
    failed = from_start[from_start["flag"] == 0]
    ends = pd.crosstab(failed["level"].astype(str), (failed["max_x"] // bin_width * bin_width).astype(int))
    totals = from_start.groupby(from_start["level"].astype(str))["flag"].agg(episodes="size", flags="sum").astype(int)
    return totals.join(ends).fillna(0).astype(int).rename_axis(index="level", columns=None)


def plot_stage_ends(
    run_dir: Path | Sequence[Path], output: Path, since: int = 0, bin_width: int = 200
) -> tuple[Path, pd.DataFrame]:
    """
    Per stage of a multi-stage run, a histogram of where its episodes from the stage's start ended
    without the flag (:func:`stage_ends`), as one PNG.

    :param run_dir: rl-zoo3 run folder, or a run's folder followed by those of its continuations.
    :param output: PNG path.
    :param since: Leave out the episodes that ended at or before this many env steps of the run.
    :param bin_width: Pixels per bin.
    :return: The PNG's path and the table it plots.
    """
    run_dirs = [run_dir] if isinstance(run_dir, Path) else list(run_dir)
    episodes = read_stage_episodes(run_dirs)
    if episodes["steps"].iloc[-1] <= since:
        raise ValueError(f"no episode ended after {since:,} steps: the run has {int(episodes['steps'].iloc[-1]):,}")
    episodes = episodes[episodes["steps"] > since]
    table = stage_ends(episodes, bin_width)
    fig, axes = plt.subplots(1, len(table), figsize=(3.6 * len(table), 3.6), sharey=True, squeeze=False)
    for ax, (level, row) in zip(axes[0], table.iterrows(), strict=True):
        ax.bar(row.index[2:], row.iloc[2:], width=bin_width * 0.9, align="edge")
        ax.set_title(f"{level}: {row['flags']} flags in {row['episodes']} episodes", fontsize=10)
        ax.set_xlabel("max_x of the episodes that failed")
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].set_ylabel("episodes")
    steps = f"{int(episodes['steps'].iloc[0]):,} .. {int(episodes['steps'].iloc[-1]):,}"
    fig.suptitle(f"{run_dirs[-1].name}: where episodes from each stage's start ended, env steps {steps}")
    return save_figure(fig, output), table


def plot_level_progress(report_path: Path, output: Path) -> Path:
    """
    Per level and policy: each episode's ``max_x`` (dots), the median (bar) and the flag rate.

    :param report_path: JSON written by ``python -m sb3_mario.evaluate`` (or the level matrix of
        ``scripts/bench_levels.py``: one policy per agent).
    :param output: PNG path.
    """
    report = json.loads(report_path.read_text())
    levels = list(report["levels"])
    if not levels:
        raise ValueError(f"{report_path} has no level results")
    # The report's own order (the agents, e.g. a level matrix's), random play last and grey.
    names = dict.fromkeys(name for results in report["levels"].values() for name in results)
    policies = sorted(names, key=lambda name: name == "random")
    colors = {name: f"C{index}" for index, name in enumerate(name for name in policies if name != "random")}
    colors["random"] = "tab:gray"
    width = 0.8 / len(policies)
    fig, ax = plt.subplots(figsize=(max(6, 2.2 * len(levels) * max(1, len(policies) / 3)), 4.5))
    rng = np.random.default_rng(0)
    for offset, name in enumerate(policies):
        for index, level in enumerate(levels):
            if name not in report["levels"][level]:
                continue
            result = report["levels"][level][name]
            x = index + (offset - (len(policies) - 1) / 2) * width
            max_x = [episode["max_x"] for episode in result["episodes"]]
            ax.bar(
                x,
                result["summary"]["max_x_median"],
                width * 0.9,
                color=colors[name],
                alpha=0.35,
                label=f"{name} (median)" if index == 0 else None,
            )
            ax.plot(
                x + rng.uniform(-width / 4, width / 4, len(max_x)), max_x, "o", color=colors[name], markersize=3, alpha=0.7
            )
            ax.text(x, max(max_x) * 1.02, f"flag {100 * result['summary']['flag_rate']:.0f}%", ha="center", fontsize=8)
    ax.set_xticks(range(len(levels)), levels)
    ax.set_xlabel("level")
    ax.set_ylabel("furthest x reached (max_x)")
    epsilon = report.get("epsilon")
    ax.set_title(f"Level progress, {report['episodes_per_level']} episodes per level, agent epsilon {epsilon}")
    ax.legend(loc="best", fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return save_figure(fig, output)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    curves = commands.add_parser("curves", help="learning curves of an rl-zoo3 run folder")
    curves.add_argument("run_dir", type=Path, nargs="+", help="a run folder, then those of its continuations (-i)")
    curves.add_argument("--tensorboard", type=Path, default=None, help="the run's TensorBoard folder (for epsilon)")
    curves.add_argument("--window", type=int, default=50, help="episodes per rolling mean")
    curves.add_argument("-o", "--output", type=Path, default=None, help="PNG (default: <run_dir>/learning_curves.png)")
    stages = commands.add_parser("stages", help="per-stage learning curves of a multi-stage run")
    stages.add_argument("run_dir", type=Path, nargs="+", help="a run folder, then those of its continuations (-i)")
    stages.add_argument("--window", type=int, default=50, help="episodes of a stage per rolling mean")
    stages.add_argument("-o", "--output", type=Path, default=None, help="PNG (default: <run_dir>/stage_curves.png)")
    ends = commands.add_parser("ends", help="where a multi-stage run's episodes from each stage's start failed")
    ends.add_argument("run_dir", type=Path, nargs="+", help="a run folder, then those of its continuations (-i)")
    ends.add_argument("--since", type=int, default=0, help="only the episodes ended after this many env steps")
    ends.add_argument("--bin", type=int, default=200, help="pixels of max_x per bin")
    ends.add_argument("-o", "--output", type=Path, default=None, help="PNG (default: <run_dir>/stage_ends.png)")
    progress = commands.add_parser("progress", help="level progress from an evaluation JSON")
    progress.add_argument("report", type=Path)
    progress.add_argument("-o", "--output", type=Path, default=None, help="PNG (default: beside the report)")
    args = parser.parse_args(argv)
    if args.command == "curves":
        try:
            path = plot_learning_curves(
                args.run_dir, args.output or args.run_dir[-1] / "learning_curves.png", args.tensorboard, args.window
            )
        except FileNotFoundError as error:  # not a run folder, no TensorBoard events
            parser.error(str(error))
    elif args.command == "stages":
        try:
            path = plot_stage_curves(args.run_dir, args.output or args.run_dir[-1] / "stage_curves.png", args.window)
        except (FileNotFoundError, ValueError) as error:  # not a run folder, not a multi-stage run
            parser.error(str(error))
    elif args.command == "ends":
        if args.bin < 1:
            parser.error(f"--bin {args.bin} must be a positive number of pixels")
        try:
            path, table = plot_stage_ends(
                args.run_dir, args.output or args.run_dir[-1] / "stage_ends.png", args.since, args.bin
            )
        except (FileNotFoundError, ValueError) as error:  # not a run folder, not a multi-stage run, nothing after --since
            parser.error(str(error))
        print(f"episodes from each stage's start, their flags, and how many failed in each {args.bin}-pixel bin of max_x:")
        print(table.to_string())
    else:
        if not args.report.is_file():
            parser.error(f"no evaluation report at {str(args.report)!r}")
        try:
            path = plot_level_progress(args.report, args.output or args.report.with_suffix(".png"))
        except (ValueError, KeyError) as error:  # not JSON, or JSON without an evaluation's fields
            parser.error(f"{args.report} is not a report of sb3_mario.evaluate ({type(error).__name__}: {error})")
    print(path)


if __name__ == "__main__":
    main()
