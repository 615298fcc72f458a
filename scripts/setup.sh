#!/usr/bin/env bash
# Set up sb3-mario in ./.venv: find a Python >= 3.13, create the venv, install the project (editable)
# with its test extras. Safe to re-run: it reinstalls only when pyproject.toml changed.
set -euo pipefail
cd "$(dirname "$0")/.."

MIN_MINOR=13
is_recent_python() {
    "$1" -c "import sys; sys.exit(0 if sys.version_info >= (3, $MIN_MINOR) else 1)" >/dev/null 2>&1
}

find_python() {
    local candidate
    for candidate in "${SB3_MARIO_PYTHON:-}" python3.14 python3.13 python3 python \
        "$HOME"/.pyenv/versions/3.1[3-9]*/bin/python3 /root/.pyenv/versions/3.1[3-9]*/bin/python3 \
        /usr/local/bin/python3.1[3-9] /usr/bin/python3.1[3-9]; do
        [ -n "$candidate" ] || continue
        if command -v "$candidate" >/dev/null 2>&1 && is_recent_python "$candidate"; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

if [ ! -x .venv/bin/python ] || ! is_recent_python .venv/bin/python; then
    if ! PYTHON=$(find_python); then
        cat >&2 <<MSG
sb3-mario needs Python 3.$MIN_MINOR or newer (gym-super-mario-bros 9 and nes-py 9 require it),
and none was found on PATH or under ~/.pyenv/versions.
Install one, for example:  pyenv install 3.13   or   uv python install 3.13
(or your OS's python3.13 package), then re-run this script, or point SB3_MARIO_PYTHON at it.
MSG
        exit 1
    fi
    echo "Creating .venv with $PYTHON ($("$PYTHON" -V))"
    rm -rf .venv
    "$PYTHON" -m venv .venv
fi

stamp=.venv/.sb3-mario-installed
want=$(cat pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    .venv/bin/python -m pip install -e ".[test]"
    echo "$want" > "$stamp"
fi
