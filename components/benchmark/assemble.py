"""Assemble a benchmark result: per-model means over folds and seeds, settings and provenance.

:func:`assemble` turns a plan, its outcome and the efficiency measurements into the result
dict that :mod:`components.benchmark.report` writes as JSON and Markdown.
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from components.benchmark.execute import Outcome
from components.benchmark.plan import RunPlan, environment_info
from components.benchmark.protocol import (
    PROTOCOL_DESCRIPTION,
    PUBLISHED_REFERENCE,
    WINDOW_LENGTH_S,
    WINDOW_OVERLAP,
    BenchmarkSettings,
)
from components.benchmark.selection import select_per_fold
from components.benchmark.targets import check_targets
from components.config import REPO_ROOT
from components.data.versioning import data_version
from components.provenance import git_info


def data_dvc_md5(repo: Path = REPO_ROOT) -> str | None:
    """The data version recorded in ``<repo>/data.dvc`` (read as YAML; DVC is not imported)."""
    return data_version(repo)


def mean_std(values: list[float]) -> tuple[float | None, float | None]:
    """Mean and std (ddof 1; 0 for one value) of ``values``; ``(None, None)`` for none."""
    if not values:
        return None, None
    a = np.asarray(values, dtype=np.float64)
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else 0.0


def aggregate(name: str, records: list[dict[str, Any]], efficiency: dict[str, Any] | None) -> dict[str, Any]:
    """Per-model summary: means/std over every (fold, seed), efficiency, per-fold records."""
    done = [r for r in records if "error" not in r and "skipped" not in r]
    ok = [r for r in done if "truncated" not in r]  # a training cut by the time budget is not a result
    out: dict[str, Any] = {
        "n_runs": len(ok),
        "n_failed": sum("error" in r for r in records),
        "n_truncated": len(done) - len(ok),
        "n_skipped": sum("skipped" in r for r in records),
    }
    for key in ("macro_f1", "accuracy", "balanced_accuracy", "gmean"):
        mean, std = mean_std([r["metrics"][key] for r in ok])
        out[f"{key}_mean"], out[f"{key}_std"] = mean, std
    out["train_seconds_mean"] = mean_std([r["train_seconds"] for r in ok])[0]
    out["epochs_run_mean"] = mean_std([r["epochs_run"] for r in ok])[0]
    out["per_class_f1_mean"] = _per_class_mean([r["metrics"] for r in ok])
    for key in ("precision", "recall"):  # records from before they were kept have neither
        with_it = [r["metrics"] for r in ok if f"per_class_{key}" in r["metrics"]]
        if with_it:
            out[f"per_class_{key}_mean"] = _per_class_mean(with_it, f"per_class_{key}")
    missing = [r["missing_modality_macro_f1"] for r in ok if "missing_modality_macro_f1" in r]
    if missing:
        out["missing_modality_macro_f1_mean"] = {g: mean_std([mm[g] for mm in missing])[0] for g in missing[0]}
    eff = efficiency or {}
    for key in ("params", "macs_per_window", "onnx_size_bytes", "latency_ms_p50", "latency_ms_p50_torch"):
        out[key] = eff.get(key)
    for key in ("latency_ms_p90", "latency_ms_p90_torch", "latency_rounds", "onnx_max_abs_diff", "onnx_error"):
        if key in eff:
            out[key] = eff[key]
    # trainings cut by the time budget: kept for inspection, never in the means
    cut = [r for r in done if "truncated" in r]
    out["per_fold_cut_short"] = sorted(
        [{k: r.get(k) for k in ("fold", "seed", "metrics", "epochs_run", "truncated")} for r in cut],
        key=lambda r: (r["fold"], r["seed"]),
    )
    out["per_fold"] = sorted(
        [
            {
                k: r.get(k)
                for k in (
                    "fold",
                    "seed",
                    "train_subjects",
                    "val_subjects",
                    "test_subjects",
                    "metrics",
                    "missing_modality_macro_f1",
                    "epochs_run",
                    "best_epoch",
                    "best_val_macro_f1",
                    "train_seconds",
                    "windows",
                    "cuda_graph",
                    "cuda_graph_error",
                    "selected_model",  # a selection row: the candidate chosen on validation subjects
                    "resumed_from_epoch",  # went on from a checkpoint of a stopped run after this many epochs
                    "from_ledger",  # trained in an earlier run: "ledger" names its commit and machine
                    "ledger",
                )
                if k in r
            }
            for r in ok
        ],
        key=lambda r: (r["fold"], r["seed"]),
    )
    return out


def _per_class_mean(metrics: list[dict[str, Any]], key: str = "per_class_f1") -> dict[str, float]:
    """Class name -> ``key`` (F1, precision or recall) averaged over the runs whose test
    subjects have that class."""
    sums: dict[str, list[float]] = {}
    for m in metrics:
        if key not in m or "label_names" not in m:
            continue
        present = m.get("present") or [True] * len(m["label_names"])
        for name, f1, here in zip(m["label_names"], m[key], present, strict=True):
            if here:
                sums.setdefault(name, []).append(f1)
    return {name: sum(v) / len(v) for name, v in sums.items()}


def assemble(
    settings: BenchmarkSettings,
    plan: RunPlan,
    outcome: Outcome,
    effs: dict[str, dict[str, Any]],
    t_start: float,
) -> dict[str, Any]:
    """The result dict (``t_start``: when the run began, for ``duration_s``), targets checked."""
    names, ledgers = plan.names, plan.ledgers
    windows = plan.windows
    models_out: dict[str, Any] = {n: aggregate(n, outcome.records[n], effs.get(n)) for n in names}
    for n, hp in settings.hparams.items():  # every n is in names (checked by plan_run)
        if hp:
            models_out[n]["hparams"] = dict(hp)
    for n, candidates in settings.select.items():  # chosen per fold on validation subjects only
        chosen, selection = select_per_fold(outcome.records, candidates)
        models_out[n] = {**aggregate(n, chosen, None), "selection": selection}

    deviations = settings.deviations()
    if outcome.skipped:
        deviations.append(f"time budget: {len(outcome.skipped)} of {plan.n_total} tasks not run")
    if outcome.truncated:
        deviations.append(f"time budget: {len(outcome.truncated)} trainings cut short (left out of the means)")
    result: dict[str, Any] = {
        "complete_protocol": not deviations,
        "deviations": deviations,
        "models": models_out,
        "protocol": {
            "name": settings.protocol,
            "description": PROTOCOL_DESCRIPTION,
            "window_s": WINDOW_LENGTH_S,
            "overlap": WINDOW_OVERLAP,
            "folds": [asdict(f) for f in plan.folds],
        },
        "settings": {
            "models": names,
            "ablations": settings.ablations,
            "epochs": settings.epochs,
            "patience": settings.patience,
            "seeds": settings.seeds,
            "device": plan.device,
            "jobs": settings.jobs,
            "executor": plan.executor,
            "threads_per_job": plan.threads,
            "time_budget_s": settings.time_budget_s,
            "batch_size": settings.batch_size,
            "lr": settings.lr,
            "weight_decay": settings.weight_decay,
            "val_share": settings.val_share,
            "modality_dropout": settings.modality_dropout,
            "select": settings.select,
            "lr_schedule": settings.lr_schedule,
            "augment_rotation_deg": settings.augment_rotation_deg,
            "augment_gain_std": settings.augment_gain_std,
            "subjects": settings.subjects,
            "folds": settings.folds,
            "latency": f"batch 1, p50 over {settings.latency_runs} runs after 20 warm-up, timed in interleaved "
            "rounds across the models (components.benchmark.efficiency.interleaved_times); ORT fp32 ONNX (opset 18, "
            "intra_op_num_threads=1, sequential) = latency_ms_p50; torch eager 1 thread = "
            "latency_ms_p50_torch; untrained weights (timing does not depend on them)",
        },
        "git": git_info(),
        "data": {
            "dataset": settings.dataset,
            "data_dir": str(plan.data_root),
            "data_dvc_md5": data_dvc_md5(),
            "windows_sha256": plan.windows_sha256,
            "n_windows": len(windows),
            "subjects": windows.subjects,
            "n_classes": windows.n_classes,
            "n_channels": windows.n_channels,
            "window_len": windows.window_len,
            "sampling_rate_hz": windows.sampling_rate_hz,
            "modality_groups": {k: list(v) for k, v in windows.modality_groups.items()},
        },
        "environment": environment_info(plan.device),
        "published_reference": PUBLISHED_REFERENCE,
        "failures": outcome.failures,
        "skipped": outcome.skipped,
        "truncated": outcome.truncated,
        "ledger": None
        if not ledgers
        else {
            "root": str(settings.ledger),
            "dirs": sorted({str(led.dir) for led in ledgers.values()}),
            "fingerprint_sha256": {n: led.digest for n, led in ledgers.items()},
            "reused": len(plan.reused),
            "ran": len(plan.tasks),
        },
        "created_unix": time.time(),
        "duration_s": time.time() - t_start,
        "command": " ".join(sys.argv),
    }
    result["targets"] = check_targets(result)
    return result
