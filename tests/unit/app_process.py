"""What a freshly imported App shows, in its own process: settings read at import."""

from __future__ import annotations

import os
import subprocess
import sys


def shown_by_app(expression: str, **env: str) -> str:
    """`expression` (with `app` the faust App) printed by a new interpreter with `env` set."""
    shown = f"from app.main import app; print({expression})"
    run = subprocess.run(
        [sys.executable, "-c", shown],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    return run.stdout.split()[-1]
