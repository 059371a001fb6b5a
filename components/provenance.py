"""Where a result came from: the git commit of the checkout (read-only git calls)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

from components.data.sources import REPO_ROOT


def git_info(repo: Path = REPO_ROOT) -> dict[str, Any]:
    """``{"commit", "dirty"}`` (tracked files only); ``None`` values where git is unavailable
    (unless ``HAR_GIT_COMMIT`` / ``HAR_GIT_DIRTY=1`` name them for a copy without ``.git``)."""

    def run(*args: str) -> str | None:
        try:
            return subprocess.run(
                ["git", *args], cwd=repo, capture_output=True, text=True, timeout=20, check=True
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None

    commit = run("rev-parse", "HEAD")
    status = run("status", "--porcelain", "--untracked-files=no")
    if commit is None and os.environ.get("HAR_GIT_COMMIT"):
        # a copy without .git (e.g. a GPU box the checkout was sent to): the sender names it
        return {"commit": os.environ["HAR_GIT_COMMIT"], "dirty": os.environ.get("HAR_GIT_DIRTY") == "1"}
    return {"commit": commit or None, "dirty": None if status is None else bool(status)}
