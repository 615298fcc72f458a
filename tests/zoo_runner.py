"""Run rl-zoo3's commands in a subprocess, as a user would: the helper the end-to-end tests share."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# A small replay buffer and no gradient step before step 150 keep these runs to seconds.
SMALL = ["-params", "buffer_size:2000", "learning_starts:150", "batch_size:16"]
# Running rl-zoo3 with `custom_envs` blocked shows the explicit flags work on their own.
WITHOUT_HOOK = "import sys, runpy; sys.modules['custom_envs'] = None; runpy.run_module('{module}', run_name='__main__')"


def zoo(module: str, *args: str, hook: bool = True, cwd: Path = REPO) -> str:
    """Run ``python -m rl_zoo3.<module> args``; return its output, failing the test on a non-zero exit."""
    command = (
        [sys.executable, "-m", f"rl_zoo3.{module}"]
        if hook
        else [sys.executable, "-c", WITHOUT_HOOK.format(module=f"rl_zoo3.{module}")]
    )
    env = {**os.environ, "MPLBACKEND": "Agg"}
    result = subprocess.run([*command, *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, f"rl_zoo3.{module} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    return result.stdout + result.stderr
