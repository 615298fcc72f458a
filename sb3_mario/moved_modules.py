"""
Where sb3-mario's modules lived before the sub-packages, so that whatever names an old path still loads.

Saved zips name their policy class by import path (``sb3_mario.policies.DuelingCnnPolicy``); pickled
replay buffers and ``VecNormalize`` statistics name their classes (``sb3_mario.buffers``,
``sb3_mario.sum_tree``, ``sb3_mario.vec_env``); a checkpoint taken mid-run names its exploration
schedule (``sb3_mario.schedules``); hyperparameter files name callbacks and buffers. An import of an
old path gets the module's new home: ``sys.modules["sb3_mario.policies"] is sb3_mario.dqn.policies``.
"""

import importlib
import importlib.abc
import importlib.util
import sys
from importlib.machinery import ModuleSpec
from types import ModuleType

# Old module path -> its home since the sub-packages.
MOVED_MODULES = {
    "sb3_mario.env": "sb3_mario.envs.mario",
    "sb3_mario.wrappers": "sb3_mario.envs.wrappers",
    "sb3_mario.reward": "sb3_mario.envs.reward",
    "sb3_mario.stages": "sb3_mario.envs.stages",
    "sb3_mario.vec_env": "sb3_mario.envs.vec_env",
    "sb3_mario.double_dqn": "sb3_mario.dqn.double_dqn",
    "sb3_mario.policies": "sb3_mario.dqn.policies",
    "sb3_mario.buffers": "sb3_mario.dqn.buffers",
    "sb3_mario.sum_tree": "sb3_mario.dqn.sum_tree",
    "sb3_mario.schedules": "sb3_mario.dqn.schedules",
    "sb3_mario.patching": "sb3_mario.zoo.patching",
    "sb3_mario.checkpoints": "sb3_mario.zoo.checkpoints",
    "sb3_mario.tuning": "sb3_mario.zoo.tuning",
}


class MovedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """An import hook that answers each old module path of :data:`MOVED_MODULES` with the new module itself."""

    def find_spec(self, fullname: str, path=None, target=None) -> ModuleSpec | None:
        if fullname not in MOVED_MODULES:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: ModuleSpec) -> ModuleType:
        module = importlib.import_module(MOVED_MODULES[spec.name])
        spec.loader_state = module.__spec__  # the import system sets __spec__ to ours next: put it back after
        return module

    def exec_module(self, module: ModuleType) -> None:
        # The new module has run already: the old name is only another key for it in sys.modules.
        module.__spec__ = module.__spec__.loader_state


def install_moved_module_finder() -> None:
    """Let old module paths import (idempotent)."""
    if not any(isinstance(finder, MovedModuleFinder) for finder in sys.meta_path):
        sys.meta_path.append(MovedModuleFinder())
