"""
The ``MarioShaped`` environment: the emulator's frames, buttons and stages turned into the notebook's
training env (:func:`~sb3_mario.envs.mario.make_mario_shaped`), its shaped reward, the stages'
constants, and the vectorised-env classes sb3-mario runs it in.
"""

from sb3_mario.envs.mario import ENV_ID, make_mario_shaped, register_mario_envs
from sb3_mario.envs.reward import ShapedReward
from sb3_mario.envs.vec_env import LeanVecNormalize, PinnedSubprocVecEnv

__all__ = ["ENV_ID", "LeanVecNormalize", "PinnedSubprocVecEnv", "ShapedReward", "make_mario_shaped", "register_mario_envs"]
