"""Per-stage shaping constants: the halfway table against the ROM, the env using each stage's own."""

from pathlib import Path

import gym_super_mario_bros
import gymnasium as gym
import pytest

from sb3_mario.envs.stages import HALFWAY_PAGES, LEVELS, StageConstants, check_level, stage_constants

ROM = Path(gym_super_mario_bros.__file__).parent / "_roms" / "super-mario-bros.nes"
HALFWAY_PAGE_NYBBLES_OFFSET = 4557  # 16-byte iNES header + the table's ROM address


def test_halfway_pages_are_the_roms() -> None:
    # Two bytes per world: stages 1 and 2 in the first, 3 and 4 in the second; the odd stage in the high nybble.
    table = ROM.read_bytes()[HALFWAY_PAGE_NYBBLES_OFFSET : HALFWAY_PAGE_NYBBLES_OFFSET + 16]
    for world in range(1, 9):
        first, second = table[2 * (world - 1)], table[2 * (world - 1) + 1]
        assert HALFWAY_PAGES[world] == (first >> 4, first & 0xF, second >> 4, second & 0xF), f"world {world}"


@pytest.mark.parametrize(
    "level, expected",
    [
        ("1-1", StageConstants(checkpoint_x=1320, jump_ground_y=79)),  # the notebook's constants
        ("1-2", StageConstants(checkpoint_x=6 * 256 + 40, jump_ground_y=79)),
        ("2-3", StageConstants(checkpoint_x=7 * 256 + 40, jump_ground_y=79)),
        ("1-4", StageConstants(checkpoint_x=None, jump_ground_y=175)),  # castles have no halfway point
        ("8-1", StageConstants(checkpoint_x=None, jump_ground_y=79)),  # nor has world 8
    ],
)
def test_stage_constants(level: str, expected: StageConstants) -> None:
    assert stage_constants(level) == expected


def test_bad_level_is_named_with_the_choices() -> None:
    with pytest.raises(ValueError, match=r"level='9-1' is not an SMB1 stage; valid levels: 1-1, 1-2, .*, 8-4$"):
        check_level("9-1")
    assert len(LEVELS) == 32


def test_env_uses_its_stages_constants_and_frame_skip() -> None:
    rule = gym.make("MarioShaped", level="2-3", frame_skip=2).get_wrapper_attr("reward_rule")
    assert (rule.checkpoint_x, rule.jump_ground_y, rule.frame_skip) == (7 * 256 + 40, 79, 2)
    castle = gym.make("MarioShaped", level="1-4").get_wrapper_attr("reward_rule")
    assert (castle.checkpoint_x, castle.jump_ground_y, castle.frame_skip) == (None, 175, 4)
    # A constant given to the env wins over the stage's.
    assert gym.make("MarioShaped", level="1-4", checkpoint_x=500).get_wrapper_attr("reward_rule").checkpoint_x == 500


@pytest.mark.slow
@pytest.mark.parametrize("level", ["1-1", "1-4", "3-2", "8-4"])
def test_mario_starts_at_40_on_the_stages_ground(level: str) -> None:
    env = gym.make("MarioShaped", level=level)
    _, info = env.reset(seed=0)
    assert info["x_pos"] == 40 and info["y_pos"] == stage_constants(level).jump_ground_y
