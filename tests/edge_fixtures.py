"""Session fixtures for serving/edge tests: a small model trained on real DSADS, exported and bundled.

CNN trained on DSADS subject 1 (3 activities), tested on subject 2 (held out), exported
to fp32 + int8 ONNX through the project's own export code, bundled, and saved into an
isolated BentoML home.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from components.data.splitting import Fold, apply_fold
from components.edge.bundle import build_bundle
from components.export.pipeline import export_and_measure
from components.models.registry import build_model
from components.models.spec import InputSpec
from components.training import TrainConfig, train_model
from components.training.trained import TrainedModel, preprocessing_from_split

MODEL_NAME = "cmd-har-test"


@pytest.fixture(scope="session")
def small_split(dsads_small_windows):
    ws = dsads_small_windows
    ws.provenance = {**ws.provenance, "data_version": "test.dir"}
    return apply_fold(ws, Fold("holdout", ("1",), (), ("2",)))


@pytest.fixture(scope="session")
def exported_small(small_split):
    torch.manual_seed(0)
    tr, _, _ = small_split.standardized()
    net = build_model("cnn", InputSpec.from_windows(tr), channels=[16, 32, 32])
    every = tr.select(np.arange(0, len(tr), 4))
    train_model(
        net,
        tr,
        every,
        TrainConfig(
            epochs=3,
            patience=3,
            progress=False,
            num_threads=2,
            augment_rotation_deg=0.0,
            augment_gain_std=0.0,
            time_budget_min=None,
        ),
    )
    trained = TrainedModel(net, preprocessing_from_split(small_split))
    return export_and_measure(trained, small_split, calibration_windows=128)


@pytest.fixture(scope="session")
def small_bundle(exported_small, small_split, tmp_path_factory) -> Path:
    lineage = {
        "dataset": "dsads",
        "data_version": "test.dir",
        "zenml_run_id": "zenml-test",
        "mlflow_run_id": "mlflow-test",
        "registered_model": MODEL_NAME,
        "registered_version": "1",
        "git_commit": "0" * 40,
        "test_subjects": ["2"],
    }
    e = exported_small
    out = tmp_path_factory.mktemp("bundles")
    return build_bundle(e.fp32, e.int8, e.preprocessing, small_split.test.x[:4], lineage, e.report, out, "test-v1")


@pytest.fixture(scope="session")
def bentoml_home(small_bundle, tmp_path_factory) -> Path:
    """An isolated BentoML home holding the bundle as ``cmd-har-test`` (saved in a subprocess-safe way)."""
    home = tmp_path_factory.mktemp("bentoml")
    code = (
        "import sys; from pathlib import Path; from components.edge.store import save_to_bentoml; "
        f"print(save_to_bentoml(Path(sys.argv[1]), '{MODEL_NAME}', "
        "{'registered_version': '1', 'mlflow_run_id': 'mlflow-test', 'stage': 'champion'}))"
    )
    env = {**os.environ, "BENTOML_HOME": str(home), "BENTOML_DO_NOT_TRACK": "true"}
    subprocess.run([sys.executable, "-c", code, str(small_bundle)], env=env, check=True, capture_output=True)
    return home
