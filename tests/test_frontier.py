"""The exploration frontiers alone: the window rule, one frontier per stage, their saved state and its older form."""

from sb3_mario.dqn.frontier import StageFrontier, StageFrontiers


def test_the_frontier_moves_to_the_smallest_of_a_full_window_of_beats() -> None:
    frontier = StageFrontier(window=3, frontier=40)
    assert not frontier.end_episode(40)  # equal does not beat it
    assert not frontier.end_episode(300) and not frontier.end_episode(120)
    assert frontier.end_episode(200)  # the third beat: min(300, 120, 200)
    assert frontier.frontier == 120 and frontier.beats_since_update == 0
    assert not frontier.end_episode(500) and not frontier.end_episode(130)
    assert frontier.end_episode(110) is False  # 110 does not beat 120: not counted
    assert frontier.end_episode(400)  # window [500, 130, 400]: min 130 > 120
    assert frontier.frontier == 130


def test_a_full_window_whose_smallest_is_not_higher_leaves_the_frontier() -> None:
    frontier = StageFrontier(window=2, frontier=100, recent_beats=[90.0], beats_since_update=0)
    assert not frontier.end_episode(150)  # first of the window
    frontier.recent_beats.appendleft(95.0)  # an older, lower beat still in the window
    assert not frontier.end_episode(160)
    assert frontier.frontier == 100


def test_stages_keep_separate_frontiers_made_on_first_use() -> None:
    frontiers = StageFrontiers(window=1, initial_frontier=40)
    assert frontiers.end_episode(300, "1-1")
    assert frontiers.end_episode(90, "1-2")
    assert not frontiers.end_episode(30, "1-3")
    assert {level: f.frontier for level, f in frontiers.stages.items()} == {"1-1": 300, "1-2": 90, "1-3": 40}
    assert frontiers.of("1-4").frontier == 40 and len(frontiers) == 4


def test_the_state_round_trips() -> None:
    frontiers = StageFrontiers(window=2, initial_frontier=40)
    for max_x, level in [(200, "1-1"), (250, "1-1"), (80, "1-2")]:
        frontiers.end_episode(max_x, level)
    state = frontiers.state()
    assert state == {
        "frontiers": {
            "1-1": {"frontier": 200.0, "recent_beats": [200.0, 250.0], "beats_since_update": 0},
            "1-2": {"frontier": 40.0, "recent_beats": [80.0], "beats_since_update": 1},
        }
    }
    restored = StageFrontiers.from_state(state, window=2, initial_frontier=40)
    assert restored.state() == state
    assert restored.end_episode(90, "1-2") and restored.of("1-2").frontier == 80  # the saved beat counts


def test_a_single_frontier_saved_before_stages_starts_every_stage() -> None:
    old = {"frontier": 150.0, "recent_beats": [150.0, 170.0], "beats_since_update": 2}
    frontiers = StageFrontiers.from_state(old, window=25, initial_frontier=40)
    assert frontiers.of("1-1").state() == old
    assert frontiers.of("1-3").state() == old
    frontiers.end_episode(500, "1-1")
    assert frontiers.of("1-3").state() == old  # each stage its own copy
    assert frontiers.state()["unseen_stages"] == old  # kept for stages not played yet
    assert "every stage: frontier at x=150" in str(frontiers)
