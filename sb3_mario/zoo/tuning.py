"""
Optuna sweeps of ``MarioShaped`` through rl-zoo3's ``-optimize``.

- A Mario sampler: rl-zoo3's stock DQN sampler replaces ``policy_kwargs`` wholesale (dropping the
  dueling network's options) and knows nothing of the adaptive exploration. For ``MarioShaped`` the
  sampler below searches learning rate, gamma, batch and buffer sizes, target update interval, train
  frequency, exploration fraction and floor, the exploration boost and its decay, the head width and
  BatchNorm. Other envs keep rl-zoo3's stock sampler. ``--trial-id`` reloads a trial's parameters
  (callback arguments included) through the matching converter.
- An embedded default store: with no ``--storage``, a sweep writes to a journal file,
  ``<log folder>/optuna/<study>.log`` (study ``MarioShaped_<algo>`` unless ``--study-name`` is given),
  so a killed sweep resumes by running the same command again.
- Many workers on one database: with a PostgreSQL/MySQL ``--storage`` URL, trials send a heartbeat;
  a trial whose worker died is marked failed by the next worker that starts a trial, and retried once.

:func:`sb3_mario.zoo.install` wires these into rl-zoo3 (called by sb3-mario's ``custom_envs`` hook).
"""

import functools
import os
import time
from collections.abc import Callable
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import optuna

from sb3_mario.envs.mario import MARIO_ENV_IDS
from sb3_mario.zoo.patching import swapped

HEARTBEAT_ENV_VAR = "SB3_MARIO_OPTUNA_HEARTBEAT"
ADAPTIVE_EPSILON = "sb3_mario.dqn.exploration.AdaptiveEpsilonCallback"
EPISODE_STATS = "sb3_mario.callbacks.MarioEpisodeStatsCallback"

# The ExperimentManager whose objective is running (set per trial, per thread): the sampler, which
# rl-zoo3 calls with no reference to the env, uses it to tell Mario trials from others.
_MARIO_MANAGER: ContextVar[Any] = ContextVar("sb3_mario_manager", default=None)


def sample_mario_dqn_params(trial: optuna.Trial) -> dict[str, Any]:
    """
    Suggest one Mario DQN configuration; returns the trial's raw parameters.

    :param trial: The Optuna trial.
    """
    trial.suggest_float("learning_rate", 1e-5, 1e-3, log=True)
    trial.suggest_float("gamma", 0.9, 0.995)
    trial.suggest_categorical("batch_size", [32, 64, 128])
    trial.suggest_categorical("buffer_size", [20_000, 50_000, 100_000])
    trial.suggest_categorical("target_update_interval", [1_000, 2_500, 5_000, 10_000, 25_000])
    trial.suggest_categorical("train_freq", [1, 2, 4, 8])
    trial.suggest_float("exploration_fraction", 0.05, 0.5)
    trial.suggest_float("exploration_final_eps", 0.01, 0.2)
    trial.suggest_float("boost_epsilon", 0.1, 0.8)
    trial.suggest_categorical("boost_decay", [0.99, 0.995, 0.998, 0.999])
    trial.suggest_categorical("head_width", [128, 256, 512])
    trial.suggest_categorical("batch_norm", [True, False])
    return dict(trial.params)


def sample_mario_ddqn_params(trial: optuna.Trial) -> dict[str, Any]:
    """
    Suggest one Mario configuration of :class:`~sb3_mario.dqn.double_dqn.DoubleDQN`: the DQN search
    space plus prioritized replay and n-step returns; returns the trial's raw parameters.

    :param trial: The Optuna trial.
    """
    sample_mario_dqn_params(trial)
    trial.suggest_float("prioritized_replay_alpha", 0.3, 0.8)
    trial.suggest_float("prioritized_replay_beta", 0.2, 0.6)
    trial.suggest_categorical("n_steps", [1, 3, 5])
    return dict(trial.params)


# rl-zoo3 algorithm -> the Mario sampler its sweeps use.
MARIO_SAMPLERS: dict[str, Callable[[optuna.Trial], dict[str, Any]]] = {
    "dqn": sample_mario_dqn_params,
    "ddqn": sample_mario_ddqn_params,
}
PRIORITIZED_KEYS = ("prioritized_replay_alpha", "prioritized_replay_beta")


def sweep_algo(params: dict[str, Any]) -> str:
    """The rl-zoo3 algorithm whose Mario sampler produced a trial's parameters (``"dqn"`` or ``"ddqn"``)."""
    return "ddqn" if all(key in params for key in PRIORITIZED_KEYS) else "dqn"


def is_mario_params(params: dict[str, Any]) -> bool:
    """Whether trial parameters come from one of :data:`MARIO_SAMPLERS`."""
    return {"boost_epsilon", "head_width", "batch_norm"} <= set(params)


def convert_mario_params(params: dict[str, Any]) -> dict[str, Any]:
    """
    Turn a trial's parameters into hyperparameters for the model, plus a ``callback`` list.

    :param params: Parameters from one of :data:`MARIO_SAMPLERS`.
    """
    model_keys = (
        "learning_rate",
        "gamma",
        "batch_size",
        "buffer_size",
        "target_update_interval",
        "train_freq",
        "exploration_fraction",
        "exploration_final_eps",
        "n_steps",
        *PRIORITIZED_KEYS,
    )
    hyperparams = {key: params[key] for key in model_keys if key in params}
    if sweep_algo(params) == "ddqn":
        hyperparams["prioritized_replay"] = True
    hyperparams["gradient_steps"] = 1
    hyperparams["policy_kwargs"] = dict(
        net_arch=[params["head_width"]], features_extractor_kwargs=dict(batch_norm=params["batch_norm"])
    )
    hyperparams["callback"] = [
        {ADAPTIVE_EPSILON: dict(boost_epsilon=params["boost_epsilon"], boost_decay=params["boost_decay"])},
        EPISODE_STATS,
    ]
    return hyperparams


def with_base_policy_kwargs(tuned: dict[str, Any], base: dict[str, Any] | str | None) -> dict[str, Any]:
    """
    A trial's ``policy_kwargs`` laid over the entry's own: what the sweep does not tune (e.g.
    ``precision``) stays as the entry has it.

    :param tuned: The trial's ``policy_kwargs`` (``net_arch`` and ``features_extractor_kwargs``).
    :param base: The entry's ``policy_kwargs``, as a dict or as the string rl-zoo3 evals.
    """
    base = eval(base) if isinstance(base, str) else dict(base or {})  # an entry's own string, as rl-zoo3 evals it
    extractor = {**base.get("features_extractor_kwargs", {}), **tuned.get("features_extractor_kwargs", {})}
    return {**base, **tuned, "features_extractor_kwargs": extractor}


def mario_sampler(stock_sampler: Callable, sample_mario_params: Callable[[optuna.Trial], dict[str, Any]]) -> Callable:
    @functools.wraps(stock_sampler)
    def sample(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
        manager = _MARIO_MANAGER.get()
        if manager is None:
            return stock_sampler(trial, n_actions, n_envs, additional_args)
        hyperparams = convert_mario_params(sample_mario_params(trial))
        # rl-zoo3 replaces the entry's policy_kwargs with the trial's wholesale (a bf16 entry's trials
        # would train in fp32): keep what the trial does not set.
        hyperparams["policy_kwargs"] = with_base_policy_kwargs(
            hyperparams["policy_kwargs"], manager._hyperparams.get("policy_kwargs")
        )
        manager.specified_callbacks = hyperparams.pop("callback")
        return hyperparams

    return sample


def mario_converter(stock_converter: Callable) -> Callable:
    @functools.wraps(stock_converter)
    def convert(params: dict[str, Any]) -> dict[str, Any]:
        return convert_mario_params(params) if is_mario_params(params) else stock_converter(params)

    return convert


def mario_objective(original: Callable) -> Callable:
    @functools.wraps(original)
    def objective(self, trial: optuna.Trial) -> float:
        if self.env_name.gym_id not in MARIO_ENV_IDS or self.algo not in MARIO_SAMPLERS:
            return original(self, trial)
        callbacks = self.specified_callbacks
        token = _MARIO_MANAGER.set(self)
        try:
            return original(self, trial)
        finally:
            _MARIO_MANAGER.reset(token)
            self.specified_callbacks = callbacks

    return objective


def heartbeat_seconds() -> int:
    """Seconds between trial heartbeats on a database store (``$SB3_MARIO_OPTUNA_HEARTBEAT``, default 60)."""
    return int(os.environ.get(HEARTBEAT_ENV_VAR, "60"))


def heartbeat_storage(url: str) -> optuna.storages.RDBStorage:
    """
    A database store whose trials send heartbeats: a trial silent for 3 heartbeats (its worker died)
    is marked failed by the next trial any worker starts, and retried once.

    :param url: SQLAlchemy URL, e.g. ``postgresql://user@host:5432/optuna``.
    """
    from sqlalchemy.exc import IntegrityError, ProgrammingError

    interval = heartbeat_seconds()
    for attempt in range(5):
        try:
            return optuna.storages.RDBStorage(
                url,
                heartbeat_interval=interval,
                grace_period=3 * interval,
                failed_trial_callback=optuna.storages.RetryFailedTrialCallback(max_retry=1),
            )
        except (IntegrityError, ProgrammingError):
            # Workers started together on an empty database race to create Optuna's tables:
            # the losers fail on "already exists"; by the next attempt the tables are there.
            if attempt == 4:
                raise
            time.sleep(0.5 + attempt)
    raise AssertionError("unreachable")


def is_database_url(storage: Any) -> bool:
    """Whether ``storage`` is a database URL (not a journal ``.log`` file)."""
    return isinstance(storage, str) and "://" in storage


def with_heartbeat_storage(original: Callable) -> Callable:
    @functools.wraps(original)
    def hyperparameters_optimization(self) -> None:
        if not is_database_url(self.storage):
            return original(self)
        create_study = optuna.create_study

        def create_study_with_heartbeat(*args, storage=None, **kwargs):
            if storage == self.storage:
                storage = heartbeat_storage(storage)
            return create_study(*args, storage=storage, **kwargs)

        # rl-zoo3 hands the URL string to optuna.create_study: swap in a heartbeat store for this call.
        with swapped(optuna, "create_study", create_study_with_heartbeat):
            return original(self)

    return hyperparameters_optimization


def default_journal(log_folder: str, study_name: str) -> str:
    """The embedded store of a sweep with no ``--storage``: ``<log_folder>/optuna/<study_name>.log``."""
    return str(Path(log_folder) / "optuna" / f"{study_name}.log")


def use_embedded_store(manager: Any) -> None:
    """Give a Mario sweep with no ``--storage`` the journal file store and a stable study name."""
    if not manager.optimize_hyperparameters or manager.env_name.gym_id not in MARIO_ENV_IDS:
        return
    if manager.storage is None:
        manager.study_name = manager.study_name or f"{manager.env_name.gym_id}_{manager.algo}"
        manager.storage = default_journal(manager.log_folder, manager.study_name)
        print(f"sb3-mario: Optuna study {manager.study_name!r} stored in {manager.storage}")
