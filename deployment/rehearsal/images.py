"""The rehearsal's images, made without any container registry.

rootfs: Debian bookworm from the Debian mirror (debootstrap), ``docker import``ed once.
parent: rootfs + a venv on PATH + a wheelhouse that pip downloads on the host at the
requirements.lock pins; pip inside is pointed at the wheelhouse only (PIP_NO_INDEX), so the
step image that ZenML's image builder makes on top needs no network.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import tomllib
from common import REPO, RehearsalError, say, sh

HERE = Path(__file__).resolve().parent
ROOTFS_IMAGE = "cmd-har-rootfs:bookworm"
BASE_IMAGE = "cmd-har-rehearsal-base"


def docker_ready() -> None:
    if shutil.which("docker") is None:
        raise RehearsalError("no `docker` command: install Docker (Debian: apt-get install docker.io)")
    proc = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RehearsalError(f"the Docker daemon is not reachable (start it: `dockerd &` as root):\n{proc.stderr}")


def image_exists(tag: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", tag], capture_output=True).returncode == 0


def rootfs_image() -> str:
    """A Debian bookworm image made with debootstrap (no registry involved), built once."""
    if image_exists(ROOTFS_IMAGE):
        return ROOTFS_IMAGE
    if shutil.which("debootstrap") is None:
        raise RehearsalError("no `debootstrap` to build the parent image: apt-get install debootstrap")
    with tempfile.TemporaryDirectory(prefix="har-rootfs-") as tmp:
        say(f"debootstrap bookworm -> {ROOTFS_IMAGE}")
        rootfs = Path(tmp) / "rootfs"
        sh(
            [
                "debootstrap",
                "--variant=minbase",
                "--include=python3,python3-venv,ca-certificates",
                "bookworm",
                str(rootfs),
            ],
            capture=True,  # one line per package; shown when it fails
        )
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        imp = subprocess.run(["docker", "import", "-", ROOTFS_IMAGE], stdin=tar.stdout, capture_output=True, text=True)
        tar.wait()
        if imp.returncode != 0 or tar.returncode != 0:
            raise RehearsalError(f"docker import failed: {imp.stderr}")
    return ROOTFS_IMAGE


def image_requirements(config: dict, integrations: list[str]) -> list[str]:
    """Everything the step image installs: the config's requirements, the stack integrations'
    requirements, and what `pip install -e .` builds with."""
    from zenml.integrations.registry import integration_registry

    reqs = list(config["settings"]["docker"]["requirements"])
    for name in integrations:
        reqs += integration_registry.select_integration_requirements(name)
    build = tomllib.loads((REPO / "pyproject.toml").read_text())["build-system"]["requires"]
    return sorted(set(reqs + build))


def wheelhouse(requirements: list[str], cache: Path) -> Path:
    """Wheels for ``requirements`` at the requirements.lock pins, downloaded on the host by pip
    (sdists built into wheels here), cached by content."""
    lock = (REPO / "requirements.lock").read_text()
    key = hashlib.sha256(("\n".join(requirements) + lock).encode()).hexdigest()[:16]
    folder = cache / f"wheelhouse-{key}"
    if (folder / ".complete").exists():
        return folder
    tmp = Path(tempfile.mkdtemp(prefix="partial-", dir=cache))
    reqs = tmp / "requirements.txt"
    reqs.write_text("\n".join(requirements) + "\n")
    say(f"pip download {len(requirements)} requirements (+ dependencies) -> {folder}")
    pip = [sys.executable, "-m", "pip", "-q"]
    sh([*pip, "download", "-d", str(tmp), "-c", str(REPO / "requirements.lock"), "-r", str(reqs)], capture=True)
    reqs.unlink()
    sdists = sorted(p for p in tmp.iterdir() if not p.name.endswith(".whl"))
    if sdists:
        sh([*pip, "wheel", "--no-deps", "-w", str(tmp), *map(str, sdists)], capture=True)
        for p in sdists:
            p.unlink()
    (tmp / ".complete").write_text(key)
    for old in [*cache.glob("wheelhouse-*"), *cache.glob("partial-*")]:  # other locks' wheels, half-made ones
        if old != tmp:
            shutil.rmtree(old, ignore_errors=True)
    tmp.rename(folder)
    return folder


def base_image(rootfs: str, wheels: Path) -> str:
    """rootfs + a venv on PATH + the wheelhouse, with pip pointed at it only."""
    tag = f"{BASE_IMAGE}:{wheels.name.removeprefix('wheelhouse-')}"
    if image_exists(tag):
        return tag
    with tempfile.TemporaryDirectory(prefix="har-base-") as ctx:
        shutil.copy(HERE / "Dockerfile", Path(ctx) / "Dockerfile")
        shutil.copytree(wheels, Path(ctx) / "wheels", copy_function=os.link)
        say(f"docker build {tag}")
        sh(["docker", "build", "-q", "--build-arg", f"ROOTFS_IMAGE={rootfs}", "-t", tag, ctx])
    return tag
