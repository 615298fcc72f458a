"""
Write the artifacts of ``test_legacy_artifacts.py`` with the code of another commit: a DoubleDQN zip
saved mid-run (its exploration schedule a ``BoostableSchedule``), its prioritized lz4 replay buffer
and its ``LeanVecNormalize`` statistics, on a tiny frame size so they stay small.

    git worktree add /tmp/sb3-mario-28b7522 28b7522
    PYTHONPATH=/tmp/sb3-mario-28b7522 .venv/bin/python tests/data/make_legacy_artifacts.py tests/data/legacy_28b7522
"""

import sys
from pathlib import Path

from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env

import sb3_mario
from sb3_mario import AdaptiveEpsilonCallback, DoubleDQN
from sb3_mario.vec_env import LeanVecNormalize

ENV_KWARGS = dict(frame_size=36, actions="right_only")
SAVE_AT = 100


class SaveMidRun(BaseCallback):
    def __init__(self, output: Path) -> None:
        super().__init__()
        self.output = output

    def _on_step(self) -> bool:
        if self.num_timesteps == SAVE_AT:
            self.model.save(self.output / "model.zip")
            self.model.save_replay_buffer(self.output / "replay_buffer.pkl")
            self.model.get_vec_normalize_env().save(str(self.output / "vecnormalize.pkl"))
        return True


def main() -> None:
    output = Path(sys.argv[1])
    output.mkdir(parents=True, exist_ok=True)
    print(f"sb3_mario from {sb3_mario.__file__}")
    env = LeanVecNormalize(make_vec_env("MarioShaped", n_envs=1, seed=0, env_kwargs=ENV_KWARGS), norm_obs=False)
    model = DoubleDQN(
        "DuelingCnnPolicy",
        env,
        buffer_size=500,
        learning_starts=50,
        batch_size=8,
        n_steps=3,
        gamma=0.9,
        prioritized_replay=True,
        replay_buffer_kwargs=dict(handle_timeout_termination=False, codec="lz4"),
        policy_kwargs=dict(net_arch=[16], features_extractor_kwargs=dict(batch_norm=False)),
        exploration_fraction=0.1,
        seed=0,
    )
    model.learn(SAVE_AT + 1, callback=[AdaptiveEpsilonCallback(frontier_window=1), SaveMidRun(output)])


if __name__ == "__main__":
    main()
