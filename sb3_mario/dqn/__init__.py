"""
The learner: :class:`~sb3_mario.dqn.double_dqn.DoubleDQN` (SB3's ``DQN`` with Double-DQN targets and
prioritized replay), the dueling Q-network policies, the replay buffers, and the notebook's adaptive
exploration.
"""

from sb3_mario.dqn.buffers import CompressedReplayBuffer, PrioritizedReplayBuffer
from sb3_mario.dqn.double_dqn import DoubleDQN
from sb3_mario.dqn.policies import DuelingCnnPolicy, DuelingDQNPolicy, MarioCNN

__all__ = [
    "CompressedReplayBuffer",
    "DoubleDQN",
    "DuelingCnnPolicy",
    "DuelingDQNPolicy",
    "MarioCNN",
    "PrioritizedReplayBuffer",
]
