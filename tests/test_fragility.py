"""Lethal steps of a greedy run (sb3_mario.fragility): found from snapshots as a replay from the stage's start finds them;
the take-off search (scripts/takeoff_search.py) counts them along other take-offs."""

import json
import subprocess
import sys

import gymnasium as gym
import pytest

import sb3_mario  # noqa: F401  (registers MarioShaped)
from sb3_mario.fragility import FragileStep, StageProbe, predicted_flag_rate, probe_stage
from sb3_mario.loading import load_agent
from tests.zoo_runner import REPO

WORLD1_AGENT = REPO / "rl-trained-agents" / "world1" / "ddqn" / "MarioShaped_1"


def test_the_predicted_flag_rate_multiplies_the_chances_of_surviving_each_lethal_step() -> None:
    fragile = [FragileStep(3, 100, "right A", ["NOOP"]), FragileStep(7, 180, "right A", ["NOOP", "right", "right B"])]
    # epsilon 0.05 over 5 actions: 1 lethal action kills with 0.01, 3 with 0.03.
    assert predicted_flag_rate("flag", fragile, n_actions=5, epsilon=0.05) == pytest.approx(0.99 * 0.97)
    assert predicted_flag_rate("flag", [], n_actions=5, epsilon=0.05) == 1.0
    assert predicted_flag_rate("death", fragile, n_actions=5, epsilon=0.05) == 0.0  # greedy play itself fails


def replay_ends_in_death(env: gym.Env, model, step: int, action: int, horizon: int) -> bool:
    """Greedy play from the start for ``step`` steps, then ``action``, then greedy: does Mario die within ``horizon``?"""
    observation, _ = env.reset(seed=0)
    for _ in range(step):
        observation, _, terminated, _, _ = env.step(int(model.predict(observation, deterministic=True)[0]))
        assert not terminated
    observation, _, terminated, _, info = env.step(action)
    for _ in range(horizon):
        if terminated:
            break
        observation, _, terminated, _, info = env.step(int(model.predict(observation, deterministic=True)[0]))
    return bool(terminated and info["termination_cause"] == "death")


@pytest.mark.slow
def test_the_lethal_actions_found_from_snapshots_are_those_a_replay_from_the_start_finds() -> None:
    # The world-1 agent's first 30 steps of 1-3 hold two jumps over pits: releasing A mid-jump kills.
    agent = load_agent(WORLD1_AGENT)
    env = gym.make("MarioShaped", **{**agent.env_kwargs, "level": "1-3"})
    probe = StageProbe(env, agent.model)
    result = probe_stage(probe, max_steps=30, horizon=20)
    assert result["greedy"]["cause"] is None and result["greedy"]["steps"] == 30
    assert [step.step for step in result["fragile"]] == [21, 29]
    lethal = {(step.step, name) for step in result["fragile"] for name in step.lethal}
    # The greedy action survives (the greedy run does), and so does every action at a step not reported.
    for step in (10, 21, 25, 29):
        for action, name in enumerate(probe.action_names):
            assert replay_ends_in_death(env, agent.model, step, action, horizon=20) == ((step, name) in lethal), (step, name)
    env.close()


@pytest.mark.slow
def test_the_takeoff_search_replays_the_greedy_stretch_and_plays_each_opening(tmp_path) -> None:
    # From step 17 of the world-1 agent's 1-3 past x 350: its greedy stretch holds the fragile steps 21
    # and 29 found above (3 lethal actions each), and each variant starts with its own opening.
    report = tmp_path / "takeoffs.json"
    command = [sys.executable, str(REPO / "scripts" / "takeoff_search.py"), str(WORLD1_AGENT), "--level", "1-3"]
    options = ["--from-step", "17", "--past-x", "350", "--max-run", "1", "--max-hold", "1", "--horizon", "20"]
    subprocess.run([*command, *options, "--json", str(report)], check=True, capture_output=True, timeout=600)
    variants = json.loads(report.read_text())["variants"]
    assert set(variants) == {"greedy", "run 0, jump 1", "run 1, jump 1"}
    assert variants["greedy"]["per_step"] == [0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 3]
    run, jump = 3, 4  # right_only: NOOP, right, right A, right B, right A B
    assert variants["run 0, jump 1"]["actions"][0] == jump
    assert variants["run 1, jump 1"]["actions"][:2] == [run, jump]
    assert variants["run 0, jump 1"]["per_step"] != variants["greedy"]["per_step"]
