#!/usr/bin/env bash
# Idempotent dev setup: .venv with Python 3.11, `pip install -c constraints.txt -e
# '.[dev]'` (the pinned versions the Dockerfile installs too) only when pyproject.toml
# or constraints.txt changed since the last install (a stamp in .venv). Quiet when
# there is nothing to do.
#
# Environment: PYTHON  the interpreter to build the venv with (default python3.11)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
venv="$root/.venv"
stamp="$venv/.installed-requirements.sha256"
python="${PYTHON:-python3.11}"

if [[ ! -x "$venv/bin/python" ]]; then
  command -v "$python" >/dev/null || {
    echo "bootstrap: $python not found; install Python 3.11 or set PYTHON=..." >&2
    exit 1
  }
  echo "bootstrap: creating .venv with $python" >&2
  "$python" -m venv "$venv"
fi

want="$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)"
have="$(cat "$stamp" 2>/dev/null || true)"
if [[ "$want" != "$have" ]] || [[ ! -x "$venv/bin/faust" ]] || [[ ! -x "$venv/bin/shop" ]]; then
  echo "bootstrap: installing the project into .venv (pip install -c constraints.txt -e '.[dev]')" >&2
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]' >&2
  echo "$want" >"$stamp"
fi
