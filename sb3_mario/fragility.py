"""
Where one random action kills: along a model's greedy run of a stage, every step at which a single
other action, followed by greedy play, ends in Mario's death.

    python -m sb3_mario.fragility rl-trained-agents/world1/ddqn/MarioShaped_1 --world 1
    python -m sb3_mario.fragility model.zip --levels 1-3 --epsilon 0.05 --json fragility.json

The emulator is deterministic, so a greedy policy plays one trajectory per stage, and an epsilon-greedy
episode is that trajectory with a random action at about one step in ``1 / epsilon``. A random
action that Mario survives mostly leaves him near the greedy route; one that kills ends the episode.
If the lethal steps were all there is to it, an epsilon-greedy episode would clear the stage with
probability

    prod over the greedy run's steps t of (1 - epsilon * lethal_t / n_actions)

where ``lethal_t`` counts the actions that kill at step ``t`` (a random action is drawn uniformly from
all ``n_actions``, the greedy one included). The report gives this predicted flag rate beside the lethal
steps, so a measured flag rate (``sb3_mario.evaluate``) can be told apart into "one random action at
a few places" and the rest (random actions that move Mario off the route onto places greedy play
never learned, several random actions in a row).
"""

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from nes_py.wrappers import JoypadSpace
from tqdm import tqdm

from sb3_mario.envs.wrappers import ShapedFrameSkip, StageSnapshot
from sb3_mario.evaluate import add_level_arguments, chosen_levels
from sb3_mario.loading import LoadedAgent, load_agent_or_exit

# Steps of greedy play after the one other action: a jump cut short or a wrong step into an enemy
# kills within ~2 s of game time (30 steps of 4 frames); 40 leaves a margin, and later deaths are
# greedy play's own.
DEFAULT_HORIZON = 40


@dataclass
class FragileStep:
    """
    A step of the greedy run where some other action kills.

    :param step: Index of the step in the greedy run (0: the first action).
    :param x_pos: Mario's x position before the step.
    :param greedy: The greedy action's name.
    :param lethal: Names of the actions that, played here then followed by greedy play, end in death.
    """

    step: int
    x_pos: int
    greedy: str
    lethal: list[str]


def _wrapper(env: gym.Env, wrapper_class: type[gym.Wrapper]) -> Any:
    """The wrapper of class ``wrapper_class`` in ``env``'s chain."""
    while not isinstance(env, wrapper_class):
        if not isinstance(env, gym.Wrapper):
            raise TypeError(f"the env has no {wrapper_class.__name__}: build it with gym.make('MarioShaped', ...)")
        env = env.env
    return env


class StageProbe:
    """
    Replay moments of a ``MarioShaped`` episode: the model's greedy actions, and new episodes started from
    snapshots of the shaped env (:meth:`ShapedFrameSkip.snapshot`, its frames included, so the model sees
    what it saw there).

    :param env: A single-stage ``MarioShaped`` env (evaluation arguments: no frontier starts).
    :param model: Anything with SB3's ``predict(obs, deterministic=True)``.
    """

    def __init__(self, env: gym.Env, model: Any) -> None:
        self.env = env
        self.model = model
        self.shaped: ShapedFrameSkip = _wrapper(env, ShapedFrameSkip)
        self.action_names: list[str] = _wrapper(env, JoypadSpace).get_action_meanings()  # e.g. "right A"

    def greedy_action(self, observation: np.ndarray) -> int:
        return int(self.model.predict(observation, deterministic=True)[0])

    def restore(self, snapshot: StageSnapshot) -> None:
        """Start a new episode at ``snapshot``."""
        self.env.reset()
        self.shaped.restore(snapshot)

    def play_greedy(self, observation: np.ndarray, max_steps: int) -> str | None:
        """
        Play greedily from ``observation`` for at most ``max_steps`` steps.

        :return: The termination cause (``"death"``, ``"flag"``, ``"stall"``), ``None`` if still playing.
        """
        for _ in range(max_steps):
            observation, _, terminated, truncated, info = self.env.step(self.greedy_action(observation))
            if terminated or truncated:
                return info.get("termination_cause")
        return None

    def lethal_actions(self, snapshot: StageSnapshot, played: int, horizon: int = DEFAULT_HORIZON) -> list[str]:
        """
        The actions other than ``played`` that, taken at ``snapshot`` and followed by greedy play, end in
        Mario's death within ``horizon`` steps.

        :param snapshot: The moment before the step.
        :param played: The action played there (not tried).
        :param horizon: Greedy steps after the other action within which a death counts.
        :return: Their names.
        """
        lethal = []
        for action in range(len(self.action_names)):
            if action == played:
                continue
            self.restore(snapshot)
            observation, _, terminated, _, info = self.env.step(action)
            ended_by = info.get("termination_cause") if terminated else self.play_greedy(observation, horizon)
            if ended_by == "death":
                lethal.append(self.action_names[action])
        return lethal


def probe_stage(probe: StageProbe, max_steps: int = 2000, horizon: int = DEFAULT_HORIZON) -> dict[str, Any]:
    """
    Play the stage greedily, then try every other action at every step of that run.

    :param probe: A probe of a single-stage env.
    :param max_steps: Longest greedy run played.
    :param horizon: Greedy steps played after the other action; a death in them counts as lethal.
    :return: ``greedy`` (its termination cause, steps and final x) and the ``fragile`` steps.
    """
    observation, _ = probe.env.reset(seed=0)
    run: list[tuple[StageSnapshot, int]] = []  # the moment before each step, and the greedy action there
    cause, x_pos = None, int(probe.shaped.nes._x_position)
    for _ in range(max_steps):
        action = probe.greedy_action(observation)
        run.append((probe.shaped.snapshot(), action))
        observation, _, terminated, truncated, info = probe.env.step(action)
        x_pos = int(info["x_pos"])
        if terminated or truncated:
            cause = info.get("termination_cause")
            break
    fragile = []
    for step, (snapshot, greedy) in enumerate(run):
        lethal = probe.lethal_actions(snapshot, greedy, horizon)
        if lethal:
            fragile.append(FragileStep(step, snapshot.x_pos, probe.action_names[greedy], lethal))
    return {"greedy": {"cause": cause, "steps": len(run), "x_pos": x_pos}, "fragile": fragile}


def predicted_flag_rate(greedy_cause: str | None, fragile: list[FragileStep], n_actions: int, epsilon: float) -> float:
    """
    The flag rate an epsilon-greedy episode would have if the lethal steps were all that ends it (module
    docstring): 0 if greedy play itself does not clear the stage.

    :param greedy_cause: How the greedy run ended.
    :param fragile: The greedy run's fragile steps.
    :param n_actions: Number of actions a random action is drawn from.
    :param epsilon: Probability of a random action at each step.
    """
    if greedy_cause != "flag":
        return 0.0
    return float(np.prod([1 - epsilon * len(step.lethal) / n_actions for step in fragile]))


def fragility_report(
    agent: LoadedAgent, levels: list[str], epsilon: float = 0.05, horizon: int = DEFAULT_HORIZON, progress_bar: bool = True
) -> dict[str, Any]:
    """
    The lethal steps of ``agent``'s greedy run of each stage, and the flag rate they predict at ``epsilon``.

    :param agent: The loaded agent.
    :param levels: SMB1 stages.
    :param epsilon: Random-action probability of the prediction.
    :param horizon: Greedy steps after the other action within which a death counts as lethal.
    :param progress_bar: Show a progress bar over the stages.
    :return: A JSON-ready report, per level.
    """
    report: dict[str, Any] = {"model": str(agent.path), "epsilon": epsilon, "horizon": horizon, "levels": {}}
    for level in tqdm(levels, disable=not progress_bar, unit="stage"):
        env = gym.make("MarioShaped", **{**agent.env_kwargs, "level": level})
        agent.check_env(env)
        probe = StageProbe(env, agent.model)
        result = probe_stage(probe, horizon=horizon)
        n_actions = len(probe.action_names)
        report["levels"][level] = {
            "greedy": result["greedy"],
            "predicted_flag_rate": predicted_flag_rate(result["greedy"]["cause"], result["fragile"], n_actions, epsilon),
            "lethal_actions": sum(len(step.lethal) for step in result["fragile"]),
            "fragile_steps": [asdict(step) for step in result["fragile"]],
        }
        env.close()
    return report


def format_report(report: dict[str, Any]) -> str:
    """The report as lines of text: per stage, the greedy run, the prediction and each fragile step."""
    lines = []
    for level, result in report["levels"].items():
        greedy = result["greedy"]
        lines.append(
            f"{level}: greedy {greedy['cause']} after {greedy['steps']} steps at x {greedy['x_pos']}; "
            f"{len(result['fragile_steps'])} fragile steps, {result['lethal_actions']} lethal actions; "
            f"predicted flag rate at epsilon {report['epsilon']}: {100 * result['predicted_flag_rate']:.0f}%"
        )
        lines += [
            f"  step {step['step']:4d}  x {step['x_pos']:5d}  greedy {step['greedy']:12s} lethal: {', '.join(step['lethal'])}"
            for step in result["fragile_steps"]
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", help="SB3 zip or rl-zoo3 run folder")
    parser.add_argument("--algo", default=None, help="dqn, qrdqn or ddqn (default: from the run folder, else dqn)")
    add_level_arguments(parser)
    parser.add_argument("--epsilon", type=float, default=0.05, help="random-action probability of the prediction")
    parser.add_argument("--horizon", type=int, default=DEFAULT_HORIZON, help="greedy steps after the other action")
    parser.add_argument("--json", type=Path, default=None, help="also write the report here")
    parser.add_argument("--num-threads", type=int, default=1, help="torch threads (batch-1 forward passes: 1 is fastest)")
    args = parser.parse_args(argv)

    if not 0 <= args.epsilon <= 1:
        parser.error(f"--epsilon {args.epsilon} is not a probability in [0, 1]")
    if args.horizon < 1:
        parser.error(f"--horizon {args.horizon} must be at least 1")
    th.set_num_threads(args.num_threads)
    agent = load_agent_or_exit(parser, args.path, algo=args.algo)
    report = fragility_report(agent, chosen_levels(parser, args, agent), args.epsilon, args.horizon)
    print(format_report(report))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))
        print(f"report: {args.json}")


if __name__ == "__main__":
    main()
