"""The trained agents shipped in rl-trained-agents/: they load, safely and with SB3, and they play."""

import gymnasium as gym
import numpy as np
import pytest

import sb3_mario  # noqa: F401  (registers MarioShaped)
from sb3_mario import evaluate
from sb3_mario.dqn.double_dqn import DoubleDQN
from sb3_mario.loading import load_agent
from tests.zoo_runner import REPO, zoo

AGENTS = REPO / "rl-trained-agents"
FLAG_AGENT = AGENTS / "ddqn" / "MarioShaped_1"  # the 1-1 agent: its card is README.md there
WORLD1_AGENT = AGENTS / "world1" / "ddqn" / "MarioShaped_1"  # one agent for 1-1 .. 1-4: enjoy -f rl-trained-agents/world1/
SHIPPED = pytest.mark.parametrize("folder", [FLAG_AGENT, WORLD1_AGENT], ids=["1-1", "world1"])


def greedy_observations(agent, steps: int) -> list[np.ndarray]:
    """The first ``steps`` observations of the agent's greedy episode on its stage (or one drawn from its world)."""
    env = gym.make("MarioShaped", **agent.env_kwargs)
    observation, _ = env.reset(seed=0)
    observations = [observation]
    for _ in range(steps):
        observation, _, terminated, _, _ = env.step(int(agent.model.predict(observation, deterministic=True)[0]))
        observations.append(observation)
        if terminated:
            break
    env.close()
    return observations


@SHIPPED
def test_the_shipped_agent_fits_its_card_and_size_limit(folder) -> None:
    assert (folder / "README.md").is_file()
    assert (folder / "MarioShaped.zip").stat().st_size <= 40 * 2**20
    for name in ("config.yml", "args.yml", "vecnormalize.pkl"):
        assert (folder / "MarioShaped" / name).is_file(), name


@SHIPPED
def test_the_safe_loader_and_sb3s_load_choose_the_same_actions(folder) -> None:
    safe = load_agent(folder)  # never unpickles; the run folder's env arguments
    trusted = DoubleDQN.load(folder / "MarioShaped.zip", device="cpu")
    observations = np.stack(greedy_observations(safe, steps=60))
    safe_actions = safe.model.predict(observations, deterministic=True)[0]
    np.testing.assert_array_equal(safe_actions, trusted.predict(observations, deterministic=True)[0])
    assert len(set(safe_actions.tolist())) > 1  # a policy that plays, not one button


@pytest.mark.slow
def test_the_shipped_agent_clears_1_1_greedily() -> None:
    agent = load_agent(FLAG_AGENT)
    report = evaluate.evaluate(agent, ["1-1"], 1, 0.0, seed=0, progress_bar=False)
    (episode,) = report["levels"]["1-1"]["agent"]["episodes"]
    assert episode["flag"] and episode["cause"] == "flag", episode


@pytest.mark.slow
def test_rl_zoo3_enjoy_plays_the_shipped_agent_to_the_flag() -> None:
    out = zoo("enjoy", "--algo", "ddqn", "--env", "MarioShaped", "-f", str(AGENTS), "--no-render", "-n", "1000")
    assert f"Loading {AGENTS / 'ddqn' / 'MarioShaped_1' / 'MarioShaped.zip'}" in out
    assert "Success rate: 100.00%" in out  # every episode it finished reached the flag


# Per stage, how many of the level matrix's epsilon-0.05 episodes (seeds 0, 1, ...) it takes the
# world-1 agent to reach the flag once (its card: 16, 6, 8 and 12 of 20 episodes cleared).
EPISODES_TO_A_FLAG = {"1-1": 1, "1-2": 1, "1-3": 2, "1-4": 3}


@pytest.mark.slow
def test_the_world1_agent_clears_every_stage_of_world_1_greedily_and_with_random_actions() -> None:
    agent = load_agent(WORLD1_AGENT)
    assert agent.env_kwargs["level"] == 1  # one network for the four stages
    for stage, n_episodes in EPISODES_TO_A_FLAG.items():
        report = evaluate.evaluate(agent, [stage], n_episodes, 0.05, seed=0, progress_bar=False)
        episodes = report["levels"][stage]["agent"]["episodes"]
        assert episodes[-1]["flag"] and episodes[-1]["cause"] == "flag", (stage, episodes)
    greedy = evaluate.evaluate(agent, list(EPISODES_TO_A_FLAG), 1, 0.0, seed=0, progress_bar=False)["levels"]
    for stage, report in greedy.items():
        episode = report["agent"]["episodes"][0]
        assert episode["flag"] and episode["cause"] == "flag", (stage, episode)


@pytest.mark.slow
def test_rl_zoo3_enjoy_plays_the_world1_agent() -> None:
    out = zoo("enjoy", "--algo", "ddqn", "--env", "MarioShaped", "-f", str(AGENTS / "world1"), "--no-render", "-n", "400")
    assert f"Loading {WORLD1_AGENT / 'MarioShaped.zip'}" in out
    assert "Episode Length" in out  # it played episodes to their end
