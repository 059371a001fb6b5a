"""``har benchmark --engine pipeline``: benchmark_pipeline on a throwaway ZenML store.

A real slice: USC-HAD subjects 1-3 x 3 activities, LOSO folds 1 and 2, 1 epoch, seed 0.
The pipeline's result has the process pool's schema and, training being deterministic on
CPU, its per-fold test macro-F1; ZenML's step cache is the ledger (a rerun trains nothing,
one more model trains only that model's steps, ``--status`` says so beforehand).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from components.benchmark.fanout import step_id
from components.benchmark.harness import run_benchmark
from components.benchmark.protocol import BenchmarkSettings
from components.data.importers import import_dataset
from tests.conftest import REPO_ROOT, USC_SMALL, isolated_env, run_har

SUBJECTS = ["1", "2", "3"]  # each LOSO fold: one test, one validation, one training subject
FOLDS = ["1", "2"]

_STEP_STATUSES = """
import json
from zenml.client import Client
run = Client().get_pipeline("benchmark_pipeline").last_run
print(json.dumps({name: s.status.value for name, s in run.steps.items()}))
"""


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("bench-pipeline")
    data = root / "data"
    import_dataset("usc-had", data, subjects=SUBJECTS, labels=USC_SMALL["labels"])
    return {"root": root, "data": data, "env": isolated_env(root / "iso")}


def _har_benchmark(bench: dict, models: str, out: Path, *extra: str) -> str:
    args = ["benchmark", "--engine", "pipeline", "--dataset", "usc-had", "--protocol", "loso"]
    args += ["--folds", ",".join(FOLDS), "--models", models, "--epochs", "1", "--seeds", "1"]
    args += ["--latency-runs", "5", "--data-dir", str(bench["data"]), "--out", str(out), "--no-progress", *extra]
    proc, _ = run_har(bench["env"], *args, timeout=600)
    return proc.stdout + proc.stderr


def _train_statuses(bench: dict) -> dict[str, str]:
    """Training step id -> status (``completed`` / ``cached``) of the last benchmark_pipeline run."""
    proc = subprocess.run(
        [sys.executable, "-c", _STEP_STATUSES], cwd=REPO_ROOT, env=bench["env"], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    steps = json.loads(proc.stdout.strip().splitlines()[-1])
    assert steps.pop("prepare_benchmark_windows_step") in ("completed", "cached")
    assert steps.pop("aggregate_benchmark_step") == "completed"  # never cached: it times the models
    return steps


def _ids(models: list[str]) -> set[str]:
    return {step_id(m, f"loso-{f}", 0) for m in models for f in FOLDS}


def _schema(value, depth: int = 0):
    """Keys (recursively, lists by their first item) of a result: its schema, not its values."""
    if isinstance(value, dict):
        return {k: _schema(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return [_schema(value[0], depth + 1)]
    return None


@pytest.mark.slow
def test_pipeline_engine_matches_processes_and_caches_like_the_ledger(bench, tmp_path):
    out = tmp_path / "pipeline"
    # cold: every training runs, the files are written by the CLI, not by a step
    log = _har_benchmark(bench, "cnn", out)
    assert _train_statuses(bench) == dict.fromkeys(_ids(["cnn"]), "completed"), log[-3000:]
    assert (out / "usc-had-loso-smoke.json").is_file() and (out / "usc-had-loso-smoke.md").is_file()

    # rerun: nothing trains
    _har_benchmark(bench, "cnn", out)
    assert _train_statuses(bench) == dict.fromkeys(_ids(["cnn"]), "cached")

    # --status before adding a model: cnn cached, tinyhar missing (and nothing is trained)
    status = _har_benchmark(bench, "cnn,tinyhar", out, "--status")
    for sid in _ids(["cnn"]):
        assert f"{sid} " in status and status.split(sid, 1)[1].lstrip().startswith("cached"), status[-2000:]
    for sid in _ids(["tinyhar"]):
        assert status.split(sid, 1)[1].lstrip().startswith("missing"), status[-2000:]
    assert "2 of 4 trainings cached" in status

    # one more model: only its steps run
    _har_benchmark(bench, "cnn,tinyhar", out)
    statuses = _train_statuses(bench)
    assert statuses == {**dict.fromkeys(_ids(["cnn"]), "cached"), **dict.fromkeys(_ids(["tinyhar"]), "completed")}
    piped = json.loads((out / "usc-had-loso-smoke.json").read_text())
    assert "4 of 4 trainings cached" in _har_benchmark(bench, "cnn,tinyhar", out, "--status")

    # the process pool on the same settings: same schema, same per-fold macro-F1
    settings = BenchmarkSettings(
        dataset="usc-had",
        protocol="loso",
        models=["cnn", "tinyhar"],
        epochs=1,
        folds=FOLDS,
        latency_runs=5,
        data_dir=bench["data"],
        out=tmp_path / "processes",
    )
    pooled, _ = run_benchmark(settings, progress=False, log=lambda s: None)
    pooled = json.loads(json.dumps(pooled, default=str))  # as written to the JSON file
    assert set(piped) == set(pooled) and set(piped["models"]) == {"cnn", "tinyhar"}
    for name in ("cnn", "tinyhar"):
        p_model, q_model = piped["models"][name], pooled["models"][name]
        assert set(p_model) == set(q_model), name
        p_folds, q_folds = p_model["per_fold"], q_model["per_fold"]
        assert [(r["fold"], r["seed"]) for r in p_folds] == [(r["fold"], r["seed"]) for r in q_folds]
        for p, q in zip(p_folds, q_folds, strict=True):
            # the pipeline's records also name their commit and machine (as ledger records do)
            assert set(p) - set(q) <= {"ledger", "from_ledger"} and set(q) <= set(p), (name, set(p) ^ set(q))
            assert {"commit", "dirty"} <= set(p["ledger"]["git"]) and p["ledger"]["environment"]["cpu"]
            assert abs(p["metrics"]["macro_f1"] - q["metrics"]["macro_f1"]) <= 1e-6, (name, p["fold"])
            assert p["metrics"]["per_class_f1"] == pytest.approx(q["metrics"]["per_class_f1"], abs=1e-6)
    # cnn came from the earlier runs' cached steps, tinyhar was trained in this one
    assert all(r.get("from_ledger") for r in piped["models"]["cnn"]["per_fold"])
    assert not any(r.get("from_ledger") for r in piped["models"]["tinyhar"]["per_fold"])
    assert piped["settings"]["executor"] == "pipeline" and pooled["settings"]["executor"] == "processes"
    p_schema, q_schema = _schema(piped), _schema(pooled)
    for s in (p_schema, q_schema):
        for m in s["models"].values():
            m.pop("per_fold")  # compared above (the pipeline's records carry their provenance)
    assert p_schema == q_schema


def test_pipeline_engine_refuses_what_it_does_not_do(bench, tmp_path):
    args = ["benchmark", "--engine", "pipeline", "--dataset", "usc-had", "--models", "cnn"]
    args += ["--data-dir", str(bench["data"]), "--out", str(tmp_path)]

    def refused(*extra: str) -> str:
        proc, _ = run_har(bench["env"], *extra, check=False)
        assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
        return " ".join((proc.stdout + proc.stderr).split())

    assert "--ledger is the processes engine's cache" in refused(*args, "--ledger", str(tmp_path / "ledger"))
    assert "--time-budget works with --engine processes only" in refused(*args, "--time-budget", "60")
    assert "this command knows processes, pipeline" in refused(*args[:2], "nonsense", *args[3:])
    assert not any(tmp_path.iterdir())  # nothing written
