"""requirements-cluster.lock: every package of the cluster step image, pinned and hashed.

    make cluster-lock       # = .venv/bin/python deployment/cluster_lock.py --uv UV

What goes in, resolved together by ``uv pip compile --generate-hashes`` for CPython 3.11 on
linux x86_64 (the step image):
  - pyproject.toml [project].dependencies, torch as the CPU build: the Makefile's TORCH_SPEC
    version + ``+cpu``, from configs/cluster.yaml's extra index (download.pytorch.org/whl/cpu);
  - dvc-s3, the DVC S3 remote the ingest step pulls from;
  - the requirements of ZenML's s3, mlflow, kubernetes and kubeflow integrations, read from
    ZenML itself (configs/cluster.yaml sets install_stack_requirements: false: the lock holds them);
  - requirements.lock as constraints: a package both locks hold gets the laptop's pin, except
    the packages in MAY_DIFFER.
torch is fetched first by pip (from the CPU index, or a local copy pip's own configuration
finds) and handed to uv as a local file, so that only torch comes from that index and every other
package from PyPI; its hash is that of the linux x86_64 CPython 3.11 wheel.

tests/unit/test_cluster_lock.py checks the result: every line hashed and pinned, the two locks equal
on every shared package but MAY_DIFFER, every integration requirement met.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]
CLUSTER_LOCK = REPO / "requirements-cluster.lock"
LAPTOP_LOCK = REPO / "requirements.lock"
INTEGRATIONS = ("s3", "mlflow", "kubernetes", "kubeflow")  # what deployment/stacks registers
EXTRA_PACKAGES = ("dvc-s3",)  # pyproject's [cluster] extra that a step needs, at requirements.lock's pin
TORCH_BUILD = "cpu"  # the local version label of the wheels on configs/cluster.yaml's extra index
PYTHON_VERSION = "3.11"
UV_PLATFORM = "x86_64-manylinux_2_28"  # glibc >= 2.28: Debian bookworm, ZenML's python:3.11-slim images
PIP_PLATFORM = "manylinux_2_28_x86_64"
# linux x86_64 CPython 3.11: what a requirement's environment markers see in the image
TARGET_ENV = {
    "python_version": PYTHON_VERSION,
    "python_full_version": f"{PYTHON_VERSION}.0",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "os_name": "posix",
}

# Packages whose cluster pin differs from requirements.lock, and why. Everything else both locks
# hold has one version (tests/unit/test_cluster_lock.py). The laptop lock keeps its pins: moving it
# would need the whole laptop suite (`make test`) on the older versions.
MAY_DIFFER = {
    "protobuf": "kfp 2.14+ requires protobuf>=6.31.1,<7 and kfp 2.6-2.13 protobuf<5 (ZenML's kubeflow "
    "integration: kfp>=2.6); the laptop lock has protobuf 7, which no kfp 2.x accepts",
    "click-option-group": "kfp 2.14+ pins click-option-group==0.5.7 exactly, and no older kfp 2.x fits "
    "(protobuf<5); the laptop lock has 0.5.10 (bentoml accepts both)",
}


class LockError(RuntimeError):
    """The lock cannot be made or read; the message says why."""


@dataclass(frozen=True)
class Pin:
    name: str  # as written in the lock
    version: str
    hashes: tuple[str, ...]


def read_lock(path: Path) -> dict[str, Pin]:
    """A hashed requirements file (uv/pip-compile style), by canonical name. Raises LockError on
    a requirement that is not ``name==version`` or has no ``--hash``."""
    pins: dict[str, Pin] = {}
    text = re.sub(r"\\\n", " ", path.read_text())  # join continuation lines
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        hashes = tuple(p.split("=", 1)[1] for p in parts[1:] if p.startswith("--hash="))
        others = [p for p in parts[1:] if not p.startswith("--hash=")]
        try:
            req = Requirement(parts[0])
        except InvalidRequirement as e:
            raise LockError(f"{path.name}: entry {lineno} is not a plain `name==version --hash=...`: {e}") from e
        spec = list(req.specifier)
        if others or req.marker or req.url or len(spec) != 1 or spec[0].operator != "==" or "*" in spec[0].version:
            raise LockError(f"{path.name}: entry {lineno} is not a plain `name==version --hash=...`: {line[:120]}")
        if not hashes:
            raise LockError(f"{path.name}: {req.name}=={spec[0].version} has no --hash (pip's hash mode needs one)")
        key = canonicalize_name(req.name)
        if key in pins:
            raise LockError(f"{path.name}: {req.name} is pinned twice")
        pins[key] = Pin(req.name, spec[0].version, hashes)
    return pins


def laptop_pins() -> dict[str, str]:
    """requirements.lock by canonical name, + torch at the Makefile's TORCH_SPEC (installed
    first, outside that lock)."""
    pins = {}
    for line in LAPTOP_LOCK.read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version.strip()
    torch = re.search(r"^TORCH_SPEC \?= torch==(\S+)$", (REPO / "Makefile").read_text(), re.M)
    if torch is None:
        raise LockError("no `TORCH_SPEC ?= torch==VERSION` line in the Makefile")
    pins["torch"] = torch.group(1)
    return pins


def torch_pin() -> str:
    return f"{laptop_pins()['torch']}+{TORCH_BUILD}"


def project_requirements() -> list[str]:
    """pyproject.toml [project].dependencies (torch as the CPU build) + EXTRA_PACKAGES at their
    requirements.lock pins."""
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    out = [f"torch=={torch_pin()}" if canonicalize_name(Requirement(d).name) == "torch" else d for d in deps]
    pins = laptop_pins()
    return out + [f"{name}=={pins[canonicalize_name(name)]}" for name in EXTRA_PACKAGES]


def integration_requirements() -> dict[str, list[str]]:
    """What ZenML's INTEGRATIONS need on linux, as ZenML itself lists it."""
    from zenml.enums import OperatingSystemType
    from zenml.integrations.registry import integration_registry

    return {
        name: integration_registry.integrations[name].get_requirements(
            target_os=OperatingSystemType.LINUX, python_version=PYTHON_VERSION
        )
        for name in INTEGRATIONS
    }


def cluster_image_config() -> dict:
    return yaml.safe_load((REPO / "configs" / "cluster.yaml").read_text())["settings"]["docker"]


def torch_index() -> str:
    """configs/cluster.yaml's extra index: where the image's pip finds the CPU torch wheel."""
    index = cluster_image_config().get("python_package_installer_args", {}).get("extra-index-url")
    if not index:
        raise LockError("configs/cluster.yaml: settings.docker.python_package_installer_args has no extra-index-url")
    return index


def fetch_torch(dest: Path, index: str) -> Path:
    """The CPU torch wheel for the image's platform, by pip (its configuration applies, e.g. a
    local wheel folder)."""
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "-d", str(dest),
           "--platform", PIP_PLATFORM, "--python-version", PYTHON_VERSION, "--implementation", "cp",
           "--extra-index-url", index, f"torch=={torch_pin()}"]  # fmt: skip
    print("+ " + " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheels = list(dest.glob("torch-*.whl"))
    if proc.returncode != 0 or len(wheels) != 1:
        raise LockError(f"pip could not fetch torch=={torch_pin()} from {index}:\n{proc.stderr[-3000:]}")
    return wheels[0]


HEADER = """\
# The cluster step image's packages: pinned, transitive included, hashed (pip's hash-checking
# mode). configs/cluster.yaml and configs/schedule.yaml install it (settings.docker.requirements).
# = pyproject.toml's dependencies + dvc-s3 + ZenML's {integrations} integrations,
# resolved together for CPython {python} on linux x86_64; every package requirements.lock also
# holds is at its pin there, except those in MAY_DIFFER (deployment/cluster_lock.py: why).
# torch is the CPU build from the extra index in configs/cluster.yaml (one hash: the cp311
# linux x86_64 wheel). Do not edit: regenerate with `make cluster-lock`.
"""


def compile_lock(uv: str, out: Path = CLUSTER_LOCK, index: str | None = None) -> dict[str, Pin]:
    """Resolve, write ``out`` atomically, check it and return its pins."""
    with tempfile.TemporaryDirectory(prefix="har-cluster-lock-") as tmp:
        work = Path(tmp)
        torch_dir = work / "torch"
        fetch_torch(torch_dir, index or torch_index())
        inputs = project_requirements()
        for name, reqs in integration_requirements().items():
            inputs += [f"{r}  # ZenML {name} integration" for r in reqs]
        (work / "cluster-inputs.txt").write_text("\n".join(inputs) + "\n")
        constraints = [
            f"{name}=={version}"
            for name, version in sorted(laptop_pins().items())
            if name not in MAY_DIFFER and name != "torch"  # torch: the +cpu pin above
        ]
        (work / "requirements.lock").write_text("\n".join(constraints) + "\n")
        result = work / "result.txt"
        cmd = [uv, "pip", "compile", "cluster-inputs.txt", "--constraint", "requirements.lock",
               "--generate-hashes", "--python-version", PYTHON_VERSION, "--python-platform", UV_PLATFORM,
               "--index-url", "https://pypi.org/simple", "--find-links", "torch",
               "--no-header", "--quiet", "--output-file", str(result)]  # fmt: skip
        print("+ " + " ".join(cmd), flush=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("UV_")}  # no index or config from outside
        proc = subprocess.run(cmd, cwd=work, env={**env, "UV_NO_CONFIG": "1"}, capture_output=True, text=True)
        if proc.returncode != 0:
            raise LockError(f"uv pip compile failed:\n{proc.stderr[-4000:]}")
        header = HEADER.format(integrations=", ".join(INTEGRATIONS), python=PYTHON_VERSION)
        tmp_out = out.with_name(out.name + ".tmp")
        tmp_out.write_text(header + result.read_text())
        pins = read_lock(tmp_out)  # refuses an unhashed or unpinned entry before it replaces the lock
        tmp_out.replace(out)
    return pins


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--uv", default=os.environ.get("UV") or shutil.which("uv"), help="the uv executable")
    parser.add_argument("--out", type=Path, default=CLUSTER_LOCK)
    args = parser.parse_args()
    uv = shutil.which(args.uv) if args.uv else None  # absolute: uv runs in a temporary folder
    if not uv:
        raise LockError(f"no uv executable ({args.uv}): `make cluster-lock` installs one, or pass --uv PATH")
    pins = compile_lock(str(Path(uv).resolve()), args.out)
    laptop = laptop_pins()
    differ = {n: (laptop[n], p.version) for n, p in pins.items() if n in laptop and laptop[n] != p.version}
    print(f"wrote {args.out} ({len(pins)} packages); differs from requirements.lock in:")
    for name, (lap, clu) in sorted(differ.items()):
        print(f"  {name}: {lap} (laptop) -> {clu} (cluster)")


if __name__ == "__main__":
    try:
        main()
    except LockError as e:
        print(f"cluster-lock: {e}", file=sys.stderr)
        sys.exit(1)
