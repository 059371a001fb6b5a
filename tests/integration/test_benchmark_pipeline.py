"""``har benchmark --engine pipeline``: benchmark_pipeline on a throwaway ZenML store.

A real slice: USC-HAD subjects 1-3 x 3 activities, LOSO folds 1 and 2, 1 epoch, seed 0.
The pipeline's result has the process pool's schema and, training being deterministic on
CPU, its per-fold test macro-F1; ZenML's step cache is the ledger (a rerun trains nothing,
one more model trains only that model's steps, ``--status`` says so beforehand). The data
comes as in train_pipeline (data_version_step versions the DVC project's ``data/``, the
windows step reads it by version), and with an MLflow experiment tracker in the stack each
training is its own MLflow run, nested under the pipeline run's.
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
from tests.conftest import REPO_ROOT, USC_SMALL, isolated_env, run_har, stop_training_in_epoch

SUBJECTS = ["1", "2", "3"]  # each LOSO fold: one test, one validation, one training subject
FOLDS = ["1", "2"]

_TRACKED_STACK = """
import os
from zenml.client import Client
from zenml.enums import StackComponentType as T
c = Client()
c.create_stack_component(name="bench_mlflow", flavor="mlflow", component_type=T.EXPERIMENT_TRACKER,
                         configuration={"tracking_uri": os.environ["MLFLOW_TRACKING_URI"]})
c.create_stack(name="bench_tracked", components={T.ORCHESTRATOR: "default", T.ARTIFACT_STORE: "default",
                                                  T.EXPERIMENT_TRACKER: "bench_mlflow"})
c.activate_stack("bench_tracked")
"""

_STEP_STATUSES = """
import json
from zenml.client import Client
run = Client().get_pipeline("benchmark_pipeline").last_run
print(json.dumps({name: s.status.value for name, s in run.steps.items()}))
"""


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("bench-pipeline")
    env = isolated_env(root / "iso")  # its HAR_DATA_DIR is data/ of a fresh DVC project
    data = Path(env["HAR_DATA_DIR"])
    import_dataset("usc-had", data, subjects=SUBJECTS, labels=USC_SMALL["labels"])
    proc = subprocess.run(
        [sys.executable, "-c", _TRACKED_STACK], cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )  # the default stack + an MLflow tracker on the test's own sqlite store
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {"root": root, "data": data, "env": env}


def _har_benchmark(bench: dict, models: str, out: Path, *extra: str, epochs: int = 1) -> str:
    args = ["benchmark", "--engine", "pipeline", "--dataset", "usc-had", "--protocol", "loso"]
    args += ["--folds", ",".join(FOLDS), "--models", models, "--epochs", str(epochs), "--seeds", "1"]
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
    assert steps.pop("data_version_step") == "completed"  # never cached: it reads data/ as it is now
    assert steps.pop("prepare_benchmark_windows_step") in ("completed", "cached")
    assert steps.pop("aggregate_benchmark_step") == "completed"  # never cached: it times the models
    return steps


def _ids(models: list[str]) -> set[str]:
    return {step_id(m, f"loso-{f}", 0) for m in models for f in FOLDS}


def _mlflow_runs(bench: dict) -> dict[str, dict]:
    """The MLflow runs of experiment benchmark_pipeline in the test's store: run name ->
    ``{"id", "parent", "params", "metrics"}``."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=bench["env"]["MLFLOW_TRACKING_URI"])
    experiment = client.get_experiment_by_name("benchmark_pipeline")
    assert experiment is not None, "no MLflow experiment benchmark_pipeline"
    return {
        r.info.run_name: {
            "id": r.info.run_id,
            "parent": r.data.tags.get("mlflow.parentRunId"),
            "params": r.data.params,
            "metrics": r.data.metrics,
        }
        for r in client.search_runs([experiment.experiment_id], max_results=1000)
    }


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

    # each training its own MLflow run, nested under one run of the pipeline run, with its record's numbers
    cold = json.loads((out / "usc-had-loso-smoke.json").read_text())
    runs = _mlflow_runs(bench)
    trainings = {n: r for n, r in runs.items() if n in _ids(["cnn"])}
    assert set(trainings) == _ids(["cnn"]), sorted(runs)
    parents = {r["parent"] for r in trainings.values()}
    assert len(parents) == 1 and None not in parents, runs
    (parent,) = [n for n, r in runs.items() if r["id"] in parents]
    assert parent.startswith("benchmark_pipeline-"), parent  # named after the ZenML run
    assert runs[parent]["params"]["models"] == "cnn" and runs[parent]["params"]["trainings"] == "2", runs[parent]
    for rec in cold["models"]["cnn"]["per_fold"]:
        run = trainings[step_id("cnn", rec["fold"], rec["seed"])]
        assert run["params"]["model"] == "cnn" and run["params"]["fold"] == rec["fold"]
        assert run["params"]["seed"] == str(rec["seed"])
        assert run["metrics"]["test_macro_f1"] == pytest.approx(rec["metrics"]["macro_f1"])
        assert run["metrics"]["test_accuracy"] == pytest.approx(rec["metrics"]["accuracy"])
        assert run["metrics"]["epochs_run"] == rec["epochs_run"]
        assert run["metrics"]["train_seconds"] == pytest.approx(rec["train_seconds"])

    # rerun: nothing trains (and no training is logged again)
    _har_benchmark(bench, "cnn", out)
    assert _train_statuses(bench) == dict.fromkeys(_ids(["cnn"]), "cached")
    assert len([n for n in _mlflow_runs(bench) if n.startswith("train_")]) == len(_ids(["cnn"]))

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
    assert "with --engine processes use --jobs" in refused(*args[:2], "processes", *args[3:], "--step-cpus", "1")
    assert not any(tmp_path.iterdir())  # nothing written


_ARTIFACT_STORE = """
from zenml.client import Client
print(Client().active_stack.artifact_store.path)
"""


@pytest.mark.slow
def test_stopped_training_step_goes_on_from_its_checkpoint_in_the_artifact_store(bench, tmp_path, monkeypatch):
    """A training step stopped after its first epoch left its checkpoint in the artifact store:
    ``--status`` calls it part-trained, and the next run's step goes on from epoch 1 and scores
    exactly what an unbroken training scores; the checkpoint is gone afterwards."""
    from components.benchmark import execute
    from components.benchmark.fanout import checkpoint_path, pipeline_tasks
    from components.benchmark.plan import plan_run
    from components.benchmark.protocol import STEP_CPUS

    settings = BenchmarkSettings(
        dataset="usc-had", protocol="loso", models=["cnn"], epochs=3, folds=FOLDS, data_dir=bench["data"]
    )
    plan = plan_run(settings, log=lambda s: None)  # what the CLI plans for the same options
    first = pipeline_tasks(plan, threads=STEP_CPUS)[0]
    unbroken = execute.run_task(first["task"], plan.windows)

    proc = subprocess.run(
        [sys.executable, "-c", _ARTIFACT_STORE], cwd=REPO_ROOT, env=bench["env"], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    store = proc.stdout.strip().splitlines()[-1]
    where = checkpoint_path(store, first["task"], plan.windows_sha256, first["code_sha256"])
    stop_training_in_epoch(monkeypatch, 1, RuntimeError("stopped"))  # its second epoch: as if the pod were stopped
    stopped = execute.run_task({**first["task"], "checkpoint": where}, plan.windows)
    monkeypatch.undo()
    assert "stopped" in stopped["error"] and Path(where).is_file()

    out = tmp_path / "out"
    status = _har_benchmark(bench, "cnn", out, "--status", epochs=3)
    assert status.split(first["step_id"], 1)[1].lstrip().startswith("part-trained: 1 of 3 epochs"), status[-2000:]
    assert "0 of 2 trainings cached (1 part-trained)" in status

    _har_benchmark(bench, "cnn", out, epochs=3)
    result = json.loads((out / "usc-had-loso-smoke.json").read_text())
    recs = {step_id("cnn", r["fold"], r["seed"]): r for r in result["models"]["cnn"]["per_fold"]}
    resumed = recs[first["step_id"]]
    assert resumed["resumed_from_epoch"] == 1 and resumed["epochs_run"] == unbroken["epochs_run"] == 3
    assert resumed["metrics"]["macro_f1"] == unbroken["metrics"]["macro_f1"]
    assert resumed["metrics"]["per_class_f1"] == unbroken["metrics"]["per_class_f1"]
    assert not any("resumed_from_epoch" in r for k, r in recs.items() if k != first["step_id"])
    assert not Path(where).exists() and not Path(where + ".json").exists()
