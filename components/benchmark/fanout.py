"""The benchmark as one training per pipeline step: what the ZenML engine's steps call.

``har benchmark --engine pipeline`` (``pipelines/benchmark_pipeline.py``) plans the run in
the calling process (:func:`pipeline_tasks`: one entry per (model, fold, seed), with the
step id and the code fingerprint that enter that step's cache key), trains each entry in
its own step (:func:`train_task`, the same :func:`~components.benchmark.execute.run_task`
as the process pool) and assembles the records in one last step (:func:`assemble_records`,
the same :func:`~components.benchmark.assemble.assemble` and efficiency measurement).
Nothing here imports ZenML.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from components.benchmark.assemble import assemble
from components.benchmark.execute import Outcome, add_record, measure_efficiency, run_task
from components.benchmark.ledger import code_fingerprint
from components.benchmark.plan import RunPlan, cut_windows, environment_info, plan_for_windows, windows_hash
from components.benchmark.protocol import BenchmarkSettings
from components.config import data_dir as default_data_dir
from components.data.versioning import materialize
from components.data.window_set import WindowSet
from components.provenance import git_info


def step_id(model: str, fold: str, seed: int) -> str:
    """The training step's id: ``train_cmdhar_fold3_s0`` (``loso-3`` -> ``fold3``; other
    characters than letters, digits, ``_`` and ``-`` become ``_``)."""
    label = f"fold{fold.removeprefix('loso-')}" if fold.startswith("loso-") else fold
    return re.sub(r"[^A-Za-z0-9_-]", "_", f"train_{model}_{label}_s{seed}")


def check_pipeline_settings(settings: BenchmarkSettings) -> None:
    """Refuse what the pipeline engine does not do (with what to use instead)."""
    if settings.ledger:
        raise ValueError(
            "--ledger is the processes engine's cache; the pipeline engine keeps finished trainings "
            "as cached ZenML steps (drop --ledger, or use --engine processes)"
        )
    if settings.time_budget_s:
        raise ValueError("--time-budget works with --engine processes only (a pipeline step is never cut short)")


def pipeline_tasks(plan: RunPlan, threads: int) -> list[dict[str, Any]]:
    """One entry per training of ``plan`` (all of them: ZenML's cache decides what runs):
    ``{"step_id", "task", "code_sha256"}``. Each task trains with ``threads`` torch threads
    (the cores its step requests) whatever machine runs it: the thread count changes the
    floating-point sums, so it is part of the task and of the step's cache key."""
    codes = {n: code_fingerprint(model=n) for n in plan.names}
    return [
        {
            "step_id": step_id(t["model"], t["fold"]["name"], t["seed"]),
            # as JSON (tuples -> lists): what the step's stored parameters are, for --status
            "task": json.loads(json.dumps({**t, "threads": threads})),
            "code_sha256": codes[t["model"]],
        }
        for t in plan.tasks
    ]


def prepare_windows(settings: BenchmarkSettings, windows_sha256: str, data_version: str) -> WindowSet:
    """The run's windows, cut from ``settings.dataset`` as it is in ``data_version`` (fetched by
    version: :func:`~components.data.versioning.materialize`), with ``windows_sha256`` in their
    provenance (the artifact's content hash, so the training steps' cache keys cover the data);
    raises if the data changed since the run was planned."""
    with materialize(data_version, settings.dataset) as folder:
        _, windows = cut_windows(replace(settings, data_dir=folder.parent), log=lambda s: None)
    got = windows_hash(windows)
    if got != windows_sha256:
        raise ValueError(
            f"the {settings.dataset} windows of data version {data_version} are not the ones this run was planned "
            f"with (sha256 {got[:12]}, planned {windows_sha256[:12]}): the data changed since, or the caller "
            "planned from another data version; start the run again"
        )
    windows.provenance = {**(windows.provenance or {}), "dataset": settings.dataset, "windows_sha256": got}
    return windows


CHECKPOINTS = "benchmark-checkpoints"  # the folder in the artifact store the training steps checkpoint in


def checkpoint_path(root: str, task: dict[str, Any], windows_sha256: str, code_sha256: str) -> str:
    """Where the training step of ``task`` keeps its per-epoch checkpoint under ``root`` (the
    artifact store): named by the step id and a digest of the step's cache-key parameters, so a
    rerun of the same step (same windows, task and code) finds it, and no other step does."""
    key = json.dumps({"task": task, "windows_sha256": windows_sha256, "code_sha256": code_sha256}, sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    name = step_id(task["model"], task["fold"]["name"], task["seed"])
    return f"{root.rstrip('/')}/{CHECKPOINTS}/{name}-{digest}.pt"


def train_task(
    task: dict[str, Any],
    windows: WindowSet,
    windows_sha256: str,
    code_sha256: str,
    run_name: str | None = None,
    checkpoint: tuple[str, Any] | None = None,
) -> dict[str, Any]:
    """Train and test one entry of :func:`pipeline_tasks` on ``windows``.

    Checks first that the windows and the training code are the ones the run was planned
    with (a step image built from older code would otherwise be cached under the new key).
    The record carries, like a ledger record, the commit and machine it was trained on
    (``ledger``) and the pipeline run that trained it (``pipeline_run``). A failed training
    comes back with ``error`` (the step turns it into an exception, so it is never cached).
    ``checkpoint``: ``(path, file system)`` where the training saves its state after each
    epoch and resumes from (:func:`checkpoint_path`; the caller clears it once the record is kept).
    """
    got = windows.provenance.get("windows_sha256") if windows.provenance else None
    if got != windows_sha256:
        raise ValueError(f"windows artifact sha256 {got} is not the planned {windows_sha256}")
    code = code_fingerprint(model=task["model"])
    if code != code_sha256:
        raise ValueError(
            f"the code that trains {task['model']} here (fingerprint {code[:12]}) is not the code the run was "
            f"planned with ({code_sha256[:12]}): run the step from the same commit as the caller"
        )
    where = {"checkpoint": checkpoint[0]} if checkpoint else {}
    record = run_task({**task, **where}, windows, checkpoint[1] if checkpoint else None)
    record["ledger"] = {
        "git": git_info(),
        "environment": environment_info(task["device"]),
        "saved_unix": time.time(),
    }
    record["pipeline_run"] = run_name
    return record


def assemble_records(
    settings: BenchmarkSettings,
    windows: WindowSet,
    records: list[dict[str, Any]],
    t_start: float,
    run_name: str | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """The result dict of :func:`components.benchmark.harness.run_benchmark` for ``records``
    (efficiency measured here). Records trained by an earlier pipeline run (a cached step)
    are marked ``from_ledger``, as records the ledger supplies are."""
    root = Path(settings.data_dir) if settings.data_dir else default_data_dir()
    plan = plan_for_windows(settings, root, windows, log=lambda s: None)
    threads = sorted({r["threads"] for r in records if "threads" in r})
    plan.executor, plan.threads = "pipeline", threads[0] if len(threads) == 1 else threads
    out = Outcome(records={n: [] for n in plan.names}, failures=[], skipped=[], truncated=[])
    for rec in records:
        earlier = run_name is not None and rec.get("pipeline_run") not in (None, run_name)
        add_record(out, {**rec, "from_ledger": True} if earlier else rec, log)
    effs = measure_efficiency(plan, settings)
    return assemble(settings, plan, out, effs, t_start)


def track_record(record: dict[str, Any], task: dict[str, Any], windows_sha256: str) -> str | None:
    """Log one training's record to the active MLflow run (the one the stack's experiment
    tracker opened for the step); returns its run id, None when no run is active.

    Params: model, fold, seed (and the task's epochs cap, device, hparams); metrics: test
    macro-F1 and accuracy, epochs run, best epoch and validation macro-F1, training seconds.
    """
    import mlflow

    run = mlflow.active_run()
    if run is None:
        return None
    mlflow.log_params(
        {
            "model": record["model"],
            "fold": record["fold"],
            "seed": record["seed"],
            "max_epochs": task["epochs"],
            "patience": task["patience"],
            "device": task["device"],
            "hparams": json.dumps(task.get("hparams") or {}, sort_keys=True),
        }
    )
    metrics = {
        "test_macro_f1": record["metrics"]["macro_f1"],
        "test_accuracy": record["metrics"]["accuracy"],
        "epochs_run": record.get("epochs_run"),
        "best_epoch": record.get("best_epoch"),
        "best_val_macro_f1": record.get("best_val_macro_f1"),
        "train_seconds": record.get("train_seconds"),
    }
    mlflow.log_metrics({k: float(v) for k, v in metrics.items() if v is not None})
    mlflow.set_tags(
        {
            "benchmark_windows_sha256": windows_sha256,
            "test_subjects": ",".join(record["test_subjects"]),
            "git_commit": str((record.get("ledger") or {}).get("git", {}).get("commit")),
        }
    )
    return run.info.run_id
