"""The notebook's adaptive exploration, as an SB3 callback for ``DQN`` and :class:`~sb3_mario.dqn.double_dqn.DoubleDQN`."""

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from sb3_mario.dqn.frontier import StageFrontiers
from sb3_mario.dqn.schedules import BoostableSchedule, ExponentialSchedule
from sb3_mario.envs.stages import START_X

BASE_SCHEDULES = ("model", "exponential")
STATE_ATTRIBUTE = "adaptive_epsilon_state"


class AdaptiveEpsilonCallback(BaseCallback):
    """
    Raise exploration when Mario reaches ground he has rarely reached before (the notebook's
    "adaptive epsilon").

    Once the base schedule has reached its floor, the agent acts greedily where it knows the level,
    but where it has hardly been its Q-values are noise. So each stage keeps a frontier
    (:class:`~sb3_mario.dqn.frontier.StageFrontiers`), and the first time in an episode that Mario
    passes it, epsilon jumps to ``boost_epsilon`` and decays by ``boost_decay`` per step back to the
    floor for the rest of the episode. (The notebook's loop reset epsilon on the very next step, so
    its boost lasted one action; this implements its stated intent.) Envs that name each episode's
    stage in ``info["level"]`` get one frontier per stage.

    SB3's ``DQN`` recomputes ``exploration_rate`` from ``exploration_schedule`` after every callback
    call, so the callback swaps in a :class:`~sb3_mario.dqn.schedules.BoostableSchedule` while it
    trains. The frontiers are saved on the model (``model.adaptive_epsilon_state``, in the zip's JSON):
    a run resumed from a checkpoint carries on from them. With ``n_envs > 1`` SB3 draws one epsilon
    coin per vectorised step: the epsilon used is the largest current boost of any env; with
    :class:`~sb3_mario.dqn.double_dqn.DoubleDQN`'s ``per_env_exploration`` each env explores with its own.

    :param boost_epsilon: Epsilon right after Mario passes the frontier (notebook: 0.5).
    :param boost_decay: Per-step factor of the boost (notebook: 0.998).
    :param frontier_window: Frontier-beating episodes per frontier update (notebook: 25).
    :param initial_frontier: Frontier before any episode (notebook: 40, where Mario starts on every stage).
    :param base_schedule: ``"model"``: the algorithm's own (linear) schedule, from its
        ``exploration_*`` arguments; ``"exponential"``: the notebook's per-step decay, from the
        ``exponential_*`` arguments below (the algorithm's ``exploration_*`` are then unused).
    :param exponential_initial: Initial epsilon of the exponential schedule (notebook: 0.99).
    :param exponential_decay: Per-step decay of the exponential schedule (notebook: 0.999985).
    :param exponential_final: Floor of the exponential schedule (notebook: 0.1).
    :param verbose: Verbosity level: 1 prints each frontier move.
    """

    def __init__(
        self,
        boost_epsilon: float = 0.5,
        boost_decay: float = 0.998,
        frontier_window: int = 25,
        initial_frontier: float = START_X,
        base_schedule: str = "model",
        exponential_initial: float = 0.99,
        exponential_decay: float = 0.999985,
        exponential_final: float = 0.1,
        verbose: int = 0,
    ) -> None:
        super().__init__(verbose)
        if base_schedule not in BASE_SCHEDULES:
            raise ValueError(f"base_schedule={base_schedule!r} is not valid; valid choices: {', '.join(BASE_SCHEDULES)}")
        if not 0.0 <= boost_epsilon <= 1.0:
            raise ValueError(f"boost_epsilon={boost_epsilon!r} must be in [0, 1]")
        if not 0.0 < boost_decay <= 1.0:
            raise ValueError(f"boost_decay={boost_decay!r} must be in (0, 1]")
        if frontier_window < 1:
            raise ValueError(f"frontier_window={frontier_window!r} must be a positive integer")
        self.boost_epsilon = boost_epsilon
        self.boost_decay = boost_decay
        self.base_schedule = base_schedule
        self.exponential = ExponentialSchedule(exponential_initial, exponential_decay, exponential_final)
        self.frontiers = StageFrontiers(frontier_window, initial_frontier)

    def _on_training_start(self) -> None:
        model = self.model
        saved_state = getattr(model, STATE_ATTRIBUTE, None)
        if saved_state is not None:  # resumed from a checkpoint
            self.frontiers = StageFrontiers.from_state(saved_state, self.frontiers.window, self.frontiers.initial_frontier)
        setattr(model, STATE_ATTRIBUTE, self.frontiers.state())
        self._original_schedule = model.exploration_schedule
        if self.base_schedule == "exponential":
            self.exponential.total_timesteps = model._total_timesteps
            self.floor = self.exponential.final
            self.schedule = BoostableSchedule(self.exponential)
        else:
            self.floor = model.exploration_final_eps
            self.schedule = BoostableSchedule(model.exploration_schedule)
        model.exploration_schedule = self.schedule
        model.exploration_rate = self.schedule(model._current_progress_remaining)
        if saved_state is not None and self.verbose >= 1:
            print(f"AdaptiveEpsilonCallback: resumed at epsilon {model.exploration_rate:.6f}; {self.frontiers}")
        n_envs = self.training_env.num_envs
        self.env_boosts = np.zeros(n_envs)
        self.boosted_this_episode = np.zeros(n_envs, dtype=bool)
        self.schedule.env_boosts = self.env_boosts  # updated in place by _on_step

    def _on_training_end(self) -> None:
        self.model.exploration_schedule = self._original_schedule

    def _on_step(self) -> bool:
        at_floor = self.schedule.base(self.model._current_progress_remaining) <= self.floor
        for env_index, (info, done) in enumerate(zip(self.locals["infos"], self.locals["dones"], strict=True)):
            level = info.get("level", "")
            if done:
                self.end_episode(info["max_x"], level)
                setattr(self.model, STATE_ATTRIBUTE, self.frontiers.state())
                key = "mario/gmax_x" if len(self.frontiers) == 1 else f"mario/gmax_x/{level}"
                self.logger.record(key, self.frontiers.of(level).frontier)
                self.env_boosts[env_index] = 0.0
                self.boosted_this_episode[env_index] = False
            elif self.boosted_this_episode[env_index]:
                self.env_boosts[env_index] = max(self.floor, self.env_boosts[env_index] * self.boost_decay)
            elif at_floor and info["x_pos"] > self.frontiers.of(level).frontier:
                self.env_boosts[env_index] = self.boost_epsilon
                self.boosted_this_episode[env_index] = True
        self.schedule.boost = float(self.env_boosts.max())
        return True

    def end_episode(self, max_x: float, level: str = "") -> None:
        """
        Update a stage's frontier with an episode's best x position.

        :param max_x: The episode's ``max_x``.
        :param level: The episode's stage (``info["level"]``).
        """
        if self.frontiers.end_episode(max_x, level) and self.verbose >= 1:
            where = f" of {level}" if level else ""
            print(f"AdaptiveEpsilonCallback: frontier{where} moved to x={self.frontiers.of(level).frontier:.0f}")
