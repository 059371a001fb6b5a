"""Data versioning with DVC: ``data.dvc`` at the repo root tracks ``data/``.

The data version used everywhere (ZenML cache keys, MLflow dataset digests, edge
bundle manifests) is the md5 that DVC records for ``data/`` in ``data.dvc``.
DVC is driven through its command line (``python -m dvc``) so this module has no
import-time dependency on it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from components.config import data_dir

DVC_FILE = "data.dvc"


def dvc_repo() -> Path:
    """The DVC project holding ``data/`` and ``data.dvc``: the parent of the data folder
    (the checkout by default; a temp project in tests via ``HAR_DATA_DIR``)."""
    return data_dir().parent


class VersioningError(RuntimeError):
    """A DVC command failed."""


def _dvc(args: list[str], repo: Path) -> str:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    proc = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=repo, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise VersioningError(f"dvc {' '.join(args)} failed in {repo}:\n{proc.stdout}{proc.stderr}")
    return proc.stdout


def data_version(repo: Path | None = None) -> str | None:
    """The md5 of ``data/`` recorded in ``data.dvc`` (None when not versioned yet)."""
    dvc_file = Path(repo or dvc_repo()) / DVC_FILE
    if not dvc_file.exists():
        return None
    outs = (yaml.safe_load(dvc_file.read_text()) or {}).get("outs") or [{}]
    return outs[0].get("md5")


def version_data(repo: Path | None = None, push: bool = False) -> str:
    """``dvc add data`` (and ``dvc push`` when asked); return the new data version md5."""
    repo = Path(repo or dvc_repo())
    if not (repo / "data").exists():
        raise VersioningError(f"{repo / 'data'} does not exist: import a dataset first")
    _dvc(["add", "data"], repo)
    if push:
        _dvc(["push", DVC_FILE], repo)
    version = data_version(repo)
    if not version:
        raise VersioningError(f"dvc add did not record an md5 in {repo / DVC_FILE}")
    return version


def pull_data(repo: Path | None = None) -> None:
    """``dvc pull data.dvc``: fetch the recorded data version from the default remote
    (a pipeline pod on a cluster starts without ``data/``)."""
    repo = Path(repo or dvc_repo())
    if (repo / DVC_FILE).exists():
        _dvc(["pull", DVC_FILE], repo)


def default_remote(repo: Path | None = None) -> str | None:
    """The name of the project's default DVC remote (None when none is configured)."""
    try:
        name = _dvc(["remote", "default"], Path(repo or dvc_repo())).strip()
    except VersioningError:  # "no default remote set" exits non-zero
        return None
    return name or None


def cache_dir(repo: Path | None = None) -> Path:
    """The project's DVC cache folder (``dvc cache dir``)."""
    return Path(_dvc(["cache", "dir"], Path(repo or dvc_repo())).strip())


def is_up_to_date(repo: Path | None = None) -> bool:
    """True when ``data/`` matches ``data.dvc`` (``dvc status`` reports nothing)."""
    out = _dvc(["status", DVC_FILE, "--json"], Path(repo or dvc_repo())).strip()
    return out in ("", "{}")


def status(repo: Path | None = None) -> str:
    """Human-readable ``dvc status`` of ``data.dvc``."""
    return _dvc(["status", DVC_FILE], Path(repo or dvc_repo())).strip()
