"""
The results of a Mario Optuna sweep: its best trials as a table, the best as a ready-to-use
``hyperparams/`` entry, and Optuna's history / importance plots.

    python -m sb3_mario.tuning_results --storage logs/optuna/MarioShaped_dqn.log --study-name MarioShaped_dqn
"""

import argparse
from pathlib import Path
from typing import Any

import optuna
import yaml

from sb3_mario.zoo.tuning import convert_mario_params, is_mario_params, sweep_algo, with_base_policy_kwargs


def open_storage(storage: str) -> optuna.storages.BaseStorage | str:
    """A journal file (``*.log``) or a database URL, as rl-zoo3 interprets ``--storage``."""
    if storage.endswith(".log"):
        if not Path(storage).is_file():
            raise FileNotFoundError(f"no Optuna journal at {storage!r}")
        return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(storage))
    return storage


def best_entry(study: optuna.Study, base_entry: dict[str, Any]) -> dict[str, Any]:
    """
    A ``hyperparams/`` entry: ``base_entry`` with the best trial's parameters laid over it.

    :param study: A finished (or running) Mario study.
    :param base_entry: The entry the sweep started from (its n_timesteps, policy, buffer settings...).
    """
    params = study.best_trial.params
    if not is_mario_params(params):
        raise ValueError(f"study {study.study_name!r} was not made by sb3-mario's sampler: params {sorted(params)}")
    tuned = convert_mario_params(params)
    tuned["policy_kwargs"] = repr(with_base_policy_kwargs(tuned["policy_kwargs"], base_entry.get("policy_kwargs")))
    callbacks = tuned.pop("callback")
    entry = {**base_entry, **tuned}
    # Keep the base entry's other callback arguments (e.g. base_schedule), update the tuned ones.
    base_callbacks = {next(iter(c)) if isinstance(c, dict) else c: c for c in base_entry.get("callback", [])}
    merged = []
    for callback in callbacks:
        name = next(iter(callback)) if isinstance(callback, dict) else callback
        base = base_callbacks.get(name)
        if isinstance(callback, dict) and isinstance(base, dict):
            callback = {name: {**(base[name] or {}), **callback[name]}}
        merged.append(callback)
    entry["callback"] = merged
    return entry


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Best trials of a Mario Optuna study, as a table and a ready-to-use hyperparams entry.",
        epilog="python -m sb3_mario.tuning_results --storage logs/optuna/MarioShaped_dqn.log --study-name MarioShaped_dqn "
        "--write hyperparams/dqn_tuned.yml --plots logs/optuna",
    )
    parser.add_argument("--storage", required=True, help="journal file (*.log) or database URL")
    parser.add_argument("--study-name", required=True)
    parser.add_argument("--top", type=int, default=5, help="how many of the best trials to list")
    parser.add_argument("--base", type=Path, default=Path("hyperparams/dqn_cpu.yml"), help="entry the sweep started from")
    parser.add_argument("--write", type=Path, default=None, help="write the best entry here (refuses to overwrite)")
    parser.add_argument("--plots", type=Path, default=None, help="folder for optimization history / importance PNGs")
    args = parser.parse_args(argv)

    try:
        storage = open_storage(args.storage)
    except (FileNotFoundError, ValueError) as error:
        parser.error(f"--storage: {error}")
    from sqlalchemy.exc import SQLAlchemyError

    try:
        study = optuna.load_study(study_name=args.study_name, storage=storage)
    except KeyError:
        names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
        parser.error(f"no study {args.study_name!r} in {args.storage}; studies there: {names}")
    except (SQLAlchemyError, ImportError) as error:  # an unreachable or malformed database URL, a missing driver
        parser.error(f"--storage {args.storage}: {error.__class__.__name__}: {str(error).splitlines()[0]}")
    states = [trial.state.name for trial in study.trials]
    print(
        f"study {study.study_name}: {len(states)} trials "
        + ", ".join(f"{s.lower()} {states.count(s)}" for s in sorted(set(states)))
    )
    finished = sorted((t for t in study.trials if t.value is not None and t.state.name == "COMPLETE"), key=lambda t: -t.value)
    if not finished:
        parser.error("no completed trial yet")
    for trial in finished[: args.top]:
        params = ", ".join(
            f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}" for key, value in trial.params.items()
        )
        print(f"trial {trial.number:4d}  value {trial.value:10.2f}  {params}")
    if args.write is not None:
        if args.write.exists():
            parser.error(f"{args.write} exists; choose another --write path (nothing was overwritten)")
        try:
            base_entry = yaml.safe_load(args.base.read_text())["MarioShaped"]
            entry = best_entry(study, base_entry)
        except (OSError, KeyError, TypeError, yaml.YAMLError) as error:
            parser.error(f"--base {args.base}: not a hyperparameter file with a MarioShaped entry ({error!r})")
        except ValueError as error:  # a study another sampler made
            parser.error(str(error))
        header = f"# Best trial {study.best_trial.number} of Optuna study {study.study_name} (value {study.best_value:.2f}).\n"
        args.write.write_text(header + yaml.safe_dump({"MarioShaped": entry}, sort_keys=False))
        algo = sweep_algo(study.best_trial.params)
        print(f"wrote {args.write}: python -m rl_zoo3.train --algo {algo} --env MarioShaped --conf-file {args.write}")
    if args.plots is not None:
        import matplotlib

        matplotlib.use("Agg")
        from optuna.visualization.matplotlib import plot_optimization_history, plot_param_importances

        args.plots.mkdir(parents=True, exist_ok=True)
        for name, plot in (("history", plot_optimization_history), ("importances", plot_param_importances)):
            if name == "importances" and len(finished) < 2:
                continue
            axes = plot(study)
            path = args.plots / f"{study.study_name}_{name}.png"
            axes.figure.set_size_inches(9, 5)
            axes.figure.tight_layout()
            axes.figure.savefig(path, dpi=100)
            print(f"wrote {path}")


if __name__ == "__main__":
    main()
