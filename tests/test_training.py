"""A short real DQN run on MarioShaped: adaptive exploration in action, and the TensorBoard metrics."""

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3 import DQN
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from sb3_mario.callbacks import MarioEpisodeStatsCallback
from sb3_mario.dqn.exploration import AdaptiveEpsilonCallback
from tests.recorders import EpsilonRecorder


@pytest.mark.slow
def test_dueling_dqn_on_mario_boosts_and_logs(tmp_path) -> None:
    env = gym.make("MarioShaped")
    model = DQN(
        "DuelingCnnPolicy",
        env,
        buffer_size=1000,
        learning_starts=100,
        batch_size=16,
        train_freq=4,
        exploration_fraction=0.05,
        exploration_final_eps=0.1,
        tensorboard_log=str(tmp_path),
        seed=0,
    )
    adaptive, stats, recorder = AdaptiveEpsilonCallback(), MarioEpisodeStatsCallback(), EpsilonRecorder()
    model.learn(400, callback=[adaptive, stats, recorder], log_interval=1)

    # Linear 1.0 -> 0.1 over 20 steps; after that Mario passes x=40 early in each episode and the
    # epsilon SB3 used jumps to 0.5, then decays by 0.998 per step.
    epsilons = recorder.epsilons
    assert epsilons[0] == 1.0 and min(epsilons) == pytest.approx(0.1)
    boost_start = epsilons.index(0.5)
    assert boost_start > 20
    assert epsilons[boost_start + 1] == pytest.approx(0.5 * 0.998)
    assert len(stats.max_x) >= 1

    events = EventAccumulator(str(next(tmp_path.glob("DQN_*")))).Reload()
    tags = set(events.Tags()["scalars"])
    for tag in (
        "rollout/ep_rew_mean",
        "rollout/ep_len_mean",
        "rollout/exploration_rate",
        "train/loss",
        "time/fps",
        "mario/gmax_x",
        "mario/ep_max_x_mean",
        "mario/ep_max_x_max",
        "mario/flag_rate",
        "mario/death_rate",
        "mario/stall_rate",
    ):
        assert tag in tags, f"{tag} missing from {sorted(tags)}"
    assert events.Scalars("mario/gmax_x")[-1].value == 40.0
    # Steps are TensorBoard's x axis: SB3 dumps the logs at every episode end (log_interval=1),
    # against num_timesteps then, and the Mario stats are the callback's.
    episode_ends = np.cumsum([info["l"] for info in model.ep_info_buffer]).tolist()
    assert [event.step for event in events.Scalars("rollout/ep_rew_mean")] == episode_ends
    assert events.Scalars("mario/ep_max_x_mean")[-1].value == pytest.approx(np.mean(stats.max_x))
    env.close()
