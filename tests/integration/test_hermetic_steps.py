"""Every step of train_pipeline runs on its own, as in one pod per step on a cluster.

A step reads only its ZenML inputs, its parameters and the data version it fetches from
the DVC remote: recordings by data version (``materialize``), the edge bundle as an
artifact. The slow test runs train_pipeline with each step in its own fresh folder that
holds only a copy of the code (no data/, no .git, no artifacts/), deleted when the step
ends; the host imported, versioned and pushed the data first. The fast tests cover the
pieces: fetching a version without Git, validation that never makes a data version, and
the bundle artifact.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from components.data.importers import import_dataset
from components.data.validation import ValidationFailed
from components.data.versioning import DVC_FILE, VersioningError, data_version, materialize, version_data
from components.edge.bundle import BundleError, EdgeBundle
from tests.conftest import (
    DSADS_SMALL,
    QUIET_ENV,
    REPO_ROOT,
    dvc_project,
    isolated_env,
    run_har,
    small_dsads_parameters,
)
from tests.integration.test_data_validation import VICTIM, nan_burst

TRAIN_STEPS = [
    "data_version_step",
    "validate_dataset_step",
    "window_dataset_step",
    "split_windows_step",
    "train_model_step",
    "evaluate_model_step",
    "export_model_step",
    "promote_model_step",
    "build_edge_bundle_step",
    "package_model_step",
    "simulate_edge_step",
]
# what a container image built from the code holds: no .git, no data/, no local state
NOT_CODE = shutil.ignore_patterns(
    ".git", "data", "artifacts", "benchmarks", "docs", "tests", ".venv", ".zen", ".zenml", ".mlflow", ".bentoml",
    ".cache", "cache", "tmp", "config.local", "__pycache__", "*.egg-info", ".pytest_cache", ".ruff_cache",
)  # fmt: skip


def _dvc(args: list[str], cwd: Path) -> None:
    subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd, check=True, env={**os.environ, **QUIET_ENV})


def _code_copy(dest: Path, remote: Path, data_dvc: Path) -> Path:
    """A copy of the code whose committed DVC config names ``remote`` and whose data.dvc is the host's."""
    shutil.copytree(REPO_ROOT, dest, ignore=NOT_CODE)
    (dest / ".dvc" / "config").write_text(f"[core]\n    remote = store\n['remote \"store\"']\n    url = {remote}\n")
    shutil.copy(data_dvc, dest / DVC_FILE)
    return dest


def discard_step_folder() -> None:
    """Success hook of every step in the slow test: the step's folder goes, as a pod does."""
    shutil.rmtree(Path(os.environ["HAR_DATA_DIR"]).parent)


# -- fetching a data version ------------------------------------------------------------


@pytest.fixture
def host_and_pod(tmp_path, monkeypatch):
    """A host project with one toy data version pushed to a remote, and a code-only copy."""
    host = dvc_project(tmp_path / "host")
    _dvc(["remote", "add", "-d", "store", str(tmp_path / "remote")], host)
    (host / "data" / "toy").mkdir(parents=True)
    (host / "data" / "toy" / "manifest.yaml").write_text("name: toy\n")
    (host / "data" / "toy" / "a.bin").write_bytes(b"version one")
    (host / "data" / "spare").mkdir()
    (host / "data" / "spare" / "manifest.yaml").write_text("name: spare\n")
    version = version_data(host, push=True)
    pod = _code_copy(tmp_path / "pod", tmp_path / "remote", host / DVC_FILE)
    return host, pod, version


def test_materialize_fetches_a_version_into_a_folder_without_git(host_and_pod, monkeypatch):
    host, pod, version = host_and_pod
    assert not (pod / "data").exists() and not any((p / ".git").exists() for p in (pod, *pod.parents))
    monkeypatch.setenv("HAR_DATA_DIR", str(pod / "data"))
    with materialize(version, "toy") as folder:
        assert (folder / "a.bin").read_bytes() == b"version one"
        assert not folder.is_relative_to(pod / "data")
        assert [p.name for p in folder.parent.iterdir()] == ["toy"]  # only the dataset asked for
    assert not folder.exists()  # a temporary folder, gone after the block
    assert not (pod / "data").exists()  # the step's checkout gets no data/
    with pytest.raises(VersioningError, match="has no dataset 'other'.*har data import other"):
        with materialize(version, "other"):
            pass
    missing = "0123456789abcdef0123456789abcdef.dir"
    with pytest.raises(VersioningError, match=f"{missing} could not be fetched from DVC remote 'store'"):
        with materialize(missing, "toy"):
            pass


def test_materialize_reads_data_in_place_only_when_it_is_that_version(host_and_pod, monkeypatch):
    host, _, version = host_and_pod
    monkeypatch.setenv("HAR_DATA_DIR", str(host / "data"))
    with materialize(version, "toy") as folder:
        assert folder == host / "data" / "toy"  # the laptop path: no copy
    (host / "data" / "toy" / "a.bin").write_bytes(b"edited after versioning")
    with materialize(version, "toy") as folder:
        assert folder != host / "data" / "toy" and (folder / "a.bin").read_bytes() == b"version one"


def test_materialize_without_a_remote_says_how_to_push(tmp_path, monkeypatch):
    host = dvc_project(tmp_path / "host")
    (host / "data" / "toy").mkdir(parents=True)
    (host / "data" / "toy" / "manifest.yaml").write_text("name: toy\n")
    version = version_data(host)
    pod = tmp_path / "pod"
    shutil.copytree(host, pod, ignore=shutil.ignore_patterns("data", "cache"))
    monkeypatch.setenv("HAR_DATA_DIR", str(pod / "data"))
    with pytest.raises(VersioningError, match="has no default DVC remote.*har data version --push"):
        with materialize(version, "toy"):
            pass


# -- validation makes no data version ---------------------------------------------------


def test_validate_step_fails_on_a_bad_recording_and_changes_nothing(tmp_path, monkeypatch):
    from steps.validate_dataset import validate_dataset_step

    project = dvc_project(tmp_path / "proj")
    import_dataset("dsads", project / "data", **DSADS_SMALL, jobs=1)  # 6 recordings
    clean = version_data(project)
    nan_burst(project / "data" / "dsads" / "recordings" / f"{VICTIM}.parquet")
    bad = version_data(project)
    monkeypatch.setenv("HAR_DATA_DIR", str(project / "data"))
    expected = f"1/6 recordings failed validation: {VICTIM}: .*On the host, `har data validate dsads` moves them"
    with pytest.raises(ValidationFailed, match=expected):
        validate_dataset_step.entrypoint("dsads", bad, {"jobs": 1})
    with pytest.raises(ValidationFailed, match="more than max_quarantine_share \\(10%\\)"):
        validate_dataset_step.entrypoint("dsads", bad, {"jobs": 1, "max_quarantine_share": 0.1})
    assert data_version(project) == bad and not (project / "data" / "quarantine").exists()
    assert (project / "data" / "dsads" / "recordings" / f"{VICTIM}.parquet").exists()
    # the clean version is still in the cache: validated by version, it passes as it is
    validated, report, _ = validate_dataset_step.entrypoint("dsads", clean, {"jobs": 1})
    assert validated == clean and report["quarantined"] == [] and data_version(project) == bad


# -- the edge bundle artifact -----------------------------------------------------------


def test_edge_bundle_travels_as_an_artifact(tmp_path):
    from steps.materializers import EdgeBundleMaterializer

    files = {"manifest.json": b'{"name": "m-v1"}', "model.int8.onnx": b"\x00\x01"}
    bundle = EdgeBundle.load(EdgeBundle(files).save(tmp_path / "built"))
    uri = tmp_path / "store" / "bundle"
    EdgeBundleMaterializer(str(uri)).save(bundle)
    loaded = EdgeBundleMaterializer(str(uri)).load(EdgeBundle)
    assert loaded == bundle and loaded.name == "m-v1"
    with loaded.unpacked() as folder:
        assert folder.name == "m-v1" and (folder / "model.int8.onnx").read_bytes() == b"\x00\x01"
    assert not folder.exists()
    # nothing promoted: the empty bundle round-trips and is falsy
    EdgeBundleMaterializer(str(tmp_path / "store" / "empty")).save(EdgeBundle())
    empty = EdgeBundleMaterializer(str(tmp_path / "store" / "empty")).load(EdgeBundle)
    assert not empty and empty.name == ""
    with pytest.raises(BundleError, match="nothing was promoted"), empty.unpacked():
        pass
    with pytest.raises(BundleError, match="not a plain file name"):
        EdgeBundle({"../escape": b""}).save(tmp_path / "x")


# -- train_pipeline, one fresh folder per step ------------------------------------------


def _config(root: Path, code: Path) -> Path:
    config = yaml.safe_load((REPO_ROOT / "configs" / "train.yaml").read_text())
    config["model"]["name"] = "cmd-har-hermetic"
    nowhere = root / "nowhere"  # a step left out of TRAIN_STEPS would look here and find nothing
    config["environment"] = {"HAR_DATA_DIR": str(nowhere / "data"), "HAR_ARTIFACTS_DIR": str(nowhere / "artifacts")}
    config["steps"] = {}
    for name in TRAIN_STEPS:
        folder = shutil.copytree(code, root / "steps" / name)
        config["steps"][name] = {
            "environment": {"HAR_DATA_DIR": str(folder / "data"), "HAR_ARTIFACTS_DIR": str(folder / "artifacts")},
            "success_hook_source": f"{__name__}.discard_step_folder",
        }
    config["steps"]["data_version_step"]["parameters"] = {"pull": True}  # as in configs/cluster.yaml
    p = config["parameters"]
    p.update(
        small_dsads_parameters("cmd-har-hermetic"),
        edge={"profiles": ["phone"], "max_recordings": 1, "max_seconds": 10},
    )
    p["validation"]["jobs"] = 1
    p["trainer"].update({"epochs": 2, "patience": 2, "progress": False, "time_budget_min": None})
    path = root / "hermetic.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.slow
def test_train_pipeline_with_one_fresh_code_only_folder_per_step(tmp_path):
    env = isolated_env(tmp_path)
    host = Path(env["HAR_DATA_DIR"]).parent  # the laptop: import, version, push
    _dvc(["remote", "add", "-d", "store", str(tmp_path / "remote")], host)
    import_dataset("dsads", host / "data", subjects=["1", "2", "3"], jobs=2)
    version = version_data(host, push=True)
    before = sorted(p.name for p in (host / "data" / "dsads" / "recordings").iterdir())
    code = _code_copy(tmp_path / "code", tmp_path / "remote", host / DVC_FILE)
    config = _config(tmp_path, code)

    _, out = run_har(env, "train", "-c", str(config), timeout=900)

    assert "champion" in out and "cmd-har-hermetic v1" in out and version in out
    left = sorted(p.name for p in (tmp_path / "steps").iterdir())
    assert left == [], f"steps that did not finish in their own folder: {left}"
    assert not (tmp_path / "nowhere").exists()
    from mlflow.tracking import MlflowClient

    uri = env["MLFLOW_TRACKING_URI"]
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    champion = client.get_model_version_by_alias("cmd-har-hermetic", "champion")
    run = client.get_run(champion.run_id)
    assert run.data.tags["data_version"] == version
    assert "edge.phone.latency_ms_p99" in run.data.metrics  # the simulation fetched its recordings
    assert run.data.tags["edge_bundle"] == "edge/cmd-har-hermetic-v1.tar.gz"
    assert "BentoML model │ cmd-har-hermetic:" in out  # packaged from the bundle artifact
    # the host's data and version are what they were: no step made a data version
    assert data_version(host) == version
    assert sorted(p.name for p in (host / "data" / "dsads" / "recordings").iterdir()) == before
