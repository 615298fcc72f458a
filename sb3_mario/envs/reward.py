"""
The notebook's shaped reward, as a pure per-frame rule (no emulator).

The stock gym-super-mario-bros reward pays ``x - previous_x`` every frame, which an agent farms by
shuffling back and forth, and it neither punishes stalling nor pays for the flag. The notebook's
author replaced it by the terms below, found over many training runs; each closes an exploit
the agent found. :class:`ShapedReward` keeps the per-episode state (``max_x``, the stall counter,
the checkpoint flag) and scores one emulator frame at a time; :func:`accumulate` turns frame
rewards into the reward of one agent step (one action repeated over several frames).
"""

from typing import NamedTuple

# Emulator frames one agent step repeats its action for, unless the env is told otherwise: the
# notebook's frame skip, and the default of ``MarioShaped`` and of the stall penalty's scale.
DEFAULT_FRAME_SKIP = 4


class FrameReward(NamedTuple):
    """
    The reward of one emulator frame.

    :param reward: Reward of the frame. On a terminal frame this is the terminal reward, which
        replaces the whole agent step's reward (see :func:`accumulate`).
    :param terminated: Whether the episode ends on this frame.
    :param cause: Why the episode ended: ``"death"``, ``"flag"``, ``"stall"``, or ``None``.
    """

    reward: float
    terminated: bool = False
    cause: str | None = None


def accumulate(step_reward: float, frame: FrameReward) -> float:
    """
    Add one frame's reward to the reward of the agent step it belongs to.

    A terminal frame *replaces* the sum instead of adding to it, as in the notebook: the step in
    which Mario dies, stalls out or reaches the flag is worth exactly the terminal reward, so the
    agent cannot offset a death with the progress it made in the same step.

    :param step_reward: Reward of the step's earlier frames.
    :param frame: Reward of the next frame.
    :return: The step's reward including ``frame``.
    """
    return frame.reward if frame.terminated else step_reward + frame.reward


class ShapedReward:
    """
    Per-frame shaped reward of the notebook, with its constants as defaults.

    Terms, per frame:

    - **progress**: when ``x_pos - max_x > progress_threshold`` the frame earns ``x_pos - max_x``
      and ``max_x`` moves to ``x_pos``. Paying only for *new* ground (not ``x - previous_x``)
      closes the back-and-forth exploit; the 1-pixel threshold stops a Mario stuck against a pipe
      from earning crumbs by jittering.
    - **stall**: otherwise the stall counter grows; once it exceeds ``stall_grace_frames`` the frame
      earns ``stall_penalty_scale * clip(jump_offset + jump_slope * (y_pos - jump_ground_y)
      / jump_height_range, stall_penalty_min, stall_penalty_max)``. The penalty is lighter the
      higher Mario is, so while stuck the Q-values of jumping differ from the rest and the agent
      learns to jump over the obstacle instead of giving up (all actions scoring the same
      penalty would teach it nothing). It is divided by ``frame_skip``, the frames one agent step
      repeats its action over, so that a stalled agent step costs the height term whatever the
      skip. After ``stall_limit_frames`` stalled frames the episode ends with ``stall_reward``, so
      a stuck agent does not fill the replay buffer with one situation.
    - **time**: every frame earns ``time_penalty``, so standing still is never free.
    - **checkpoint**: the first frame with ``x_pos > checkpoint_x`` earns ``checkpoint_reward``,
      once per episode (the stage's halfway point, :mod:`sb3_mario.envs.stages`; ``None``: no bonus).
    - **flag**: reaching the flag ends the episode; the step is worth exactly ``flag_reward``.
    - **death**: the first dying frame ends the episode; the step is worth exactly
      ``death_reward``. (The stock env played on past the first dying frame, so the agent never
      saw what killed it.)

    A death outranks a flag, and a flag outranks a stall timeout, when they fall on one frame.

    :param progress_threshold: Progress (pixels past ``max_x``) must exceed this to count.
    :param stall_grace_frames: Stalled frames allowed before the stall penalty starts.
    :param stall_limit_frames: Stalled frames after which the episode ends.
    :param frame_skip: Emulator frames per agent step; the stall penalty is divided by it.
    :param jump_offset: Height term at ground level, before clipping.
    :param jump_slope: Height term gained over ``jump_height_range`` pixels of height.
    :param jump_ground_y: ``y_pos`` of Mario standing on the ground (79 on 1-1; per stage in
        :func:`sb3_mario.envs.stages.stage_constants`).
    :param jump_height_range: Pixels of height over which the height term rises by ``jump_slope``.
    :param stall_penalty_min: Lower clip of the height term (falling into a pit).
    :param stall_penalty_max: Upper clip of the height term: a stall always costs something.
    :param time_penalty: Reward of every frame.
    :param checkpoint_x: ``x_pos`` that pays the checkpoint reward (1-1's by default), ``None`` for none.
    :param checkpoint_reward: Reward for passing ``checkpoint_x``, once per episode.
    :param flag_reward: Reward of the step that reaches the flag.
    :param death_reward: Reward of the step on which Mario starts dying.
    :param stall_reward: Reward of the step on which the stall limit is passed.
    """

    def __init__(
        self,
        progress_threshold: float = 1.0,
        stall_grace_frames: int = 60,
        stall_limit_frames: int = 500,
        frame_skip: int = DEFAULT_FRAME_SKIP,
        jump_offset: float = -2.0,
        jump_slope: float = 2.85,
        jump_ground_y: float = 79.0,
        jump_height_range: float = 240.0,
        stall_penalty_min: float = -2.0,
        stall_penalty_max: float = -0.1,
        time_penalty: float = -0.1,
        checkpoint_x: int | None = 1320,
        checkpoint_reward: float = 10.0,
        flag_reward: float = 25.0,
        death_reward: float = -10.0,
        stall_reward: float = -10.0,
    ) -> None:
        if stall_penalty_min > stall_penalty_max:
            raise ValueError(f"stall_penalty_min={stall_penalty_min} must not exceed stall_penalty_max={stall_penalty_max}")
        for name, value in (
            ("stall_grace_frames", stall_grace_frames),
            ("stall_limit_frames", stall_limit_frames),
            ("jump_height_range", jump_height_range),
            ("frame_skip", frame_skip),
        ):
            if value <= 0:
                raise ValueError(f"{name}={value!r} must be positive")
        self.progress_threshold = progress_threshold
        self.stall_grace_frames = stall_grace_frames
        self.stall_limit_frames = stall_limit_frames
        self.frame_skip = frame_skip
        self.jump_offset = jump_offset
        self.jump_slope = jump_slope
        self.jump_ground_y = jump_ground_y
        self.jump_height_range = jump_height_range
        self.stall_penalty_min = stall_penalty_min
        self.stall_penalty_max = stall_penalty_max
        self.time_penalty = time_penalty
        self.checkpoint_x = checkpoint_x
        self.checkpoint_reward = checkpoint_reward
        self.flag_reward = flag_reward
        self.death_reward = death_reward
        self.stall_reward = stall_reward
        self.reset(x_pos=0)

    def reset(self, x_pos: int) -> None:
        """
        Start a new episode.

        :param x_pos: Mario's x position after the reset (40 on every stage's start): progress is counted from here.
        """
        self.max_x = x_pos
        self.stall_frames = 0
        # An episode started past the halfway point (from a snapshot) has no checkpoint bonus left to earn.
        self.checkpoint_reached = self.checkpoint_x is not None and x_pos > self.checkpoint_x

    def stall_penalty(self, y_pos: float) -> float:
        """
        Penalty of one stalled frame past the grace period: lighter the higher Mario is.

        :param y_pos: Mario's height (``info["y_pos"]``; 79 on the ground of 1-1).
        :return: The scaled, clipped height term.
        """
        height_term = self.jump_offset + self.jump_slope * (y_pos - self.jump_ground_y) / self.jump_height_range
        return min(max(height_term, self.stall_penalty_min), self.stall_penalty_max) / self.frame_skip

    def frame(self, x_pos: int, y_pos: float, flag_get: bool, dying: bool) -> FrameReward:
        """
        Score one emulator frame and advance the episode state.

        :param x_pos: Mario's x position on this frame.
        :param y_pos: Mario's height on this frame.
        :param flag_get: Whether Mario reached the flag (or the axe) on this frame.
        :param dying: Whether this is a dying frame (player state dying/dead, or below the screen).
        :return: The frame's reward and whether the episode ends.
        """
        if dying:
            return FrameReward(self.death_reward, terminated=True, cause="death")

        reward = self.time_penalty
        progress = x_pos - self.max_x
        if progress > self.progress_threshold:
            reward += progress
            self.max_x = x_pos
            self.stall_frames = 0
        else:
            self.stall_frames += 1
            if self.stall_frames > self.stall_grace_frames:
                reward += self.stall_penalty(y_pos)

        if self.checkpoint_x is not None and x_pos > self.checkpoint_x and not self.checkpoint_reached:
            reward += self.checkpoint_reward
            self.checkpoint_reached = True

        if flag_get:
            return FrameReward(self.flag_reward, terminated=True, cause="flag")
        if self.stall_frames > self.stall_limit_frames:
            return FrameReward(self.stall_reward, terminated=True, cause="stall")
        return FrameReward(reward)
