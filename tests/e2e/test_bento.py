"""`bentoml build` from the repo root: a self-contained, lean Bento that serves on its own.

Builds the Bento offline from the test champion (an isolated BentoML home), checks what is
inside (service code, the torch-free runtime, the model reference, lean requirements,
lineage labels), then serves the *built Bento* from an empty directory, so nothing can
come from the source checkout.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from har_runtime.runtime import Classifier
from tests.bentoml_server import start_server, stop_server
from tests.conftest import QUIET_ENV, REPO_ROOT

MODEL_NAME = "cmd-har-test"  # tests/edge_fixtures.py

pytest_plugins = ["tests.edge_fixtures"]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bento(bentoml_home) -> tuple[str, Path]:
    """(tag, folder) of a Bento built from the repo root the way the README says: no model named,
    the store's only champion (``cmd-har-test``) is the one built in."""
    env = {**QUIET_ENV, "PATH": str(Path(sys.executable).parent), "BENTOML_HOME": str(bentoml_home)}
    bentoml = str(Path(sys.executable).parent / "bentoml")
    proc = subprocess.run([bentoml, "build", "--output", "tag"], cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    tag = proc.stdout.strip().splitlines()[-1].removeprefix("__tag__:")
    name, version = tag.split(":")
    return tag, bentoml_home / "bentos" / name / version


def test_bento_is_self_contained_and_lean(bento, bentoml_home):
    tag, folder = bento
    info = yaml.safe_load((folder / "bento.yaml").read_text())
    src = sorted(str(p.relative_to(folder / "src")) for p in (folder / "src").rglob("*.py"))
    assert src == [
        "deployment/service.py",
        "har_runtime/__init__.py",
        "har_runtime/champions.py",
        "har_runtime/connections.py",
        "har_runtime/runtime.py",
    ]
    models = [m["tag"] for s in info["services"] for m in s["models"]]
    assert len(models) == 1 and models[0].startswith(f"{MODEL_NAME}:")
    assert (bentoml_home / "models" / MODEL_NAME / models[0].split(":")[1] / "model.int8.onnx").is_file()
    reqs = (folder / "env" / "python" / "requirements.txt").read_text().split()
    names = {r.split("=")[0].split("<")[0].split(">")[0].lower() for r in reqs}
    assert {"onnxruntime", "numpy", "pydantic"} <= names
    assert not names & {"torch", "zenml", "mlflow", "dvc", "great-expectations", "cmd-har"}, reqs
    labels = info["labels"]
    assert labels["mlflow_run_id"] == "mlflow-test" and labels["zenml_run_id"] == "zenml-test"
    assert labels["data_version"] == "test.dir" and labels["git_commit"] == "0" * 40
    assert labels["registered_model"] == MODEL_NAME and labels["registered_version"] == "1"
    assert labels["model_tag"] == models[0]


def test_built_bento_serves_its_own_model(bento, bentoml_home, small_bundle, small_split, tmp_path):
    """Served from an empty cwd with no HAR_BENTO_MODEL: the Bento's code and pinned model only."""
    tag, folder = bento
    client, proc = start_server([tag], tmp_path, {"BENTOML_HOME": str(bentoml_home)}, tmp_path / "serve.log")
    try:
        meta = client.post("/metadata").json()
        x = small_split.test.x[:8]
        r = client.post("/classify", json={"windows": x.tolist()})
    finally:
        leftover = stop_server(proc)
    model_tag = yaml.safe_load((folder / "bento.yaml").read_text())["labels"]["model_tag"]
    assert meta["bento_model"] == model_tag and meta["lineage"]["mlflow_run_id"] == "mlflow-test"
    assert r.status_code == 200, r.text
    clf = Classifier.from_folder(small_bundle)
    assert [w["label"] for w in r.json()] == [clf.label_names[i] for i in np.argmax(clf.logits(x), 1)]
    assert not leftover
