"""End to end: train_pipeline on a small real DSADS subset, three times.

Isolated ZenML config/repository, MLflow store, BentoML home and data project, so the
checkout's own state is never touched. Run 1 becomes champion; run 2 (a deliberately
worse config) does not take the alias; run 3 fails in training and leaves the alias,
the registered versions and the BentoML store as they were.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO_ROOT, isolated_env, run_har, small_dsads_parameters

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("train-e2e")
    env = isolated_env(root)
    env["HAR_ARTIFACTS_DIR"] = str(root / "artifacts")  # edge bundles stay out of the checkout
    return {"root": root, "env": env}


def _config(root: Path, name: str, **trainer) -> Path:
    config = yaml.safe_load((REPO_ROOT / "configs" / "train.yaml").read_text())
    config.pop("steps")  # no MLflow tracker in the isolated stack: steps log on their own
    config["model"]["name"] = "cmd-har-e2e"
    p = config["parameters"]
    p.update(small_dsads_parameters("cmd-har-e2e"))
    p["validation"]["jobs"] = 1
    p["trainer"].update({"epochs": 3, "patience": 3, "progress": False, **trainer})
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _har(env, *args, check=True):
    return run_har(env["env"], *args, check=check, timeout=900)


def _mlflow(env):
    os.environ["MLFLOW_TRACKING_URI"] = env["env"]["MLFLOW_TRACKING_URI"]
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=env["env"]["MLFLOW_TRACKING_URI"], registry_uri=env["env"]["MLFLOW_TRACKING_URI"])


def test_champion_challenger_and_failure(env, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", env["env"]["MLFLOW_TRACKING_URI"])
    # -- run 1: first model becomes champion -------------------------------------------
    _, out = _har(env, "train", "-c", str(_config(env["root"], "good")))
    assert "champion" in out and "cmd-har-e2e v1" in out
    client = _mlflow(env)
    champion = client.get_model_version_by_alias("cmd-har-e2e", "champion")
    assert str(champion.version) == "1"
    run = client.get_run(champion.run_id)
    data_version = run.data.tags["data_version"]
    assert data_version.endswith(".dir") and data_version in out
    assert {"zenml_pipeline_run_id", "git_commit", "git_dirty", "config_hash", "test_subjects"} <= set(run.data.tags)
    inputs = {i.tags[0].value if i.tags else None: i.dataset for i in run.inputs.dataset_inputs}
    contexts = {t.value for i in run.inputs.dataset_inputs for t in i.tags if t.key == "mlflow.data.context"}
    assert contexts == {"training", "validation", "test"}
    assert all(i.dataset.digest == data_version for i in run.inputs.dataset_inputs), inputs
    assert 0 < run.data.metrics["test_macro_f1"] <= 1
    assert "epoch.val_macro_f1" in run.data.metrics and "export.int8_macro_f1" in run.data.metrics
    artifacts = {a.path for a in client.list_artifacts(champion.run_id, "plots")}
    assert {"plots/confusion_matrix.png", "plots/learning_curves.png", "plots/per_class_f1.png"} <= artifacts
    exported = {a.path for a in client.list_artifacts(champion.run_id, "exported")}
    assert {"exported/model.onnx", "exported/model.int8.onnx", "exported/preprocessing.json"} <= exported
    good_f1 = run.data.metrics["test_macro_f1"]

    # -- registry: the served int8 graph and its fp32 twin, each with signature and description
    _registered_pair(env, client, "1", data_version, run.data.metrics)

    # -- lineage CLI ------------------------------------------------------------------
    _, lineage = _har(env, "lineage", "-m", "cmd-har-e2e")
    for needle in (
        "raw source",
        data_version,
        "ZenML run",
        champion.run_id,
        "v1",
        "champion",
        "cmd-har-e2e:",
        "fp32 twin: cmd-har-e2e-fp32 v1 (not served)",
        "this version is ZenML cmd-har-e2e version 1, stage production",
        "MLflow vs ZenML: agree (champion v1 = ZenML production)",
    ):
        assert needle in lineage, needle
    meta = _zenml_production_metadata(env)
    assert (meta["registered_version"], meta["fp32_registered_version"], meta["promotion_outcome"]) == (
        "1",
        "1",
        "champion",
    )
    assert meta["data_version"] == data_version and meta["mlflow_run_id"] == champion.run_id
    assert meta["test_macro_f1_int8"] == pytest.approx(run.data.metrics["export.int8_macro_f1"])

    # -- run 2: a deliberately worse config does not take the alias -------------------
    _, out = _har(env, "train", "-c", str(_config(env["root"], "worse", epochs=1, lr=1e-6)))
    assert (
        "challenger" in out and "cached steps │ validate_dataset_step, window_dataset_step, split_windows_step" in out
    )
    assert str(client.get_model_version_by_alias("cmd-har-e2e", "champion").version) == "1"
    challenger = client.get_model_version_by_alias("cmd-har-e2e", "challenger")
    assert str(challenger.version) == "2"
    assert client.get_run(challenger.run_id).data.metrics["test_macro_f1"] < good_f1
    bentos_before = _har(env, "lineage", "-m", "cmd-har-e2e", "2")[1]
    assert "none (not promoted)" in bentos_before
    assert "stage staging" in bentos_before
    assert "MLflow vs ZenML: agree (champion v1 = ZenML production, challenger v2 = ZenML staging)" in bentos_before

    # -- har edge pull: the champion (v1, not the newer challenger) from the artifact store
    # into an empty BentoML store, as a machine that did not run the steps gets it
    home = env["root"] / "bentoml-pulled"
    _, pulled = run_har({**env["env"], "BENTOML_HOME": str(home)}, "edge", "pull", "-m", "cmd-har-e2e", timeout=600)
    assert "cmd-har-e2e v1" in pulled, pulled
    (saved,) = (home / "models" / "cmd-har-e2e").glob("*/model.yaml")
    info = yaml.safe_load(saved.read_text())
    assert info["labels"]["registered_version"] == "1" and info["labels"]["stage"] == "champion"
    assert {"model.onnx", "model.int8.onnx", "manifest.json"} <= {f.name for f in saved.parent.iterdir()}

    # -- run 3: a failure midway leaves everything as it was --------------------------
    proc, _ = _har(env, "train", "-c", str(_config(env["root"], "broken", bogus_option=1)), check=False)
    assert proc.returncode != 0
    assert "bogus_option" in proc.stdout + proc.stderr
    assert str(client.get_model_version_by_alias("cmd-har-e2e", "champion").version) == "1"
    assert len(client.search_model_versions("name='cmd-har-e2e'")) == 2
    assert len(client.search_model_versions("name='cmd-har-e2e-fp32'")) == 2


def _registered_pair(env, client, version: str, data_version: str, metrics: dict) -> None:
    """int8 in cmd-har-e2e, fp32 in cmd-har-e2e-fp32: signature, description, linking tags."""
    import mlflow
    import mlflow.models

    uri = env["env"]["MLFLOW_TRACKING_URI"]
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    for name, precision, twin, f1 in (
        ("cmd-har-e2e", "int8", "fp32", metrics["export.int8_macro_f1"]),
        ("cmd-har-e2e-fp32", "fp32", "int8", metrics["export.fp32_macro_f1"]),
    ):
        mv = client.get_model_version(name, version)
        assert mv.tags["precision"] == precision and mv.tags[f"{twin}_registered_version"] == version
        for needle in (f"Precision: {precision}", data_version, "Test subjects: 3.", f"({precision}): {f1:.4f}"):
            assert needle in mv.description, (needle, mv.description)
        sig = mlflow.models.get_model_info(f"models:/{name}/{version}").signature
        (inp,), (out,) = sig.inputs.inputs, sig.outputs.inputs
        assert (inp.name, str(inp.type), inp.shape[0]) == ("x", "float32", -1) and len(inp.shape) == 3
        assert (out.name, len(out.shape)) == ("logits", 2)
    assert not client.get_registered_model("cmd-har-e2e-fp32").aliases  # aliases live on the served model


def _zenml_production_metadata(env) -> dict:
    """The metadata of the ZenML model version in production (asked in a subprocess: the
    isolated ZenML store is configured by the environment)."""
    code = (
        "import json; from zenml.client import Client; "
        "print(json.dumps(Client().get_model_version('cmd-har-e2e', 'production').run_metadata, default=str))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env["env"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])
