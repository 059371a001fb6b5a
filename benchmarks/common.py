"""Helpers shared by benchmark scripts: environment facts and atomic JSON results."""

from __future__ import annotations

import json
import os
import platform
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from components.io_utils import atomic_write_text
from components.provenance import git_info

RESULTS_DIR = Path(__file__).resolve().parent / "results"
REPO_ROOT = Path(__file__).resolve().parents[1]


def environment() -> dict[str, Any]:
    import numpy
    import pyarrow

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "numpy": numpy.__version__,
        "pyarrow": pyarrow.__version__,
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **git_info(),
    }


def write_result(name: str, result: dict[str, Any]) -> Path:
    path = RESULTS_DIR / f"{name}.json"
    atomic_write_text(path, json.dumps(result, indent=2, sort_keys=True) + "\n")
    return path
