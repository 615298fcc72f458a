"""What an earlier version saved, under the module paths it had, loads and trains on."""

import sys
import warnings
from pathlib import Path

import numpy as np
from stable_baselines3.common.env_util import make_vec_env

from sb3_mario import AdaptiveEpsilonCallback, DoubleDQN
from sb3_mario.dqn.buffers import PrioritizedReplayBuffer
from sb3_mario.dqn.policies import DuelingCnnPolicy
from sb3_mario.envs.vec_env import LeanVecNormalize

# Saved by commit 28b7522, before the sub-packages (tests/data/make_legacy_artifacts.py says how).
LEGACY = Path(__file__).parent / "data" / "legacy_28b7522"
ENV_KWARGS = dict(frame_size=36, actions="right_only")


def test_a_zip_buffer_and_statistics_saved_before_the_sub_packages_load_and_train_on() -> None:
    venv = make_vec_env("MarioShaped", n_envs=1, seed=1, env_kwargs=ENV_KWARGS)
    env = LeanVecNormalize.load(str(LEGACY / "vecnormalize.pkl"), venv)
    assert env.ret_rms.count > 100  # the statistics of the run's 101 steps
    with warnings.catch_warnings():
        # SB3 only warns when a pickled entry (the mid-run BoostableSchedule, named sb3_mario.schedules) fails.
        warnings.filterwarnings("error", message="Could not deserialize")
        model = DoubleDQN.load(LEGACY / "model.zip", env=env)
    assert isinstance(model.policy, DuelingCnnPolicy)  # named sb3_mario.policies in the zip
    model.load_replay_buffer(LEGACY / "replay_buffer.pkl")  # sb3_mario.buffers and sb3_mario.sum_tree inside
    buffer = model.replay_buffer
    assert isinstance(buffer, PrioritizedReplayBuffer)
    stored = buffer.size()
    assert stored == 99  # callbacks run before the step's transition is stored
    weights = [parameter.detach().clone() for parameter in model.policy.parameters()]

    model.learn(40, reset_num_timesteps=False, callback=AdaptiveEpsilonCallback(frontier_window=1))

    assert model.num_timesteps == 100 + 40
    assert buffer.size() == stored + 40
    assert model._n_updates > 0
    assert any(
        not np.array_equal(before, after.detach()) for before, after in zip(weights, model.policy.parameters(), strict=True)
    )


def test_an_old_module_path_is_the_new_module_under_its_own_name() -> None:
    import sb3_mario.dqn.policies
    import sb3_mario.policies  # noqa: F401  (the path zips saved before the sub-packages name)

    old = sys.modules["sb3_mario.policies"]
    assert old is sb3_mario.dqn.policies
    assert old.__name__ == old.__spec__.name == "sb3_mario.dqn.policies"
    assert Path(old.__spec__.origin).parts[-2:] == ("dqn", "policies.py")  # a spec that still finds its file
