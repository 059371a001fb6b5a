"""The rehearsal's images, made without any container registry.

rootfs: Debian bookworm from the Debian mirror (debootstrap), ``docker import``ed once.
parent: rootfs + a venv on PATH + a wheelhouse that pip downloads on the host: the files of the
cluster lock (requirements-cluster.lock, hash-checked); pip inside is pointed at the wheelhouse
only (PIP_NO_INDEX), so the step image that ZenML's image builder makes on top needs no network.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import tomllib
import yaml
from common import REPO, RehearsalError, say, sh

from deployment.cluster_lock import LockError, read_lock

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


def image_lock(project: Path) -> tuple[Path, str | None]:
    """The lock file the step image installs (configs/cluster.yaml's settings.docker.requirements)
    and the extra index its pip reads torch from."""
    docker = yaml.safe_load((project / "configs" / "cluster.yaml").read_text())["settings"]["docker"]
    reqs = docker.get("requirements")
    if not isinstance(reqs, str) or docker.get("install_stack_requirements", True):
        raise RehearsalError(
            "configs/cluster.yaml: settings.docker.requirements must name the cluster lock file "
            f"(got {reqs!r}) with install_stack_requirements: false"
        )
    return project / reqs, docker.get("python_package_installer_args", {}).get("extra-index-url")


def _build_requires(sdist: Path) -> list[str]:
    """An sdist's [build-system].requires (pip's default without a pyproject.toml)."""
    with tarfile.open(sdist) as tar:
        top = [m for m in tar.getmembers() if m.name.count("/") == 1 and m.name.endswith("/pyproject.toml")]
        member = top[0] if top else None
        data = tomllib.loads(tar.extractfile(member).read().decode()) if member else {}
    return data.get("build-system", {}).get("requires", ["setuptools>=40.8.0", "wheel"])


def wheelhouse(lock: Path, torch_index: str | None, cache: Path) -> Path:
    """Every file ``lock`` pins, downloaded on the host by pip in hash-checking mode (so the image
    gets exactly the lock's files), cached by content. sdists stay sdists (a wheel built here would
    not match the lock's hash): the image builds them from the wheelhouse, which therefore also
    holds their build requirements and those of the project (`pip install -e .`)."""
    try:
        pins = read_lock(lock)  # refuses an unhashed or unpinned entry
    except LockError as e:
        raise RehearsalError(str(e)) from e
    build = tomllib.loads((REPO / "pyproject.toml").read_text())["build-system"]["requires"]
    key = hashlib.sha256((lock.read_text() + "\n".join(build)).encode()).hexdigest()[:16]
    folder = cache / f"wheelhouse-{key}"
    if (folder / ".complete").exists():
        return folder
    tmp = Path(tempfile.mkdtemp(prefix="partial-", dir=cache))
    pip = [sys.executable, "-m", "pip", "-q", "download", "--no-deps", "--require-hashes", "-d", str(tmp)]
    # local builds (torch ...+cpu) from the extra index first, alone: the index is asked for these only
    local = [p for p in pins.values() if "+" in p.version]
    if local:
        first = tmp / "local-builds.txt"
        first.write_text("".join(f"{p.name}=={p.version} " + " ".join(f"--hash={h}" for h in p.hashes) + "\n"
                                 for p in local))  # fmt: skip
        index = ["--extra-index-url", torch_index] if torch_index else []
        say(f"pip download {', '.join(f'{p.name}=={p.version}' for p in local)} -> {folder}")
        sh([*pip, *index, "-r", str(first)], capture=True)
        first.unlink()
    say(f"pip download the {len(pins)} pins of {lock.name} (hash-checked) -> {folder}")
    sh([*pip, "--find-links", str(tmp), "-r", str(lock)], capture=True)
    for sdist in sorted(tmp.glob("*.tar.gz")):
        build += _build_requires(sdist)
    say(f"pip download the build requirements: {', '.join(sorted(set(build)))}")
    sh([sys.executable, "-m", "pip", "-q", "download", "--only-binary=:all:", "-d", str(tmp), *sorted(set(build))],
       capture=True)  # fmt: skip
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
