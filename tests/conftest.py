"""Shared fixtures: small real datasets imported with the project's own importers.

Session-scoped, imported once into a temp data folder:
- BasicMotions whole (80 recordings, 10 Hz, 6 channels);
- DSADS subjects 1-2 x sitting / walking_parking_lot / running_treadmill;
- USC-HAD subjects 1-2 x walking_forward / sitting / standing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from components.config import TELEMETRY_OFF
from components.data.importers import import_dataset
from components.data.window_set import WindowSet
from components.data.windowing import WindowConfig, window_dataset
from components.evaluation.promotion import OPEN_GATES

REPO_ROOT = Path(__file__).resolve().parents[1]
# Rich consoles read COLUMNS once, when the CLI module that makes them is first imported; which
# test imports it first depends on the order (and the pytest-xdist worker), so fix one wide width
# for all: asserted output lines never wrap.
os.environ["COLUMNS"] = "250"
DATASETS_DIR = Path(os.environ.get("HAR_DATASETS_DIR", REPO_ROOT.parent / "shared" / "datasets"))

DSADS_SMALL = {"subjects": ["1", "2"], "labels": ["sitting", "walking_parking_lot", "running_treadmill"]}
USC_SMALL = {"subjects": ["1", "2"], "labels": ["walking_forward", "sitting", "standing"]}


@pytest.fixture(scope="session")
def small_data_dir(tmp_path_factory) -> Path:
    """A data folder with the three small real datasets imported (read-only for tests)."""
    data = tmp_path_factory.mktemp("project") / "data"
    import_dataset("basicmotions", data)
    import_dataset("dsads", data, **DSADS_SMALL)
    import_dataset("usc-had", data, **USC_SMALL)
    return data


def only_present_labels(ws: WindowSet) -> WindowSet:
    """Re-index labels to the classes present (a subset import keeps the full vocabulary)."""
    present = np.unique(ws.y)
    out = ws.select(np.arange(len(ws)))
    out.y = np.searchsorted(present, ws.y).astype(np.int64)
    out.label_names = [ws.label_names[i] for i in present]
    return out


@pytest.fixture(scope="session")
def basicmotions_windows(small_data_dir) -> WindowSet:
    """All 80 BasicMotions cases as one 10-s window each (80 x 6 x 100, 4 classes).

    BasicMotions has no subject ids: ``subject`` is ``"unknown"``; ``recording`` starts
    with the archive's own split (``train_*`` / ``test_*``).
    """
    return window_dataset(small_data_dir / "basicmotions", WindowConfig(length_s=10.0, overlap=0.0))


@pytest.fixture(scope="session")
def dsads_small_windows(small_data_dir) -> WindowSet:
    """DSADS subjects "1","2" x 3 activities: 3 s windows, 50 % overlap (~1200 x 45 x 75, 3 classes).

    Modality groups acc/gyro/mag (15 channels each).
    """
    return only_present_labels(window_dataset(small_data_dir / "dsads", WindowConfig(length_s=3.0, overlap=0.5)))


QUIET_ENV = {
    **TELEMETRY_OFF,
    "ZENML_ENABLE_RICH_TRACEBACK": "false",
    "COLUMNS": "250",  # keep rich tables on one line per row
}


# gates a model trained for a CPU minute can pass; configs/train.yaml keeps the real ones


def small_dsads_parameters(registered_model: str) -> dict:
    """train_pipeline parameters for a quick real run: DSADS subjects 1-3 (test 3, validation 2),
    a small CNN, open gates (``parameters.update(**small_dsads_parameters(...))``)."""
    return {
        "subjects": ["1", "2", "3"],
        "split": {"protocol": "holdout", "test_subjects": ["3"], "val_subjects": ["2"]},
        "model": {"name": "cnn", "hparams": {"channels": [16, 32, 32]}},
        "registered_model": registered_model,
        "export": {"calibration_windows": 256},
        "promotion": dict(OPEN_GATES),
    }


def stop_training_in_epoch(monkeypatch, epoch: int, exc: BaseException) -> None:
    """Make the trainer's validation of ``epoch`` (0-based) raise ``exc``: a training stopped in
    that epoch, as a killed process or an evicted pod would be (the epochs before it are saved)."""
    from components.training import trainer

    calls, real_evaluate = [0], trainer.evaluate

    def evaluate(*args, **kwargs):
        calls[0] += 1
        if calls[0] == epoch + 1:
            raise exc
        return real_evaluate(*args, **kwargs)

    monkeypatch.setattr(trainer, "evaluate", evaluate)


def dvc_project(root: Path) -> Path:
    """A fresh DVC project (no git) holding a future ``data/``."""
    root.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "dvc", "init", "--no-scm", "-q"],
        cwd=root,
        check=True,
        env={**os.environ, **QUIET_ENV},
    )
    return root


def isolated_env(root: Path) -> dict[str, str]:
    """Environment for running `har` in subprocesses without touching the checkout's state:
    own data project, ZenML config + repository, MLflow store and BentoML home."""
    project = dvc_project(root / "proj")
    zen_repo = root / "zen-repo"
    zen_repo.mkdir()
    env = {
        **os.environ,
        **QUIET_ENV,
        "HAR_DATA_DIR": str(project / "data"),
        "ZENML_CONFIG_PATH": str(root / "zen-config"),
        "ZENML_REPOSITORY_PATH": str(zen_repo),
        "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
        # explicit: mlflow.set_registry_uri() in earlier in-process tests exports this variable
        "MLFLOW_REGISTRY_URI": f"sqlite:///{root / 'mlflow.db'}",
        "BENTOML_HOME": str(root / "bentoml"),
    }
    zenml = str(Path(sys.executable).parent / "zenml")
    subprocess.run([zenml, "init"], cwd=zen_repo, env=env, check=True, capture_output=True)
    return env


def run_har(env: dict[str, str], *args: str, check: bool = True, timeout: int = 900):
    """``har ARGS`` in a subprocess with ``env`` (see :func:`isolated_env`); returns the
    completed process and its stdout with whitespace folded (rich wraps long lines).
    ``check``: assert exit code 0, showing the output's tail otherwise."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "cli", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    print(f"har {' '.join(args[:2])}: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    if check:
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return proc, " ".join(proc.stdout.split())
