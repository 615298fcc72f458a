"""Several stages in one MarioShaped env: stage lists, seeded draws, real play of each stage, its own shaping."""

import gymnasium as gym
import numpy as np
import pytest

import sb3_mario  # noqa: F401  (registers MarioShaped)
from sb3_mario.envs.stages import LEVELS, parse_levels, stage_constants


def test_level_arguments_name_stages_worlds_and_all() -> None:
    assert parse_levels("2-3") == ("2-3",)
    assert parse_levels(1) == parse_levels("1") == ("1-1", "1-2", "1-3", "1-4")
    assert parse_levels(["1-2", 2, "1-2", "2-1"]) == ("1-2", "2-1", "2-2", "2-3", "2-4")  # order kept, no repeats
    assert parse_levels("all") == LEVELS


@pytest.mark.parametrize(
    "level, message",
    [
        (["1-1", "9-9"], r"level='9-9' \(in \['1-1', '9-9'\]\) is not an SMB1 stage; valid levels: 1-1, .*8-4, a world"),
        ([1, 9], r"level=9 \(in \[1, 9\]\)"),
        ([], r"level=\[\] names no stage"),
    ],
)
def test_bad_stage_lists_name_the_bad_entry(level, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        gym.make("MarioShaped", level=level)


def test_bad_stage_order_is_named() -> None:
    with pytest.raises(ValueError, match=r"stage_order='shuffle' is not valid; valid choices: random, round_robin"):
        gym.make("MarioShaped", level=1, stage_order="shuffle")


def drawn_levels(n_episodes: int, seed: int, **env_kwargs) -> list[str]:
    env = gym.make("MarioShaped", **env_kwargs)
    levels = [env.reset(seed=seed)[1]["level"]] + [env.reset()[1]["level"] for _ in range(n_episodes - 1)]
    env.close()
    return levels


def test_a_seeded_reset_in_the_middle_of_a_round_robin_starts_it_again() -> None:
    env = gym.make("MarioShaped", level=["1-1", "1-2", "1-3"], stage_order="round_robin")
    levels = [env.reset(seed=1)[1]["level"], env.reset()[1]["level"], env.reset(seed=1)[1]["level"], env.reset()[1]["level"]]
    env.close()
    assert levels == ["1-1", "1-2", "1-1", "1-2"]


def test_a_seeded_reset_in_the_middle_of_random_draws_repeats_them() -> None:
    env = gym.make("MarioShaped", level=["1-1", "1-2", "1-3"])
    first = [env.reset(seed=4)[1]["level"]] + [env.reset()[1]["level"] for _ in range(5)]
    again = [env.reset(seed=4)[1]["level"]] + [env.reset()[1]["level"] for _ in range(5)]
    env.close()
    assert first == again and len(set(first)) > 1


def test_each_stage_of_a_multi_stage_env_gets_its_own_constants() -> None:
    env = gym.make("MarioShaped", level=["1-1", "1-4", "8-1"], flag_reward=30.0, frame_skip=2)
    rules = env.get_wrapper_attr("stage_rewards")  # built with the env, before any stage is played
    env.close()
    constants = {
        level: (rule.checkpoint_x, rule.jump_ground_y, rule.flag_reward, rule.frame_skip) for level, rule in rules.items()
    }
    # 1-1's halfway point and ground; a castle: no checkpoint, a raised start; world 8: no checkpoint.
    assert constants == {"1-1": (1320, 79, 30.0, 2), "1-4": (None, 175, 30.0, 2), "8-1": (None, 79, 30.0, 2)}


@pytest.mark.slow
def test_stage_draws_are_seeded_and_cover_the_list() -> None:
    stages = ["1-1", "1-3", "2-2"]
    first = drawn_levels(40, seed=5, level=stages)
    assert first == drawn_levels(40, seed=5, level=stages)  # the same seed, the same stages
    assert first != drawn_levels(40, seed=6, level=stages)
    assert set(first) == set(stages)  # each stage's chance of missing all 40 draws: (2/3)^40
    assert drawn_levels(5, seed=5, level=stages, stage_order="round_robin") == ["1-1", "1-3", "2-2", "1-1", "1-3"]


@pytest.mark.slow
def test_a_drawn_stage_plays_exactly_as_its_single_stage_env() -> None:
    multi = gym.make("MarioShaped", level=1, actions="right_only")
    actions = np.random.default_rng(0).integers(0, 5, size=80)
    played: set[str] = set()
    for seed in range(8):
        multi_obs, info = multi.reset(seed=seed)
        level = info["level"]
        played.add(level)
        single = gym.make("MarioShaped", level=level, actions="right_only")
        single_obs, _ = single.reset(seed=seed)
        np.testing.assert_array_equal(multi_obs, single_obs)
        for action in actions:
            multi_obs, multi_reward, multi_end, _, multi_info = multi.step(int(action))
            single_obs, single_reward, single_end, _, single_info = single.step(int(action))
            np.testing.assert_array_equal(multi_obs, single_obs)
            assert multi_reward == single_reward and multi_end == single_end
            assert (multi_info["level"], multi_info["world"], multi_info["stage"]) == (level, *map(int, level.split("-")))
            if multi_end:
                break
        single.close()
    assert len(played) >= 2  # episodes of several stages were compared
    multi.close()


@pytest.mark.slow
def test_each_episode_is_shaped_with_its_stages_constants() -> None:
    env = gym.make("MarioShaped", level=["1-1", "1-4"], stage_order="round_robin")
    for level in ("1-1", "1-4", "1-1"):
        _, info = env.reset()
        assert info["level"] == level
        rule = env.get_wrapper_attr("reward_rule")
        expected = stage_constants(level)
        assert (rule.checkpoint_x, rule.jump_ground_y) == (expected.checkpoint_x, expected.jump_ground_y)
    env.close()


@pytest.mark.slow
def test_world_entry_trains_one_agent_on_several_stages(tmp_path) -> None:
    import json
    import zipfile

    import pandas as pd

    from tests.zoo_runner import SMALL, zoo

    conf = ["--algo", "ddqn", "--env", "MarioShaped", "--conf-file", "hyperparams/ddqn_world1.yml", "--seed", "0"]
    # An evaluation too: its env (no frontier starts) must give the Monitor every info key the entry records.
    zoo("train", *conf, "-n", "800", "-f", str(tmp_path), "--eval-freq", "400", "--eval-episodes", "1", *SMALL)
    run = tmp_path / "ddqn" / "MarioShaped_1"
    assert (run / "evaluations.npz").is_file()
    episodes = pd.concat([pd.read_csv(path, skiprows=1) for path in run.glob("*.monitor.csv")])  # one per env
    assert set(episodes["level"]) <= {"1-1", "1-2", "1-3", "1-4"} and episodes["level"].nunique() >= 2
    with zipfile.ZipFile(run / "MarioShaped.zip") as archive:
        frontiers = json.loads(archive.read("data"))["adaptive_epsilon_state"]["frontiers"]
    assert set(frontiers) == set(episodes["level"])  # a frontier for each stage played
