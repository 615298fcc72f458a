"""sb3-mario: Super Mario Bros agents trained with Stable-Baselines3 and rl-zoo3."""

from sb3_mario.callbacks import AdaptiveEpsilonCallback, MarioEpisodeStatsCallback
from sb3_mario.env import ENV_ID, make_mario_shaped, register_mario_envs
from sb3_mario.policies import DuelingCnnPolicy, DuelingDQNPolicy, MarioCNN, register_policy_aliases
from sb3_mario.reward import ShapedReward
from sb3_mario.schedules import BoostableSchedule, ExponentialSchedule

register_mario_envs()
register_policy_aliases()

__all__ = [
    "ENV_ID",
    "AdaptiveEpsilonCallback",
    "BoostableSchedule",
    "DuelingCnnPolicy",
    "DuelingDQNPolicy",
    "ExponentialSchedule",
    "MarioCNN",
    "MarioEpisodeStatsCallback",
    "ShapedReward",
    "make_mario_shaped",
    "register_mario_envs",
]
