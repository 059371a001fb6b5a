"""Demonstration on real data: new recordings arrive, `har retrain` takes them in.

DSADS subjects 1-3 (3 activities) are imported; training subject 4 is held back.
`har retrain` trains the first champion (there is none), a second call does nothing.
Subject 4's recordings are then ingested as "new" (`har data ingest`): the data version
changes. A retrain stopped (SIGTERM) mid-training leaves data, champion and BentoML store as they
were; the next one trains on the new version, the gates decide, lineage shows both data
versions, and one more `har retrain` does nothing. Finally the crontab line that
`har schedule install` writes is executed as cron would run it.

Isolated ZenML/MLflow/BentoML/DVC state (tests/conftest.py); the checkout is untouched.
"""

from __future__ import annotations

import json
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from components.data.importers import import_dataset
from tests.conftest import REPO_ROOT, isolated_env, run_har

pytestmark = pytest.mark.slow

MODEL = "cmd-har-retrain"
LABELS = ["sitting", "walking_parking_lot", "running_treadmill"]
HELD_BACK = "4"  # a training subject: test 3, validation 2, train 1 (+4 once it arrives)
# gates the tiny test model can pass; configs/train.yaml keeps the real ones
GATES = {
    "min_macro_f1": 0.0,
    "max_int8_f1_drop": 0.2,
    "max_latency_ms": 1000.0,
    "max_model_bytes": 50_000_000,
    "min_int8_size_ratio": 1.0,
    "min_class_recall": 0.0,
    "tolerance": 0.02,
}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("retrain-e2e")
    env = isolated_env(root)
    env["HAR_ARTIFACTS_DIR"] = str(root / "artifacts")
    import_dataset("dsads", root / "incoming", subjects=[HELD_BACK], labels=LABELS)
    config = yaml.safe_load((REPO_ROOT / "configs" / "train.yaml").read_text())
    config.pop("steps")  # no MLflow tracker in the isolated stack: steps log on their own
    config["model"]["name"] = MODEL
    p = config["parameters"]
    p.update(
        split={"protocol": "holdout", "test_subjects": ["3"], "val_subjects": ["2"]},
        model={"name": "cnn", "hparams": {"channels": [16, 32, 32]}},
        registered_model=MODEL,
        export={"calibration_windows": 256},
        promotion=GATES,
        edge={"profiles": ["phone"], "max_recordings": 1, "max_seconds": 10},
    )
    p["validation"]["jobs"] = 1
    p["trainer"].update({"epochs": 3, "patience": 3, "progress": False})
    cfg = root / "retrain.yaml"
    cfg.write_text(yaml.safe_dump(config))
    return {"root": root, "env": env, "config": cfg, "data": Path(env["HAR_DATA_DIR"])}


def _har(project, *args, check=True):
    return run_har(project["env"], *args, check=check, timeout=600)


def _client(project):
    from mlflow.tracking import MlflowClient

    uri = project["env"]["MLFLOW_TRACKING_URI"]
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _data_version(project) -> str:
    return yaml.safe_load((project["data"].parent / "data.dvc").read_text())["outs"][0]["md5"]


def _bento_models(project) -> list[str]:
    models = Path(project["env"]["BENTOML_HOME"]) / "models"
    return sorted(str(p.relative_to(models)) for p in models.glob("*/*") if p.is_dir()) if models.exists() else []


def _versions(client) -> list:
    return sorted(client.search_model_versions(f"name='{MODEL}'"), key=lambda v: int(v.version))


def _stop_during_training(project, client) -> subprocess.CompletedProcess:
    """Start `har retrain`, send SIGTERM (what cron/systemd send) once its training run exists."""
    exp = client.get_experiment_by_name("cmd-har")
    known = {r.info.run_id for r in client.search_runs([exp.experiment_id])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", "retrain", "-c", str(project["config"])],
        cwd=REPO_ROOT,
        env=project["env"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            if {r.info.run_id for r in client.search_runs([exp.experiment_id])} - known:
                break
            time.sleep(0.2)
        assert proc.poll() is None, "retrain finished before it could be interrupted"
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=120)
    finally:
        proc.kill()
        proc.wait()
    return subprocess.CompletedProcess(proc.args, proc.returncode, " ".join(out.split()))


def test_new_recordings_retrain_and_noop(project):
    cfg = str(project["config"])
    _, out = _har(project, "data", "import", "dsads", "--subjects", "1,2,3", "--labels", ",".join(LABELS))
    v1 = _data_version(project)

    # -- first champion: there is none, so retrain trains ----------------------------------
    _, out = _har(project, "retrain", "-c", cfg)
    assert f"no champion for {MODEL} yet" in out and "promotion │ champion" in out, out[-3000:]
    client = _client(project)
    assert str(client.get_model_version_by_alias(MODEL, "champion").version) == "1"
    _, out = _har(project, "retrain", "-c", cfg)
    assert "nothing to do" in out and f"v1 was trained on this data version ({v1})" in out
    assert len(_versions(client)) == 1

    # -- a scheduled run (newest pushed data version, stop when nothing new) stops after ingest
    dvc = [sys.executable, "-m", "dvc", "remote", "add", "-d", "shared", str(project["root"] / "dvc-remote")]
    subprocess.run(dvc, cwd=project["data"].parent, env=project["env"], check=True, capture_output=True)
    _, out = _har(project, "data", "version", "--push")
    assert f"published har_data_version v1 = {v1}" in out, out
    scheduled = yaml.safe_load(project["config"].read_text())
    scheduled["parameters"]["stop_if_unchanged"] = True
    scheduled["steps"] = {"data_version_step": {"parameters": {"pull": True, "latest": True}}}
    path = project["root"] / "scheduled.yaml"
    path.write_text(yaml.safe_dump(scheduled))
    exp = client.get_experiment_by_name("cmd-har")
    runs = len(client.search_runs([exp.experiment_id]))
    proc, out = _har(project, "train", "-c", str(path), check=False)
    assert proc.returncode != 0, out[-3000:]
    assert f"stopped at check_new_data_step: nothing new, stopping before training: the champion {MODEL} v1" in out
    assert len(client.search_runs([exp.experiment_id])) == runs and len(_versions(client)) == 1  # no training

    # -- new recordings of the held-back training subject --------------------------------
    new_files = sorted((project["root"] / "incoming" / "dsads" / "recordings").glob("*.parquet"))
    assert len(new_files) == 3
    _, out = _har(project, "data", "ingest", "--dataset", "dsads", *map(str, new_files))
    v2 = _data_version(project)
    assert v2 != v1 and f"data version {v1} -> {v2}" in out
    assert f"published har_data_version v2 = {v2}" in out  # what a scheduled cluster run pulls next
    assert "3 added, 0 duplicate" in out and "recordings 9 -> 12 (+3)" in out and "(new: 4)" in out
    for label in LABELS:
        assert f"{label}: 0.250 h -> 0.333 h (+0.083 h)" in out  # 5 min per subject and activity

    # -- an interrupted retrain changes nothing, and leaves no lock behind ---------------
    # (SIGKILL of a lock holder: tests/unit/test_schedule.py)
    bentos = _bento_models(project)
    stopped = _stop_during_training(project, client)
    assert stopped.returncode == 130 and "retrain interrupted" in stopped.stdout, stopped.stdout[-3000:]
    assert str(client.get_model_version_by_alias(MODEL, "champion").version) == "1"
    assert len(_versions(client)) == 1 and _bento_models(project) == bentos and _data_version(project) == v2

    # -- the retrain that counts ----------------------------------------------------------
    _, out = _har(project, "retrain", "-c", cfg)
    assert f"data version {v2} differs from the champion's ({v1}, v1)" in out, out[-3000:]
    # the interrupted run had finished the data steps of v2: they are reused
    assert "cached steps │ validate_dataset_step, window_dataset_step, split_windows_step" in out
    assert "new data in this retrain" in out and "dsads: +3 recordings (subjects 4: s04_a01, s04_a09, s04_a12)" in out
    versions = _versions(client)
    assert [v.tags["data_version"] for v in versions] == [v1, v2]
    new = versions[-1]
    decision = json.loads(
        (Path(client.download_artifacts(new.run_id, "promotion/decision.json", str(project["root"])))).read_text()
    )
    # the gates decide: a failed gate rejects; otherwise champion iff not worse than the
    # old champion (re-evaluated on v2's test split) by more than the tolerance
    f1, old_f1 = client.get_run(new.run_id).data.metrics["test_macro_f1"], decision["champion_macro_f1"]
    if not all(g["passed"] for g in decision["gates"].values()):
        expected = "rejected"
    else:
        expected = "champion" if f1 >= old_f1 - GATES["tolerance"] else "challenger"
    assert decision["outcome"] == expected and new.tags["promotion_outcome"] == expected
    assert f"promotion │ {expected}" in out
    champion = client.get_model_version_by_alias(MODEL, "champion")
    if expected == "champion":
        assert str(champion.version) == "2"
        assert str(client.get_model_version_by_alias(MODEL, "previous-champion").version) == "1"
        assert len(_bento_models(project)) == len(bentos) + 1
    else:
        assert str(champion.version) == "1" and _bento_models(project) == bentos

    # -- lineage shows both data versions --------------------------------------------------
    assert f"data.dvc md5 {v1}" in _har(project, "lineage", "1", "-m", MODEL)[1]
    assert f"data.dvc md5 {v2}" in _har(project, "lineage", "2", "-m", MODEL)[1]

    # -- nothing new: nothing happens ------------------------------------------------------
    proc, out = _har(project, "retrain", "-c", cfg)
    assert proc.returncode == 0 and "nothing to do" in out and v2 in out
    assert len(_versions(client)) == 2

    # -- the scheduled job, run the way cron runs it ---------------------------------------
    crontab, log = project["root"] / "crontab", project["root"] / "retrain.log"
    crontab.write_text("MAILTO=someone@example.org\n5 4 * * * /usr/bin/true\n")
    _har(
        project,
        "schedule",
        "install",
        "--cron",
        "0 3 * * *",
        "-c",
        cfg,
        "--crontab-file",
        str(crontab),
        "--log",
        str(log),
    )
    line = crontab.read_text().splitlines()[-1]
    assert line.startswith("0 3 * * * cd ") and crontab.read_text().startswith("MAILTO=someone@example.org\n5 4 * * *")
    command = line.split(" ", 5)[5].replace("\\%", "%")
    subprocess.run(
        ["/bin/sh", "-c", command], env={"HOME": str(project["root"]), "PATH": "/usr/bin:/bin"}, timeout=300, check=True
    )
    logged = log.read_text()
    assert "har retrain" in logged and "nothing to do" in logged, logged[-2000:]
    assert shlex.quote(str(Path(REPO_ROOT / ".venv" / "bin" / "har"))) in line or "/bin/har retrain" in line
