"""Data versioning with DVC: ``data.dvc`` at the repo root tracks ``data/``.

The data version used everywhere (ZenML cache keys, MLflow dataset digests, edge
bundle manifests) is the md5 that DVC records for ``data/`` in ``data.dvc``. A pipeline
step reads recordings only through :func:`materialize`, by data version, so it runs the
same in a checkout and in a pod that holds nothing but the code.
DVC is driven through its command line (``python -m dvc``) so this module has no
import-time dependency on it. A project without Git (a container built from the code)
is switched to DVC's ``core.no_scm`` in its untracked ``.dvc/config.local``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from components.config import data_dir

DVC_FILE = "data.dvc"
# The ZenML artifact that names each data version pushed to the DVC remote (one artifact
# version per push; its value is the md5). A scheduled run on a cluster resolves the newest
# one, since the code and data.dvc of a schedule are frozen when it is created.
PUBLISHED_ARTIFACT = "har_data_version"


def dvc_repo() -> Path:
    """The DVC project holding ``data/`` and ``data.dvc``: the parent of the data folder
    (the checkout by default; a temp project in tests via ``HAR_DATA_DIR``)."""
    return data_dir().parent


class VersioningError(RuntimeError):
    """A DVC command failed."""


def _inside_git(repo: Path) -> bool:
    """DVC looks for Git in the project folder and its parents."""
    return any((p / ".git").exists() for p in (repo, *repo.parents))


def _no_scm_configured(repo: Path) -> bool:
    texts = [(repo / ".dvc" / name) for name in ("config", "config.local")]
    pattern = re.compile(r"^\s*no_scm\s*=\s*true\s*$", re.IGNORECASE | re.MULTILINE)
    return any(pattern.search(t.read_text()) for t in texts if t.exists())


def _dvc(args: list[str], repo: Path) -> str:
    repo = Path(repo)
    if args[0] != "init" and (repo / ".dvc").is_dir() and not _inside_git(repo) and not _no_scm_configured(repo):
        _run_dvc(["config", "--local", "core.no_scm", "true"], repo)  # else: "... is not a git repository"
    return _run_dvc(args, repo)


def _run_dvc(args: list[str], repo: Path) -> str:
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


def default_remote(repo: Path | None = None) -> str | None:
    """The name of the project's default DVC remote (None when none is configured)."""
    try:
        name = _dvc(["remote", "default"], Path(repo or dvc_repo())).strip()
    except VersioningError:  # "no default remote set" exits non-zero
        return None
    return name or None


def published_metadata(version: str, repo: Path | None = None) -> dict[str, str]:
    """What a pushed data version is recorded with: md5, DVC remote (name and URL) and the
    datasets it holds (folders of ``data/`` with a manifest)."""
    repo = Path(repo or dvc_repo())
    default, remotes, _ = _remote_and_cache(repo)
    datasets = sorted(p.parent.name for p in (repo / "data").glob("*/manifest.yaml"))
    return {
        "md5": version,
        "dvc_remote": default or "",
        "dvc_remote_url": str((remotes.get(default) or {}).get("url", "")) if default else "",
        "datasets": ",".join(datasets),
    }


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


def _remote_and_cache(repo: Path) -> tuple[str | None, dict, Path]:
    """The default remote's name, every remote the project configures (paths absolute) and
    its cache folder, as DVC reads them from ``repo/.dvc/config`` (+ ``config.local``)."""
    from dvc.config import Config

    dvc_dir = repo / ".dvc"
    conf = Config(dvc_dir=str(dvc_dir), validate=False) if dvc_dir.is_dir() else {"core": {}, "remote": {}, "cache": {}}
    remotes = {name: dict(opts) for name, opts in (conf.get("remote") or {}).items()}
    cache = (conf.get("cache") or {}).get("dir") or dvc_dir / "cache"
    return (conf.get("core") or {}).get("remote"), remotes, Path(str(cache))


def checkout_version(version: str, dest: Path, source: Path | None = None, dataset: str | None = None) -> Path:
    """Check data version ``version`` (only ``data/<dataset>`` when given) out into
    ``dest/data`` and return that folder.

    ``dest`` becomes a DVC project without Git that shares ``source``'s cache and remotes
    (``source``: the project of :func:`dvc_repo`): objects already in the cache are copied,
    the rest are fetched from the default remote.

    Raises:
        VersioningError: the version is neither in the cache nor on the remote (or there is
            no remote); the message says how to push it.
    """
    source, dest = Path(source or dvc_repo()), Path(dest)
    default, remotes, cache = _remote_and_cache(source)
    dest.mkdir(parents=True, exist_ok=True)
    _dvc(["init", "--no-scm", "-q"], dest)
    from dvc.config import Config

    with Config(dvc_dir=str(dest / ".dvc"), validate=False).edit("local") as conf:
        conf["cache"]["dir"] = str(cache)
        conf["remote"] = remotes
        if default:
            conf["core"]["remote"] = default
    (dest / DVC_FILE).write_text(yaml.safe_dump({"outs": [{"md5": version, "hash": "md5", "path": "data"}]}))
    target = f"data/{dataset}" if dataset else DVC_FILE
    try:
        _dvc(["checkout", target], dest)
    except VersioningError as missing:
        if not default:
            raise VersioningError(
                f"data version {version} is not in the DVC cache {cache} and {source} has no default DVC remote "
                "to fetch it from; on the machine that made it: `har data version --push` "
                "(after `dvc remote add -d ...`), and commit .dvc/config and data.dvc"
            ) from missing
        try:
            _dvc(["pull", target], dest)
        except VersioningError as e:
            raise VersioningError(
                f"data version {version} could not be fetched from DVC remote {default!r} "
                f"({remotes.get(default, {}).get('url')}): push it from the machine that made it "
                f"(`har data version --push`, or `dvc push data.dvc`)\n{e}"
            ) from e
    return dest / "data"


@contextmanager
def materialize(version: str, dataset: str) -> Iterator[Path]:
    """The folder of ``dataset`` exactly as in data version ``version``, for as long as the
    ``with`` block lasts.

    When the local ``data/`` is that version (``data.dvc`` records it and ``dvc status`` is
    clean) this is ``data/<dataset>`` itself: a laptop run reads in place. Otherwise the
    version is checked out into a temporary folder from the DVC cache or remote
    (:func:`checkout_version`), so a step needs nothing but the code and the version.

    Raises:
        VersioningError: the version cannot be fetched, or it holds no ``dataset``.
    """
    repo, local = dvc_repo(), data_dir() / dataset
    if data_version(repo) == version and (local / "manifest.yaml").exists():
        try:
            current = is_up_to_date(repo)
        except VersioningError:
            current = False
        if current:
            yield local
            return
    with tempfile.TemporaryDirectory(prefix="har-data-") as tmp:
        folder = checkout_version(version, Path(tmp), repo, dataset) / dataset
        if not (folder / "manifest.yaml").exists():
            raise VersioningError(
                f"data version {version} has no dataset {dataset!r}; "
                f"on the host: `har data import {dataset}` or `har data ingest PATH --dataset {dataset}`, "
                "then `har data version --push` and commit data.dvc"
            )
        yield folder
