"""
The exploration frontiers of :class:`~sb3_mario.dqn.exploration.AdaptiveEpsilonCallback`: how far
Mario reliably gets on each stage, and how that is saved with a model.
"""

from collections import deque
from collections.abc import Iterable
from typing import Any


class StageFrontier:
    """
    The exploration frontier of one stage: the ``max_x`` of the last ``window`` episodes that beat
    it, and where it stands. Every ``window``-th frontier-beating episode, the frontier moves to the
    smallest of those ``max_x`` if that is higher (the smallest, so one lucky random run does not
    move it past ground the agent cannot reach reliably).

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


class StageFrontiers:
    """
    One :class:`StageFrontier` per stage, made when a stage is first played, and their saved state.

    The state is a plain dict (it goes into the zip's JSON as ``model.adaptive_epsilon_state``):
    ``{"frontiers": {stage: frontier state}}``, plus ``"unseen_stages"``, the frontier a stage not
    yet played starts from, when the state came from a run saved before frontiers were kept per
    stage: that run's single frontier then becomes the frontier of every stage the resumed run plays.

    :param window: Frontier-beating episodes per frontier update.
    :param initial_frontier: Where a new stage's frontier starts.
    """

    def __init__(self, window: int, initial_frontier: float) -> None:
        self.window = window
        self.initial_frontier = float(initial_frontier)
        self.stages: dict[str, StageFrontier] = {}  # stage ("1-1"; "" for envs that name none) -> frontier
        self.unseen_stage_state: dict[str, Any] | None = None

    @classmethod
    def from_state(cls, state: dict[str, Any], window: int, initial_frontier: float) -> "StageFrontiers":
        """
        The frontiers a model saved (:meth:`state`), or a single-frontier state of an older version.

        :param state: The saved state.
        :param window: Frontier-beating episodes per frontier update.
        :param initial_frontier: Where a stage's frontier starts when the state has none for it.
        """
        frontiers = cls(window, initial_frontier)
        if "frontiers" in state:
            frontiers.stages = {level: StageFrontier(window, **saved) for level, saved in state["frontiers"].items()}
            frontiers.unseen_stage_state = state.get("unseen_stages")
        else:  # saved before frontiers were kept per stage
            frontiers.unseen_stage_state = dict(state)
        return frontiers

    def of(self, level: str = "") -> StageFrontier:
        """
        The frontier of a stage, made when first asked for.

        :param level: The stage, as ``info["level"]`` names it (``""``: an env that names none).
        """
        if level not in self.stages:
            state = self.unseen_stage_state or {"frontier": self.initial_frontier}
            self.stages[level] = StageFrontier(self.window, **state)
        return self.stages[level]

    def end_episode(self, max_x: float, level: str = "") -> bool:
        """
        Count an episode's best x position on its stage; return whether that stage's frontier moved.

        :param max_x: The episode's ``max_x``.
        :param level: The episode's stage.
        """
        return self.of(level).end_episode(max_x)

    def state(self) -> dict[str, Any]:
        """A JSON-ready copy (saved in the model's zip)."""
        state: dict[str, Any] = {"frontiers": {level: frontier.state() for level, frontier in self.stages.items()}}
        if self.unseen_stage_state is not None:
            state["unseen_stages"] = self.unseen_stage_state
        return state

    def __len__(self) -> int:
        return len(self.stages)

    def __str__(self) -> str:
        described = [f"{level or 'the env'}: {frontier}" for level, frontier in self.stages.items()]
        if self.unseen_stage_state is not None:
            described.append(f"every stage: {StageFrontier(self.window, **self.unseen_stage_state)}")
        return "; ".join(described)
