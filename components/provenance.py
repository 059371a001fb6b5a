"""Where a result came from: the git commit of the checkout (read-only git calls)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

from components.config import REPO_ROOT


def git_info(repo: Path = REPO_ROOT) -> dict[str, Any]:
    """``{"commit", "dirty"}`` (tracked files only); ``None`` values where git is unavailable
    (``HAR_GIT_COMMIT`` / ``HAR_GIT_DIRTY=1``, when set, name them for a copy of the checkout
    whose own ``.git`` may be missing or stale)."""

    def run(*args: str) -> str | None:
        try:
            return subprocess.run(
                ["git", *args], cwd=repo, capture_output=True, text=True, timeout=20, check=True
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None

    if os.environ.get("HAR_GIT_COMMIT"):
        # a copy of the checkout sent elsewhere (a GPU box): its own .git, if any, may be
        # stale, so the sender names the commit it sent
        return {"commit": os.environ["HAR_GIT_COMMIT"], "dirty": os.environ.get("HAR_GIT_DIRTY") == "1"}
    commit = run("rev-parse", "HEAD")
    status = run("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit or None, "dirty": None if status is None else bool(status)}
