"""
Gymnasium wrappers that turn the raw Super Mario Bros emulator into the notebook's training env.

Read bottom-up, the stack in :func:`sb3_mario.envs.mario.make_mario_shaped` says what happens to a step:
each episode starts on one of the env's stages, the emulator plays each action for several frames
under the shaped reward, the buttons come from a small discrete action set, and the kept grayscale
frames are shrunk to the network's input size.
"""

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, SupportsFloat

import cv2
import gymnasium as gym
import numpy as np
from gym_super_mario_bros import SuperMarioBrosEnv
from gymnasium import spaces
from gymnasium.utils import seeding
from nes_py.nes_env import SCREEN_HEIGHT, SCREEN_WIDTH

from sb3_mario.envs.reward import DEFAULT_FRAME_SKIP, ShapedReward, accumulate
from sb3_mario.envs.stages import world_and_stage

STAGE_ORDERS = ("random", "round_robin")

# The NES controller's A button in the bitmaps nes-py's JoypadSpace hands down (``_button_map``).
A_BUTTON = 0b00000001
# RAM byte of Mario's "float state"; 0 while he stands or walks on the ground.
FLOAT_STATE_ADDRESS = 0x001D
ON_GROUND = 0


def check_stage_order(order: str) -> str:
    """``order`` if it is a stage order, else a ``ValueError`` naming it and the valid ones."""
    if order not in STAGE_ORDERS:
        raise ValueError(f"stage_order={order!r} is not valid; valid choices: {', '.join(STAGE_ORDERS)}")
    return order


class StageSampler(gym.Wrapper[np.ndarray, int, np.ndarray, int]):
    """
    Start each episode on one of several SMB1 stages, drawn at random (``reset(seed=...)`` makes the
    sequence repeatable) or taken in turn.

    Each stage is played by its own gym-super-mario-bros single-stage env (made when the stage is
    first drawn), which this wrapper swaps in as its inner env at reset: an
    episode is exactly that env's. (Loading one stage's start into another stage's emulator with
    nes-py's ``load_state`` froze Mario on 1-4 and crashed the emulator's CPU.) Wrappers above must
    read ``env.unwrapped`` again after each reset, as :class:`ShapedFrameSkip` does.

    :param env: gym-super-mario-bros' single-stage env of the first stage (unwrapped).
    :param levels: The stages, e.g. ``("1-1", "1-2")``; the first one is ``env``'s.
    :param order: ``"random"`` (uniform, or by ``weights`` once set) or ``"round_robin"`` (in the
        order given, from the first again after a seeded reset).
    """

    weights: np.ndarray | None = None  # the random draw's probability of each stage (set by FailureWeightedStages)

    def __init__(self, env: SuperMarioBrosEnv, levels: Sequence[str], order: str = "random") -> None:
        super().__init__(env)
        check_stage_order(order)
        if (env._target_world, env._target_stage) != world_and_stage(levels[0]):
            raise ValueError(f"env plays {env._target_world}-{env._target_stage}, not the first level {levels[0]!r}")
        self.levels = tuple(levels)
        self.order = order
        self.stage_envs: dict[str, SuperMarioBrosEnv] = {levels[0]: env}
        self._rng, _ = seeding.np_random()
        self._turn = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        if seed is not None:
            self._rng, _ = seeding.np_random(seed)
            self._turn = 0
        if self.order == "random":
            n_levels = len(self.levels)
            index = self._rng.integers(n_levels) if self.weights is None else self._rng.choice(n_levels, p=self.weights)
            level = self.levels[int(index)]
        else:
            level = self.levels[self._turn]
            self._turn = (self._turn + 1) % len(self.levels)
        if level not in self.stage_envs:
            render_mode = self.stage_envs[self.levels[0]].render_mode
            self.stage_envs[level] = SuperMarioBrosEnv(target=world_and_stage(level), render_mode=render_mode)
        self.env = self.stage_envs[level]
        return self.env.reset(seed=seed, options=options)

    def close(self) -> None:
        for stage_env in self.stage_envs.values():
            stage_env.close()


class StageSnapshot(NamedTuple):
    """
    A moment of an episode that a later episode can start from (:meth:`ShapedFrameSkip.restore`).

    :param level: The stage, e.g. ``"1-1"``.
    :param x_pos: Mario's x position.
    :param emulator: nes-py's snapshot of the emulator (CPU, RAM, PPU): valid in this process only.
    :param frames: The full-resolution frames of the observation, oldest first.
    :param last_buttons: The buttons held on the last frame played (whether A is still held).
    """

    level: str
    x_pos: int
    emulator: object  # nes-py's dump_state(), an opaque native object
    frames: np.ndarray
    last_buttons: int


class ShapedFrameSkip(gym.Wrapper[np.ndarray, int, np.ndarray, int]):
    """
    Repeat each action for ``frame_skip`` emulator frames, scoring every frame with the shaped reward.

    The episode ends on the first terminal frame (first dying frame, flag, stall limit) and no later
    frame is played. The observation is the last ``n_frames`` grayscale screens played, oldest
    first, at full resolution (``n_frames`` copies of the first screen after a reset).

    The emulator is driven frame by frame directly (``_frame_advance``) instead of through
    ``SuperMarioBrosEnv.step``: the stock step builds a 30-key info dict and a reward we throw away
    on every frame, a measurable share of the emulator's own time. Only the few RAM values the
    shaped reward needs are read, and the stock between-frame housekeeping (``_did_step``: skipping
    pipe and area-change animations) still runs.

    :param env: A single-stage Super Mario Bros env (unwrapped) taking NES button bitmaps.
    :param reward: The per-frame reward rule (its constants decide termination too), or one per
        stage (``{"1-1": rule, ...}``) for an env that plays several (:class:`StageSampler`): each
        episode is scored by its stage's rule.
    :param frame_skip: Emulator frames per agent step.
    :param n_frames: Number of most recent frames in the observation.
    :param fresh_jumps: A jump action on the ground always jumps (see below).

    **Fresh jumps.** Super Mario Bros jumps when A goes from released to pressed, and repeating an
    action for several frames (as the notebook did, through gym-super-mario-bros' ``JoypadSpace``)
    keeps A held from one step into the next: after a jump action, the next jump action on the
    ground does nothing until some step without A lets go. The frames do not show whether A is
    held, so a greedy agent can press "right + A" forever in front of a step it cannot climb: the
    flag entry's greedy policies stood at 1-1's last staircase in every episode, which a few random
    actions (epsilon 0.05) got them past. With ``fresh_jumps`` (the default), a step that presses A
    after a step that held it, while Mario is on the ground, releases A for its first frame, so
    the press is new and he jumps; in the air A stays held, so how long it is held still sets the
    jump's height. ``fresh_jumps=False`` plays the notebook's held buttons.
    """

    def __init__(
        self,
        env: gym.Env,
        reward: ShapedReward | Mapping[str, ShapedReward],
        frame_skip: int = DEFAULT_FRAME_SKIP,
        n_frames: int = 4,
        fresh_jumps: bool = True,
    ) -> None:
        super().__init__(env)
        self.nes: SuperMarioBrosEnv = env.unwrapped  # type: ignore[assignment]
        self.stage_rewards = dict(reward) if isinstance(reward, Mapping) else None
        self.reward_rule = next(iter(self.stage_rewards.values())) if self.stage_rewards else reward
        self.frame_skip = frame_skip
        self.n_frames = n_frames
        self.fresh_jumps = fresh_jumps
        self._last_buttons = 0  # the buttons of the last frame played
        self.observation_space = spaces.Box(0, 255, (n_frames, SCREEN_HEIGHT, SCREEN_WIDTH), np.uint8)
        # Ring of the last frames; `_next` is the slot the next frame goes into (the oldest one).
        self._frames = np.zeros(self.observation_space.shape, dtype=np.uint8)
        self._next = 0

    def _record_frame(self) -> None:
        self.nes.observation("grayscale", output=self._frames[self._next])
        self._next = (self._next + 1) % self.n_frames

    def _stacked_frames(self) -> np.ndarray:
        return np.concatenate((self._frames[self._next :], self._frames[: self._next]))

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        _, info = self.env.reset(seed=seed, options=options)
        self.nes = self.env.unwrapped  # type: ignore[assignment]  # a StageSampler swaps emulators
        if self.stage_rewards is not None:
            self.reward_rule = self.stage_rewards[self._level()]
        self.reward_rule.reset(x_pos=self.nes._x_position)
        self.nes.observation("grayscale", output=self._frames[0])
        self._frames[1:] = self._frames[0]
        self._next = 0
        self._last_buttons = 0
        return self._stacked_frames(), {**info, **self._mario_info(death=False, frames=0)}

    def snapshot(self) -> StageSnapshot:
        """This moment of the episode, for :meth:`restore` (~0.1 ms: the emulator's state and the frames)."""
        return StageSnapshot(
            self._level(), self.nes._x_position, self.nes.dump_state(), self._stacked_frames(), self._last_buttons
        )

    def restore(self, snapshot: StageSnapshot) -> tuple[np.ndarray, dict[str, Any]]:
        """
        Start the episode that ``reset`` just began from ``snapshot`` instead, as if it were the stage's
        start: the reward counts progress (and stalls) from the snapshot's position.

        :param snapshot: A snapshot of the stage being played, taken by this env.
        :return: The observation and info, as ``reset`` returns them.
        """
        if snapshot.level != self._level():
            raise ValueError(f"a snapshot of {snapshot.level} cannot start an episode of {self._level()}")
        self.nes.load_state(snapshot.emulator)
        self.reward_rule.reset(x_pos=self.nes._x_position)
        self._frames[:] = snapshot.frames
        self._next = 0
        self._last_buttons = snapshot.last_buttons
        return self._stacked_frames(), self._mario_info(death=False, frames=0)

    def on_ground(self) -> bool:
        """Whether Mario stands or walks on the ground (not jumping or falling)."""
        return bool(self.nes.ram[FLOAT_STATE_ADDRESS] == ON_GROUND)

    def step(self, action: int) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        nes = self.nes
        step_reward = 0.0
        terminated = False
        cause = None
        frames = 0
        # Let go of A for one frame if it is still held from the last step (see "Fresh jumps").
        buttons = action & ~A_BUTTON if self._jump_needs_release(action) else action
        for _ in range(self.frame_skip):
            nes._frame_advance(buttons)
            self._last_buttons = buttons
            buttons = action
            frames += 1
            self._record_frame()
            if self.render_mode == "human":
                nes.render()
            frame = self.reward_rule.frame(
                x_pos=nes._x_position,
                y_pos=nes._y_position,
                flag_get=nes._flag_get,
                dying=nes._is_dying or nes._is_dead,
            )
            step_reward = accumulate(step_reward, frame)
            if frame.terminated:
                terminated, cause = True, frame.cause
                break
            # Stock housekeeping between frames: fast-forward pipes, area changes and busy states.
            nes._did_step(False)
        info = self._mario_info(death=cause == "death", frames=frames)
        info["termination_cause"] = cause
        info["is_success"] = cause == "flag"  # what SB3's EvalCallback counts as its success rate
        return self._stacked_frames(), step_reward, terminated, False, info

    def _jump_needs_release(self, action: int) -> bool:
        """Whether ``action`` presses A while A is held from the last frame and Mario stands on the ground."""
        return self.fresh_jumps and bool(action & self._last_buttons & A_BUTTON) and self.on_ground()

    def _mario_info(self, death: bool, frames: int) -> dict[str, Any]:
        nes, rule = self.nes, self.reward_rule
        return {
            "x_pos": nes._x_position,
            "y_pos": nes._y_position,
            "max_x": rule.max_x,
            "flag_get": nes._flag_get,
            "death": death,
            "stall_frames": rule.stall_frames,
            "checkpoint_reached": rule.checkpoint_reached,
            "world": nes._world,
            "stage": nes._stage,
            "level": self._level(),
            "frames": frames,
            "frontier_start": False,  # FrontierStarts says True for its episodes; the key is always there for Monitors
        }

    def _level(self) -> str:
        return f"{self.nes._world}-{self.nes._stage}"

    def render(self) -> np.ndarray | None:
        # The emulator hands out a live view of its screen; copy it so recorded frames stay put.
        frame = self.env.render()
        return None if frame is None else np.array(frame)


class ResizeFrames(gym.ObservationWrapper[np.ndarray, int, np.ndarray]):
    """
    Resize a ``(n, H, W)`` stack of grayscale frames to ``(n, height, width)``, keeping ``uint8``.

    Shrinks by an exact integer factor first (``INTER_AREA``'s fast path averages whole pixel
    blocks), then bilinearly to the final size: within ~3 gray levels of the notebook's
    antialiased PIL resize at a tenth of its cost (measured in ``scripts/bench_env.py``).

    :param env: Env whose observations are ``(n, H, W)`` uint8 frame stacks.
    :param size: Output ``(height, width)``.
    """

    def __init__(self, env: gym.Env, size: tuple[int, int]) -> None:
        super().__init__(env)
        n_frames, in_height, in_width = env.observation_space.shape  # type: ignore[misc]
        height, width = size
        self.size = (height, width)
        self.observation_space = spaces.Box(0, 255, (n_frames, height, width), np.uint8)
        factor = max(
            (
                f
                for f in (2, 4, 8, 16)
                if in_height % f == in_width % f == 0 and in_height // f >= height and in_width // f >= width
            ),
            default=1,
        )
        self._block_size = (in_width // factor, in_height // factor)  # cv2 sizes are (width, height)
        self._exact = self._block_size == (width, height)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        resized = np.empty(self.observation_space.shape, dtype=np.uint8)
        height, width = self.size
        for frame, out in zip(observation, resized, strict=True):
            if self._exact:
                cv2.resize(frame, self._block_size, dst=out, interpolation=cv2.INTER_AREA)
            else:
                blocks = cv2.resize(frame, self._block_size, interpolation=cv2.INTER_AREA)
                cv2.resize(blocks, (width, height), dst=out, interpolation=cv2.INTER_LINEAR)
        return resized
