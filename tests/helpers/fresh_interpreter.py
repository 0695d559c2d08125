"""Run a script in a fresh interpreter: its own garbage collector, imports and Airflow state."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[2]


def printed_words(script: str, **environment: str) -> list[str]:
    """What ``script`` prints, word by word, run by a fresh interpreter in the project with
    ``environment`` added."""
    env = {**os.environ, "PYTHONPATH": str(PROJECT_DIR), **environment}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=PROJECT_DIR, capture_output=True, text=True, check=True
    )
    return done.stdout.split()
