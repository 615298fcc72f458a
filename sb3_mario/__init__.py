"""sb3-mario: Super Mario Bros agents trained with Stable-Baselines3 and rl-zoo3."""

from sb3_mario.buffers import CompressedReplayBuffer, PrioritizedReplayBuffer
from sb3_mario.callbacks import AdaptiveEpsilonCallback, MarioEpisodeStatsCallback
from sb3_mario.double_dqn import DoubleDQN
from sb3_mario.env import ENV_ID, make_mario_shaped, register_mario_envs
from sb3_mario.policies import DuelingCnnPolicy, DuelingDQNPolicy, MarioCNN, register_policy_aliases
from sb3_mario.reward import ShapedReward
from sb3_mario.schedules import BoostableSchedule, ExponentialSchedule
from sb3_mario.vec_env import PinnedSubprocVecEnv

register_mario_envs()
register_policy_aliases()

__all__ = [
    "ENV_ID",
    "AdaptiveEpsilonCallback",
    "BoostableSchedule",
    "CompressedReplayBuffer",
    "DoubleDQN",
    "DuelingCnnPolicy",
    "DuelingDQNPolicy",
    "ExponentialSchedule",
    "MarioCNN",
    "MarioEpisodeStatsCallback",
    "PinnedSubprocVecEnv",
    "PrioritizedReplayBuffer",
    "ShapedReward",
    "make_mario_shaped",
    "register_mario_envs",
]
