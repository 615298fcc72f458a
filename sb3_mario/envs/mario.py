"""The ``MarioShaped`` environment: the notebook's training env, built from small wrappers."""

import inspect
import multiprocessing
from collections.abc import Sequence
from multiprocessing import forkserver
from typing import Any

import gymnasium as gym
from gym_super_mario_bros import SuperMarioBrosEnv
from gym_super_mario_bros.actions import COMPLEX_MOVEMENT, RIGHT_ONLY, SIMPLE_MOVEMENT
from nes_py.wrappers import JoypadSpace

from sb3_mario.envs.frontier_starts import FrontierStarts, check_start_weights
from sb3_mario.envs.reward import DEFAULT_FRAME_SKIP, ShapedReward
from sb3_mario.envs.stage_weights import FAILURE_POWERS, FailureWeightedStages, check_stage_weights
from sb3_mario.envs.stages import DEFAULT_LEVEL, parse_levels, stage_constants, world_and_stage
from sb3_mario.envs.wrappers import ResizeFrames, ShapedFrameSkip, StageSampler, check_stage_order

ENV_ID = "MarioShaped"
MARIO_ENV_IDS = (ENV_ID,)  # every env id sb3-mario registers

ACTION_SETS: dict[str, list[list[str]]] = {
    "right_only": RIGHT_ONLY,
    "simple": SIMPLE_MOVEMENT,
    "complex": COMPLEX_MOVEMENT,
}

RENDER_MODES = (None, "rgb_array", "human")

# Arguments that shape training episodes only: evaluation starts every episode at its stage's start
# and plays every stage as often.
TRAINING_ONLY_KWARGS = ("frontier_starts", "frontier_start_weights", "stage_weights")

# frame_skip is the env's own argument: the reward takes it from there.
REWARD_CONSTANTS = tuple(name for name in inspect.signature(ShapedReward).parameters if name != "frame_skip")


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}={value!r} is not valid: expected a positive integer")
    return value


def _frame_shape(frame_size: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    shape = (frame_size, frame_size) if isinstance(frame_size, int) else frame_size
    if (
        not isinstance(shape, (tuple, list))
        or len(shape) != 2
        or not all(isinstance(side, int) and not isinstance(side, bool) and side > 0 for side in shape)
    ):
        raise ValueError(
            f"frame_size={frame_size!r} is not valid: expected a positive int or (height, width) of positive ints"
        )
    return int(shape[0]), int(shape[1])


def make_mario_shaped(
    level: str | int | Sequence[str | int] = DEFAULT_LEVEL,
    actions: str = "simple",
    frame_skip: int = DEFAULT_FRAME_SKIP,
    frame_size: int | tuple[int, int] = 96,
    frame_stack: int = 4,
    render_mode: str | None = None,
    stage_order: str = "random",
    fresh_jumps: bool = True,
    frontier_starts: float = 0.0,
    frontier_start_weights: str = "uniform",
    stage_weights: str = "uniform",
    **reward_constants: float,
) -> gym.Env:
    """
    Build the notebook's Super Mario Bros training env (registered as ``MarioShaped``).

    Each agent step repeats the action for ``frame_skip`` emulator frames and earns the sum of the
    shaped per-frame rewards (:class:`sb3_mario.envs.reward.ShapedReward`); the observation is the last
    ``frame_stack`` emulator frames, oldest first, grayscale, resized, ``uint8`` in
    ``(frame_stack, height, width)``: channel-first, as SB3's ``CnnPolicy`` expects.

    :param level: SMB1 stage, ``"1-1"`` to ``"8-4"``; or several, each episode on one of them
        (:class:`sb3_mario.envs.wrappers.StageSampler`): a list of stages, a world (``1``: its four
        stages), ``"all"`` (the 32), or a list mixing these. ``info["level"]`` names the episode's stage.
    :param actions: Button combinations the agent chooses from: ``"right_only"`` (5), ``"simple"``
        (7, the notebook's ``SIMPLE_MOVEMENT``) or ``"complex"`` (12), in gym-super-mario-bros' order.
    :param frame_skip: Emulator frames each action is held for.
    :param frame_size: Side of the square observation frames, or ``(height, width)``.
    :param frame_stack: Number of most recent emulator frames in an observation.
    :param render_mode: ``None``, ``"rgb_array"`` (``render()`` returns the 240x256 RGB screen) or
        ``"human"`` (a window showing every frame).
    :param stage_order: With several stages: ``"random"`` (drawn from the env's seeded random
        generator) or ``"round_robin"``.
    :param fresh_jumps: A jump action on the ground always jumps, also right after a step that
        held A (``False``: the notebook's held buttons, after which a jump needs a step without A
        first; :class:`sb3_mario.envs.wrappers.ShapedFrameSkip`).
    :param frontier_starts: Share of the episodes that start from a snapshot along the stage's best
        run so far instead of its start (:class:`sb3_mario.envs.frontier_starts.FrontierStarts`);
        training only (:func:`evaluation_env_kwargs`).
    :param frontier_start_weights: Which snapshot such an episode starts from: ``"uniform"``, or
        ``"failures"``: half of them just before where the stage's episodes from its start fail; training only.
    :param stage_weights: With several stages drawn at random: ``"uniform"``, or ``"failures"``: more
        training steps on the stages the agent clears least often
        (:class:`sb3_mario.envs.stage_weights.FailureWeightedStages`), or ``"failures_squared"``: the
        same, weighed by the failure rate squared; training only.
    :param reward_constants: Any constructor argument of :class:`sb3_mario.envs.reward.ShapedReward`
        but ``frame_skip``; ``checkpoint_x`` and ``jump_ground_y`` default to each stage's own
        (:func:`sb3_mario.envs.stages.stage_constants`).
    :return: The wrapped env.
    """
    levels = parse_levels(level)
    if actions not in ACTION_SETS:
        raise ValueError(f"actions={actions!r} is not an action set; valid choices: {', '.join(ACTION_SETS)}")
    check_stage_order(stage_order)
    if check_start_weights(frontier_start_weights) != "uniform" and not frontier_starts:
        raise ValueError(f"frontier_start_weights={frontier_start_weights!r} weighs the snapshot starts; frontier_starts is 0")
    if check_stage_weights(stage_weights) != "uniform" and len(levels) == 1:
        raise ValueError(f"stage_weights={stage_weights!r} weighs several stages; level={level!r} is one")
    if render_mode not in RENDER_MODES:
        raise ValueError(f"render_mode={render_mode!r} is not valid; valid choices: {RENDER_MODES}")
    unknown = sorted(set(reward_constants) - set(REWARD_CONSTANTS))
    if unknown:
        raise ValueError(f"unknown MarioShaped argument(s) {unknown}; reward constants are: {', '.join(REWARD_CONSTANTS)}")
    if not isinstance(fresh_jumps, bool):
        raise ValueError(f"fresh_jumps={fresh_jumps!r} is not valid; valid choices: True, False")
    frame_skip = _positive_int("frame_skip", frame_skip)
    frame_stack = _positive_int("frame_stack", frame_stack)
    frame_shape = _frame_shape(frame_size)

    rewards = {
        stage: ShapedReward(**{**stage_constants(stage)._asdict(), **reward_constants}, frame_skip=frame_skip)
        for stage in levels
    }
    env: gym.Env = SuperMarioBrosEnv(target=world_and_stage(levels[0]), render_mode=render_mode)
    sampler = None
    if len(levels) > 1:
        env = sampler = StageSampler(env, levels, order=stage_order)
    reward = rewards if len(levels) > 1 else rewards[levels[0]]  # one rule per stage, or the stage's own
    env = ShapedFrameSkip(env, reward, frame_skip=frame_skip, n_frames=frame_stack, fresh_jumps=fresh_jumps)
    if frontier_starts:
        env = FrontierStarts(env, probability=frontier_starts, start_weights=frontier_start_weights)
    if stage_weights != "uniform":
        env = FailureWeightedStages(env, sampler, power=FAILURE_POWERS[stage_weights])
    env = JoypadSpace(env, ACTION_SETS[actions])
    return ResizeFrames(env, frame_shape)


def evaluation_env_kwargs(env_kwargs: dict[str, Any]) -> dict[str, Any]:
    """
    A training run's ``MarioShaped`` arguments without the training-only ones (:data:`TRAINING_ONLY_KWARGS`):
    the env every evaluation, replay and video of its models plays.

    :param env_kwargs: The run's env arguments.
    """
    return {key: value for key, value in env_kwargs.items() if key not in TRAINING_ONLY_KWARGS}


def register_mario_envs() -> None:
    """
    Register ``MarioShaped`` with Gymnasium (idempotent), here and in future subprocess workers.

    SB3's ``SubprocVecEnv`` starts its workers from multiprocessing's fork server, a process that
    never imported ``sb3_mario``, so ``make_vec_env("MarioShaped", vec_env_cls=SubprocVecEnv)`` would
    fail in the workers with ``NameNotFound``. Adding ``sb3_mario`` to the fork server's preload list
    registers the env in every worker (it must happen before the fork server starts, i.e. before the
    first ``SubprocVecEnv``). Under the "spawn" start method, use the id ``"sb3_mario:MarioShaped"``.
    """
    if ENV_ID not in gym.registry:
        gym.register(id=ENV_ID, entry_point="sb3_mario.envs.mario:make_mario_shaped")
    preloaded = getattr(forkserver._forkserver, "_preload_modules", ["__main__"])
    if "sb3_mario" not in preloaded:
        multiprocessing.set_forkserver_preload([*preloaded, "sb3_mario"])
