"""
SMB1's stages: their names, the default one, and the shaping constants that depend on the stage.

The notebook's constants are 1-1's: a checkpoint bonus past x = 1320 and Mario's ground at height 79.
Here each stage gets its own, from the game's data:

- **checkpoint**: SMB1's halfway point, the page (256 pixels) from which a player who loses a life
  restarts mid-level (the ROM's ``HalfwayPageNybbles`` table; page 0: the stage has none, as every
  castle and world 8 do). The bonus is paid past ``page * 256 + START_X``: on 1-1, page 5 gives the
  notebook's 1320.
- **ground height**: Mario's height on the ground where the stage starts (79; 175 on the raised
  start of a castle), the zero of the stall penalty's height term.
- **start**: Mario starts at x = 40 on all 32 stages (read after ``reset`` from the emulator), the
  notebook's initial exploration frontier.
"""

from typing import NamedTuple

DEFAULT_LEVEL = "1-1"
LEVELS = tuple(f"{world}-{stage}" for world in range(1, 9) for stage in range(1, 5))

START_X = 40
PAGE_WIDTH = 256
# Halfway page of stages 1..4 of each world, from the ROM's HalfwayPageNybbles.
HALFWAY_PAGES: dict[int, tuple[int, int, int, int]] = {
    1: (5, 6, 4, 0),
    2: (6, 5, 7, 0),
    3: (6, 6, 4, 0),
    4: (6, 6, 4, 0),
    5: (6, 6, 4, 0),
    6: (6, 6, 6, 0),
    7: (6, 5, 7, 0),
    8: (0, 0, 0, 0),
}
GROUND_Y = 79
CASTLE_GROUND_Y = 175


class StageConstants(NamedTuple):
    """
    The stage-dependent constants of :class:`~sb3_mario.reward.ShapedReward`.

    :param checkpoint_x: ``x_pos`` past which the checkpoint bonus is paid, ``None`` if the stage has no halfway point.
    :param jump_ground_y: Mario's height on the ground where the stage starts.
    """

    checkpoint_x: int | None
    jump_ground_y: int


def check_level(level: str) -> str:
    """
    ``level`` if it names an SMB1 stage, else a ``ValueError`` naming it and the valid stages.

    :param level: e.g. ``"1-1"``.
    """
    if level not in LEVELS:
        raise ValueError(f"level={level!r} is not an SMB1 stage; valid levels: {', '.join(LEVELS)}")
    return level


def world_and_stage(level: str) -> tuple[int, int]:
    """``"4-2"`` -> ``(4, 2)``, after :func:`check_level`."""
    world, stage = check_level(level).split("-")
    return int(world), int(stage)


def stage_constants(level: str) -> StageConstants:
    """
    The shaping constants of one stage (see the module docstring).

    :param level: An SMB1 stage, e.g. ``"1-1"``.
    """
    world, stage = world_and_stage(level)
    page = HALFWAY_PAGES[world][stage - 1]
    return StageConstants(
        checkpoint_x=page * PAGE_WIDTH + START_X if page else None,
        jump_ground_y=CASTLE_GROUND_Y if stage == 4 else GROUND_Y,
    )
