"""MarioShaped on the real emulator: spaces, progress, death, flag, stall, determinism, bad input."""

import gymnasium as gym
import numpy as np
import pytest
from gym_super_mario_bros import SuperMarioBrosEnv
from gym_super_mario_bros.actions import COMPLEX_MOVEMENT, RIGHT_ONLY, SIMPLE_MOVEMENT
from nes_py.wrappers import JoypadSpace
from stable_baselines3.common.env_checker import check_env
from stable_baselines3.common.env_util import unwrap_wrapper

import sb3_mario  # noqa: F401  (registers MarioShaped)
from tests.ram_driver import run_right_with_help

NOOP, RIGHT_RUN, RIGHT_RUN_JUMP, RIGHT = 0, 3, 4, 1


@pytest.fixture
def env() -> gym.Env:
    env = gym.make("MarioShaped")
    yield env
    env.close()


def play(env: gym.Env, action: int, max_steps: int = 1000) -> tuple[list[float], dict]:
    """Repeat one action until the episode ends; return the step rewards and the last info."""
    rewards = []
    for _ in range(max_steps):
        _, reward, terminated, truncated, info = env.step(action)
        rewards.append(reward)
        if terminated or truncated:
            return rewards, info
    raise AssertionError(f"episode did not end in {max_steps} steps")


def test_reset_observation(env: gym.Env) -> None:
    obs, info = env.reset(seed=0)
    assert env.observation_space == gym.spaces.Box(0, 255, (4, 96, 96), np.uint8)
    assert env.action_space == gym.spaces.Discrete(7)
    assert obs.shape == (4, 96, 96) and obs.dtype == np.uint8
    assert env.observation_space.contains(obs)
    # 4 copies of the first frame, and a real picture (sky, ground, HUD), not a blank screen.
    assert all(np.array_equal(obs[0], frame) for frame in obs[1:])
    assert len(np.unique(obs[0])) > 10
    assert info["x_pos"] == info["max_x"] == 40
    assert info["stall_frames"] == 0 and not info["checkpoint_reached"]


def test_observation_is_the_last_frames_oldest_first(env: gym.Env) -> None:
    env.reset(seed=0)
    for _ in range(10):
        obs, *_ = env.step(RIGHT_RUN)
    # Mario runs right while the screen scrolls: consecutive frames differ, none is a copy.
    assert all(not np.array_equal(obs[i], obs[i + 1]) for i in range(3))
    # Replaying the same 40 frames on the bare emulator gives the same 4 last frames, resized alike.
    nes = SuperMarioBrosEnv(target=(1, 1))
    nes.reset()
    raw_frames = []
    for _ in range(10 * 4):
        nes._frame_advance(0x80 | 0x02)
        raw_frames.append(nes.observation("grayscale").copy())
        nes._did_step(False)
    resize_frames = env.get_wrapper_attr("observation")  # ResizeFrames.observation
    expected = resize_frames(np.stack(raw_frames[-4:]))
    np.testing.assert_array_equal(obs, expected)


def test_running_right_earns_progress(env: gym.Env) -> None:
    env.reset(seed=0)
    rewards = []
    for _ in range(20):
        _, reward, terminated, _, info = env.step(RIGHT_RUN)
        assert not terminated
        rewards.append(reward)
    assert sum(rewards) > 100
    assert info["max_x"] == info["x_pos"] > 150


def test_death_ends_on_first_dying_frame(env: gym.Env) -> None:
    """Running right without jumping meets the first Goomba: -10, at once, on the first dying frame."""
    env.reset(seed=0)
    rewards, info = play(env, RIGHT_RUN)
    frames_played = 4 * (len(rewards) - 1) + info["frames"]
    assert rewards[-1] == -10.0
    assert info["death"] and info["termination_cause"] == "death" and not info["is_success"]
    assert all(reward > -10 for reward in rewards[:-1])
    # The stock env also stops on the first dying frame: it must need exactly as many frames.
    stock = JoypadSpace(SuperMarioBrosEnv(target=(1, 1)), SIMPLE_MOVEMENT)
    stock.reset()
    for stock_frames in range(1, 10_000):  # noqa: B007  (the count is read after the loop)
        *_, terminated, _, stock_info = stock.step(RIGHT_RUN)
        if terminated:
            break
    assert stock_info["is_dying"] and not stock_info["flag_get"]
    assert frames_played == stock_frames
    assert env.unwrapped.ram[0x000E] == 0x0B  # the emulator is left on the dying frame itself


@pytest.mark.slow
def test_flag_ends_with_exact_reward(env: gym.Env) -> None:
    env.reset(seed=0)
    run_right_with_help(env.unwrapped, until_x=3050)  # on the last staircase, before the flagpole
    for step in range(60):
        _, reward, terminated, _, info = env.step(RIGHT_RUN_JUMP if step % 6 < 4 else RIGHT)
        if terminated:
            break
    assert terminated and reward == 25.0
    assert info["flag_get"] and info["termination_cause"] == "flag" and not info["death"]
    assert info["is_success"]  # what SB3's EvalCallback counts (rl-zoo3's evaluation, StopTrainingOnFlagRate)


def test_checkpoint_reached_on_the_way(env: gym.Env) -> None:
    env.reset(seed=0)
    run_right_with_help(env.unwrapped, until_x=1300)
    _, _, _, _, info = env.step(RIGHT_RUN)
    while not info["checkpoint_reached"]:
        _, reward, terminated, _, info = env.step(RIGHT_RUN)
        assert not terminated
    assert reward > 10  # the +10 and the step's progress, less the time penalty


def test_standing_still_stalls_out(env: gym.Env) -> None:
    env.reset(seed=0)
    rewards, info = play(env, NOOP)
    # 501 stalled frames = 125 full steps + 1 frame of step 126.
    assert len(rewards) == 126 and info["frames"] == 1
    assert rewards[-1] == -10.0 and info["termination_cause"] == "stall" and not info["death"]
    assert info["stall_frames"] == 501
    np.testing.assert_allclose(rewards[:15], -0.4)  # frames 1..60: time penalty only
    np.testing.assert_allclose(rewards[15:125], 4 * (-0.1 - 0.5))  # on the ground: the full stall penalty


@pytest.mark.slow
def test_same_seed_same_actions_same_episode() -> None:
    actions = np.random.default_rng(7).integers(0, 7, size=150)
    runs = []
    for _ in range(2):
        env = gym.make("MarioShaped")
        obs, _ = env.reset(seed=3)
        trace = [obs]
        for action in actions:
            obs, reward, terminated, _, _ = env.step(int(action))
            trace += [obs, reward]
            if terminated:
                obs, _ = env.reset()
                trace.append(obs)
        runs.append(trace)
        env.close()
    assert len(runs[0]) == len(runs[1])
    for first, second in zip(*runs, strict=True):
        np.testing.assert_array_equal(first, second)


def jump_heights(fresh_jumps: bool, steps: int = 40) -> list[int]:
    """Mario's height (``y_pos``) after each step of holding "right + run + jump" from 1-1's start."""
    env = gym.make("MarioShaped", fresh_jumps=fresh_jumps)
    env.reset(seed=0)
    heights = [env.step(RIGHT_RUN_JUMP)[4]["y_pos"] for _ in range(steps)]
    env.close()
    return heights


def test_a_jump_action_on_the_ground_always_jumps() -> None:
    ground = 79  # Mario's y_pos standing on 1-1's ground
    fresh, held = jump_heights(fresh_jumps=True), jump_heights(fresh_jumps=False)

    def takeoffs(heights: list[int]) -> int:
        return sum(before == ground < after for before, after in zip([ground, *heights], heights, strict=False))

    # Held buttons (the notebook's): A stays pressed, so after the first jump he only runs.
    assert takeoffs(held) == 1 and held[10:] == [ground] * 30
    # Fresh jumps: each landing with A still pressed jumps again.
    assert takeoffs(fresh) == 3
    # A stays held in the air: the first jump, up to the landing, is the same full-height jump.
    assert fresh[:11] == held[:11] and max(fresh[:11]) == 143


def test_a_reused_env_forgets_the_held_jump_button_of_the_last_episode() -> None:
    # Each episode of a reused env ends while A is held (a natural end, then a reset mid-jump) and the
    # next one jumps at once: it must jump as a new env's first episode does, from its first frame.
    fresh = jump_heights(fresh_jumps=True, steps=12)
    env = gym.make("MarioShaped")
    env.reset(seed=0)
    rewards, _ = play(env, RIGHT_RUN_JUMP, max_steps=2000)  # holding right + run + jump until the episode ends
    for _ in range(2):
        env.reset(seed=0)
        assert [env.step(RIGHT_RUN_JUMP)[4]["y_pos"] for _ in range(12)] == fresh
    env.close()


@pytest.mark.parametrize(
    "actions, buttons", [("right_only", RIGHT_ONLY), ("simple", SIMPLE_MOVEMENT), ("complex", COMPLEX_MOVEMENT)]
)
def test_action_sets(actions: str, buttons: list) -> None:
    env = gym.make("MarioShaped", actions=actions)
    assert env.action_space.n == len(buttons)
    assert unwrap_wrapper(env, JoypadSpace).get_action_meanings() == [" ".join(combination) for combination in buttons]
    env.close()


def test_options() -> None:
    env = gym.make("MarioShaped", level="4-2", frame_skip=2, frame_size=(84, 64), frame_stack=3, render_mode="rgb_array")
    obs, info = env.reset(seed=0)
    assert obs.shape == (3, 84, 64) and (info["world"], info["stage"]) == (4, 2)
    _, _, _, _, info = env.step(RIGHT_RUN)
    assert info["frames"] == 2
    screen = env.render()
    assert screen.shape == (240, 256, 3) and screen.dtype == np.uint8
    env.close()


def test_reward_constants_are_env_arguments() -> None:
    env = gym.make("MarioShaped", time_penalty=-1.0, stall_grace_frames=1000, stall_limit_frames=2000)
    env.reset(seed=0)
    _, reward, *_ = env.step(NOOP)
    assert reward == pytest.approx(-4.0)
    env.close()


def test_passes_sb3_env_checker(env: gym.Env) -> None:
    check_env(env, warn=True, skip_render_check=True)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"level": "9-1"}, r"level='9-1' is not an SMB1 stage; valid levels: 1-1, 1-2, .*8-4"),
        ({"level": "1-5"}, r"level='1-5'"),
        ({"actions": "all"}, r"actions='all' is not an action set; valid choices: right_only, simple, complex"),
        ({"frame_skip": 0}, r"frame_skip=0 is not valid: expected a positive integer"),
        ({"frame_stack": 2.5}, r"frame_stack=2.5"),
        ({"frame_size": -96}, r"frame_size=-96 is not valid"),
        ({"frame_size": (96, 0)}, r"frame_size=\(96, 0\)"),
        ({"fresh_jumps": "yes"}, r"fresh_jumps='yes' is not valid; valid choices: True, False"),
        ({"render_mode": "ansi"}, r"render_mode='ansi' is not valid; valid choices: \(None, 'rgb_array', 'human'\)"),
        (
            {"death_penalty": -5},
            r"unknown MarioShaped argument\(s\) \['death_penalty'\]; reward constants are: .*death_reward",
        ),
    ],
)
def test_bad_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        gym.make("MarioShaped", **kwargs)
