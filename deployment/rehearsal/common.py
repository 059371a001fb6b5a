"""What the rehearsal's modules share: the checkout, errors, printed commands, step containers."""

from __future__ import annotations

import json
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


def step_containers(orchestrator_run_id: str) -> dict[str, dict]:
    """Every container the local_docker orchestrator started for this run, by step name."""
    ids = subprocess.run(
        ["docker", "ps", "-aq", "--no-trunc"], capture_output=True, text=True, check=True
    ).stdout.split()
    found: dict[str, dict] = {}
    if not ids:
        return found
    for c in json.loads(subprocess.run(["docker", "inspect", *ids], capture_output=True, text=True, check=True).stdout):
        env = dict(e.split("=", 1) for e in c["Config"]["Env"] or [])
        if env.get("ZENML_DOCKER_ORCHESTRATOR_RUN_ID") != orchestrator_run_id:
            continue
        args = c.get("Args") or []
        step = args[args.index("--step_name") + 1] if "--step_name" in args else "?"
        found[step] = {
            "container_id": c["Id"][:12],
            "image": c["Config"]["Image"],
            "exit_code": c["State"]["ExitCode"],
            "started_at": c["State"]["StartedAt"],
            "finished_at": c["State"]["FinishedAt"],
            "network_mode": c["HostConfig"]["NetworkMode"],
            "mounts": [m["Destination"] for m in c.get("Mounts", [])],
        }
        subprocess.run(["docker", "rm", c["Id"]], capture_output=True)
    return found
