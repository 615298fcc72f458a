"""Evaluation, video and plot commands on a freshly initialised model and a constructed run folder."""

import json
import re
from collections import OrderedDict

import gymnasium as gym
import numpy as np
import pytest
import yaml
from PIL import Image
from stable_baselines3 import DQN
from stable_baselines3.common.monitor import Monitor

from sb3_mario import evaluate, plots, video
from sb3_mario.loading import load_agent


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """An rl-zoo3-shaped run folder: MarioShaped.zip, MarioShaped/args.yml and a Monitor CSV."""
    run = tmp_path_factory.mktemp("logs") / "dqn" / "MarioShaped_1"
    (run / "MarioShaped").mkdir(parents=True)
    env = gym.make("MarioShaped")
    DQN("DuelingCnnPolicy", env, buffer_size=100, seed=0).save(run / "MarioShaped.zip")
    args = OrderedDict([("algo", "dqn"), ("env_kwargs", {"level": "1-1"})])
    (run / "MarioShaped" / "args.yml").write_text(yaml.dump(args))
    monitor = Monitor(env, str(run / "0"), info_keywords=("max_x", "flag_get"))
    rng = np.random.default_rng(0)
    for _ in range(4):
        monitor.reset(seed=0)
        while not monitor.step(int(rng.integers(7)))[2]:
            pass
    monitor.close()
    return run


@pytest.mark.slow
def test_evaluate_json_and_table(run_dir, tmp_path, capsys) -> None:
    report_path = tmp_path / "report.json"
    evaluate.main([str(run_dir), "--episodes", "2", "--random-baseline", "--json", str(report_path)])
    table = capsys.readouterr().out
    assert "1-1    agent" in table and "1-1    random" in table
    report = json.loads(report_path.read_text())
    assert report["epsilon"] == 0.05 and report["episodes_per_level"] == 2 and report["env_kwargs"] == {"level": "1-1"}
    for policy in ("agent", "random"):
        result = report["levels"]["1-1"][policy]
        summary = result["summary"]
        assert set(summary) == {
            "episodes",
            "flag_rate",
            "death_rate",
            "stall_rate",
            "max_x_mean",
            "max_x_median",
            "max_x_max",
            "reward_mean",
            "length_mean",
        }
        assert summary["episodes"] == len(result["episodes"]) == 2
        # The summary is the episodes' (as written to the JSON), every episode ending one way.
        episodes = result["episodes"]
        for key, field in (("flag_rate", "flag"), ("death_rate", "death"), ("max_x_mean", "max_x"), ("length_mean", "length")):
            assert summary[key] == pytest.approx(np.mean([episode[field] for episode in episodes])), key
        assert summary["max_x_max"] == max(episode["max_x"] for episode in episodes)
        assert all(episode["max_x"] >= 40 and episode["length"] >= 1 for episode in episodes)
    # Same seeds, same random policy: the random baseline is reproducible.
    again = evaluate.evaluate(None, ["1-1"], 2, seed=0, progress_bar=False)
    assert again["levels"]["1-1"]["random"]["episodes"] == report["levels"]["1-1"]["random"]["episodes"]


def test_summary_tells_stalls_from_deaths() -> None:
    def episode(cause: str | None, max_x: int) -> evaluate.EpisodeResult:
        return evaluate.EpisodeResult(max_x, 0.0, 10, flag=cause == "flag", death=cause == "death", cause=cause)

    episodes = [episode("death", 300), episode("stall", 437), episode("stall", 437), episode("flag", 3161)]
    summary = evaluate.summarize(episodes)
    assert (summary["flag_rate"], summary["death_rate"], summary["stall_rate"]) == (0.25, 0.25, 0.5)
    assert "stall %" in evaluate.format_table({"levels": {"1-1": {"agent": {"summary": summary}}}})


class StandStill:
    """A greedy policy that never presses a button: Mario stalls at the start."""

    def predict(self, observation, deterministic: bool = True):
        return np.array(0), None


class EndsBy(gym.Env):
    """Three steps, then the episode ends the way ``cause`` says, with MarioShaped's info keys."""

    observation_space = gym.spaces.Box(0, 255, (1,), np.uint8)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, cause: str) -> None:
        self.cause = cause

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(1, np.uint8), {}

    def step(self, action):
        self.t += 1
        end = self.t == 3
        info = {
            "max_x": 40 + self.t,
            "flag_get": end and self.cause == "flag",
            "death": end and self.cause == "death",
            "termination_cause": self.cause if end else None,
        }
        return np.zeros(1, np.uint8), 1.0, end, False, info


@pytest.mark.parametrize("cause", ["stall", "death", "flag"])
def test_an_episode_is_labelled_by_how_it_ended(cause: str) -> None:
    result = evaluate.play_episode(EndsBy(cause), StandStill(), epsilon=0.0, rng=np.random.default_rng(0), seed=0)
    assert (result.cause, result.death, result.flag, result.max_x, result.length) == (
        cause,
        cause == "death",
        cause == "flag",
        43,
        3,
    )
    summary = evaluate.summarize([result])
    assert (summary["stall_rate"], summary["death_rate"], summary["flag_rate"]) == (
        float(cause == "stall"),
        float(cause == "death"),
        float(cause == "flag"),
    )


@pytest.mark.slow
def test_a_stalled_episode_is_not_a_death() -> None:
    env = gym.make("MarioShaped")
    result = evaluate.play_episode(env, StandStill(), epsilon=0.0, rng=np.random.default_rng(0), seed=0)
    assert (result.cause, result.death, result.flag, result.max_x) == ("stall", False, False, 40)
    assert result.length == 501 // 4 + 1  # the stall limit is passed on the 501st stalled frame
    summary = evaluate.summarize([result])
    assert (summary["stall_rate"], summary["death_rate"]) == (1.0, 0.0)


@pytest.mark.slow
def test_a_checkpoint_in_a_run_folder_gets_the_runs_settings(tmp_path) -> None:
    run = tmp_path / "ddqn" / "MarioShaped_1"
    (run / "MarioShaped").mkdir(parents=True)
    env = gym.make("MarioShaped", actions="right_only")
    DQN("DuelingCnnPolicy", env, buffer_size=100, seed=0).save(run / "rl_model_10000_steps.zip")
    (run / "MarioShaped" / "config.yml").write_text(yaml.dump(OrderedDict([("env_kwargs", {"actions": "right_only"})])))
    agent = load_agent(run / "rl_model_10000_steps.zip")
    assert agent.env_kwargs == {"actions": "right_only"} and agent.n_actions == 5
    report = evaluate.evaluate(agent, ["1-1"], 1, epsilon=0.0, progress_bar=False)  # plays with the run's 5 actions
    assert report["env_kwargs"] == {"actions": "right_only"}


@pytest.mark.slow
def test_greedy_untrained_agent_is_deterministic(run_dir) -> None:
    agent = load_agent(run_dir)
    first = evaluate.evaluate(agent, ["1-1"], 2, epsilon=0.0, progress_bar=False)
    episodes = first["levels"]["1-1"]["agent"]["episodes"]
    assert episodes[0] == episodes[1]  # greedy, deterministic emulator: the same episode twice


@pytest.mark.slow
def test_level_matrix(run_dir, tmp_path) -> None:
    report_path = tmp_path / "world1.json"
    evaluate.main([str(run_dir), "--world", "1", "--episodes", "1", "--greedy", "--json", str(report_path)])
    report = json.loads(report_path.read_text())
    assert list(report["levels"]) == ["1-1", "1-2", "1-3", "1-4"] and report["epsilon"] == 0.0


@pytest.mark.slow
def test_gif_and_mp4(run_dir, tmp_path) -> None:
    video.main([str(run_dir), "--output", str(tmp_path), "--epsilon", "0", "--max-steps", "30"])
    gif = Image.open(tmp_path / "mario_1-1_episode0.gif")
    # Greedy, untrained: the episode is at least 30 steps or ends earlier; one frame per step + the reset.
    agent = load_agent(run_dir)
    length = evaluate.evaluate(agent, ["1-1"], 1, epsilon=0.0, progress_bar=False)["levels"]["1-1"]["agent"]["episodes"][0][
        "length"
    ]
    assert gif.n_frames == min(length, 30) + 1
    assert gif.size == (256, 240)  # the full NES screen, not the 96x96 observation
    assert (tmp_path / "mario_1-1_episode0.mp4").stat().st_size > 5_000


@pytest.mark.slow
def test_gif_with_observation_panel(run_dir, tmp_path) -> None:
    video.main([str(run_dir), "--output", str(tmp_path), "--format", "gif", "--with-observation", "--max-steps", "5"])
    gif = Image.open(tmp_path / "mario_1-1_episode0.gif")
    assert gif.size == (256 + 192, 240) and gif.n_frames == 6


@pytest.mark.slow
def test_plots(run_dir, tmp_path) -> None:
    curves = plots.plot_learning_curves(run_dir, tmp_path / "curves.png", window=2)
    assert Image.open(curves).size == (1200, 700)
    report_path = tmp_path / "report.json"
    evaluate.main([str(run_dir), "--episodes", "2", "--random-baseline", "--json", str(report_path)])
    progress = tmp_path / "progress.png"
    plots.main(["progress", str(report_path), "-o", str(progress)])
    assert Image.open(progress).size[0] >= 600


def test_curves_of_a_continued_run_add_up_its_steps(tmp_path) -> None:
    # rl-zoo3 -i writes the continuation to a new folder whose Monitor time starts again at 0.
    runs = []
    for name, episodes in (("MarioShaped_1", [(10, 1.0), (20, 2.0)]), ("MarioShaped_2", [(5, 0.5)])):
        runs.append(tmp_path / name)
        runs[-1].mkdir()
        rows = "".join(f"1.0,{length},{t}\n" for length, t in episodes)
        (runs[-1] / "0.monitor.csv").write_text('#{"t_start": 0, "env_id": "MarioShaped"}\nr,l,t\n' + rows)
    assert plots.read_monitor_episodes(*runs)["steps"].tolist() == [10, 30, 35]
    plots.main(["curves", *map(str, runs), "-o", str(tmp_path / "curves.png"), "--window", "1"])
    assert Image.open(tmp_path / "curves.png").size == (1200, 700)


def test_stage_curves_count_episodes_from_each_stages_start(tmp_path) -> None:
    header = '#{"t_start": 0, "env_id": "MarioShaped"}\nr,l,t,max_x,flag_get,level,frontier_start\n'
    rows = [
        "1.0,10,1.0,3161,True,1-1,False",
        "1.0,10,2.0,900,False,1-2,False",
        "1.0,10,3.0,3161,True,1-1,True",  # from a snapshot: left out of the curves, its steps counted
        "1.0,10,4.0,700,False,1-1,False",
    ]
    (tmp_path / "0.monitor.csv").write_text(header + "\n".join(rows) + "\n")
    episodes = plots.read_monitor_episodes(tmp_path)
    assert episodes["from_start"].tolist() == [True, True, False, True] and episodes["flag"].tolist() == [1, 0, 1, 0]
    curves = plots.stage_curves(episodes, window=2)
    assert curves["1-1"].values.tolist() == [[10, 1.0, 3161.0], [40, 0.5, 1930.5]]
    assert curves["1-2"].values.tolist() == [[20, 0.0, 900.0]]
    path = plots.plot_stage_curves(tmp_path, tmp_path / "stages.png", window=2)
    assert Image.open(path).size == (1300, 450)
    with pytest.raises(SystemExit):
        plots.main(["stages", str(tmp_path.parent / "nowhere")])


def test_stage_ends_count_the_failed_episodes_from_each_stages_start_by_max_x(tmp_path, capsys) -> None:
    header = '#{"t_start": 0, "env_id": "MarioShaped"}\nr,l,t,max_x,flag_get,level,frontier_start\n'
    rows = [
        "1.0,10,1.0,850,False,1-3,False",
        "1.0,10,2.0,3161,True,1-1,False",  # a flag: counted in flags, not in the bins
        "1.0,10,3.0,999,False,1-3,False",
        "1.0,10,4.0,610,False,1-3,True",  # from a snapshot: left out
        "1.0,10,5.0,1000,False,1-3,False",
        "1.0,10,6.0,420,False,1-1,False",
    ]
    (tmp_path / "0.monitor.csv").write_text(header + "\n".join(rows) + "\n")
    table = plots.stage_ends(plots.read_monitor_episodes(tmp_path), bin_width=200)
    assert table.columns.tolist() == ["episodes", "flags", 400, 800, 1000]
    assert table.loc["1-1"].tolist() == [2, 1, 1, 0, 0] and table.loc["1-3"].tolist() == [3, 0, 0, 2, 1]
    path, since = plots.plot_stage_ends(tmp_path, tmp_path / "ends.png", since=30)  # the last three episodes
    assert Image.open(path).size == (720, 360) and since.loc["1-3"].tolist() == [1, 0, 0, 1]  # episodes, flags, 400, 1000
    plots.main(["ends", str(tmp_path), "--bin", "500", "-o", str(tmp_path / "ends.png")])
    lines = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert ["episodes", "flags", "0", "500", "1000"] in lines and ["1-3", "3", "0", "0", "2", "1"] in lines
    with pytest.raises(SystemExit):
        plots.main(["ends", str(tmp_path), "--since", "60"])  # no episode after the run's 60 steps


@pytest.mark.slow
def test_bad_inputs(run_dir, tmp_path, capsys) -> None:
    with pytest.raises(FileNotFoundError, match="no model at '.*missing.zip'"):
        load_agent(tmp_path / "missing.zip")
    empty = tmp_path / "empty.zip"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty.zip is not a valid SB3 model zip"):
        load_agent(empty)
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes((run_dir / "MarioShaped.zip").read_bytes()[:50_000])
    with pytest.raises(ValueError, match="truncated.zip"):
        load_agent(truncated)
    with pytest.raises(
        FileNotFoundError, match="best_model.zip does not exist; the run folder holds: \\['MarioShaped.zip'\\]"
    ):
        load_agent(run_dir, best=True)
    with pytest.raises(ValueError, match=r"level\(s\) \['9-9'\] are not SMB1 stages"):
        evaluate.evaluate(load_agent(run_dir), ["9-9"], 1)
    with pytest.raises(SystemExit) as exit_info:
        evaluate.main([str(run_dir), "--levels", "1-1", "9-9", "--json", str(tmp_path / "never.json")])
    assert exit_info.value.code == 2
    assert "--levels: level='9-9' (in ['1-1', '9-9']) is not an SMB1 stage; valid levels: 1-1" in capsys.readouterr().err
    assert not (tmp_path / "never.json").exists()
    with pytest.raises(SystemExit):
        evaluate.main([str(run_dir), "--world", "9"])
    assert "--world 9 is not an SMB1 world" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        video.main([str(run_dir), "--level", "0-1"])
    assert "--level='0-1' is not an SMB1 stage; valid levels: 1-1, 1-2" in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match="no Monitor CSV"):
        plots.plot_learning_curves(tmp_path, tmp_path / "x.png")


def test_commands_report_user_errors_without_a_traceback(tmp_path, capsys) -> None:
    # A missing, empty or corrupt file is the user's error: "error: ..." on stderr and exit status 2.
    empty, corrupt, not_json = tmp_path / "empty.zip", tmp_path / "corrupt.zip", tmp_path / "report.json"
    empty.write_bytes(b"")
    corrupt.write_bytes(b"PK\x03\x04 not really a zip")
    not_json.write_text("{not json")
    commands = [
        (evaluate.main, [str(tmp_path / "missing.zip")], "no model at '.*missing.zip'"),
        (evaluate.main, [str(empty)], "empty.zip is not a valid SB3 model zip"),
        (video.main, [str(corrupt)], "corrupt.zip is not a valid SB3 model zip"),
        (plots.main, ["curves", str(tmp_path)], "no Monitor CSV"),
        (plots.main, ["progress", str(not_json)], "report.json is not a report of sb3_mario.evaluate"),
    ]
    for main, argv, message in commands:
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and re.search(f"error: .*{message}", err), (argv, err)
        assert "Traceback" not in err


@pytest.mark.slow
def test_model_that_does_not_fit_the_env(run_dir) -> None:
    agent = load_agent(run_dir)
    with pytest.raises(
        ValueError, match=r"expects observations of shape \(4, 96, 96\) and 7 actions, but the env gives \(4, 84, 84\) and 7"
    ):
        agent.check_env(gym.make("MarioShaped", frame_size=84))


@pytest.mark.slow
def test_random_baseline_plays_the_given_action_set() -> None:
    report = evaluate.evaluate(None, ["1-1"], 1, seed=0, progress_bar=False, env_kwargs={"actions": "right_only"})
    assert report["env_kwargs"] == {"actions": "right_only"}
    simple = evaluate.evaluate(None, ["1-1"], 1, seed=0, progress_bar=False)
    assert simple["env_kwargs"] == {}
    # Different action sets, different episodes from the same seed.
    assert report["levels"]["1-1"]["random"]["episodes"] != simple["levels"]["1-1"]["random"]["episodes"]
