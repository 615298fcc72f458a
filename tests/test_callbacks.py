"""Adaptive epsilon: frontier and boost rules, and the epsilon SB3's DQN really uses."""

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3 import DQN
from stable_baselines3.common.callbacks import EvalCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import configure
from stable_baselines3.common.vec_env import DummyVecEnv

from sb3_mario.callbacks import MarioEpisodeStatsCallback, StopTrainingOnFlagRate, StopTrainingOnTimeLimit
from sb3_mario.dqn.double_dqn import DoubleDQN
from sb3_mario.dqn.exploration import AdaptiveEpsilonCallback
from sb3_mario.dqn.schedules import BoostableSchedule, ExponentialSchedule
from tests.recorders import EnvEpsilonRecorder, EpsilonRecorder


class Corridor(gym.Env):
    """
    Mario in a corridor: x grows by ``speed`` every step whatever the action; ``length`` steps per
    episode, which end by the ``causes`` in turn.
    """

    observation_space = spaces.Box(0.0, 1.0, (1,), np.float32)
    action_space = spaces.Discrete(2)

    def __init__(
        self,
        speed: int = 8,
        length: int = 20,
        causes: tuple[str, ...] = ("death",),
        stages: tuple[tuple[str, int], ...] = (),
        back: int = 0,
    ) -> None:
        self.speed, self.length, self.causes = speed, length, causes
        self.back = back  # the last `back` steps go left: the episode ends with x_pos below max_x
        self.stages = stages  # (level, speed) of the episodes in turn, named in info["level"]; none: no level
        self.episode = -1

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x, self.max_x, self.t = 40, 40, 0
        self.episode += 1
        if self.stages:
            self.level, self.speed = self.stages[self.episode % len(self.stages)]
        return np.zeros(1, np.float32), self._info()

    def step(self, action):
        self.t += 1
        self.x += -self.speed if self.t > self.length - self.back else self.speed
        self.max_x = max(self.max_x, self.x)
        cause = self.causes[self.episode % len(self.causes)] if self.t == self.length else None
        return np.zeros(1, np.float32), 0.0, self.t == self.length, False, {**self._info(), "termination_cause": cause}

    def _info(self) -> dict:
        return {"x_pos": self.x, "max_x": self.max_x, **({"level": self.level} if self.stages else {})}


def test_frontier_moves_to_the_smallest_of_25_beats() -> None:
    callback = AdaptiveEpsilonCallback()
    assert callback.frontiers.of().frontier == 40
    for max_x in range(100, 124):  # 24 beating episodes: not yet
        callback.end_episode(max_x)
    callback.end_episode(30)  # does not beat the frontier: not counted
    assert callback.frontiers.of().frontier == 40
    callback.end_episode(500)  # the 25th beat
    assert callback.frontiers.of().frontier == 100
    for max_x in [101] * 24:  # beats 100, but the window's minimum is only 101...
        callback.end_episode(max_x)
    callback.end_episode(99)  # ...and this one does not count
    assert callback.frontiers.of().frontier == 100
    callback.end_episode(101)
    assert callback.frontiers.of().frontier == 101


def test_frontier_keeps_its_place_when_the_window_minimum_is_not_higher() -> None:
    callback = AdaptiveEpsilonCallback(frontier_window=3, initial_frontier=100)
    for max_x in (150, 120, 200):
        callback.end_episode(max_x)
    assert callback.frontiers.of().frontier == 120
    # The deque keeps the last 3 beats; the next window's minimum (121) moves it again.
    for max_x in (130, 121, 300):
        callback.end_episode(max_x)
    assert callback.frontiers.of().frontier == 121


def test_frontiers_are_kept_per_stage() -> None:
    callback = AdaptiveEpsilonCallback(frontier_window=2)
    for max_x, level in ((300, "1-1"), (100, "1-2"), (400, "1-1"), (90, "1-2"), (80, "1-3")):
        callback.end_episode(max_x, level)
    # Each stage's window fills with its own episodes only.
    assert {level: f.frontier for level, f in callback.frontiers.stages.items()} == {"1-1": 300, "1-2": 90, "1-3": 40}
    assert list(callback.frontiers.of("1-3").recent_beats) == [80] and callback.frontiers.of("1-3").beats_since_update == 1


def test_boost_is_against_the_episodes_own_stage_frontier() -> None:
    # Episodes alternate between a fast stage (x 40 -> 200) and a slow one (x 40 -> 80); the frontier
    # of each moves after each episode (window 1).
    env = make_vec_env(Corridor, n_envs=1, seed=0, env_kwargs=dict(stages=(("1-1", 8), ("1-2", 2))))
    model = DQN("MlpPolicy", env, learning_starts=10_000, exploration_fraction=0.01, exploration_final_eps=0.1, seed=0)
    callback, recorder = AdaptiveEpsilonCallback(frontier_window=1), EpsilonRecorder()
    model.learn(4 * 20, callback=[callback, recorder], log_interval=None)  # no dump: the logged values stay readable
    epsilons = recorder.epsilons
    # Episode 2 (the slow stage) never reaches the fast stage's frontier (200) but passes its own (40):
    # boosted from its second step.
    np.testing.assert_allclose(epsilons[21:40], 0.5 * 0.998 ** np.arange(19))
    # Episodes 3 and 4 stay at their stage's frontier (200, 80): no boost.
    np.testing.assert_allclose(epsilons[40:], 0.1)
    assert {level: f.frontier for level, f in callback.frontiers.stages.items()} == {"1-1": 200, "1-2": 80}
    assert model.logger.name_to_value["mario/gmax_x/1-2"] == 80


def test_stage_frontiers_are_saved_in_the_zip_and_resumed(tmp_path, capsys) -> None:
    env = make_vec_env(Corridor, n_envs=1, seed=0, env_kwargs=dict(stages=(("1-1", 8), ("1-2", 2))))
    model = DQN("MlpPolicy", env, learning_starts=10_000, seed=0)
    model.learn(3 * 20, callback=AdaptiveEpsilonCallback(frontier_window=2))
    model.save(tmp_path / "model.zip")
    expected = {
        "frontiers": {
            "1-1": {"frontier": 200.0, "recent_beats": [200.0, 200.0], "beats_since_update": 0},
            "1-2": {"frontier": 40.0, "recent_beats": [80.0], "beats_since_update": 1},
        }
    }
    loaded = DQN.load(tmp_path / "model.zip", env=env)
    assert loaded.adaptive_epsilon_state == expected
    resumed = AdaptiveEpsilonCallback(frontier_window=2, verbose=1)
    loaded.learn(1, callback=resumed, reset_num_timesteps=False)
    assert resumed.frontiers.of("1-2").state() == expected["frontiers"]["1-2"]
    assert "1-2: frontier at x=40, recent frontier-beating max_x [80] (1 since the last update)" in capsys.readouterr().out


def test_a_single_frontier_saved_before_stages_becomes_each_stages(tmp_path) -> None:
    env = make_vec_env(Corridor, n_envs=1, seed=0, env_kwargs=dict(stages=(("1-1", 8),)))
    model = DQN("MlpPolicy", env, learning_starts=10_000, seed=0)
    model.adaptive_epsilon_state = {"frontier": 150.0, "recent_beats": [150.0, 170.0], "beats_since_update": 2}
    callback = AdaptiveEpsilonCallback(frontier_window=25)
    model.learn(10, callback=callback)  # half an episode: nothing ended yet, the old state is kept as it was
    assert model.adaptive_epsilon_state["unseen_stages"]["frontier"] == 150.0
    assert callback.frontiers.of("1-1").state() == {"frontier": 150.0, "recent_beats": [150.0, 170.0], "beats_since_update": 2}


def test_exponential_schedule() -> None:
    schedule = ExponentialSchedule(total_timesteps=1_000_000)
    assert schedule(1.0) == pytest.approx(0.99)
    assert schedule(1.0 - 1000 / 1_000_000) == pytest.approx(0.99 * 0.999985**1000)
    assert schedule(0.0) == 0.1  # floor after ~153k steps


def test_boostable_schedule() -> None:
    schedule = BoostableSchedule(lambda progress: 0.1 + progress)
    assert schedule(0.5) == pytest.approx(0.6)
    schedule.boost = 0.5
    assert schedule(0.0) == 0.5 and schedule(0.9) == pytest.approx(1.0)


def run_corridor(n_envs: int = 1, total: int = 200, **callback_kwargs) -> tuple[DQN, AdaptiveEpsilonCallback, list[float]]:
    env = make_vec_env(Corridor, n_envs=n_envs, seed=0)
    model = DQN("MlpPolicy", env, learning_starts=10_000, exploration_fraction=0.01, exploration_final_eps=0.1, seed=0)
    callback, recorder = AdaptiveEpsilonCallback(**callback_kwargs), EpsilonRecorder()
    original_schedule = model.exploration_schedule
    model.learn(total, callback=[callback, recorder])
    assert model.exploration_schedule is original_schedule  # restored after training
    return model, callback, recorder.epsilons


def test_boost_changes_the_epsilon_dqn_uses() -> None:
    _, callback, epsilons = run_corridor(total=20 * 30)
    floor = 0.1
    # Steps 1 and 2 are still on SB3's linear schedule (1.0 -> 0.1 over 1% of 600 steps = 6 steps).
    assert epsilons[0] == 1.0
    # Episode 1, once at the floor: x passes the frontier (40) at every step, but the boost starts only once:
    # the step after the first frontier pass at the floor uses 0.5, then 0.5 * 0.998 per step.
    first_boost = epsilons.index(0.5)
    np.testing.assert_allclose(epsilons[first_boost:20], 0.5 * 0.998 ** np.arange(20 - first_boost))
    # Each of the next 24 episodes boosts again from its second step: x=48 > 40 on its first step.
    for episode in range(1, 25):
        start = 20 * episode
        assert epsilons[start] == floor  # the boost ended with the episode
        np.testing.assert_allclose(epsilons[start + 1 : start + 20], 0.5 * 0.998 ** np.arange(19))
    # After the 25th episode the frontier is x=200, which nobody passes: the floor from then on.
    assert callback.frontiers.of().frontier == 40 + 8 * 20
    np.testing.assert_allclose(epsilons[25 * 20 :], floor)


def test_exponential_base_and_no_boost_before_its_floor() -> None:
    _, _, epsilons = run_corridor(
        total=60,
        base_schedule="exponential",
        exponential_initial=0.99,
        exponential_decay=0.99,
        exponential_final=0.5,
        boost_epsilon=0.95,
    )
    # The notebook's per-step decay: the k-th action (1-based) uses 0.99 * decay^(k-1). It would take
    # 68 steps to reach the floor, so Mario passing the frontier at every step never triggers the boost.
    expected = 0.99 * 0.99 ** np.arange(60)
    assert (expected > 0.5).all()
    np.testing.assert_allclose(epsilons, expected)


def test_shared_epsilon_with_several_envs_is_the_largest_boost() -> None:
    # Two corridors of different lengths: their episodes, and so their boosts, fall out of step.
    env = make_vec_env(Corridor, n_envs=2, seed=0, env_kwargs=None)
    env.envs[1].unwrapped.length = 13
    model = DQN("MlpPolicy", env, learning_starts=10_000, exploration_fraction=0.01, exploration_final_eps=0.1, seed=0)
    callback, recorder = AdaptiveEpsilonCallback(), EpsilonRecorder()
    model.learn(2 * 120, callback=[callback, recorder])
    epsilons = np.array(recorder.epsilons)
    # Rebuild each env's own boost from its episode boundaries and check epsilon = max of the two.
    boosts = np.zeros((2, len(epsilons)))
    for env_index, length in enumerate((20, 13)):
        for step in range(len(epsilons)):
            step_in_episode = step % length  # 0 = first step of an episode
            if step_in_episode >= 1 and step >= 3:  # boosted from its second step, once at the floor
                boosts[env_index, step] = 0.5 * 0.998 ** (step_in_episode - 1)
    at_floor = np.arange(len(epsilons)) >= 3
    expected = np.maximum(0.1, boosts.max(axis=0))
    np.testing.assert_allclose(epsilons[at_floor][20:], expected[at_floor][20:])
    assert callback.env_boosts.shape == (2,)


def test_per_env_epsilons_follow_each_envs_own_boost() -> None:
    # As above, with DoubleDQN(per_env_exploration=True): each env's epsilon is its own boost.
    env = make_vec_env(Corridor, n_envs=2, seed=0, env_kwargs=None)
    env.envs[1].unwrapped.length = 13
    model = DoubleDQN("MlpPolicy", env, learning_starts=10_000, exploration_fraction=0.01, exploration_final_eps=0.1, seed=0)
    model.per_env_exploration = True
    recorder = EnvEpsilonRecorder()
    model.learn(2 * 120, callback=[recorder, AdaptiveEpsilonCallback()])  # the rates before this step's update
    epsilons = np.array(recorder.epsilons)  # (steps, 2): the epsilon of each env's action just taken
    boosts = np.zeros((len(epsilons), 2))
    for env_index, length in enumerate((20, 13)):
        for step in range(len(epsilons)):
            step_in_episode = step % length
            if step_in_episode >= 1:
                boosts[step, env_index] = 0.5 * 0.998 ** (step_in_episode - 1)
    np.testing.assert_allclose(epsilons[20:], np.maximum(0.1, boosts[20:]))  # after both first episodes (boosted late)
    assert not np.allclose(epsilons[20:, 0], epsilons[20:, 1])  # not one shared epsilon


def test_episode_stats_callback_logs_rates() -> None:
    causes = ("death", "stall", "flag", "death")
    env = make_vec_env(Corridor, n_envs=1, seed=0, env_kwargs=dict(causes=causes))
    model = DQN("MlpPolicy", env, learning_starts=10_000, seed=0)
    stats = MarioEpisodeStatsCallback(window=4)
    model.learn(20 * 9, callback=stats, log_interval=None)  # no dump: the last recorded values stay readable
    assert list(stats.max_x) == [200] * 4
    # Episodes 5..8 of the cycle ended stall, flag, death, death: the rates over the 4-episode window.
    assert list(stats.causes) == ["stall", "flag", "death", "death"]
    logged = model.logger.name_to_value
    assert (logged["mario/death_rate"], logged["mario/stall_rate"], logged["mario/flag_rate"]) == (0.5, 0.25, 0.25)
    assert (logged["mario/ep_max_x_mean"], logged["mario/ep_max_x_max"]) == (200.0, 200.0)


def test_episode_stats_per_stage() -> None:
    causes = ("flag", "death", "death")
    stages = (("1-1", 8), ("1-2", 2))
    env = make_vec_env(Corridor, n_envs=1, seed=0, env_kwargs=dict(causes=causes, stages=stages))
    model = DQN("MlpPolicy", env, learning_starts=10_000, seed=0)
    stats = MarioEpisodeStatsCallback(window=2)
    model.learn(20 * 6, callback=stats, log_interval=None)
    # Episodes 1..6: 1-1 flag, 1-2 death, 1-1 death, 1-2 flag, 1-1 death, 1-2 death.
    logged = model.logger.name_to_value
    assert (logged["mario/1-1/ep_max_x_mean"], logged["mario/1-2/ep_max_x_mean"]) == (200.0, 80.0)
    assert (logged["mario/1-1/flag_rate"], logged["mario/1-2/flag_rate"]) == (0.0, 0.5)  # each stage's last 2


def test_episode_stats_leave_out_episodes_started_from_a_snapshot() -> None:
    model = DQN("MlpPolicy", "CartPole-v1", learning_starts=10_000, seed=0)
    model.set_logger(configure(None, []))
    stats = MarioEpisodeStatsCallback(window=10)
    stats.init_callback(model)
    ends = [
        dict(max_x=900, termination_cause="death", level="1-1"),
        dict(max_x=3161, termination_cause="flag", level="1-1", frontier_start=True),  # started at x = 2800
        dict(max_x=700, termination_cause="stall", level="1-1", frontier_start=False),
    ]
    stats.update_locals({"infos": ends, "dones": np.ones(3, dtype=bool)})
    stats.on_step()
    assert list(stats.max_x) == [900, 700] and list(stats.causes) == ["death", "stall"]
    assert model.logger.name_to_value["mario/flag_rate"] == 0.0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"base_schedule": "linear"}, r"base_schedule='linear' is not valid; valid choices: model, exponential"),
        ({"boost_epsilon": 1.5}, r"boost_epsilon=1.5"),
        ({"boost_decay": 0}, r"boost_decay=0"),
        ({"frontier_window": 0}, r"frontier_window=0"),
    ],
)
def test_bad_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AdaptiveEpsilonCallback(**kwargs)


class FlagRun(gym.Env):
    """Three steps to the flag: an episode reaches it (``is_success``) only if every action is 1."""

    observation_space = spaces.Box(0.0, 1.0, (1,), np.float32)
    action_space = spaces.Discrete(2)

    def __init__(self) -> None:
        self.episodes = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t, self.clean = 0, True
        return np.zeros(1, np.float32), {}

    def step(self, action):
        self.t += 1
        self.clean = self.clean and int(action) == 1
        done = self.t == 3
        self.episodes += done
        return np.zeros(1, np.float32), 0.0, done, False, {"is_success": done and self.clean}


def greedy_dqn(action: int) -> DQN:
    """A DQN on FlagRun whose greedy action is always ``action`` (it never trains)."""
    model = DQN("MlpPolicy", FlagRun(), learning_starts=10_000, seed=0)
    for q_net in (model.q_net, model.q_net_target):
        last = [module for module in q_net.modules() if isinstance(module, th.nn.Linear)][-1]
        with th.no_grad():
            last.weight.zero_()
            last.bias.copy_(th.tensor([1.0 - action, float(action)]))
    return model


@pytest.mark.parametrize(
    "greedy_action, epsilon, stops",
    [
        (1, 0.0, True),  # every evaluation episode and every epsilon episode reaches the flag
        (1, 1.0, False),  # greedy episodes do, random ones (1 in 8) do not
        (0, 0.0, False),  # greedy episodes do not: no epsilon check at all
    ],
)
def test_stop_on_flag_rate_after_an_evaluation(greedy_action: int, epsilon: float, stops: bool) -> None:
    model = greedy_dqn(greedy_action)
    eval_env = DummyVecEnv([FlagRun])
    stop = StopTrainingOnFlagRate(flag_rate=0.8, n_episodes=20, epsilon=epsilon)
    evaluation = EvalCallback(eval_env, callback_after_eval=stop, eval_freq=30, n_eval_episodes=5, verbose=0)
    model.learn(90, callback=evaluation)  # train_freq 4: 92 steps, evaluations at 30, 60 and 90
    episodes = eval_env.envs[0].unwrapped.episodes
    if stops:
        assert model.num_timesteps == 30 and episodes == 5 + 20  # stopped after the first evaluation
    else:
        assert model.num_timesteps == 92
        assert episodes == 3 * (5 + (20 if greedy_action == 1 else 0))
    assert evaluation._is_success_buffer == [bool(greedy_action)] * 5


def test_stop_on_flag_rate_needs_an_evaluation_as_parent() -> None:
    model = greedy_dqn(1)
    with pytest.raises(TypeError, match="must be an EvalCallback's callback_after_eval"):
        model.learn(10, callback=StopTrainingOnFlagRate())


@pytest.mark.parametrize("minutes, steps", [(0.5, 30), (1.0, 60), (10.0, 100)])
def test_stop_on_time_limit_after_its_minutes(monkeypatch: pytest.MonkeyPatch, minutes: float, steps: int) -> None:
    # A clock that advances one second per reading: the reading at training start is 0 s, the
    # callback's reading at step n is n s, so training stops at the step that reaches the limit.
    seconds = iter(range(10_000))
    monkeypatch.setattr("sb3_mario.callbacks.time.monotonic", lambda: float(next(seconds)))
    model = DQN("MlpPolicy", FlagRun(), learning_starts=10_000, seed=0)
    model.learn(100, callback=StopTrainingOnTimeLimit(minutes=minutes))
    assert model.num_timesteps == steps


def test_stop_on_time_limit_refuses_a_limit_that_is_not_positive() -> None:
    with pytest.raises(ValueError, match="minutes=0 must be a positive number"):
        StopTrainingOnTimeLimit(minutes=0)


def test_callbacks_read_max_x_not_the_final_x_pos() -> None:
    # 15 steps right and 5 back: each episode's max_x is 40 + 15 * 8 = 160, its final x_pos 120.
    env = make_vec_env(Corridor, n_envs=1, seed=0, env_kwargs=dict(back=5))
    model = DQN("MlpPolicy", env, learning_starts=10_000, seed=0)
    adaptive, stats = AdaptiveEpsilonCallback(frontier_window=1), MarioEpisodeStatsCallback()
    model.learn(2 * 20, callback=[adaptive, stats], log_interval=None)
    assert adaptive.frontiers.of().frontier == 160
    assert model.adaptive_epsilon_state["frontiers"][""]["recent_beats"] == [160.0]
    assert model.logger.name_to_value["mario/ep_max_x_mean"] == 160
