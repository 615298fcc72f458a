"""
Load a saved Mario agent for evaluation, safely by default.

An SB3 zip holds pickled objects (``data``'s ``:serialized:`` entries) and ``torch.save`` files:
``DQN.load`` on a file from a stranger can run their code. :func:`load_policy_safely` never
unpickles: it reads ``data`` as plain JSON (ignoring every serialized entry), rebuilds one of the
known policy classes from the weights' shapes, and reads the weights with
``torch.load(weights_only=True)``, which refuses anything but tensors and plain containers.
"""

import argparse
import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
import yaml
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.dqn.policies import CnnPolicy, DQNPolicy

from sb3_mario.dqn.policies import PRECISIONS, DuelingCnnPolicy, DuelingDQNPolicy
from sb3_mario.envs.mario import evaluation_env_kwargs

ALGOS = ("dqn", "ddqn", "qrdqn")


class UnsafeModelError(ValueError):
    """The model file holds something the safe loader will not read."""


@dataclass
class LoadedAgent:
    """
    A saved agent ready to act, and what it was trained on.

    :param path: The zip it came from.
    :param model: Anything with SB3's ``predict(obs, deterministic=...)``: a policy (safe loading) or
        an algorithm (``DQN.load``).
    :param observation_shape: Shape of the observations it was trained on.
    :param n_actions: Number of actions it chooses from.
    :param env_kwargs: ``MarioShaped`` arguments of its training run (from an rl-zoo3 run folder).
    :param default_output_dir: Where reports and videos about it go by default.
    """

    path: Path
    model: Any
    observation_shape: tuple[int, ...]
    n_actions: int
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    default_output_dir: Path = Path(".")

    def check_env(self, env: gym.Env) -> None:
        """Raise a clear ``ValueError`` if ``env`` does not fit the model."""
        obs_shape, n_actions = env.observation_space.shape, env.action_space.n
        if tuple(obs_shape) != tuple(self.observation_shape) or n_actions != self.n_actions:
            raise ValueError(
                f"model {self.path} expects observations of shape {tuple(self.observation_shape)} and "
                f"{self.n_actions} actions, but the env gives {tuple(obs_shape)} and {n_actions}: "
                "pass the env arguments it was trained with (frame_size, frame_stack, actions)"
            )


def _json_shape(entry: dict[str, Any]) -> tuple[int, ...]:
    shape = entry["_shape"]
    return tuple(int(side) for side in (json.loads(shape) if isinstance(shape, str) else shape))


def read_model_zip(path: Path) -> tuple[dict[str, Any], dict[str, th.Tensor]]:
    """The zip's ``data`` as JSON and its policy weights, without unpickling anything."""
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as error:
        raise ValueError(f"{path} is not a valid SB3 model zip (empty, truncated or not a zip): {error}") from error
    with archive:
        names = archive.namelist()
        missing = [name for name in ("data", "policy.pth") if name not in names]
        if missing:
            raise ValueError(f"{path} is not an SB3 model zip: it lacks {missing} (has {names})")
        try:
            data = json.loads(archive.read("data"))
            weights_bytes = archive.read("policy.pth")
        except (zipfile.BadZipFile, OSError, EOFError, json.JSONDecodeError) as error:
            raise ValueError(f"{path} is damaged (truncated or corrupt): {error}") from error
    try:
        state_dict = th.load(io.BytesIO(weights_bytes), map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises UnpicklingError, RuntimeError... for non-tensor payloads
        raise UnsafeModelError(
            f"refusing to load {path}: its policy.pth is not plain weights ({type(error).__name__}: "
            f"{str(error).splitlines()[0][:200]}). Load it with --unsafe-pickle only if you trust its author."
        ) from error
    return data, state_dict


def _policy_class(state_dict: dict[str, th.Tensor], path: Path) -> tuple[type[DQNPolicy], dict[str, Any]]:
    """The known policy class the weights belong to, and the keyword arguments their shapes imply."""
    keys = set(state_dict)
    if any(key.startswith("quantile_net.") for key in keys):
        raise UnsafeModelError(
            f"{path} is a QR-DQN model: the safe loader rebuilds DQN policies only; load it with "
            "--unsafe-pickle --algo qrdqn only if you trust its author"
        )
    dueling = any(key.startswith("q_net.value_net.") for key in keys)
    mario_cnn = any(key.startswith("q_net.features_extractor.cnn.") for key in keys) and not any(
        key.startswith("q_net.features_extractor.linear.") for key in keys
    )
    stream = "q_net.q_net."
    hidden = [state_dict[key].shape[0] for key in sorted(k for k in keys if k.startswith(stream) and k.endswith(".weight"))][
        :-1
    ]
    if dueling and mario_cnn:
        batch_norm = any(key.endswith("running_mean") for key in keys if key.startswith("q_net.features_extractor."))
        return DuelingCnnPolicy, dict(net_arch=hidden, features_extractor_kwargs=dict(batch_norm=batch_norm))
    if dueling:
        return DuelingDQNPolicy, dict(net_arch=hidden)
    if any(key.startswith("q_net.features_extractor.linear.") for key in keys):
        return CnnPolicy, dict(
            net_arch=hidden,
            features_extractor_kwargs=dict(features_dim=state_dict["q_net.features_extractor.linear.0.bias"].shape[0]),
        )
    raise UnsafeModelError(
        f"{path} holds a policy the safe loader does not know (known: DuelingCnnPolicy, DuelingMlpPolicy, "
        "DQN's CnnPolicy); load it with --unsafe-pickle only if you trust its author"
    )


def load_policy_safely(path: Path) -> tuple[BasePolicy, tuple[int, ...], int]:
    """
    Rebuild a saved DQN policy without unpickling anything.

    :param path: SB3 zip.
    :return: The policy in eval mode, the observation shape and the number of actions.
    """
    data, state_dict = read_model_zip(path)
    try:
        obs_shape = _json_shape(data["observation_space"])
        obs_dtype = np.dtype(data["observation_space"]["dtype"])
        n_actions = int(data["action_space"]["n"])
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{path} does not describe a Box observation / Discrete action model: {error!r}") from error
    policy_class, kwargs = _policy_class(state_dict, path)
    precision = (data.get("policy_kwargs") or {}).get("precision")  # plain JSON: acts as it was trained to
    if issubclass(policy_class, DuelingDQNPolicy) and precision in PRECISIONS:
        kwargs["precision"] = precision
    low, high = (0, 255) if obs_dtype == np.uint8 else (-np.inf, np.inf)
    observation_space = spaces.Box(low, high, obs_shape, obs_dtype)
    policy = policy_class(observation_space, spaces.Discrete(n_actions), lr_schedule=lambda _: 0.0, **kwargs)
    try:
        policy.load_state_dict(state_dict)
    except RuntimeError as error:
        raise ValueError(f"{path}: the weights do not fit a {policy_class.__name__}: {str(error)[:300]}") from error
    policy.set_training_mode(False)
    return policy, obs_shape, n_actions


class _RunConfigLoader(yaml.SafeLoader):
    """
    YAML's safe loader plus the Python tags rl-zoo3's files hold: ``OrderedDict`` (the files
    themselves) and tuples (e.g. ``-params "monitor_kwargs:dict(info_keywords=('max_x', ...))"``).
    """


_RunConfigLoader.add_constructor(
    "tag:yaml.org,2002:python/object/apply:collections.OrderedDict",
    lambda loader, node: dict(loader.construct_sequence(node.value[0], deep=True)) if node.value else {},
)
_RunConfigLoader.add_constructor(
    "tag:yaml.org,2002:python/tuple", lambda loader, node: tuple(loader.construct_sequence(node, deep=True))
)


def _run_env_kwargs(params_dir: Path) -> dict[str, Any]:
    """
    ``env_kwargs`` of an rl-zoo3 run, as rl-zoo3's enjoy merges them (the config's, then the command
    line's), without the training-only ones: the env its models are evaluated on.
    """
    env_kwargs: dict[str, Any] = {}
    for name in ("config.yml", "args.yml"):
        file = params_dir / name
        if file.is_file():
            content = yaml.load(file.read_text(), Loader=_RunConfigLoader) or {}
            env_kwargs.update(content.get("env_kwargs") or {})
    return evaluation_env_kwargs(env_kwargs)


def resolve_model_path(path: str | Path, best: bool = False) -> tuple[Path, Path | None]:
    """
    The zip to load, from a zip path or an rl-zoo3 run folder (``logs/dqn/MarioShaped_1``).

    :param path: Zip file or run folder.
    :param best: In a run folder, take ``best_model.zip`` (saved by the evaluation callback).
    :return: The zip and, for a run folder or a zip inside one, its params folder (with config.yml / args.yml).
    """
    path = Path(path)
    if path.is_file():
        # A checkpoint inside an rl-zoo3 run folder (rl_model_10000_steps.zip): the run's settings
        # (its action set...) are in the params folder beside it.
        params_dirs = [folder for folder in path.parent.glob("*/") if (folder / "config.yml").is_file()]
        return path, params_dirs[0] if len(params_dirs) == 1 else None
    if not path.is_dir():
        raise FileNotFoundError(f"no model at {str(path)!r}: expected an SB3 .zip file or an rl-zoo3 run folder")
    env_name = path.name.rsplit("_", 1)[0]
    zip_path = path / ("best_model.zip" if best else f"{env_name}.zip")
    if not zip_path.is_file():
        zips = sorted(p.name for p in path.glob("*.zip"))
        raise FileNotFoundError(f"{zip_path} does not exist; the run folder holds: {zips or 'no zip'}")
    return zip_path, path / env_name


def load_agent(path: str | Path, algo: str | None = None, best: bool = False, safe: bool = True) -> LoadedAgent:
    """
    Load an agent for evaluation from a zip or an rl-zoo3 run folder.

    :param path: SB3 zip or rl-zoo3 run folder.
    :param algo: ``"dqn"``, ``"ddqn"`` or ``"qrdqn"`` (only used with ``safe=False``; default: the run folder's, else dqn).
    :param best: In a run folder, load ``best_model.zip``.
    :param safe: Never unpickle (see module docstring). ``False`` uses the algorithm's ``load``.
    """
    zip_path, params_dir = resolve_model_path(path, best)
    env_kwargs = _run_env_kwargs(params_dir) if params_dir is not None else {}
    output_dir = zip_path.parent
    if safe:
        policy, obs_shape, n_actions = load_policy_safely(zip_path)
        return LoadedAgent(zip_path, policy, obs_shape, n_actions, env_kwargs, output_dir)
    algo = algo or (zip_path.parent.parent.name if params_dir is not None else "dqn")
    if algo not in ALGOS:
        raise ValueError(f"algo={algo!r} is not supported; valid choices: {', '.join(ALGOS)}")
    if algo == "qrdqn":
        from sb3_contrib import QRDQN as algorithm
    elif algo == "ddqn":
        from sb3_mario.dqn.double_dqn import DoubleDQN as algorithm
    else:
        from stable_baselines3 import DQN as algorithm
    model = algorithm.load(zip_path, device="cpu")
    return LoadedAgent(zip_path, model, model.observation_space.shape, int(model.action_space.n), env_kwargs, output_dir)


def load_agent_or_exit(parser: argparse.ArgumentParser, path: str | Path, **kwargs: Any) -> LoadedAgent:
    """
    :func:`load_agent` for a command line: a path that holds no loadable model (missing, empty,
    corrupt, unsafe, unknown policy) is the user's error: ``error: <why>`` and exit status 2, as
    argparse reports bad arguments, instead of a traceback.

    :param parser: The command's parser.
    :param path: As for :func:`load_agent`.
    :param kwargs: :func:`load_agent`'s other arguments.
    """
    try:
        return load_agent(path, **kwargs)
    except (OSError, ValueError) as error:
        parser.error(str(error))


def epsilon_greedy_action(
    model: BaseAlgorithm | None, observation: np.ndarray, epsilon: float, rng: np.random.Generator, n_actions: int
) -> int:
    """
    A uniformly random action with probability ``epsilon`` (always, when ``model`` is None), else the
    model's greedy one.
    """
    if model is None or rng.random() < epsilon:
        return int(rng.integers(n_actions))
    return int(model.predict(observation, deterministic=True)[0])
