"""
Callbacks that keep a run's work safe: checkpoints written atomically (a killed run's newest one
always loads, with the replay buffer and statistics they were saved with), the best model's own
statistics, and a clean stop on Ctrl-C or SIGTERM.
"""

import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stable_baselines3.common.callbacks import BaseCallback, CheckpointCallback

BEST_MODEL_STATISTICS = "best_model_vecnormalize.pkl"  # beside rl-zoo3's best_model.zip


def save_atomically(save: Callable[[Path], None], path: Path) -> None:
    """
    Write a file through a temporary name: a run killed mid-write keeps the previous complete file
    (or none), never a truncated one under the final name.

    :param save: Writes its argument (e.g. ``model.save``).
    :param path: Final file name (with its suffix).
    """
    partial = path.with_name(f"{path.stem}.partial{path.suffix}")
    save(partial)
    os.replace(partial, path)


class AtomicCheckpointCallback(CheckpointCallback):
    """
    SB3's ``CheckpointCallback``, writing each checkpoint atomically (see :func:`save_atomically`),
    so that the newest ``rl_model_*_steps.zip`` of a killed run always loads. Same arguments, same
    files: the model, and when asked for, the replay buffer and the ``VecNormalize`` statistics.

    The model is written last: a checkpoint's zip exists only once its replay buffer and statistics
    do, so a run killed while saving resumes from a checkpoint whose files all belong together.

    :param latest_replay_buffer_only: Delete each checkpoint's replay buffer once the next
        checkpoint is complete (a buffer is hundreds of MB; checkpoints are kept for their models).
    """

    def __init__(self, *args, latest_replay_buffer_only: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.latest_replay_buffer_only = latest_replay_buffer_only

    def _on_step(self) -> bool:
        if self.n_calls % self.save_freq == 0:
            replay_buffer = getattr(self.model, "replay_buffer", None)
            vec_normalize = self.model.get_vec_normalize_env()
            files = []
            if self.save_replay_buffer and replay_buffer is not None:
                files.append((self.model.save_replay_buffer, self._checkpoint_path("replay_buffer_", extension="pkl")))
            if self.save_vecnormalize and vec_normalize is not None:
                files.append((vec_normalize.save, self._checkpoint_path("vecnormalize_", extension="pkl")))
            files.append((self.model.save, self._checkpoint_path(extension="zip")))
            for save, path in files:
                save_atomically(save, Path(path))
                if self.verbose >= 2:
                    print(f"Saving checkpoint to {path}")
            if self.latest_replay_buffer_only:
                latest = Path(self._checkpoint_path("replay_buffer_", extension="pkl"))
                for older in latest.parent.glob(f"{self.name_prefix}_replay_buffer_*_steps.pkl"):
                    if older != latest:
                        older.unlink()
        return True


class SaveBestModelStatistics(BaseCallback):
    """
    Save the ``VecNormalize`` statistics beside the best model, as ``best_model_vecnormalize.pkl``,
    each time an ``EvalCallback`` finds a new best (its ``callback_on_new_best``). rl-zoo3 keeps only
    the run's latest statistics, which stop matching the best model once the run goes on.

    :param save_path: The folder of ``best_model.zip``.
    """

    def __init__(self, save_path: str | Path) -> None:
        super().__init__()
        self.save_path = Path(save_path)

    def _on_step(self) -> bool:
        vec_normalize = self.model.get_vec_normalize_env()
        if vec_normalize is not None:
            save_atomically(lambda path: vec_normalize.save(str(path)), self.save_path / BEST_MODEL_STATISTICS)
        return True


class GracefulInterruptCallback(BaseCallback):
    """
    Turn Ctrl-C (SIGINT) and SIGTERM into a clean stop at the end of the current env step.

    A plain ``KeyboardInterrupt`` can land in the middle of a checkpoint being written and crash the
    run with a half-written file and no final model; job schedulers (SLURM, Kubernetes, preemptible
    cloud machines) stop a job with SIGTERM and a grace period before SIGKILL. With this callback a
    stop signal only asks training to stop; ``learn`` returns normally and rl-zoo3 saves the model
    (and the replay buffer with ``--save-replay-buffer``). Once a stop was asked, further signals
    (``timeout -s INT`` signals the process and then its whole group; impatient users press Ctrl-C
    twice) are acknowledged and ignored until the process ends, so that they cannot interrupt the
    final save either. A run that ends without a signal gets the previous handlers back.

    :param verbose: Verbosity level: 1 says when the stop was requested.
    """

    STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, verbose: int = 0) -> None:
        super().__init__(verbose)
        self.interrupted = False
        self._previous_handlers: dict[int, Any] = {}

    def _on_training_start(self) -> None:
        if threading.current_thread() is threading.main_thread():  # signal handlers live in the main thread
            for signum in self.STOP_SIGNALS:
                self._previous_handlers[signum] = signal.signal(signum, self._request_stop)

    def _request_stop(self, signum: int, frame) -> None:
        name = signal.Signals(signum).name
        if self.interrupted:
            print(f"\n{name}: already stopping; the model is being saved")
            return
        self.interrupted = True
        if self.verbose >= 1:
            print(f"\n{name}: stopping after this step and saving the model")

    def _on_step(self) -> bool:
        return not self.interrupted

    def _on_training_end(self) -> None:
        if not self.interrupted:
            for signum, handler in self._previous_handlers.items():
                signal.signal(signum, handler)
