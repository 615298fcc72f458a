"""
rl-zoo3's start-up hook.

``rl_zoo3`` (train, enjoy, record_video) imports a module named ``custom_envs`` when it starts.
Installing sb3-mario installs this one, so those commands know ``MarioShaped``, the dueling policy
and the project's ``hyperparams/`` with no extra flags. rl-zoo3 silently ignores an ``ImportError``
here, so one is turned into an error that cannot be missed.
"""

try:
    from sb3_mario.zoo import install
except ImportError as error:
    raise RuntimeError(f"sb3-mario's rl-zoo3 hook (custom_envs) could not import sb3_mario: {error}") from error

install()
