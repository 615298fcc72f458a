"""
sb3-mario's rl-zoo3 integration: the start-up hook that wires the project into ``rl_zoo3.train``,
``enjoy`` and ``record_video`` (:mod:`~sb3_mario.zoo.hook`), the patch mechanism it uses, the
checkpoint and stop callbacks it adds, and the Optuna sweep pieces.
"""

from sb3_mario.zoo.hook import install

__all__ = ["install"]
