"""
Average the weights of a run's checkpoints into one model (stochastic weight averaging, Izmailov et
al. 2018, applied after training).

    python -m sb3_mario.weight_averaging runs/logs/ddqn/MarioShaped_1 --last 6      # newest 6 checkpoints
    python -m sb3_mario.weight_averaging a.zip b.zip c.zip --output averaged.zip

A DQN's checkpoints 20k steps apart can differ by 20-30 points of flag rate on a stage; averaging
their weights is a cheap candidate to try against picking one (what it did for the world-1 run:
docs/results.md, "World 1"). The output is an ordinary SB3 zip: the newest input with its
``policy.pth`` replaced by the mean of every input's floating-point weights (the online and the
target network alike), so ``DQN.load``, rl-zoo3's enjoy and :mod:`sb3_mario.evaluate` read it.
Written by default beside the newest input, as ``<newest>_avg<N>.zip``, in its run folder, whose
settings the evaluation commands then read. Its optimizer state is the newest input's: resuming
training from it is possible but not what it is for.

Averaging is only meaningful for checkpoints of one run close in time (one basin of the loss). Batch
normalisation statistics are averaged like the weights, not recomputed (sb3-mario's entries train
without batch norm).
"""

import argparse
import io
import re
import zipfile
from collections.abc import Sequence
from pathlib import Path

import torch as th

from sb3_mario.loading import read_model_zip
from sb3_mario.zoo.checkpoints import save_atomically

CHECKPOINT_NAME = re.compile(r"rl_model_(\d+)_steps\.zip")  # SB3's CheckpointCallback, rl-zoo3's --save-freq


def run_checkpoints(run_dir: Path, last: int) -> list[Path]:
    """
    The newest ``last`` checkpoints of a run folder, oldest first.

    :param run_dir: Folder holding ``rl_model_<steps>_steps.zip`` files.
    :param last: How many to take.
    """
    steps = sorted(
        (int(match.group(1)), path) for path in run_dir.iterdir() if (match := CHECKPOINT_NAME.fullmatch(path.name))
    )
    if len(steps) < last:
        raise ValueError(f"--last {last}: {run_dir} holds {len(steps)} checkpoints (rl_model_<steps>_steps.zip)")
    return [path for _, path in steps[-last:]]


def average_weights(paths: Sequence[Path]) -> dict[str, th.Tensor]:
    """
    The element-wise mean of the models' floating-point weights; other tensors (counters) are the
    newest model's.

    :param paths: SB3 zips of one architecture, oldest first.
    """
    if len(paths) < 2:
        raise ValueError(f"averaging needs at least 2 models, got {len(paths)}: {[str(p) for p in paths]}")
    state_dicts = [read_model_zip(Path(path))[1] for path in paths]
    reference = state_dicts[-1]
    for path, state_dict in zip(paths, state_dicts, strict=True):
        if state_dict.keys() != reference.keys():
            different = sorted(state_dict.keys() ^ reference.keys())
            raise ValueError(f"{path} is not the same network as {paths[-1]}: weights {different[:5]} are in only one")
        for name, tensor in state_dict.items():
            if tensor.shape != reference[name].shape:
                raise ValueError(
                    f"{path} is not the same network as {paths[-1]}: {name} has shape {tuple(tensor.shape)}, "
                    f"not {tuple(reference[name].shape)}"
                )
    averaged = {}
    for name, tensor in reference.items():
        if tensor.is_floating_point():
            # Summed in float64 so that the mean of N float32 tensors does not depend on their order.
            mean = th.stack([state_dict[name].double() for state_dict in state_dicts]).mean(dim=0)
            averaged[name] = mean.to(tensor.dtype)
        else:
            averaged[name] = tensor.clone()
    return averaged


def save_averaged_model(paths: Sequence[Path], output: Path) -> Path:
    """
    Write the newest model of ``paths`` with the mean of all their weights (see :func:`average_weights`).

    :param paths: SB3 zips of one architecture, oldest first: the last one's other contents are kept.
    :param output: Zip to write; an existing file is never replaced.
    :return: ``output``.
    """
    output = Path(output)
    if output.exists():
        raise FileExistsError(f"{output} exists: choose another --output (nothing is overwritten)")
    weights = io.BytesIO()
    th.save(average_weights(paths), weights)

    def write(path: Path) -> None:
        with zipfile.ZipFile(paths[-1]) as newest, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as averaged:
            for item in newest.infolist():
                averaged.writestr(item, weights.getvalue() if item.filename == "policy.pth" else newest.read(item.filename))

    save_atomically(write, output)
    return output


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", type=Path, help="SB3 zips (oldest first), or one rl-zoo3 run folder with --last")
    parser.add_argument("--last", type=int, help="with a run folder: average its newest N checkpoints")
    parser.add_argument("--output", type=Path, help="zip to write (default: <newest>_avg<N>.zip beside the newest)")
    args = parser.parse_args(argv)
    if args.last is not None:
        if len(args.models) != 1 or not args.models[0].is_dir():
            parser.error(f"--last takes one run folder, got {[str(p) for p in args.models]}")
        if args.last < 2:
            parser.error(f"--last {args.last}: averaging needs at least 2 checkpoints")
    try:
        paths = run_checkpoints(args.models[0], args.last) if args.last is not None else args.models
        for path in paths:
            if not path.is_file():
                raise FileNotFoundError(f"no model at {str(path)!r}: pass SB3 zips, or a run folder with --last N")
        output = args.output or paths[-1].with_name(f"{paths[-1].stem}_avg{len(paths)}.zip")
        save_averaged_model(paths, output)
    except (OSError, ValueError) as error:
        parser.error(str(error))
    print(f"averaged {len(paths)} models ({paths[0].name} .. {paths[-1].name}) -> {output}")


if __name__ == "__main__":
    main()
