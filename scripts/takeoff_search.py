"""
Would another take-off kill less? Around one jump of a model's greedy run of a stage, try other
take-offs and count the single actions that kill along each (as ``sb3_mario.fragility`` counts them
along the greedy run).

From the greedy run's step ``--from-step``, each variant runs (``right B``) for ``w`` steps, then holds
``right A B`` for ``h`` steps, then plays greedily until Mario is past ``--past-x``; for every step of
that stretch it counts the actions that, taken there instead and followed by greedy play, kill Mario.
The greedy stretch itself is the baseline. A variant with fewer lethal actions is a safer route over
that jump (at epsilon 0.05 over 5 actions, each lethal action costs ~1% of the episodes); one that
dies or stalls before ``--past-x`` is left out.

    python scripts/takeoff_search.py rl-trained-agents/world1/ddqn/MarioShaped_1 --level 1-3 --from-step 22 --past-x 400
"""

import argparse
import itertools
import json
from pathlib import Path

import gymnasium as gym
import torch as th

import sb3_mario  # noqa: F401  (registers MarioShaped)
from sb3_mario.envs.stages import parse_levels
from sb3_mario.envs.wrappers import StageSnapshot
from sb3_mario.fragility import DEFAULT_HORIZON, StageProbe
from sb3_mario.loading import load_agent_or_exit

# Greedy steps allowed after the take-off to get past --past-x.
MAX_STRETCH_STEPS = 60


def greedy_moment(probe: StageProbe, step: int) -> tuple[StageSnapshot, int]:
    """The moment before step ``step`` of the greedy run from the stage's start, and the greedy action there."""
    observation, _ = probe.env.reset(seed=0)
    for _ in range(step):
        observation, _, terminated, truncated, _ = probe.env.step(probe.greedy_action(observation))
        if terminated or truncated:
            raise SystemExit(f"error: the greedy run ends before step {step}")
    return probe.shaped.snapshot(), probe.greedy_action(observation)


def play_stretch(
    probe: StageProbe, snapshot: StageSnapshot, opening: list[int], past_x: int
) -> list[tuple[StageSnapshot, int]] | None:
    """
    From ``snapshot``, play ``opening`` then greedily until Mario is past ``past_x``.

    :return: The moment before each step and the action played there, or ``None`` if Mario died or
        did not get past ``past_x`` in ``MAX_STRETCH_STEPS`` greedy steps.
    """
    probe.restore(snapshot)
    steps: list[tuple[StageSnapshot, int]] = []
    observation = None
    for index in range(len(opening) + MAX_STRETCH_STEPS):
        if index >= len(opening) and probe.shaped.nes._x_position > past_x:
            return steps
        action = opening[index] if index < len(opening) else probe.greedy_action(observation)
        steps.append((probe.shaped.snapshot(), action))
        observation, _, terminated, truncated, _ = probe.env.step(action)
        if terminated or truncated:
            return None
    return None


def lethal_counts(probe: StageProbe, steps: list[tuple[StageSnapshot, int]], horizon: int) -> list[int]:
    """The number of lethal actions at each step of a stretch."""
    return [len(probe.lethal_actions(snapshot, action, horizon)) for snapshot, action in steps]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", help="SB3 zip or rl-zoo3 run folder")
    parser.add_argument("--algo", default=None, help="dqn, qrdqn or ddqn (default: from the run folder, else dqn)")
    parser.add_argument("--level", required=True, help="the stage, e.g. 1-3")
    parser.add_argument("--from-step", type=int, required=True, help="step of the greedy run the variants start at")
    parser.add_argument("--past-x", type=int, required=True, help="x position that ends the stretch (past the jump)")
    parser.add_argument("--max-run", type=int, default=6, help="variants run 0 .. max-run steps before jumping")
    parser.add_argument("--max-hold", type=int, default=8, help="... and hold the jump 1 .. max-hold steps")
    parser.add_argument("--horizon", type=int, default=DEFAULT_HORIZON, help="greedy steps after a tried action")
    parser.add_argument("--json", type=Path, default=None, help="also write the counts here")
    args = parser.parse_args(argv)
    for name in ("from_step", "max_run", "past_x"):
        if getattr(args, name) < 0:
            parser.error(f"--{name.replace('_', '-')} {getattr(args, name)} must be at least 0")
    if args.max_hold < 1 or args.horizon < 1:
        parser.error(f"--max-hold {args.max_hold} and --horizon {args.horizon} must be at least 1")

    th.set_num_threads(1)  # batch-1 forward passes
    agent = load_agent_or_exit(parser, args.path, algo=args.algo)
    try:
        levels = parse_levels(args.level)
    except ValueError as error:
        parser.error(str(error))
    if len(levels) != 1:
        parser.error(f"--level {args.level} names {len(levels)} stages; give one, e.g. 1-3")
    env = gym.make("MarioShaped", **{**agent.env_kwargs, "level": levels[0]})
    agent.check_env(env)
    probe = StageProbe(env, agent.model)
    run, jump = probe.action_names.index("right B"), probe.action_names.index("right A B")
    start, greedy = greedy_moment(probe, args.from_step)

    variants = {"greedy": [greedy]}
    for w, h in itertools.product(range(args.max_run + 1), range(1, args.max_hold + 1)):
        variants[f"run {w}, jump {h}"] = [run] * w + [jump] * h
    results = {}
    for name, opening in variants.items():
        steps = play_stretch(probe, start, opening, args.past_x)
        if steps is None:
            continue
        counts = lethal_counts(probe, steps, args.horizon)
        results[name] = {"lethal": sum(counts), "per_step": counts, "actions": [a for _, a in steps]}
        print(f"{name:16s} {len(steps):3d} steps past x {args.past_x}: {sum(counts):3d} lethal actions  {counts}", flush=True)
    if "greedy" not in results:
        raise SystemExit(f"error: the greedy run does not get past x {args.past_x} from step {args.from_step}")
    best = min(results, key=lambda name: results[name]["lethal"])
    print(f"fewest: {best} ({results[best]['lethal']}), greedy: {results['greedy']['lethal']}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        options = {name: value for name, value in vars(args).items() if name != "json"}
        args.json.write_text(json.dumps({"model": str(agent.path), **options, "variants": results}, indent=2))
    env.close()


if __name__ == "__main__":
    main()
