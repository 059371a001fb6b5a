"""One writer at a time on a data project: `har data ingest` and `har retrain` share a lock.

The lock is an advisory ``flock`` on ``<data project>/.dvc/tmp/har.lock`` (git-ignored by
DVC). The kernel drops it when the holder exits, however it exits (crash, SIGKILL), so
an interrupted run never leaves a stale lock behind; the file itself only records who
held it last, for the error message.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from components.data.versioning import dvc_repo

LOCK_FILE = Path(".dvc") / "tmp" / "har.lock"


class LockBusy(RuntimeError):
    """Another ingest or retrain holds the lock."""


def lock_path(repo: Path | None = None) -> Path:
    return Path(repo or dvc_repo()) / LOCK_FILE


@contextlib.contextmanager
def data_lock(what: str, repo: Path | None = None, wait_s: float = 0.0) -> Iterator[Path]:
    """Hold the project's data lock while the block runs.

    Args:
        what: who holds it (``"retrain"``, ``"data ingest"``), shown to a second caller.
        repo: the DVC project (default: the one holding ``data/``).
        wait_s: how long to wait for a busy lock before giving up (0 = fail at once).

    Raises:
        LockBusy: the lock is held by another process (names it and since when).
    """
    path = lock_path(repo)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockBusy(_busy_message(path)) from None
                time.sleep(min(1.0, max(0.05, deadline - time.monotonic())))
        holder = {"what": what, "pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode(), 0)
        try:
            yield path
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _busy_message(path: Path) -> str:
    try:
        h = json.loads(path.read_text() or "{}")
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(h["since"]))
        who = f"{h['what']} (pid {h['pid']} on {h['host']}, since {since})"
    except (OSError, ValueError, KeyError):
        who = "another process"
    return f"{who} holds the data lock {path}; try again when it has finished"
