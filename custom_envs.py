"""rl-zoo3's start-up hook: ``rl_zoo3`` imports a module named ``custom_envs`` when train, enjoy or
record_video start. Installing sb3-mario installs this one, so those commands know ``MarioShaped``
and the project's ``hyperparams/`` with no extra flags."""

from sb3_mario.zoo import install

install()
