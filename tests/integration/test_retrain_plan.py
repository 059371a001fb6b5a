"""`har retrain`'s decision: data version vs what the registry already judged (no training here).

A real DSADS recording is imported and versioned with DVC in a temp project; registered
model versions with lineage tags are created in a temp MLflow store.
"""

from __future__ import annotations

import shutil

import pytest
import yaml

from components.data.importers import import_dataset
from components.data.ingest import ingest
from components.data.versioning import version_data
from components.retraining.changes import changes_between
from components.retraining.retrain import plan_retrain
from tests.conftest import dvc_project

MODEL = "cmd-har-plan"


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    """Subject 1 (the project's data) and subject 2 (the new recordings), imported once."""
    root = tmp_path_factory.mktemp("plan-recordings")
    import_dataset("dsads", root / "data", subjects=["1"], labels=["sitting"])
    import_dataset("dsads", root / "incoming", subjects=["2"], labels=["sitting"])
    return root


@pytest.fixture
def project(recordings, tmp_path, monkeypatch):
    root = dvc_project(tmp_path / "proj")
    monkeypatch.setenv("HAR_DATA_DIR", str(root / "data"))
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", uri)  # restored afterwards; set_registry_uri exports it
    mlflow.set_registry_uri(uri)
    shutil.copytree(recordings / "data", root / "data")
    config = tmp_path / "train.yaml"
    config.write_text(yaml.safe_dump({"parameters": {"dataset": "dsads", "registered_model": MODEL}}))
    return {"root": root, "config": config, "incoming": recordings / "incoming", "v1": version_data(root)}


def _register(data_version: str, outcome: str, alias: str | None = None) -> str:
    import mlflow

    from components import tracking

    client = tracking.client()
    if not client.search_registered_models(f"name='{MODEL}'"):
        client.create_registered_model(MODEL)
    mlflow.set_experiment("plan")
    with mlflow.start_run() as run:
        mlflow.set_tag("data_version", data_version)
    mv = client.create_model_version(MODEL, source=f"runs:/{run.info.run_id}/m", run_id=run.info.run_id)
    client.set_model_version_tag(MODEL, mv.version, "data_version", data_version)
    client.set_model_version_tag(MODEL, mv.version, "promotion_outcome", outcome)
    if alias:
        client.set_registered_model_alias(MODEL, alias, mv.version)
    return str(mv.version)


def test_no_champion_means_train(project):
    plan = plan_retrain(project["config"])
    assert plan.run and plan.reason == f"no champion for {MODEL} yet" and plan.data_version == project["v1"]


def test_champion_on_this_data_means_nothing_to_do_unless_forced(project):
    _register(project["v1"], "champion", "champion")
    plan = plan_retrain(project["config"])
    assert not plan.run and "was trained on this data version" in plan.reason
    assert plan_retrain(project["config"], force=True).run


def test_a_loser_on_this_data_also_means_nothing_new(project):
    _register("0" * 32 + ".dir", "champion", "champion")
    _register(project["v1"], "challenger")
    plan = plan_retrain(project["config"])
    assert not plan.run and "v2 was already trained on this data version" in plan.reason and "challenger" in plan.reason


def test_new_data_means_train_and_says_what_is_new(project):
    _register(project["v1"], "champion", "champion")
    new = sorted((project["incoming"] / "dsads" / "recordings").glob("*.parquet"))
    ingest(new, project["root"] / "data", dataset="dsads")
    v2 = version_data(project["root"])
    plan = plan_retrain(project["config"])
    assert plan.run and plan.reason == f"data version {v2} differs from the champion's ({project['v1']}, v1)"
    assert plan.changes.added == {"dsads": ["s02_a01"]} and plan.changes.removed == {}
    assert plan.changes.lines() == ["dsads: +1 recordings (subjects 2: s02_a01)", "  new hours: sitting 0.083 h"]


def test_unversioned_changes_in_data_mean_train(project):
    _register(project["v1"], "champion", "champion")
    new = sorted((project["incoming"] / "dsads" / "recordings").glob("*.parquet"))
    ingest(new, project["root"] / "data", dataset="dsads")  # no dvc add
    plan = plan_retrain(project["config"])
    assert plan.run and "data/ does not match data.dvc" in plan.reason


def test_changes_between_unknown_versions_say_so(project):
    result = changes_between("f" * 32 + ".dir", project["v1"], project["root"] / "data")
    assert not result.known and "not in the local DVC cache" in result.lines()[0]
