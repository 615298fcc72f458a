"""Drive Mario through 1-1 with RAM help, to put him where a test needs him (e.g. before the flagpole)."""

from gym_super_mario_bros import SuperMarioBrosEnv

RIGHT, B_BUTTON, A_BUTTON = 0x80, 0x02, 0x01
STAR_TIMER = 0x079F  # frames of star invincibility left: enemies cannot hurt Mario
PLAYER_Y, Y_VIEWPORT, Y_SPEED = 0x00CE, 0x00B5, 0x009F


def run_right_with_help(nes: SuperMarioBrosEnv, until_x: int, max_frames: int = 5000) -> int:
    """
    Run right until ``x_pos >= until_x``, invincible, lifted out of pits, jumping whenever stuck.

    :param nes: The unwrapped emulator env, after a reset.
    :param until_x: Stop as soon as Mario's x position reaches this.
    :param max_frames: Give up (``AssertionError``) after this many frames.
    :return: The number of frames played.
    """
    ram = nes.ram
    last_x, stuck, jump_frames = nes._x_position, 0, 0
    for frame in range(max_frames):
        if nes._x_position >= until_x:
            return frame
        ram[STAR_TIMER] = 0x20
        if stuck > 2 and jump_frames == 0:
            jump_frames = 24  # hold A for 20 frames, then release it so the next jump can start
        buttons = RIGHT | B_BUTTON | (A_BUTTON if jump_frames > 4 else 0)
        jump_frames = max(jump_frames - 1, 0)
        nes._frame_advance(buttons)
        if nes._y_viewport > 1 or nes._y_position < 60:  # falling into a pit: put him back above ground
            ram[PLAYER_Y], ram[Y_VIEWPORT], ram[Y_SPEED] = 100, 1, 0xFB
        assert not (nes._is_dying or nes._is_dead or nes._flag_get), "the driver must not end the episode"
        stuck = stuck + 1 if nes._x_position <= last_x else 0
        last_x = nes._x_position
        nes._did_step(False)
    raise AssertionError(f"Mario did not reach x={until_x} in {max_frames} frames (x={nes._x_position})")
