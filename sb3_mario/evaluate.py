"""
Evaluate a trained Mario agent: flag rate and how far it gets, per level, against a random policy.

    python -m sb3_mario.evaluate logs/dqn/MarioShaped_1                  # rl-zoo3 run folder, 1-1, 20 episodes
    python -m sb3_mario.evaluate model.zip --levels 1-1 1-2 --episodes 50 --greedy --random-baseline
    python -m sb3_mario.evaluate logs/dqn/MarioShaped_1 --world 1 --json world1.json   # the level matrix

Episodes are played with epsilon 0.05 by default, as the notebook evaluated (the agent was trained
with some random actions and expects a few); ``--greedy`` plays epsilon 0.
"""

import argparse
import json
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from tqdm import tqdm

from sb3_mario.envs.stages import DEFAULT_LEVEL, LEVELS, parse_levels
from sb3_mario.loading import LoadedAgent, epsilon_greedy_action, load_agent_or_exit


@dataclass
class EpisodeResult:
    """What one evaluation episode came to."""

    max_x: int
    reward: float
    length: int
    flag: bool
    death: bool
    cause: str | None


def play_episode(
    env: gym.Env, model: BaseAlgorithm | None, epsilon: float, rng: np.random.Generator, seed: int
) -> EpisodeResult:
    """
    Play one episode, acting at random with probability ``epsilon`` (always, when ``model`` is None).

    :param env: A ``MarioShaped`` env.
    :param model: The agent, or ``None`` for the random policy.
    :param epsilon: Probability of a uniformly random action at each step.
    :param rng: Source of the random actions.
    :param seed: Seed of the episode's reset.
    """
    obs, info = env.reset(seed=seed)
    reward_sum, length = 0.0, 0
    while True:
        action = epsilon_greedy_action(model, obs, epsilon, rng, env.action_space.n)
        obs, reward, terminated, truncated, info = env.step(action)
        reward_sum += float(reward)
        length += 1
        if terminated or truncated:
            return EpisodeResult(
                max_x=int(info["max_x"]),
                reward=reward_sum,
                length=length,
                flag=bool(info["flag_get"]),
                death=bool(info["death"]),
                cause=info.get("termination_cause"),
            )


def summarize(episodes: list[EpisodeResult]) -> dict[str, float]:
    """
    Flag, death and stall rates (a stall: the episode ended because Mario stopped making progress,
    e.g. a greedy policy pushing into a pipe forever), and mean / median / max of ``max_x``, mean
    reward and length.
    """
    max_x = [episode.max_x for episode in episodes]
    return {
        "episodes": len(episodes),
        "flag_rate": float(np.mean([episode.flag for episode in episodes])),
        "death_rate": float(np.mean([episode.death for episode in episodes])),
        "stall_rate": float(np.mean([episode.cause == "stall" for episode in episodes])),
        "max_x_mean": float(np.mean(max_x)),
        "max_x_median": float(statistics.median(max_x)),
        "max_x_max": float(np.max(max_x)),
        "reward_mean": float(np.mean([episode.reward for episode in episodes])),
        "length_mean": float(np.mean([episode.length for episode in episodes])),
    }


def evaluate(
    agent: LoadedAgent | None,
    levels: list[str],
    n_episodes: int,
    epsilon: float = 0.05,
    random_baseline: bool = False,
    seed: int = 0,
    progress_bar: bool = True,
    env_kwargs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """
    Evaluate an agent (and optionally a random policy) on several levels.

    :param agent: The loaded agent, or ``None`` to evaluate only the random policy.
    :param levels: SMB1 stages, e.g. ``["1-1", "1-2"]``.
    :param n_episodes: Episodes per level (and per policy).
    :param epsilon: Probability of a random action for the agent.
    :param random_baseline: Also play a uniformly random policy on the same levels and seeds.
    :param seed: Seed of the random actions and resets.
    :param progress_bar: Show a progress bar over all episodes.
    :param env_kwargs: ``MarioShaped`` arguments (default: the agent's, e.g. its action set; none
        for the random policy alone). A random baseline for a ``right_only`` agent should play
        ``right_only`` too: random right-going play reaches further than random ``simple`` play.
    :return: A JSON-ready report: per level, per policy, a summary and every episode.
    """
    bad = [level for level in levels if level not in LEVELS]
    if bad:
        raise ValueError(f"level(s) {bad} are not SMB1 stages; valid levels: {', '.join(LEVELS)}")
    policies: dict[str, BaseAlgorithm | None] = {}
    if agent is not None:
        policies["agent"] = agent.model
    if random_baseline or agent is None:
        policies["random"] = None
    if env_kwargs is None:
        env_kwargs = dict(agent.env_kwargs) if agent is not None else {}
    report: dict[str, Any] = {
        "model": str(agent.path) if agent is not None else None,
        "epsilon": epsilon,
        "episodes_per_level": n_episodes,
        "seed": seed,
        "env_kwargs": env_kwargs,
        "levels": {},
    }
    progress = tqdm(total=len(levels) * len(policies) * n_episodes, disable=not progress_bar, unit="episode")
    for level in levels:
        env = gym.make("MarioShaped", **{**env_kwargs, "level": level})
        if agent is not None:
            agent.check_env(env)
        report["levels"][level] = {}
        for name, model in policies.items():
            rng = np.random.default_rng(seed)
            episodes = []
            for episode in range(n_episodes):
                episodes.append(play_episode(env, model, epsilon, rng, seed=seed + episode))
                progress.update()
            report["levels"][level][name] = {"summary": summarize(episodes), "episodes": [asdict(e) for e in episodes]}
        env.close()
    progress.close()
    return report


def format_table(report: dict[str, Any]) -> str:
    """The report as a terminal table, a row per level and policy."""
    header = (
        f"{'level':6s} {'policy':7s} {'episodes':>8s} {'flag %':>7s} {'death %':>8s} {'stall %':>8s} "
        f"{'max_x mean':>10s} {'median':>7s} {'max':>6s} {'reward':>8s} {'length':>7s}"
    )
    rows = [header, "-" * len(header)]
    for level, policies in report["levels"].items():
        for name, result in policies.items():
            s = result["summary"]
            rows.append(
                f"{level:6s} {name:7s} {s['episodes']:8d} {100 * s['flag_rate']:7.1f} {100 * s['death_rate']:8.1f} "
                f"{100 * s['stall_rate']:8.1f} {s['max_x_mean']:10.1f} {s['max_x_median']:7.1f} {s['max_x_max']:6.0f} "
                f"{s['reward_mean']:8.1f} {s['length_mean']:7.1f}"
            )
    return "\n".join(rows)


def add_level_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``--levels`` and ``--world`` options of the commands that play a model on stages (:func:`chosen_levels`)."""
    parser.add_argument("--levels", nargs="+", default=None, help="stages or worlds: 1-1 1-2, 2 (default: the model's)")
    parser.add_argument("--world", type=int, default=None, help="all four stages of this world (1..8)")


def chosen_levels(parser: argparse.ArgumentParser, args: argparse.Namespace, agent: LoadedAgent | None) -> list[str]:
    """
    The stages ``--world`` or ``--levels`` name, by default those the model was trained on; a bad one is
    the user's error (``parser.error``: an error line and exit status 2).

    :param parser: The command's parser, with :func:`add_level_arguments`'s options.
    :param args: Its parsed arguments.
    :param agent: The loaded agent, or ``None`` (the default stage).
    """
    if args.world is not None:
        if not 1 <= args.world <= 8:
            parser.error(f"--world {args.world} is not an SMB1 world; valid worlds: 1..8")
        return [f"{args.world}-{stage}" for stage in range(1, 5)]
    trained_on = agent.env_kwargs.get("level", DEFAULT_LEVEL) if agent else DEFAULT_LEVEL
    try:
        return list(parse_levels(args.levels or trained_on))
    except ValueError as error:
        parser.error(f"--levels: {error}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", nargs="?", help="SB3 zip or rl-zoo3 run folder (omit with --random-only)")
    parser.add_argument("--algo", default=None, help="dqn, qrdqn or ddqn (default: from the run folder, else dqn)")
    parser.add_argument("--best", action="store_true", help="in a run folder, load best_model.zip")
    add_level_arguments(parser)
    parser.add_argument("--episodes", type=int, default=20, help="episodes per level")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--epsilon", type=float, default=0.05, help="random-action probability (default 0.05)")
    group.add_argument("--greedy", action="store_true", help="epsilon 0")
    parser.add_argument("--random-baseline", action="store_true", help="also evaluate a random policy")
    parser.add_argument("--random-only", action="store_true", help="evaluate only a random policy")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="write the report here (default: beside the model)")
    parser.add_argument(
        "--unsafe-pickle", action="store_true", help="load with SB3's DQN.load (unpickles: trusted files only)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing report")
    args = parser.parse_args(argv)

    if args.episodes < 1:
        parser.error(f"--episodes {args.episodes} must be at least 1")
    if args.path is None and not args.random_only:
        parser.error("give a model path or --random-only")
    agent = (
        None
        if args.random_only
        else load_agent_or_exit(parser, args.path, algo=args.algo, best=args.best, safe=not args.unsafe_pickle)
    )
    levels = chosen_levels(parser, args, agent)
    json_path = args.json or (agent.default_output_dir / "evaluation.json" if agent else Path("evaluation.json"))
    if json_path.exists() and not args.overwrite:
        parser.error(f"{json_path} already holds a report; pass --json elsewhere or --overwrite")
    report = evaluate(agent, levels, args.episodes, 0.0 if args.greedy else args.epsilon, args.random_baseline, args.seed)
    print(format_table(report))
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(report, indent=2))
    print(f"report: {json_path}")


if __name__ == "__main__":
    main()
