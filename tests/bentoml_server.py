"""A real `bentoml serve` subprocess for tests: start on a free loopback port, stop like a user."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.conftest import QUIET_ENV


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(
    args: list[str], cwd: Path, env: dict[str, str], log_path: Path
) -> tuple[httpx.Client, subprocess.Popen]:
    """`bentoml serve [args]` on a free loopback port, ready; its log goes to ``log_path``.

    A file, not a pipe: nobody reads a pipe while tests run, and a full one blocks the server.
    """
    port = free_port()
    bentoml = str(Path(sys.executable).parent / "bentoml")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [bentoml, "serve", *args, "--host", "127.0.0.1", "--port", str(port)],
            cwd=cwd,
            env={**os.environ, **QUIET_ENV, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"bentoml serve exited: {log_path.read_text()[-3000:]}")
        try:
            if client.get("/readyz").status_code == 200:
                return client, proc
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    stop_server(proc)
    pytest.fail(f"bentoml serve did not become ready in 120 s: {log_path.read_text()[-3000:]}")


def stop_server(proc: subprocess.Popen, sig: int = signal.SIGINT, timeout: float = 60) -> list[int]:
    """Stop `bentoml serve` as a user does (Ctrl-C); return the PIDs of its workers still alive after.

    Workers run in their own sessions, so a process-group kill would orphan them: the arbiter
    must shut them down, and any survivor is killed here so no test leaks a server.
    """
    try:
        workers = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        workers = []
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)
    _, alive = psutil.wait_procs(workers, timeout=10)
    for w in alive:
        w.kill()
    return [w.pid for w in alive]
