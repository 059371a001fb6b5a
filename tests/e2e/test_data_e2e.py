"""End to end: the data stages of `make run`, the CLI, and the committed data.dvc hash.

Each test works in a temporary project folder (``HAR_DATA_DIR``) and, for ZenML, an
isolated config dir and repository, so the checkout's own state is never touched.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from cli.main import app
from components.data.importers import import_dataset
from components.data.versioning import data_version, is_up_to_date, version_data
from tests.conftest import REPO_ROOT, dvc_project, isolated_env


@pytest.mark.slow
def test_default_import_reproduces_committed_data_dvc(tmp_path):
    """`har data import dsads` on a fresh machine gives exactly the committed data version."""
    project = dvc_project(tmp_path / "proj")
    shutil.copy(REPO_ROOT / "data.dvc", project / "data.dvc")
    committed = (project / "data.dvc").read_text()
    import_dataset("dsads", project / "data", jobs=2)
    assert version_data(project) == data_version(REPO_ROOT)  # dvc add gives the committed hash ...
    assert (project / "data.dvc").read_text() == committed  # ... so data.dvc is unchanged
    assert is_up_to_date(project)  # and `dvc status` is clean


def test_cli_import_validate_version_status(tmp_path, monkeypatch):
    project = dvc_project(tmp_path / "proj")
    monkeypatch.setenv("HAR_DATA_DIR", str(project / "data"))
    monkeypatch.setenv("HAR_ARTIFACTS_DIR", str(tmp_path / "artifacts"))
    runner = CliRunner()
    r = runner.invoke(app, ["data", "import", "basicmotions"])
    assert r.exit_code == 0, r.output
    assert "80 recordings" in r.output
    first_version = data_version(project)
    assert first_version and first_version in r.output  # import records the data version
    r = runner.invoke(app, ["data", "validate", "basicmotions", "--jobs", "1"])
    assert r.exit_code == 0, r.output
    assert "basicmotions: 80/80 recordings passed" in r.output
    assert (tmp_path / "artifacts" / "validation" / "basicmotions" / "report.json").exists()
    r = runner.invoke(app, ["data", "version"])
    assert r.exit_code == 0, r.output
    assert f"data version unchanged: {first_version}" in r.output
    r = runner.invoke(app, ["data", "status"])
    assert r.exit_code == 0 and "up to date" in r.output, r.output
    # errors are specific and exit non-zero
    r = runner.invoke(app, ["data", "import", "nope"])
    assert r.exit_code == 1 and "unknown dataset 'nope'" in r.output
    r = runner.invoke(app, ["data", "import", "dsads", "--subjects", "42"])
    assert r.exit_code == 1 and "unknown subjects ['42']" in r.output


@pytest.mark.slow
def test_data_pipeline_end_to_end_and_cache(tmp_path):
    """`har data pipeline` (what `make run` runs) on a 3-subject DSADS subset, twice."""
    env = isolated_env(tmp_path)
    project = Path(env["HAR_DATA_DIR"]).parent
    config = yaml.safe_load((REPO_ROOT / "configs" / "data.yaml").read_text())
    config["parameters"].update(
        subjects=["1", "2", "3"], split={"protocol": "holdout", "test_subjects": ["3"], "val_subjects": ["2"]}
    )
    config["parameters"]["validation"]["jobs"] = 1
    (tmp_path / "data.yaml").write_text(yaml.safe_dump(config))
    har = [sys.executable, "-m", "cli", "data", "pipeline", "-c", str(tmp_path / "data.yaml")]

    first = subprocess.run(har, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stdout + first.stderr
    out = " ".join(first.stdout.split())
    assert "dsads: 57 recordings, 3 subjects" in out
    assert "57/57 passed, 0 quarantined" in out
    version = data_version(project)
    assert version and version in out
    assert "subjects 1,2,3" not in out and "test split │ subjects 3: 3724 windows" in out
    assert "cached steps │ none" in out

    second = subprocess.run(har, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stdout + second.stderr
    out = " ".join(second.stdout.split())
    # same data version + config: everything after the (always-run) ingest is reused
    assert "cached steps │ validate_dataset_step, window_dataset_step, split_windows_step" in out
    assert data_version(project) == version
