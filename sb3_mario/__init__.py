"""sb3-mario: Super Mario Bros agents trained with Stable-Baselines3 and rl-zoo3."""

from sb3_mario.env import ENV_ID, make_mario_shaped, register_mario_envs
from sb3_mario.reward import ShapedReward

register_mario_envs()

__all__ = ["ENV_ID", "ShapedReward", "make_mario_shaped", "register_mario_envs"]
