"""
Record a trained agent's play as MP4 and GIF, at the NES's full 256x240 resolution, headless.

    python -m sb3_mario.video logs/dqn/MarioShaped_1                       # 1 episode of its level -> MP4 + GIF
    python -m sb3_mario.video model.zip --level 1-2 --episodes 3 --with-observation --format gif

One video frame per agent step (every ``frame_skip``-th NES frame: 15 frames/s of game time with the
default frame skip of 4), plus the frame after the reset. ``--with-observation`` puts the agent's
four 96x96 input frames, 2x2, beside the screen.
"""

import argparse
from pathlib import Path

import gymnasium as gym
import numpy as np
from PIL import Image

from sb3_mario.envs.stages import DEFAULT_LEVEL, check_level, parse_levels
from sb3_mario.loading import LoadedAgent, epsilon_greedy_action, load_agent_or_exit

FORMATS = ("mp4", "gif")


def observation_panel(observation: np.ndarray, height: int) -> np.ndarray:
    """The observation's frames tiled 2 by 2 (oldest top left) as RGB, padded to ``height`` rows."""
    frames = list(observation[:4]) + [np.zeros_like(observation[0])] * (4 - min(len(observation), 4))
    tiled = np.block([[frames[0], frames[1]], [frames[2], frames[3]]])
    top = max((height - tiled.shape[0]) // 2, 0)
    panel = np.zeros((max(height, tiled.shape[0]), tiled.shape[1]), dtype=np.uint8)
    panel[top : top + tiled.shape[0]] = tiled
    return np.repeat(panel[..., None], 3, axis=2)


def record_episode(
    env: gym.Env,
    agent: LoadedAgent,
    epsilon: float,
    rng: np.random.Generator,
    seed: int,
    with_observation: bool = False,
    max_steps: int = 10_000,
) -> list[np.ndarray]:
    """
    Play one episode and return its frames (the screen after the reset and after every step).

    :param env: ``MarioShaped`` env with ``render_mode="rgb_array"``.
    :param agent: The agent.
    :param epsilon: Probability of a random action.
    :param rng: Source of the random actions.
    :param seed: Seed of the reset.
    :param with_observation: Put the agent's observation beside each screen.
    :param max_steps: Stop recording after this many steps.
    """

    def frame(observation: np.ndarray) -> np.ndarray:
        screen = env.render()
        if not with_observation:
            return screen
        panel = observation_panel(observation, screen.shape[0])
        screen = np.pad(screen, ((0, panel.shape[0] - screen.shape[0]), (0, 0), (0, 0)))
        return np.concatenate([screen, panel], axis=1)

    observation, _ = env.reset(seed=seed)
    frames = [frame(observation)]
    for _ in range(max_steps):
        action = epsilon_greedy_action(agent.model, observation, epsilon, rng, env.action_space.n)
        observation, _, terminated, truncated, _ = env.step(action)
        frames.append(frame(observation))
        if terminated or truncated:
            break
    return frames


def write_gif(frames: list[np.ndarray], path: Path, fps: float) -> None:
    """Write frames as a looping GIF."""
    images = [Image.fromarray(frame) for frame in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0)


def write_mp4(frames: list[np.ndarray], path: Path, fps: float) -> None:
    """Write frames as an H.264 MP4 (moviepy's bundled ffmpeg)."""
    from moviepy import ImageSequenceClip

    # H.264 wants even sides.
    height, width = frames[0].shape[:2]
    frames = [np.pad(frame, ((0, height % 2), (0, width % 2), (0, 0))) for frame in frames]
    ImageSequenceClip(frames, fps=fps).write_videofile(str(path), codec="libx264", audio=False, logger=None)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", help="SB3 zip or rl-zoo3 run folder")
    parser.add_argument("--best", action="store_true", help="in a run folder, use best_model.zip")
    parser.add_argument("--level", default=None, help="SMB1 stage (default: the model's, or the first of its stages)")
    parser.add_argument("--episodes", type=int, default=1)
    parser.add_argument("--epsilon", type=float, default=0.05, help="random-action probability (0: greedy)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--format", nargs="+", default=list(FORMATS), choices=FORMATS)
    parser.add_argument("--with-observation", action="store_true", help="show the agent's input frames beside the screen")
    parser.add_argument("--max-steps", type=int, default=10_000, help="cut an episode's video after this many steps")
    parser.add_argument("--output", type=Path, default=None, help="folder for the videos (default: <model folder>/videos)")
    parser.add_argument("--unsafe-pickle", action="store_true", help="load with SB3's load (unpickles: trusted files only)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing videos")
    args = parser.parse_args(argv)

    if args.episodes < 1:
        parser.error(f"--episodes {args.episodes} must be at least 1")
    agent = load_agent_or_exit(parser, args.path, best=args.best, safe=not args.unsafe_pickle)
    # Default: the model's stage (the first of a multi-stage model's).
    level = args.level or parse_levels(agent.env_kwargs.get("level", DEFAULT_LEVEL))[0]
    try:
        check_level(level)
    except ValueError as error:
        parser.error(f"--{error}")
    env = gym.make("MarioShaped", **{**agent.env_kwargs, "level": level, "render_mode": "rgb_array"})
    try:
        agent.check_env(env)
    except ValueError as error:
        parser.error(str(error))
    fps = env.metadata.get("render_fps", 60) / env.get_wrapper_attr("frame_skip")
    output = args.output or agent.default_output_dir / "videos"
    paths = [output / f"mario_{level}_episode{episode}.{fmt}" for episode in range(args.episodes) for fmt in args.format]
    existing = [str(path) for path in paths if path.exists()]
    if existing and not args.overwrite:
        parser.error(f"{existing} already exist; pass --output elsewhere or --overwrite")
    output.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    for episode in range(args.episodes):
        frames = record_episode(env, agent, args.epsilon, rng, args.seed + episode, args.with_observation, args.max_steps)
        for video_format in args.format:
            path = output / f"mario_{level}_episode{episode}.{video_format}"
            (write_gif if video_format == "gif" else write_mp4)(frames, path, fps)
            print(f"{path}  ({len(frames)} frames, {frames[0].shape[1]}x{frames[0].shape[0]})")
    env.close()


if __name__ == "__main__":
    main()
