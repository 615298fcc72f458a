"""Exact values of the shaped reward on constructed frames (no emulator)."""

import pytest

from sb3_mario.envs.reward import FrameReward, ShapedReward, accumulate

GROUND_Y = 79  # y_pos of Mario standing on the ground of 1-1


def stalled(frames: int, y_pos: float = GROUND_Y) -> ShapedReward:
    """A rule whose next frame is stalled frame number ``frames + 1``."""
    rule = ShapedReward()
    rule.reset(x_pos=40)
    rule.stall_frames = frames
    return rule


@pytest.mark.parametrize(
    "x_pos, expected_reward, expected_max_x",
    [
        (41, -0.1, 40),  # delta 1: not progress (the 1-pixel jitter on a pipe)
        (42, 2 - 0.1, 42),  # delta 2: progress
        (40, -0.1, 40),
        (30, -0.1, 40),  # walking back earns nothing
        (140, 100 - 0.1, 140),
    ],
)
def test_progress(x_pos: int, expected_reward: float, expected_max_x: int) -> None:
    rule = ShapedReward()
    rule.reset(x_pos=40)
    frame = rule.frame(x_pos=x_pos, y_pos=GROUND_Y, flag_get=False, dying=False)
    assert frame == FrameReward(pytest.approx(expected_reward, abs=1e-12))
    assert rule.max_x == expected_max_x


def test_progress_resets_stall_counter() -> None:
    rule = stalled(300)
    rule.frame(x_pos=50, y_pos=GROUND_Y, flag_get=False, dying=False)
    assert rule.stall_frames == 0
    rule.frame(x_pos=51, y_pos=GROUND_Y, flag_get=False, dying=False)
    assert rule.stall_frames == 1


@pytest.mark.parametrize(
    "previous_stalled, y_pos, expected_reward",
    [
        (59, GROUND_Y, -0.1),  # stalled frame 60: still in the grace period
        (60, GROUND_Y, -0.1 + 0.25 * -2.0),  # frame 61: penalty on the ground is the clip's floor
        (60, GROUND_Y - 100, -0.1 + 0.25 * -2.0),  # below ground (falling): clipped at -2
        (60, GROUND_Y + 120, -0.1 + 0.25 * (-2 + 2.85 * 120 / 240)),  # mid jump: -0.575 before scaling
        (60, GROUND_Y + 240, -0.1 + 0.25 * -0.1),  # -2 + 2.85 = 0.85, clipped at -0.1
        (60, GROUND_Y + 160, -0.1 + 0.25 * -0.1),  # -2 + 1.9 = -0.1 exactly at the upper clip
        (499, GROUND_Y, -0.1 - 0.5),  # stalled frame 500: still playing
    ],
)
def test_stall_penalty(previous_stalled: int, y_pos: float, expected_reward: float) -> None:
    rule = stalled(previous_stalled)
    frame = rule.frame(x_pos=40, y_pos=y_pos, flag_get=False, dying=False)
    assert not frame.terminated
    assert frame.reward == pytest.approx(expected_reward, abs=1e-12)
    assert rule.stall_frames == previous_stalled + 1


def test_stall_limit_terminates_with_exact_reward() -> None:
    rule = stalled(500)
    frame = rule.frame(x_pos=40, y_pos=GROUND_Y, flag_get=False, dying=False)
    assert frame == FrameReward(-10.0, terminated=True, cause="stall")
    assert rule.stall_frames == 501


def test_checkpoint_paid_once() -> None:
    rule = ShapedReward()
    rule.reset(x_pos=1300)
    assert rule.frame(x_pos=1320, y_pos=GROUND_Y, flag_get=False, dying=False).reward == pytest.approx(20 - 0.1)
    assert not rule.checkpoint_reached
    assert rule.frame(x_pos=1325, y_pos=GROUND_Y, flag_get=False, dying=False).reward == pytest.approx(5 + 10 - 0.1)
    assert rule.checkpoint_reached
    assert rule.frame(x_pos=1330, y_pos=GROUND_Y, flag_get=False, dying=False).reward == pytest.approx(5 - 0.1)
    rule.reset(x_pos=40)
    assert not rule.checkpoint_reached


def test_flag_and_death_are_exact() -> None:
    rule = ShapedReward()
    rule.reset(x_pos=3000)
    assert rule.frame(x_pos=3160, y_pos=150, flag_get=True, dying=False) == FrameReward(25.0, True, "flag")
    rule.reset(x_pos=40)
    assert rule.frame(x_pos=300, y_pos=GROUND_Y, flag_get=False, dying=True) == FrameReward(-10.0, True, "death")
    # Death outranks the flag; the flag outranks a stall timeout on the same frame.
    assert rule.frame(x_pos=300, y_pos=GROUND_Y, flag_get=True, dying=True).cause == "death"
    assert stalled(500).frame(x_pos=40, y_pos=GROUND_Y, flag_get=True, dying=False).cause == "flag"


def test_terminal_frame_replaces_the_step_sum() -> None:
    rule = ShapedReward()
    rule.reset(x_pos=40)
    step_reward = 0.0
    for x_pos in (50, 60, 70):
        step_reward = accumulate(step_reward, rule.frame(x_pos=x_pos, y_pos=GROUND_Y, flag_get=False, dying=False))
    assert step_reward == pytest.approx(30 - 0.3, abs=1e-12)
    assert accumulate(step_reward, rule.frame(x_pos=80, y_pos=GROUND_Y, flag_get=False, dying=True)) == -10.0
    assert accumulate(step_reward, rule.frame(x_pos=80, y_pos=GROUND_Y, flag_get=True, dying=False)) == 25.0


def test_custom_constants() -> None:
    rule = ShapedReward(time_penalty=-1.0, progress_threshold=0.0, death_reward=-3.0)
    rule.reset(x_pos=40)
    assert rule.frame(x_pos=41, y_pos=GROUND_Y, flag_get=False, dying=False).reward == pytest.approx(0.0)
    assert rule.frame(x_pos=41, y_pos=GROUND_Y, flag_get=False, dying=True).reward == -3.0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"stall_penalty_min": 0.0, "stall_penalty_max": -1.0}, "stall_penalty_min=0.0"),
        ({"stall_limit_frames": 0}, "stall_limit_frames=0"),
        ({"stall_grace_frames": -5}, "stall_grace_frames=-5"),
    ],
)
def test_bad_constants(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ShapedReward(**kwargs)


@pytest.mark.parametrize("frame_skip", [1, 2, 4, 8])
def test_stall_penalty_is_divided_by_the_frame_skip(frame_skip: int) -> None:
    # A stalled agent step on the ground costs the height term's floor (-2) whatever the frame skip.
    rule = ShapedReward(frame_skip=frame_skip, time_penalty=0.0)
    rule.reset(x_pos=40)
    rule.stall_frames = 100
    step = sum(rule.frame(x_pos=40, y_pos=GROUND_Y, flag_get=False, dying=False).reward for _ in range(frame_skip))
    assert step == pytest.approx(-2.0, abs=1e-12)


def test_no_checkpoint_bonus_on_a_stage_without_one() -> None:
    rule = ShapedReward(checkpoint_x=None)
    assert rule.frame(x_pos=2000, y_pos=GROUND_Y, flag_get=False, dying=False).reward == pytest.approx(2000 - 0 - 0.1)
    assert not rule.checkpoint_reached
