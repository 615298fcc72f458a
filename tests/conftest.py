# rl-zoo3's start-up hook, imported before any test imports rl_zoo3, as rl-zoo3's own commands do
# (imported after rl_zoo3.exp_manager, it could not patch the half-imported module).
import custom_envs  # noqa: F401
