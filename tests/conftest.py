import sys
from pathlib import Path

# rl-zoo3's start-up hook, imported before any test imports rl_zoo3, as rl-zoo3's own commands do
# (imported after rl_zoo3.exp_manager, it could not patch the half-imported module).
import custom_envs  # noqa: F401

# Test helpers (e.g. ram_driver) live beside the tests.
sys.path.insert(0, str(Path(__file__).parent))
