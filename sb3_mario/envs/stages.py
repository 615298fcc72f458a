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

from collections.abc import Sequence
from typing import NamedTuple

DEFAULT_LEVEL = "1-1"
WORLDS = tuple(str(world) for world in range(1, 9))
LEVELS = tuple(f"{world}-{stage}" for world in WORLDS for stage in range(1, 5))

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
    The stage-dependent constants of :class:`~sb3_mario.envs.reward.ShapedReward`.

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


def parse_levels(level: str | int | Sequence[str | int]) -> tuple[str, ...]:
    """
    The stages a ``level`` argument names, in order, without repeats: a stage (``"1-1"``), a whole
    world (``"1"`` or ``1``: its four stages), ``"all"`` (the 32 stages), or a list of these.

    :param level: e.g. ``"1-1"``, ``["1-1", "1-2"]``, ``1``, ``"all"``.
    :return: e.g. ``("1-1", "1-2")``.
    """
    entries = [level] if isinstance(level, (str, int)) else list(level)
    if not entries:
        raise ValueError(f"level={level!r} names no stage; give a stage (e.g. '1-1'), a world (1..8), 'all' or a list")
    levels: list[str] = []
    for entry in entries:
        name = str(entry)
        if name == "all":
            levels += LEVELS
        elif name in WORLDS:
            levels += [f"{name}-{stage}" for stage in range(1, 5)]
        elif name in LEVELS:
            levels.append(name)
        else:
            where = "" if len(entries) == 1 else f" (in {level!r})"
            raise ValueError(
                f"level={entry!r}{where} is not an SMB1 stage; valid levels: {', '.join(LEVELS)}, "
                f"a world ({WORLDS[0]}..{WORLDS[-1]}), 'all', or a list of these"
            )
    return tuple(dict.fromkeys(levels))


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
