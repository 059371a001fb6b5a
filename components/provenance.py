"""Where a result came from: the git commit of the checkout (read-only git calls)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from components.data.sources import REPO_ROOT


def git_info(repo: Path = REPO_ROOT) -> dict[str, Any]:
    """``{"commit", "dirty"}`` (tracked files only); ``None`` values where git is unavailable."""

    def run(*args: str) -> str | None:
        try:
            return subprocess.run(
                ["git", *args], cwd=repo, capture_output=True, text=True, timeout=20, check=True
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None

    commit = run("rev-parse", "HEAD")
    status = run("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit or None, "dirty": None if status is None else bool(status)}
