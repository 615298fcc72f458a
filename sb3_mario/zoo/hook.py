"""
rl-zoo3 glue: make ``python -m rl_zoo3.train --algo dqn --env MarioShaped`` use this project.

rl-zoo3 imports a module named ``custom_envs`` when it starts; sb3-mario installs one that calls
:func:`install`, which patches rl-zoo3's ``ExperimentManager`` so that, for sb3-mario's envs:

- the default hyperparameters come from the project's ``hyperparams/{algo}.yml`` (rl-zoo3 reads the
  copy inside its own package, never the working directory) when no ``--conf-file`` is given and
  that file has an entry for the env; every other env keeps rl-zoo3's stock hyperparameters;
- a mistyped key in the entry, or an unknown level in its ``env_kwargs``, is refused by name
  (``error: ...``, exit status 2);
- checkpoints are written atomically, ``--save-replay-buffer`` also saves the buffer with the newest
  checkpoint (and ``-i checkpoint.zip`` loads it), and Ctrl-C or SIGTERM stops training cleanly
  (:class:`~sb3_mario.zoo.checkpoints.GracefulInterruptCallback`);
- ``--vec-env subproc`` pins each env worker to its own core (:class:`~sb3_mario.envs.vec_env.PinnedSubprocVecEnv`);
- ``normalize`` without observation normalization copies no observations (:class:`~sb3_mario.envs.vec_env.LeanVecNormalize`);
  checkpoints carry the ``VecNormalize`` statistics, and ``-i checkpoint.zip`` loads them;
- a run continued with ``-i`` keeps counting steps, so its schedules go on where they stopped, and
  one continued without a replay buffer collects ``learning_starts`` transitions before it learns;
- ``--algo ddqn`` is :class:`~sb3_mario.dqn.double_dqn.DoubleDQN`;
- a :class:`~sb3_mario.callbacks.StopTrainingOnFlagRate` in an entry's ``callback:`` list follows
  rl-zoo3's periodic evaluation, and each new best model keeps its own ``VecNormalize`` statistics;
- ``enjoy`` and ``record_video`` play a checkpoint (``--load-checkpoint``) or the best model
  (``--load-best``) with the statistics saved with it;
- Optuna sweeps get the pieces of :mod:`sb3_mario.zoo.tuning`.
"""

import difflib
import functools
import inspect
import os
import re
import sys
import warnings
from pathlib import Path

import gymnasium as gym
import yaml
from stable_baselines3.common.callbacks import CallbackList, CheckpointCallback, EvalCallback
from stable_baselines3.common.vec_env import SubprocVecEnv, VecFrameStack, VecNormalize

import sb3_mario
import sb3_mario.dqn.buffers  # noqa: F401  (named by hyperparameter files)
from sb3_mario.callbacks import StopTrainingOnFlagRate
from sb3_mario.dqn.double_dqn import DoubleDQN
from sb3_mario.envs.mario import MARIO_ENV_IDS, evaluation_env_kwargs
from sb3_mario.envs.vec_env import LeanVecNormalize, PinnedSubprocVecEnv
from sb3_mario.zoo import tuning
from sb3_mario.zoo.checkpoints import (
    BEST_MODEL_STATISTICS,
    AtomicCheckpointCallback,
    GracefulInterruptCallback,
    SaveBestModelStatistics,
)
from sb3_mario.zoo.patching import patch, swapped, unpatched

HYPERPARAMS_ENV_VAR = "SB3_MARIO_HYPERPARAMS"


def project_hyperparams_dir() -> Path:
    """
    The project's ``hyperparams/`` folder: ``$SB3_MARIO_HYPERPARAMS`` if set, else the one beside
    the ``sb3_mario`` package (the repository, with the editable install ``scripts/setup.sh`` makes).
    """
    if os.environ.get(HYPERPARAMS_ENV_VAR):
        return Path(os.environ[HYPERPARAMS_ENV_VAR])
    return Path(sb3_mario.__file__).resolve().parent.parent / "hyperparams"


def project_config(algo: str, env_id: str) -> Path | None:
    """
    The project's hyperparameter file for ``algo`` if it has an entry for ``env_id``.

    :param algo: rl-zoo3 algorithm name, e.g. ``"dqn"``.
    :param env_id: Gymnasium env id, e.g. ``"MarioShaped"``.
    :return: The file, or ``None`` when rl-zoo3's own defaults apply.
    """
    path = project_hyperparams_dir() / f"{algo}.yml"
    if not path.is_file():
        return None
    with open(path) as file:
        return path if env_id in (yaml.safe_load(file) or {}) else None


def _with_sb3_mario_defaults(original_init):
    @functools.wraps(original_init)
    def __init__(self, *args, **kwargs) -> None:
        original_init(self, *args, **kwargs)
        if kwargs.get("config") is None:  # no --conf-file on the command line
            config = project_config(self.algo, self.env_name.gym_id)
            if config is not None:
                self.config = str(config)
        if self.vec_env_class is SubprocVecEnv and self.env_name.gym_id in MARIO_ENV_IDS:
            self.vec_env_class = PinnedSubprocVecEnv  # --vec-env subproc: one core per emulator
        tuning.use_embedded_store(self)

    return __init__


# Keys rl-zoo3 itself takes out of a hyperparameter entry before the rest goes to the algorithm.
ZOO_KEYS = frozenset(
    {
        "n_timesteps",
        "n_envs",
        "policy",
        "normalize",
        "env_wrapper",
        "vec_env_wrapper",
        "frame_stack",
        "callback",
        "env_kwargs",
        "monitor_kwargs",
        "noise_type",
        "noise_std",
    }
)


def check_entry_keys(algo: str, env_id: str, hyperparams: dict) -> None:
    """
    Refuse a hyperparameter entry with a key neither rl-zoo3 nor the algorithm knows, naming it and
    the closest valid keys (rl-zoo3 would fail later with a bare ``TypeError``, or not at all for
    keys it drops).

    :param algo: rl-zoo3 algorithm name.
    :param env_id: Env the entry is for (the message names it).
    :param hyperparams: The entry, after command-line overrides.
    """
    from rl_zoo3.utils import ALGOS

    valid = ZOO_KEYS | set(inspect.signature(ALGOS[algo].__init__).parameters) - {"self", "env"}
    unknown = sorted(set(hyperparams) - valid)
    if unknown:
        hints = "; ".join(
            f"{key!r}: did you mean {difflib.get_close_matches(key, valid, n=3) or 'none close'}" for key in unknown
        )
        raise ValueError(f"unknown hyperparameter(s) for {algo} on {env_id}: {hints}. Valid keys: {', '.join(sorted(valid))}")


def _check_keys(original_read):
    @functools.wraps(original_read)
    def read_hyperparameters(self):
        if self.env_name.gym_id not in MARIO_ENV_IDS:
            return original_read(self)
        # rl-zoo3 lets --env-kwargs replace an entry's env_kwargs wholesale, builds the evaluation env
        # without the entry's, and saves only the command line's in args.yml, which record_video reads:
        # a `actions: right_only` entry would be evaluated and replayed with another action set.
        # Merge instead (the command line's keys win) and use the result everywhere, but for the
        # training-only arguments (frontier starts): evaluations start at the stage's start.
        command_line_env_kwargs, self.env_kwargs = self.env_kwargs, {}
        hyperparams, saved_hyperparams = original_read(self)
        self.env_kwargs = command_line_env_kwargs
        if "env_kwargs" in hyperparams:
            env_kwargs = {**hyperparams["env_kwargs"], **command_line_env_kwargs}
            hyperparams["env_kwargs"] = saved_hyperparams["env_kwargs"] = env_kwargs
            self.args.env_kwargs = env_kwargs
        if self._eval_env_kwargs_args is None:
            self.eval_env_kwargs = evaluation_env_kwargs(hyperparams.get("env_kwargs", self.env_kwargs))
        try:
            check_entry_keys(self.algo, self.env_name.gym_id, hyperparams)
            # Every check the env makes of its arguments, made once here (building one takes ~0.3 s):
            # later, a bad value would end in a traceback (one per worker under --vec-env subproc).
            gym.make(self.env_name.gym_id, **(hyperparams.get("env_kwargs", self.env_kwargs) or {})).close()
        except ValueError as error:
            # The user's error, not a bug: said as argparse says bad arguments, without a traceback.
            print(f"error: {error}", file=sys.stderr)
            raise SystemExit(2) from error
        return hyperparams, saved_hyperparams

    return read_hyperparameters


def checkpoint_file(trained_agent: str | Path, kind: str) -> Path | None:
    """
    A file saved with a checkpoint (``rl_model_<kind>_<steps>_steps.pkl`` beside
    ``rl_model_<steps>_steps.zip``), if the model is such a checkpoint and the file exists.

    :param trained_agent: The zip given to rl-zoo3's ``-i``.
    :param kind: ``"vecnormalize"`` (the ``VecNormalize`` statistics) or ``"replay_buffer"``.
    """
    match = re.fullmatch(r"(.+)_(\d+)_steps\.zip", Path(trained_agent).name)
    if match is None:
        return None
    path = Path(trained_agent).with_name(f"{match[1]}_{kind}_{match[2]}_steps.pkl")
    return path if path.is_file() else None


def _mario_normalize(original_maybe_normalize):
    @functools.wraps(original_maybe_normalize)
    def _maybe_normalize(self, env, eval_env: bool):
        if self.env_name.gym_id not in MARIO_ENV_IDS:
            return original_maybe_normalize(self, env, eval_env)
        statistics = checkpoint_file(self.trained_agent, "vecnormalize") if self.continue_training else None
        if statistics is not None:
            # rl-zoo3 only reads <run>/MarioShaped/vecnormalize.pkl, written when a run ends (or finds a
            # new best model): a killed run's reward scale would restart from nothing.
            print(f"Loading the VecNormalize statistics saved with the checkpoint: {statistics}")
            env = VecNormalize.load(str(statistics), env)
            if eval_env:  # as rl-zoo3 does for the eval env
                env.training = False
                env.norm_reward = False
            return env
        # rl-zoo3 builds (or loads, keeping a saved run's class) its VecNormalize by this module-level name.
        with swapped(sys.modules["rl_zoo3.exp_manager"], "VecNormalize", LeanVecNormalize):
            return original_maybe_normalize(self, env, eval_env)

    return _maybe_normalize


def _continue_step_count(original_learn):
    @functools.wraps(original_learn)
    def learn(self, model) -> None:
        if not self.continue_training:
            return original_learn(self, model)
        # rl-zoo3 restarts the step count of a continued model, and with it the exploration
        # schedule. Keep counting instead: -n is the number of further steps, and without -n
        # the run goes on up to the entry's n_timesteps.
        if getattr(self.args, "n_timesteps", -1) <= 0:
            self.n_timesteps = max(self.n_timesteps - model.num_timesteps, 0)
        algorithm_learn = type(model).learn

        def learn_on(model_self, *args, **kwargs):
            kwargs.setdefault("reset_num_timesteps", False)
            return algorithm_learn(model_self, *args, **kwargs)

        # Patched on the class for this call only: an attribute on the model would be saved with it.
        with swapped(type(model), "learn", learn_on):
            return original_learn(self, model)

    return learn


def _load_checkpoint_replay_buffer(original_load_pretrained_agent):
    @functools.wraps(original_load_pretrained_agent)
    def _load_pretrained_agent(self, hyperparams, env):
        model = original_load_pretrained_agent(self, hyperparams, env)
        replay_buffer = checkpoint_file(self.trained_agent, "replay_buffer")
        if replay_buffer is not None:
            # rl-zoo3 only reads <run>/replay_buffer.pkl, written when a run ends: the buffer of a later
            # step (or none, for a killed run), not the one that belongs to this checkpoint.
            print(f"Loading the replay buffer saved with the checkpoint: {replay_buffer}")
            model.load_replay_buffer(replay_buffer, truncate_last_traj=self.truncate_last_trajectory)
        _warm_up_an_empty_replay_buffer(model, hyperparams)
        return model

    return _load_pretrained_agent


def _warm_up_an_empty_replay_buffer(model, hyperparams: dict) -> None:
    """
    Give a model continued without a replay buffer its ``learning_starts`` again, counted from its
    current step: SB3 compares ``learning_starts`` with the step count, which a continued run keeps,
    so it would take gradient steps at once on a buffer of a few transitions (and overfit them).

    :param model: The loaded model, after any replay buffer was loaded into it.
    :param hyperparams: The hyperparameters it was loaded with (the entry's, with ``-params``).
    """
    replay_buffer = getattr(model, "replay_buffer", None)
    if replay_buffer is None or replay_buffer.size() > 0 or model.num_timesteps == 0:
        return
    # The entry's value, not the zip's: the zip of a run continued this way holds a shifted one.
    warm_up = hyperparams.get("learning_starts")
    if warm_up is None:
        warm_up = inspect.signature(type(model)).parameters["learning_starts"].default
    model.learning_starts = model.num_timesteps + warm_up
    print(
        f"No replay buffer was loaded: collecting {warm_up} transitions (learning_starts) before the "
        f"first gradient step, at step {model.learning_starts}"
    )


def _add_safety_callbacks(original_create_callbacks):
    @functools.wraps(original_create_callbacks)
    def create_callbacks(self) -> None:
        original_create_callbacks(self)
        # rl-zoo3's checkpoints, written atomically: the newest one of a killed run always loads. With
        # the VecNormalize statistics (when there are any): a resumed run keeps its reward scale; with
        # --save-replay-buffer, the replay buffer too (rl-zoo3 alone saves it only when the run ends).
        self.callbacks = [
            AtomicCheckpointCallback(
                c.save_freq,
                c.save_path,
                c.name_prefix,
                save_replay_buffer=self.save_replay_buffer,
                save_vecnormalize=True,
                verbose=c.verbose,
                latest_replay_buffer_only=True,
            )
            if type(c) is CheckpointCallback
            else c
            for c in self.callbacks
        ]
        self.callbacks.append(GracefulInterruptCallback(verbose=self.verbose))
        _follow_evaluation(self)

    return create_callbacks


def _follow_evaluation(manager) -> None:
    """
    Hang the callbacks that act on rl-zoo3's periodic evaluation (``--eval-freq``) onto its
    ``EvalCallback``: a ``StopTrainingOnFlagRate`` listed in the entry runs after each evaluation, and
    each new best model gets its own ``VecNormalize`` statistics beside it.
    """
    evaluation = next((c for c in manager.callbacks if isinstance(c, EvalCallback)), None)
    stops = [c for c in manager.callbacks if isinstance(c, StopTrainingOnFlagRate)]
    manager.callbacks = [c for c in manager.callbacks if c not in stops]
    if stops and evaluation is None:
        message = "StopTrainingOnFlagRate follows rl-zoo3's evaluation, which this run has not (--eval-freq 0 or -optimize)"
        warnings.warn(f"{message}: it trains its whole budget", stacklevel=2)
    if evaluation is None:
        return
    if stops:
        evaluation.callback = stops[0]
        stops[0].parent = evaluation
    if evaluation.best_model_save_path is not None:
        save_statistics = SaveBestModelStatistics(evaluation.best_model_save_path)
        new_best = [c for c in (evaluation.callback_on_new_best, save_statistics) if c is not None]
        evaluation.callback_on_new_best = CallbackList(new_best)
        evaluation.callback_on_new_best.parent = evaluation


def model_statistics(model_path: str | Path) -> Path | None:
    """
    The ``VecNormalize`` statistics saved with a model file of an rl-zoo3 run, if it has its own: a
    checkpoint's (``rl_model_vecnormalize_<steps>_steps.pkl``) or the best model's
    (``best_model_vecnormalize.pkl``). ``None`` for the final model, whose statistics are rl-zoo3's.

    :param model_path: The model's zip.
    """
    path = Path(model_path)
    if path.name == "best_model.zip":
        best = path.with_name(BEST_MODEL_STATISTICS)
        return best if best.is_file() else None
    return checkpoint_file(path, "vecnormalize")


_PLAYED_MODEL: list[str] = []  # the model enjoy / record_video is about to play: get_model_path's answer


def _remember_played_model(original_get_model_path):
    @functools.wraps(original_get_model_path)
    def get_model_path(*args, **kwargs):
        name_prefix, model_path, log_path = original_get_model_path(*args, **kwargs)
        _PLAYED_MODEL[:] = [model_path]
        return name_prefix, model_path, log_path

    return get_model_path


def _test_env_with_model_statistics(original_create_test_env):
    @functools.wraps(original_create_test_env)
    def create_test_env(*args, stats_path: str | None = None, hyperparams: dict | None = None, **kwargs):
        env_id = args[0] if args else kwargs.get("env_id")
        if env_id in MARIO_ENV_IDS and kwargs.get("env_kwargs"):
            kwargs["env_kwargs"] = evaluation_env_kwargs(kwargs["env_kwargs"])  # played from the stage's start
        statistics = model_statistics(_PLAYED_MODEL[0]) if _PLAYED_MODEL else None
        if statistics is None or not (hyperparams or {}).get("normalize"):
            return original_create_test_env(*args, stats_path=stats_path, hyperparams=hyperparams, **kwargs)
        # rl-zoo3 reads <run>/<env>/vecnormalize.pkl, the run's latest statistics (absent while it
        # trains): a checkpoint or the best model is played with the statistics saved with it.
        print(f"Loading the VecNormalize statistics saved with the model: {statistics}")
        n_stack = hyperparams.get("frame_stack", 0)
        plain = {**hyperparams, "normalize": False, "frame_stack": 0}
        env = original_create_test_env(*args, stats_path=stats_path, hyperparams=plain, **kwargs)
        env = VecNormalize.load(str(statistics), env)
        env.training, env.norm_reward = False, False  # as rl-zoo3's test envs
        return VecFrameStack(env, n_stack) if n_stack > 0 else env

    return create_test_env


def install() -> None:
    """
    Register sb3-mario's env, policies and ``ddqn`` algorithm with rl-zoo3 and apply every patch
    sb3-mario makes to rl-zoo3 (idempotent). Each line names the upstream behaviour it changes: after
    an rl-zoo3 upgrade, this is the list to check.
    """
    from rl_zoo3 import utils as rl_zoo3_utils

    rl_zoo3_utils.ALGOS.setdefault("ddqn", DoubleDQN)  # --algo ddqn
    # enjoy / record_video play a checkpoint or the best model with the run's latest statistics (an error
    # while the run trains) -> with the statistics saved with that model. Both modules import these names
    # from rl_zoo3 / rl_zoo3.utils after this hook ran.
    patch(rl_zoo3_utils, "get_model_path", _remember_played_model)
    for owner in (rl_zoo3_utils, sys.modules["rl_zoo3"]):
        patch(owner, "create_test_env", _test_env_with_model_statistics)

    exp_manager = sys.modules.get("rl_zoo3.exp_manager")
    if exp_manager is not None and not hasattr(exp_manager, "ExperimentManager"):
        # record_video (and code that imports rl_zoo3.exp_manager before rl_zoo3.import_envs) reaches
        # this hook while exp_manager is half-imported: its class does not exist yet. Playing needs only
        # the above; training such code must pass --conf-file (or import custom_envs first).
        return
    from rl_zoo3 import hyperparams_opt
    from rl_zoo3.exp_manager import ExperimentManager

    # rl-zoo3 evals replay_buffer_class / *_kwargs strings in exp_manager's namespace: let entries
    # name sb3-mario's classes there, e.g. "sb3_mario.dqn.buffers.CompressedReplayBuffer".
    sys.modules["rl_zoo3.exp_manager"].sb3_mario = sb3_mario

    # Defaults from rl-zoo3's own package files -> the project's hyperparams/; SubprocVecEnv -> pinned workers;
    # -optimize without --storage -> an embedded journal store.
    patch(ExperimentManager, "__init__", _with_sb3_mario_defaults)
    # Unknown entry keys fail late or silently -> refused by name; entry env_kwargs reach every env.
    patch(ExperimentManager, "read_hyperparameters", _check_keys)
    # VecNormalize deep-copies the observations it does not normalize -> LeanVecNormalize, which does not;
    # -i checkpoint.zip ignores the statistics saved with the checkpoint -> loads them.
    patch(ExperimentManager, "_maybe_normalize", _mario_normalize)
    # -i checkpoint.zip loads the run folder's final replay buffer (if any) -> the checkpoint's own.
    patch(ExperimentManager, "_load_pretrained_agent", _load_checkpoint_replay_buffer)
    # -i restarts the step count (and the schedules) -> keeps counting.
    patch(ExperimentManager, "learn", _continue_step_count)
    # Plain checkpoints and Ctrl-C -> atomic checkpoints with statistics and replay buffer, a clean first Ctrl-C;
    # the evaluation stops nothing and keeps no statistics of the best model -> StopTrainingOnFlagRate, both kept.
    patch(ExperimentManager, "create_callbacks", _add_safety_callbacks)
    # Mario trials sample from the stock DQN space (which drops the dueling options) -> the Mario samplers.
    samplers, converters = hyperparams_opt.HYPERPARAMS_SAMPLER, hyperparams_opt.HYPERPARAMS_CONVERTER
    stock_sampler, stock_converter = unpatched(samplers["dqn"]), unpatched(converters["dqn"])
    for algo, sample_mario_params in tuning.MARIO_SAMPLERS.items():
        # exp_manager holds the same dict objects: replace the entries in place. DoubleDQN takes DQN's
        # hyperparameters, so on other envs its sweeps use rl-zoo3's DQN sampler.
        patch(samplers, algo, lambda _, sample=sample_mario_params: tuning.mario_sampler(stock_sampler, sample))
        patch(converters, algo, lambda _: tuning.mario_converter(stock_converter))
    patch(ExperimentManager, "objective", tuning.mario_objective)
    # A database --storage without heartbeats: a dead worker's trial stays RUNNING forever -> heartbeats.
    patch(ExperimentManager, "hyperparameters_optimization", tuning.with_heartbeat_storage)
