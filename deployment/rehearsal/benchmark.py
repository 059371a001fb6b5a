"""The rehearsal's benchmark: ``har benchmark --engine pipeline`` on the rehearsal stack, twice.

A two-fold LOSO of the cheapest model on the imported DSADS subjects: the first run trains each
(model, fold, seed) in its own container (checkpointing its first epoch to the S3 artifact
store) and logs it to the MLflow server, nested under the pipeline run's MLflow run; the second
run trains nothing (every training step cached).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from common import RehearsalError, say, sh, step_containers

BENCH_FOLDS, BENCH_MODEL = ["7", "8"], "cnn"  # LOSO folds of these test subjects, the cheapest model


def rehearse_benchmark(
    project: Path, env: dict, config_path: Path, out: Path, data_version: str, subjects: list[str]
) -> dict:
    """`har benchmark --engine pipeline` on the rehearsal stack, twice: the first run trains each
    (model, fold, seed) in its own container and logs it to MLflow, nested under the pipeline
    run's MLflow run; the second trains nothing (every training step cached)."""
    from mlflow.tracking import MlflowClient
    from zenml.client import Client

    from components.benchmark.fanout import step_id

    har = [sys.executable, "-m", "cli"]
    cmd = [*har, "benchmark", "--engine", "pipeline", "--dataset", "dsads", "--protocol", "loso",
           "--subjects", ",".join(subjects), "--folds", ",".join(BENCH_FOLDS), "--models", BENCH_MODEL,
           "--epochs", "2", "--seeds", "1", "--latency-runs", "20",
           "--run-config", str(config_path.relative_to(project)), "--out", str(out), "--no-progress"]  # fmt: skip
    trainings = sorted(step_id(BENCH_MODEL, f"loso-{f}", 0) for f in BENCH_FOLDS)
    runs, problems = {}, []
    for attempt in ("first_run", "second_run"):
        say(f"har benchmark --engine pipeline ({attempt.replace('_', ' ')}: one container per step)")
        t = time.monotonic()
        sh(cmd, env={**env, "ZENML_LOGGING_VERBOSITY": "INFO"}, cwd=project)
        seconds = round(time.monotonic() - t, 1)
        run = Client().get_pipeline("benchmark_pipeline").last_run
        containers = step_containers(run.orchestrator_run_id)
        steps = {name: {"status": str(step.status.value), **(containers.get(name) or {"container_id": None})}
                 for name, step in run.steps.items()}  # fmt: skip
        ran = {n: s for n, s in steps.items() if s["status"] == "completed"}
        problems += [
            f"{attempt} {n}: {s['status']}" for n, s in steps.items() if s["status"] not in ("completed", "cached")
        ]
        problems += [f"{attempt} {n}: ran without a container" for n, s in ran.items() if not s["container_id"]]
        ids = [s["container_id"] for s in ran.values() if s["container_id"]]
        if len(set(ids)) != len(ids):
            problems.append(f"{attempt}: steps shared a container")
        if set(containers) - set(steps):
            problems.append(f"{attempt}: containers for {sorted(set(containers) - set(steps))}, not steps of the run")
        got = sorted(n for n in steps if n.startswith("train_"))
        if got != trainings:
            problems.append(f"{attempt}: training steps {got}, planned {trainings}")
        want = "completed" if attempt == "first_run" else "cached"
        problems += [f"{attempt} {n}: {steps[n]['status']}, not {want}" for n in got if steps[n]["status"] != want]
        pulled = (
            run.steps["data_version_step"].outputs["data_version"][0].load()
            if "data_version_step" in run.steps
            else None
        )
        if pulled != data_version:
            problems.append(f"{attempt}: data_version_step took {pulled}, not the pushed {data_version}")
        runs[attempt] = {"name": run.name, "status": str(run.status.value), "seconds": seconds, "steps": steps,
                         "trainings_ran": sum(steps[n]["status"] == "completed" for n in got),
                         "trainings_cached": sum(steps[n]["status"] == "cached" for n in got)}  # fmt: skip
    path = out / "dsads-loso-smoke.json"
    bench = json.loads(path.read_text()) if path.is_file() else {}
    per_fold = (bench.get("models") or {}).get(BENCH_MODEL, {}).get("per_fold") or []
    folds = sorted(r["fold"] for r in per_fold)
    if folds != sorted(f"loso-{f}" for f in BENCH_FOLDS):
        problems.append(f"{path}: {BENCH_MODEL} fold records {folds}, not loso-{' and loso-'.join(BENCH_FOLDS)}")
    mlflow = MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"])
    experiment = mlflow.get_experiment_by_name("benchmark_pipeline")
    tracked = mlflow.search_runs([experiment.experiment_id], max_results=100) if experiment else []
    by_name = {r.info.run_name: r for r in tracked}
    children = {n: r for n, r in by_name.items() if n in trainings}
    parent = by_name.get(runs["first_run"]["name"])
    if sorted(children) != trainings or parent is None:
        problems.append(f"MLflow runs {sorted(by_name)}: not {trainings} under {runs['first_run']['name']}")
    elif {r.data.tags.get("mlflow.parentRunId") for r in children.values()} != {parent.info.run_id}:
        problems.append("the trainings' MLflow runs are not nested under the pipeline run's")
    if problems:
        raise RehearsalError("the benchmark run is not what a cluster run must be:\n  " + "\n  ".join(problems))
    say(f"benchmark: {len(trainings)} trainings in their own containers, then all cached; {path.name} written")
    return {
        "command": " ".join(cmd[2:]),
        "first_run": runs["first_run"],
        "second_run": runs["second_run"],
        "result": {
            "file": path.name,
            "complete_protocol": bench.get("complete_protocol"),
            "folds": folds,
            "macro_f1_mean": bench["models"][BENCH_MODEL].get("macro_f1_mean"),
            "per_fold_macro_f1": {r["fold"]: round(r["metrics"]["macro_f1"], 4) for r in per_fold},
        },
        "mlflow": {
            "experiment": "benchmark_pipeline",
            "parent_run": parent.info.run_name,
            "training_runs": {
                n: {
                    "run_id": r.info.run_id,
                    "test_macro_f1": r.data.metrics.get("test_macro_f1"),
                    "params": dict(r.data.params),
                }
                for n, r in sorted(children.items())
            },
        },  # fmt: skip
    }
