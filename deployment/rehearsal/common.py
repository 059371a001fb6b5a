"""What the rehearsal's modules share: the checkout, errors, printed commands."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


class RehearsalError(RuntimeError):
    """A stage of the rehearsal failed; the message says which and why."""


def say(message: str) -> None:
    print(f"[rehearsal {time.strftime('%H:%M:%S')}] {message}", flush=True)


def sh(cmd: list[str], *, env: dict | None = None, cwd: Path | None = None, capture: bool = False) -> str:
    """Run a command (printed first; never one holding a secret value) and fail with its output."""
    print("+ " + " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, env=env, cwd=cwd, text=True, capture_output=capture)
    if proc.returncode != 0:
        tail = ((proc.stdout or "") + (proc.stderr or ""))[-4000:] if capture else ""
        raise RehearsalError(f"`{' '.join(cmd)}` exited with {proc.returncode}\n{tail}")
    return proc.stdout or ""
