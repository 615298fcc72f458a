"""
Ship a trained model as a trained agent, in rl-zoo3's layout, so that anyone can play it after set-up:

    python scripts/ship_agent.py runs/fast64/logs/ddqn/MarioShaped_1/rl_model_300000_steps.zip
    python -m rl_zoo3.enjoy --algo ddqn --env MarioShaped -f rl-trained-agents/

writes ``rl-trained-agents/<algo>/<env>_1/<env>.zip`` with ``<env>/config.yml``, ``args.yml`` (from
the model's run folder) and ``vecnormalize.pkl`` (the statistics saved with that model). The model is
loaded and saved again with the current code, so the shipped zip names today's module paths and
buffer arguments, and with its exploration rate at 0: rl-zoo3's ``enjoy`` plays ``ddqn`` with
``predict(deterministic=False)``, which would otherwise take the rate the run had when it saved.
A zip over 40 MB is refused (the repository keeps each shipped agent under that).
"""

import argparse
import shutil
import sys
from pathlib import Path

from rl_zoo3.utils import ALGOS

import custom_envs  # noqa: F401  (rl-zoo3's hook: --algo ddqn, MarioShaped)
from sb3_mario.dqn.buffers import storage_of_legacy_arguments
from sb3_mario.envs.mario import ENV_ID
from sb3_mario.zoo.hook import model_statistics

MAX_BYTES = 40 * 1024 * 1024
LEGACY_STORAGE = ("codec", "observations_on_device")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path, help="a model zip of an rl-zoo3 run (final, best or checkpoint)")
    parser.add_argument("--algo", default="ddqn", choices=sorted(ALGOS))
    parser.add_argument("--folder", type=Path, default=Path("rl-trained-agents"))
    parser.add_argument("--name", default=f"{ENV_ID}_1", help="the agent's folder under <folder>/<algo>/")
    args = parser.parse_args()

    params = args.model.parent / ENV_ID
    if not args.model.is_file() or not (params / "config.yml").is_file():
        sys.exit(f"error: {args.model} is not a model zip beside an rl-zoo3 run's {ENV_ID}/config.yml")
    statistics = model_statistics(args.model) or params / "vecnormalize.pkl"
    destination = args.folder / args.algo / args.name
    if destination.exists():
        sys.exit(f"error: {destination} exists; remove it first or pass another --name")

    model = ALGOS[args.algo].load(args.model, device="cpu")
    kwargs = model.replay_buffer_kwargs
    if any(name in kwargs for name in LEGACY_STORAGE):
        legacy = {name: kwargs.pop(name) for name in LEGACY_STORAGE if name in kwargs}
        kwargs["storage"] = storage_of_legacy_arguments(**legacy)
    model.exploration_rate = 0.0  # plays greedily however it is asked to predict
    (destination / ENV_ID).mkdir(parents=True)
    model.save(destination / f"{ENV_ID}.zip")
    for name in ("config.yml", "args.yml"):
        shutil.copy(params / name, destination / ENV_ID / name)
    if statistics.is_file():
        shutil.copy(statistics, destination / ENV_ID / "vecnormalize.pkl")
    size = (destination / f"{ENV_ID}.zip").stat().st_size
    if size > MAX_BYTES:
        shutil.rmtree(destination)
        sys.exit(f"error: the model zip takes {size / 2**20:.1f} MB, over the 40 MB a shipped agent may take")
    print(f"{destination}: {model.num_timesteps:,} steps, {size / 2**20:.1f} MB (statistics: {statistics})")


if __name__ == "__main__":
    main()
