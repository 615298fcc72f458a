"""
Training callbacks of the method: the notebook's adaptive exploration, and Mario episode statistics
(flag, death and stall rates, furthest x) for the logger. The callbacks that keep a run's work safe
(checkpoints, Ctrl-C) are in :mod:`sb3_mario.checkpoints`.
"""

from collections import deque
from collections.abc import Iterable
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from sb3_mario.schedules import BoostableSchedule, ExponentialSchedule
from sb3_mario.stages import START_X

BASE_SCHEDULES = ("model", "exponential")
STATE_ATTRIBUTE = "adaptive_epsilon_state"


class StageFrontier:
    """
    The exploration frontier of one stage (see :class:`AdaptiveEpsilonCallback`): the ``max_x`` of
    the last ``window`` episodes that beat it, and where it stands.

    :param window: Frontier-beating episodes per frontier update.
    :param frontier: Where it starts.
    :param recent_beats: ``max_x`` of the latest frontier-beating episodes (a resumed run's).
    :param beats_since_update: Frontier-beating episodes since the last update (a resumed run's).
    """

    def __init__(self, window: int, frontier: float, recent_beats: Iterable[float] = (), beats_since_update: int = 0) -> None:
        self.window = window
        self.frontier = float(frontier)
        self.recent_beats: deque[float] = deque(recent_beats, maxlen=window)
        self.beats_since_update = int(beats_since_update)

    def end_episode(self, max_x: float) -> bool:
        """
        Count an episode's best x position; return whether the frontier moved.

        :param max_x: The episode's ``max_x``.
        """
        if max_x <= self.frontier:
            return False
        self.recent_beats.append(max_x)
        self.beats_since_update += 1
        if self.beats_since_update < self.window:
            return False
        self.beats_since_update = 0
        if min(self.recent_beats) <= self.frontier:
            return False
        self.frontier = min(self.recent_beats)
        return True

    def state(self) -> dict[str, Any]:
        """A JSON-ready copy (saved in the model's zip)."""
        return {
            "frontier": self.frontier,
            "recent_beats": [float(max_x) for max_x in self.recent_beats],
            "beats_since_update": self.beats_since_update,
        }

    def __str__(self) -> str:
        recent = [round(max_x) for max_x in self.recent_beats]
        return (
            f"frontier at x={self.frontier:.0f}, recent frontier-beating max_x {recent} "
            f"({self.beats_since_update} since the last update)"
        )


class AdaptiveEpsilonCallback(BaseCallback):
    """
    Raise exploration when Mario reaches ground he has rarely reached before (the notebook's
    "adaptive epsilon").

    Once the base exploration schedule has reached its floor, the agent acts greedily in the part of
    the level it knows; but where it has hardly been, its Q-values are still noise. So the callback
    keeps a *global frontier* per stage (:class:`StageFrontier`): after each episode whose ``max_x``
    beats its stage's frontier, that ``max_x`` is remembered (the last ``frontier_window`` such);
    every ``frontier_window``-th such episode the frontier moves to the smallest of them if that is
    higher. (The smallest, so one lucky random run does not move the frontier past ground the agent
    cannot reach reliably.) The first time in an episode that Mario passes his stage's frontier,
    epsilon jumps to ``boost_epsilon`` and decays by ``boost_decay`` per step back to the floor, for
    the rest of that episode. An env that plays several stages names each episode's in
    ``info["level"]``; envs that do not name one share a single frontier.

    The notebook's loop resets epsilon to the floor on the very next step (its ``else`` branch
    runs every step once ``o_flag`` is set), so its boost lasts a single action. This callback
    implements the stated intent, a boost that decays over the rest of the episode.

    SB3's ``DQN`` recomputes ``exploration_rate`` from ``exploration_schedule`` after every callback
    call, so the callback swaps in a :class:`~sb3_mario.schedules.BoostableSchedule` for the
    duration of training and restores the original schedule at the end.

    The frontiers are kept on the model as ``model.adaptive_epsilon_state`` (a plain dict, saved in
    the zip's JSON), so a run resumed from a checkpoint carries on from the same frontiers. (A state
    saved before frontiers were kept per stage holds one frontier: it becomes the frontier of every
    stage the resumed run plays.)

    With ``n_envs > 1``, each env keeps its own episode state (its boost, whether it has boosted
    this episode), but SB3 draws one epsilon coin per vectorised step for all envs; the epsilon used
    is the *largest* current boost (or the base schedule, if higher): new ground anywhere is
    explored at once, at the price of extra random actions in the other envs meanwhile.

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
        self.frontier_window = frontier_window
        self.initial_frontier = float(initial_frontier)
        self.base_schedule = base_schedule
        self.exponential = ExponentialSchedule(exponential_initial, exponential_decay, exponential_final)
        self.frontiers: dict[str, StageFrontier] = {}  # stage ("1-1"; "" for envs that name none) -> frontier
        self._unseen_stage_state: dict[str, Any] | None = None  # a pre-per-stage state, for every stage

    def frontier_of(self, level: str = "") -> StageFrontier:
        """
        The frontier of a stage (made at ``initial_frontier`` when first asked for).

        :param level: The stage, as ``info["level"]`` names it (``""``: an env that names none).
        """
        if level not in self.frontiers:
            state = self._unseen_stage_state or {"frontier": self.initial_frontier}
            self.frontiers[level] = StageFrontier(self.frontier_window, **state)
        return self.frontiers[level]

    def _on_training_start(self) -> None:
        model = self.model
        saved_state = getattr(model, STATE_ATTRIBUTE, None)
        if saved_state is not None:  # resumed from a checkpoint
            if "frontiers" in saved_state:
                self.frontiers = {
                    level: StageFrontier(self.frontier_window, **state) for level, state in saved_state["frontiers"].items()
                }
                self._unseen_stage_state = saved_state.get("unseen_stages")
            else:
                self._unseen_stage_state = dict(saved_state)
        self._save_state()
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
            stages = list(self.frontiers.items())
            if self._unseen_stage_state is not None:
                stages.append(("every stage", StageFrontier(self.frontier_window, **self._unseen_stage_state)))
            described = "; ".join(f"{level or 'the env'}: {frontier}" for level, frontier in stages)
            print(f"AdaptiveEpsilonCallback: resumed at epsilon {model.exploration_rate:.6f}; {described}")
        n_envs = self.training_env.num_envs
        self.env_boosts = np.zeros(n_envs)
        self.boosted_this_episode = np.zeros(n_envs, dtype=bool)

    def _on_training_end(self) -> None:
        self.model.exploration_schedule = self._original_schedule

    def _on_step(self) -> bool:
        at_floor = self.schedule.base(self.model._current_progress_remaining) <= self.floor
        for env_index, (info, done) in enumerate(zip(self.locals["infos"], self.locals["dones"], strict=True)):
            level = info.get("level", "")
            if done:
                self.end_episode(info["max_x"], level)
                self._save_state()
                key = "mario/gmax_x" if len(self.frontiers) == 1 else f"mario/gmax_x/{level}"
                self.logger.record(key, self.frontiers[level].frontier)
                self.env_boosts[env_index] = 0.0
                self.boosted_this_episode[env_index] = False
            elif self.boosted_this_episode[env_index]:
                self.env_boosts[env_index] = max(self.floor, self.env_boosts[env_index] * self.boost_decay)
            elif at_floor and info["x_pos"] > self.frontier_of(level).frontier:
                self.env_boosts[env_index] = self.boost_epsilon
                self.boosted_this_episode[env_index] = True
        self.schedule.boost = float(self.env_boosts.max())
        return True

    def _save_state(self) -> None:
        state: dict[str, Any] = {"frontiers": {level: frontier.state() for level, frontier in self.frontiers.items()}}
        if self._unseen_stage_state is not None:
            state["unseen_stages"] = self._unseen_stage_state
        setattr(self.model, STATE_ATTRIBUTE, state)

    def end_episode(self, max_x: float, level: str = "") -> None:
        """
        Update a stage's frontier with an episode's best x position.

        :param max_x: The episode's ``max_x``.
        :param level: The episode's stage (``info["level"]``).
        """
        frontier = self.frontier_of(level)
        if frontier.end_episode(max_x) and self.verbose >= 1:
            print(f"AdaptiveEpsilonCallback: frontier{f' of {level}' if level else ''} moved to x={frontier.frontier:.0f}")


class MarioEpisodeStatsCallback(BaseCallback):
    """
    Log Mario's episode outcomes next to SB3's ``rollout/ep_rew_mean``, over the same kind of
    window: mean and max ``max_x``, and the rates of flags, deaths and stall time-outs. With
    several stages (``info["level"]``), also each stage's mean ``max_x`` and flag rate over its own
    last ``window`` episodes (``mario/<stage>/ep_max_x_mean``, ``mario/<stage>/flag_rate``).

    :param window: Number of most recent episodes the statistics cover.
    :param verbose: Verbosity level.
    """

    def __init__(self, window: int = 100, verbose: int = 0) -> None:
        super().__init__(verbose)
        self.window = window
        self.max_x: deque[float] = deque(maxlen=window)
        self.causes: deque[str | None] = deque(maxlen=window)
        self.stage_max_x: dict[str, deque[float]] = {}
        self.stage_flags: dict[str, deque[bool]] = {}

    def _on_step(self) -> bool:
        ended = [info for info, done in zip(self.locals["infos"], self.locals["dones"], strict=True) if done]
        for info in ended:
            self.max_x.append(info["max_x"])
            self.causes.append(info.get("termination_cause"))
            level = info.get("level", "")
            self.stage_max_x.setdefault(level, deque(maxlen=self.window)).append(info["max_x"])
            self.stage_flags.setdefault(level, deque(maxlen=self.window)).append(info.get("termination_cause") == "flag")
        if ended:  # SB3's DQN writes its logs only when an episode ends
            self.logger.record("mario/ep_max_x_mean", float(np.mean(self.max_x)))
            self.logger.record("mario/ep_max_x_max", float(np.max(self.max_x)))
            for cause in ("flag", "death", "stall"):
                self.logger.record(f"mario/{cause}_rate", self.causes.count(cause) / len(self.causes))
            if len(self.stage_max_x) > 1:
                for level in sorted(self.stage_max_x):
                    self.logger.record(f"mario/{level}/ep_max_x_mean", float(np.mean(self.stage_max_x[level])))
                    self.logger.record(f"mario/{level}/flag_rate", float(np.mean(self.stage_flags[level])))
        return True
