"""Episodes that start from snapshots along a stage's best run: snapshots, the wrapper, evaluation's guard."""

from collections import deque

import numpy as np
import pytest
from stable_baselines3.common.env_util import is_wrapped, unwrap_wrapper

from sb3_mario.envs.frontier_starts import FrontierStarts
from sb3_mario.envs.mario import evaluation_env_kwargs, make_mario_shaped
from sb3_mario.envs.reward import ShapedReward
from sb3_mario.envs.wrappers import ShapedFrameSkip, StageSnapshot
from sb3_mario.loading import _run_env_kwargs
from tests.ram_driver import run_right_with_help

RIGHT_JUMP_RUN = 4  # right_only: right + A + B


def play(env, rng: np.random.Generator, max_steps: int = 400) -> tuple[list[dict], list[np.ndarray]]:
    """One episode of random right-going actions: every step's info and observation."""
    infos, observations = [], []
    for _ in range(max_steps):
        observation, _, terminated, truncated, info = env.step(int(rng.integers(1, 5)))
        infos.append(info)
        observations.append(observation)
        if terminated or truncated:
            break
    return infos, observations


def test_a_restored_snapshot_replays_the_same_frames_and_positions() -> None:
    env = make_mario_shaped(level="1-1", actions="right_only", frame_size=32)
    shaped = unwrap_wrapper(env, ShapedFrameSkip)
    env.reset(seed=0)
    actions = np.random.default_rng(1).integers(1, 5, size=60)
    for action in actions[:20]:
        observation, *_ = env.step(int(action))
    snapshot = shaped.snapshot()
    original = [env.step(int(action)) for action in actions[20:]]
    play(env, np.random.default_rng(2))  # the emulator moves on (to another episode's end)
    env.reset()
    frames, info = shaped.restore(snapshot)
    assert np.array_equal(env.observation(frames), observation)  # the first observation is the snapshot's (resized)
    assert info["x_pos"] == info["max_x"] == snapshot.x_pos > 40
    replayed = [env.step(int(action)) for action in actions[20:]]
    for (obs_a, _, term_a, _, info_a), (obs_b, _, term_b, _, info_b) in zip(original, replayed, strict=True):
        assert np.array_equal(obs_a, obs_b) and info_a["x_pos"] == info_b["x_pos"] and term_a == term_b
        if term_a:
            break


def test_a_snapshot_of_another_stage_is_refused() -> None:
    env = make_mario_shaped(level=["1-1", "1-2"], stage_order="round_robin", frame_size=32)
    shaped = unwrap_wrapper(env, ShapedFrameSkip)
    env.reset(seed=0)
    snapshot = shaped.snapshot()  # 1-1
    env.reset()  # 1-2
    with pytest.raises(ValueError, match="a snapshot of 1-1 cannot start an episode of 1-2"):
        shaped.restore(snapshot)


def test_an_episode_started_past_the_halfway_point_earns_no_checkpoint_bonus() -> None:
    rule = ShapedReward(checkpoint_x=1320, frame_skip=4)
    rule.reset(x_pos=1400)
    assert rule.checkpoint_reached and rule.frame(x_pos=1410, y_pos=79, flag_get=False, dying=False).reward < 50
    rule.reset(x_pos=40)
    assert not rule.checkpoint_reached


def test_episodes_start_from_the_best_runs_snapshots_taken_on_the_ground_spacing_apart() -> None:
    env = make_mario_shaped(level="1-1", actions="right_only", frame_size=32, frontier_starts=1.0)
    starts = unwrap_wrapper(env, FrontierStarts)
    _, info = env.reset(seed=0)
    assert info["x_pos"] == 40 and info["frontier_start"] is False  # nothing to start from yet
    rng = np.random.default_rng(0)
    infos, _ = play(env, rng)
    best_x, snapshots = starts.best_runs["1-1"]
    assert best_x == infos[-1]["max_x"] and all(info["frontier_start"] is False for info in infos)
    positions = [snapshot.x_pos for snapshot in snapshots]
    assert len(positions) >= 2 and positions[0] >= 40 + 128 and positions[-1] <= best_x
    assert all(later - earlier >= 128 for earlier, later in zip(positions, positions[1:], strict=False))

    started_at = set()
    for _ in range(12):
        _, info = env.reset()
        assert info["frontier_start"] is True and info["x_pos"] in positions and info["max_x"] == info["x_pos"]
        started_at.add(info["x_pos"])
        infos, _ = play(env, rng)
        assert infos[-1]["frontier_start"] is True
        if infos[-1]["max_x"] > best_x:  # a new best from a snapshot keeps the way there
            best_x, snapshots = starts.best_runs["1-1"]
            assert best_x == infos[-1]["max_x"] and [s.x_pos for s in snapshots][: len(positions)] == positions
            positions = [snapshot.x_pos for snapshot in snapshots]
        else:
            assert starts.best_runs["1-1"][0] == best_x
    assert len(started_at) > 1  # drawn among the snapshots, not always the same


def test_without_frontier_starts_every_episode_starts_at_the_start() -> None:
    env = make_mario_shaped(level="1-1", actions="right_only", frame_size=32, frontier_starts=0.5)
    unwrap_wrapper(env, FrontierStarts).probability = 0.0
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    play(env, rng)
    for _ in range(3):
        _, info = env.reset()
        assert info["x_pos"] == 40 and info["frontier_start"] is False
        play(env, rng, max_steps=30)


def test_failures_weigh_the_snapshots_just_before_where_episodes_from_the_start_ended() -> None:
    env = make_mario_shaped(level="1-1", frame_size=32, frontier_starts=1.0, frontier_start_weights="failures")
    starts = unwrap_wrapper(env, FrontierStarts)
    snapshots = [StageSnapshot("1-1", x, None, None, 0) for x in (168, 296, 424, 552, 680, 808)]
    starts.best_runs["1-1"] = (1000, snapshots)
    uniform = np.full(6, 1 / 6)
    assert np.allclose(starts.snapshot_weights("1-1"), uniform)  # no failure yet
    starts.failures["1-1"] = deque([100])  # before every snapshot: no run-up to practise
    assert np.allclose(starts.snapshot_weights("1-1"), uniform)
    # 700 weighs on 552 and 680 (less than 256 px before it), 450 on 296 and 424: half uniform, half these.
    starts.failures["1-1"] = deque([700, 700, 450, 100])
    assert np.allclose(starts.snapshot_weights("1-1"), np.array([1, 2, 2, 3, 3, 1]) / 12)
    starts.start_weights = "uniform"
    assert np.allclose(starts.snapshot_weights("1-1"), uniform)


def test_only_episodes_from_the_start_that_miss_the_flag_count_as_failures() -> None:
    env = make_mario_shaped(
        level="1-1", actions="right_only", frame_size=32, frontier_starts=1.0, frontier_start_weights="failures"
    )
    starts = unwrap_wrapper(env, FrontierStarts)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    infos, _ = play(env, rng)
    assert infos[-1]["death"] and list(starts.failures["1-1"]) == [infos[-1]["x_pos"]]
    _, info = env.reset()
    assert info["frontier_start"] is True
    infos, _ = play(env, rng)
    assert not infos[-1]["flag_get"] and len(starts.failures["1-1"]) == 1  # from a snapshot: not counted
    starts.probability = 0.0
    _, info = env.reset()
    assert info["frontier_start"] is False
    run_right_with_help(env.unwrapped, until_x=3050)  # on the last staircase, before the flagpole
    for step in range(60):
        _, _, terminated, _, info = env.step(RIGHT_JUMP_RUN if step % 6 < 4 else 1)
        if terminated:
            break
    assert info["flag_get"] and len(starts.failures["1-1"]) == 1  # cleared: not a failure


def test_snapshot_starts_are_drawn_by_the_weights() -> None:
    env = make_mario_shaped(
        level="1-1", actions="right_only", frame_size=32, frontier_starts=1.0, frontier_start_weights="failures"
    )
    starts = unwrap_wrapper(env, FrontierStarts)
    env.reset(seed=0)
    play(env, np.random.default_rng(0))
    positions = [snapshot.x_pos for snapshot in starts.best_runs["1-1"][1]]
    starts.failures["1-1"] = deque([positions[1] + 10] * 5)
    weights = starts.snapshot_weights("1-1")
    assert weights[1] > 2 * weights[-1]
    draws = [positions.index(env.reset()[1]["x_pos"]) for _ in range(600)]
    frequencies = np.bincount(draws, minlength=len(positions)) / len(draws)
    assert np.abs(frequencies - weights).max() < 0.06


@pytest.mark.parametrize("value", [-0.1, 1.5])
def test_a_bad_frontier_starts_value_is_refused(value: float) -> None:
    with pytest.raises(ValueError, match=f"frontier_starts={value} must be a probability in"):
        make_mario_shaped(frontier_starts=value)


def test_a_bad_frontier_start_weighting_is_refused() -> None:
    with pytest.raises(ValueError, match="frontier_start_weights='deaths' is not valid; valid choices: uniform, failures"):
        make_mario_shaped(frontier_starts=0.5, frontier_start_weights="deaths")
    with pytest.raises(ValueError, match="frontier_start_weights='failures' weighs the snapshot starts; frontier_starts is 0"):
        make_mario_shaped(frontier_start_weights="failures")
    shaped = unwrap_wrapper(make_mario_shaped(frame_size=32), ShapedFrameSkip)
    with pytest.raises(ValueError, match="window=0 must be a positive number of episodes"):
        FrontierStarts(shaped, start_weights="failures", window=0)


def test_evaluations_play_from_the_start(tmp_path) -> None:
    run_kwargs = {"actions": "right_only", "frame_size": 64, "frontier_starts": 0.5, "frontier_start_weights": "failures"}
    assert evaluation_env_kwargs(run_kwargs) == {"actions": "right_only", "frame_size": 64}
    # As rl-zoo3 writes a run's config, here one whose -params gave a tuple (the Monitor's keywords).
    (tmp_path / "config.yml").write_text(
        "!!python/object/apply:collections.OrderedDict\n- - - env_kwargs\n    - frontier_starts: 0.5\n      frame_size: 64\n"
        "  - - monitor_kwargs\n    - info_keywords: !!python/tuple\n      - max_x\n      - frontier_start\n"
    )
    assert _run_env_kwargs(tmp_path) == {"frame_size": 64}  # what evaluate, video and the bench scripts play


def test_rl_zoo3s_enjoy_and_record_video_play_from_the_start() -> None:
    import rl_zoo3

    import sb3_mario.zoo.hook

    sb3_mario.zoo.hook.install()
    env = rl_zoo3.create_test_env(
        "MarioShaped", n_envs=1, hyperparams={}, env_kwargs={"frame_size": 32, "frontier_starts": 1.0}
    )
    monitored = env.envs[0]
    env.close()
    assert is_wrapped(monitored, ShapedFrameSkip) and not is_wrapped(monitored, FrontierStarts)


def test_every_env_says_whether_its_episode_started_from_a_snapshot() -> None:
    # A Monitor recording frontier_start reads it in the evaluation env too, which has no frontier starts.
    env = make_mario_shaped(level="1-1", frame_size=32)
    _, info = env.reset(seed=0)
    assert info["frontier_start"] is False and env.step(0)[-1]["frontier_start"] is False
