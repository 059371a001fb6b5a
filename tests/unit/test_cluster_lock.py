"""requirements-cluster.lock, the cluster step image's packages (deployment/cluster_lock.py):

- every entry is pinned (``==``) and hashed, as pip's hash-checking mode requires;
- it agrees with requirements.lock on every package both hold, except the allow-list
  deployment.cluster_lock.MAY_DIFFER (each with the reason), which must differ; torch is the CPU
  build of the laptop's TORCH_SPEC;
- every requirement of ZenML's s3, mlflow, kubernetes and kubeflow integrations, every
  pyproject.toml dependency and dvc-s3 is met by a pin in it;
- what the lock is made of (packages and their dependencies, from the installed metadata) is
  closed: a package's requirement that the image's platform needs names a package in the lock.
Regenerating the lock needs the network (`make cluster-lock`); these checks do not.
"""

from __future__ import annotations

import importlib.metadata as md

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from deployment import cluster_lock
from deployment.cluster_lock import MAY_DIFFER, LockError, Pin, read_lock


@pytest.fixture(scope="module")
def cluster() -> dict[str, Pin]:
    return read_lock(cluster_lock.CLUSTER_LOCK)


def _met(req: Requirement, pins: dict[str, Pin], where: str) -> None:
    if req.marker and not req.marker.evaluate(cluster_lock.TARGET_ENV):
        return  # not needed on linux x86_64, CPython 3.11
    key = canonicalize_name(req.name)
    assert key in pins, f"{req} ({where}) has no pin in requirements-cluster.lock: run `make cluster-lock`"
    assert req.specifier.contains(pins[key].version, prereleases=True), (
        f"{req} ({where}) is not met by {key}=={pins[key].version} in requirements-cluster.lock"
    )


def test_every_entry_is_pinned_and_hashed(cluster):
    assert len(cluster) > 200
    for pin in cluster.values():
        assert pin.hashes and all(h.startswith("sha256:") and len(h) == 7 + 64 for h in pin.hashes), pin.name
        Version(pin.version)  # a valid version, no wildcard


def test_read_lock_refuses_what_pip_hash_mode_refuses(tmp_path):
    good = "a==1.0 \\\n    --hash=sha256:" + "0" * 64 + "\n    # via b\n"
    assert read_lock(_write(tmp_path, good))["a"] == Pin("a", "1.0", ("sha256:" + "0" * 64,))
    for bad, message in [
        ("a==1.0\n", "has no --hash"),
        ("a>=1.0 --hash=sha256:" + "0" * 64 + "\n", "not a plain"),
        ("a==1.* --hash=sha256:" + "0" * 64 + "\n", "not a plain"),
        ("-e . --hash=sha256:" + "0" * 64 + "\n", "not a plain"),
        (good + good, "pinned twice"),
    ]:
        with pytest.raises(LockError, match=message):
            read_lock(_write(tmp_path, bad))


def _write(tmp_path, text):
    path = tmp_path / "lock.txt"
    path.write_text(text)
    return path


def test_both_locks_agree_on_every_shared_package_but_the_allow_list(cluster):
    # the allow-list (deployment/cluster_lock.py MAY_DIFFER, which the generator leaves out of
    # its constraints): each entry says which kfp requirement forces it
    assert MAY_DIFFER and all("kfp" in reason for reason in MAY_DIFFER.values())
    laptop = cluster_lock.laptop_pins()
    shared = sorted(set(laptop) & set(cluster))
    assert len(shared) > 200
    assert cluster["torch"].version == f"{laptop['torch']}+cpu"  # the CPU build of the laptop's TORCH_SPEC
    differ = {n: (laptop[n], cluster[n].version) for n in shared if n != "torch" and laptop[n] != cluster[n].version}
    assert set(differ) <= set(MAY_DIFFER), f"the locks differ outside the allow-list: {differ}"
    assert set(differ) == set(MAY_DIFFER), f"allow-listed but equal now, drop them: {set(MAY_DIFFER) - set(differ)}"


def test_every_integration_requirement_has_a_pin(cluster):
    reqs = cluster_lock.integration_requirements()
    assert set(reqs) == {"s3", "mlflow", "kubernetes", "kubeflow"}
    assert any(Requirement(r).name == "kfp" for r in reqs["kubeflow"])
    for name, requirements in reqs.items():
        for req in map(Requirement, requirements):
            _met(req, cluster, f"ZenML {name} integration")


def test_every_project_dependency_has_a_pin(cluster):
    requirements = cluster_lock.project_requirements()
    assert f"torch=={cluster_lock.laptop_pins()['torch']}+cpu" in requirements
    for req in map(Requirement, requirements):
        _met(req, cluster, "pyproject.toml / dvc-s3")
    assert "dvc-s3" in cluster


def test_the_lock_is_closed_over_the_dependencies_it_can_see(cluster):
    """Each package in the lock that this venv holds at the same version: its requirements (with
    the extras the project asks for) name packages in the lock, at versions they accept. pip's
    hash-checking mode refuses to install a dependency that is not in the file."""
    extras = {canonicalize_name(r.name): r.extras for r in map(Requirement, cluster_lock.project_requirements())}
    checked = 0
    for key, pin in cluster.items():
        try:
            dist = md.distribution(pin.name)
        except md.PackageNotFoundError:
            continue
        if Version(dist.version) != Version(pin.version):
            continue  # a different build here (e.g. protobuf): its metadata says nothing of the pin
        checked += 1
        for text in dist.requires or []:
            req = Requirement(text)
            wanted = extras.get(key, set())
            envs = [{**cluster_lock.TARGET_ENV, "extra": e} for e in ("", *wanted)]
            if req.marker and not any(req.marker.evaluate(env) for env in envs):
                continue
            _met(Requirement(str(req).split(";")[0]), cluster, f"required by {pin.name}")
    assert checked > 150
