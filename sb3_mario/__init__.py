"""
sb3-mario: Super Mario Bros agents trained with Stable-Baselines3 and rl-zoo3.

- :mod:`sb3_mario.envs`: the ``MarioShaped`` env, its wrappers, reward, stages and vectorised envs;
- :mod:`sb3_mario.dqn`: the learner (``DoubleDQN``), its dueling policies, replay buffers and exploration;
- :mod:`sb3_mario.callbacks`: training callbacks for any SB3 algorithm on Mario (episode statistics, stopping);
- :mod:`sb3_mario.zoo`: the rl-zoo3 hook, checkpoints and Optuna sweeps;
- commands: ``python -m sb3_mario.evaluate``, ``.video``, ``.plots``, ``.tuning_results``,
  ``.weight_averaging``
  (safe model loading: :mod:`sb3_mario.loading`).
"""

from sb3_mario.moved_modules import install_moved_module_finder

install_moved_module_finder()

from sb3_mario.callbacks import MarioEpisodeStatsCallback, StopTrainingOnFlagRate, StopTrainingOnTimeLimit  # noqa: E402
from sb3_mario.dqn.buffers import CompressedReplayBuffer, PrioritizedReplayBuffer  # noqa: E402
from sb3_mario.dqn.double_dqn import DoubleDQN  # noqa: E402
from sb3_mario.dqn.exploration import AdaptiveEpsilonCallback  # noqa: E402
from sb3_mario.dqn.policies import DuelingCnnPolicy, DuelingDQNPolicy, MarioCNN, register_policy_aliases  # noqa: E402
from sb3_mario.dqn.schedules import BoostableSchedule, ExponentialSchedule  # noqa: E402
from sb3_mario.envs.mario import ENV_ID, make_mario_shaped, register_mario_envs  # noqa: E402
from sb3_mario.envs.reward import ShapedReward  # noqa: E402
from sb3_mario.envs.vec_env import PinnedSubprocVecEnv  # noqa: E402

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
    "StopTrainingOnFlagRate",
    "StopTrainingOnTimeLimit",
    "make_mario_shaped",
    "register_mario_envs",
]
