"""Execute a benchmark plan: train and test every task, then measure each model's efficiency.

Every (model, fold, seed) is one task (:func:`run_task`); tasks run in ``jobs`` spawned
processes (each with ``max(1, cpu_count // jobs)`` torch threads), or in-process when
``jobs == 1``. On CUDA they run in ``jobs`` threads of this process instead: each training
gets its own CUDA stream and replays its step as a CUDA graph, so many small trainings share
the GPU concurrently. The windows reach the workers as uncompressed, memory-mapped ``.npy``
files. Each finished record goes to the ledger the moment it arrives; with a ledger, each
training also checkpoints every epoch there and a stopped one resumes in the next run.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from components.benchmark.plan import RunPlan
from components.benchmark.protocol import TIME_BUDGET_MIN, BenchmarkSettings, base_model
from components.data.splitting import Fold, apply_fold
from components.data.window_set import WindowSet
from components.metrics import classification_metrics
from components.models.spec import InputSpec

_ARRAYS = ("x", "y", "subject", "recording", "start_s")
_CACHE: dict[str, Any] = {}  # folder -> WindowSet (one per process; shared by task threads)
_CACHE_LOCK = threading.Lock()
_EFFICIENCY_LOCK = threading.Lock()


def _save_windows(ws: Any, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in _ARRAYS:
        np.save(folder / f"{name}.npy", getattr(ws, name))
    meta = {
        "label_names": ws.label_names,
        "channel_names": ws.channel_names,
        "modality_groups": ws.modality_groups,
        "sampling_rate_hz": ws.sampling_rate_hz,
        "provenance": ws.provenance,
    }
    (folder / "meta.json").write_text(json.dumps(meta, default=str))
    return folder


def _load_windows(folder: str) -> Any:
    with _CACHE_LOCK:
        if folder not in _CACHE:
            meta = json.loads((Path(folder) / "meta.json").read_text())
            arrays = {n: np.load(Path(folder) / f"{n}.npy", mmap_mode="r" if n == "x" else None) for n in _ARRAYS}
            _CACHE[folder] = WindowSet(**arrays, **meta)
        return _CACHE[folder]


# ---------------------------------------------------------------------------------
# one task
# ---------------------------------------------------------------------------------
def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _supports_mask(model: Any) -> bool:
    return hasattr(model, "forward_train") and len(getattr(model, "input_groups", [])) > 1


def run_task(task: dict[str, Any], windows: WindowSet | None = None, checkpoint_fs: Any = None) -> dict[str, Any]:
    """Train and test one (model, fold, seed); returns a JSON-able record (``error`` on failure).

    ``windows``: the run's windows; None reads them from ``task["windows_dir"]`` (the worker
    processes' memory-mapped copy). With ``task["checkpoint"]`` (a path, on ``checkpoint_fs``
    if given) the training saves its state there after each epoch and resumes from it
    (:mod:`components.training.checkpoint`; the record then says ``resumed_from_epoch``);
    the caller clears it once the record is kept.
    """
    t0 = time.time()
    record: dict[str, Any] = {
        "model": task["model"],
        "fold": task["fold"]["name"],
        "seed": task["seed"],
        "train_subjects": list(task["fold"]["train"]),
        "val_subjects": list(task["fold"]["val"]),
        "test_subjects": list(task["fold"]["test"]),
    }
    if task.get("start_deadline") and time.time() > task["start_deadline"]:
        record["skipped"] = "time budget spent before the task started"
        return record
    try:
        import torch

        # torch: imported in the task, so `har benchmark --help` and the CLI stay torch-free
        from components.models.registry import build_model
        from components.training.trainer import TrainConfig, predict, seed_everything, train_model

        if task.get("threads"):
            torch.set_num_threads(task["threads"])
            record["threads"] = task["threads"]
        if windows is None:
            windows = _load_windows(task["windows_dir"])
        fold = Fold(**task["fold"])
        split = apply_fold(windows, fold)
        train, val, test = split.standardized()
        if len(val) == 0:
            raise ValueError(f"fold {fold.name} has no validation windows (too few subjects?)")
        spec = InputSpec.from_windows(train)
        seed_everything(task["seed"])  # weight init happens outside train_model
        model = build_model(base_model(task["model"]), spec, **task.get("hparams", {}))
        trainer = dict(
            lr=task["lr"],
            weight_decay=task["weight_decay"],
            epochs=task["epochs"],
            batch_size=task["batch_size"],
            patience=task["patience"],
            seed=task["seed"],
            modality_dropout=task["modality_dropout"],
            lr_schedule=task["lr_schedule"],
            augment_rotation_deg=task["augment_rotation_deg"],
            augment_gain_std=task["augment_gain_std"],
            device=task["device"],
            progress=False,
            deadline=task.get("deadline"),
            time_budget_min=TIME_BUDGET_MIN,
        )
        cfg = TrainConfig(**{**trainer, **task.get("trainer_overrides", {})})  # a training variant's settings
        checkpoint = None
        if task.get("checkpoint"):
            from components.training.checkpoint import TrainingCheckpoint

            checkpoint = TrainingCheckpoint(task["checkpoint"], key=checkpoint_key(task), fs=checkpoint_fs)
        result = train_model(model, train, val, cfg, split.standardizer, checkpoint)
        probs = predict(model, test.x)
        m = classification_metrics(test.y, probs.argmax(1), test.n_classes, test.label_names)
        record["metrics"] = {
            k: m[k]
            for k in (
                "macro_f1",
                "accuracy",
                "balanced_accuracy",
                "gmean",
                "per_class_f1",
                "per_class_precision",
                "per_class_recall",
                "n",
            )
        }
        record["metrics"]["label_names"] = list(test.label_names)
        record["metrics"]["present"] = m["present"]
        if _supports_mask(model):
            missing = {}
            for g, name in enumerate(model.input_groups):
                mask = np.ones((len(test), len(model.input_groups)), np.float32)
                mask[:, g] = 0.0
                pm = predict(model, test.x, modality_mask=mask).argmax(1)
                missing[name] = classification_metrics(test.y, pm, test.n_classes)["macro_f1"]
            record["missing_modality_macro_f1"] = missing
        record.update(
            epochs_run=result.epochs_run,
            best_epoch=result.best_epoch,
            best_val_macro_f1=result.best_val_f1,
            train_seconds=result.seconds,
            windows={"train": len(train), "val": len(val), "test": len(test)},
            cuda_graph=result.cuda_graph,
        )
        if result.resumed_from_epoch is not None:
            record["resumed_from_epoch"] = result.resumed_from_epoch
        if result.cuda_graph_error:
            record["cuda_graph_error"] = result.cuda_graph_error
        if result.stopped_by == "deadline":
            record["truncated"] = f"stopped by the time budget after {result.epochs_run} epochs"
    except Exception as exc:  # noqa: BLE001 - reported by the caller, never dropped
        record["error"] = f"{type(exc).__name__}: {exc}"
        record["traceback"] = traceback.format_exc()[-4000:]
    record["seconds"] = time.time() - t0
    return record


# task fields that say how and where it runs, not which training it is
_RUN_FIELDS = ("threads", "windows_dir", "start_deadline", "deadline", "checkpoint")


def checkpoint_key(task: dict[str, Any]) -> dict[str, Any]:
    """The part of a task that names its training (a checkpoint's ``key``): model, fold
    subjects, seed, hyper-parameters and trainer settings, not threads, folders or deadlines."""
    return {k: v for k, v in task.items() if k not in _RUN_FIELDS}


@dataclass
class Outcome:
    """What the tasks gave.

    Attributes:
        records: model -> its records: the reused ledger records (``from_ledger``) first, then
            the new ones in the order they finished.
        failures / skipped / truncated: the tasks that raised, were not started, or were cut
            by the time budget (as listed in the result JSON).
    """

    records: dict[str, list[dict[str, Any]]]
    failures: list[dict[str, Any]]
    skipped: list[dict[str, Any]]
    truncated: list[dict[str, Any]]


def add_record(out: Outcome, rec: dict[str, Any], log: Callable[[str], None] = print) -> None:
    """File one task record in ``out``: under its model, and as skipped, cut short or failed."""
    out.records[rec["model"]].append(rec)
    key = {k: rec.get(k) for k in ("model", "fold", "seed")}
    if "skipped" in rec:
        out.skipped.append(key)
    if "truncated" in rec:
        out.truncated.append({**key, "reason": rec["truncated"]})
    if "error" in rec:
        out.failures.append({k: rec.get(k) for k in ("model", "fold", "seed", "error", "traceback")})
        log(f"FAILED {rec['model']} / {rec['fold']} / seed {rec['seed']}: {rec['error']}")


def execute(
    plan: RunPlan, settings: BenchmarkSettings, progress: bool = True, log: Callable[[str], None] = print
) -> Outcome:
    """Run ``plan.tasks`` (``settings.jobs`` at a time); every record is collected, none dropped."""
    import torch

    t_train = time.time()
    start_deadline = t_train + settings.time_budget_s if settings.time_budget_s else None
    deadline = t_train + 1.25 * settings.time_budget_s if settings.time_budget_s else None
    out = Outcome(records={n: [] for n in plan.names}, failures=[], skipped=[], truncated=[])
    for rec in plan.reused:
        out.records[rec["model"]].append({**rec, "from_ledger": True})
    ledgers = plan.ledgers
    with tempfile.TemporaryDirectory(prefix="har-bench-") as tmp:
        windows_dir = str(_save_windows(plan.windows, Path(tmp) / "windows"))
        tasks = [
            {**t, "windows_dir": windows_dir, "start_deadline": start_deadline, "deadline": deadline}
            | ({"checkpoint": str(_checkpoint(ledgers, t))} if t["model"] in ledgers else {})
            for t in plan.tasks
        ]
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(tasks), desc="benchmark", unit="task")

        def collect(rec: dict[str, Any]) -> None:
            add_record(out, rec, log)
            if rec["model"] in ledgers:
                ledgers[rec["model"]].save(rec, plan.ledger_provenance)
            if bar is None and "metrics" in rec:
                log(
                    f"done {rec['model']} {rec['fold']} seed {rec['seed']}: best validation macro-F1 "
                    f"{rec['best_val_macro_f1']:.3f}, "
                    f"{rec['epochs_run']} epochs, {rec['train_seconds']:.0f} s, cuda graph {rec.get('cuda_graph')}"
                    + (f", went on from a checkpoint after epoch {k}" if (k := rec.get("resumed_from_epoch")) else "")
                    + (f" ({rec['cuda_graph_error']})" if rec.get("cuda_graph_error") else "")
                    + (" - cut by the time budget, not a record" if "truncated" in rec else "")
                    + (
                        "; its checkpoint goes on in the next run"
                        if "truncated" in rec and rec["model"] in ledgers
                        else ""
                    )
                )
            if bar is not None:
                bar.update(1)
                if "metrics" in rec:
                    # validation, not test: a run that selects among candidates shows only what they are chosen on
                    bar.set_postfix_str(f"{rec['model']} {rec['fold']} val F1={rec['best_val_macro_f1']:.3f}")

        try:
            if plan.executor == "threads" and settings.jobs > 1:
                with ThreadPoolExecutor(max_workers=settings.jobs, thread_name_prefix="har-task") as pool:
                    for fut in as_completed([pool.submit(run_task, t) for t in tasks]):
                        collect(fut.result())  # run_task records its own exceptions
            elif settings.jobs == 1:
                prev = torch.get_num_threads()
                try:
                    for task in tasks:
                        collect(run_task(task))
                finally:
                    torch.set_num_threads(prev)
            else:
                ctx = mp.get_context("spawn")
                with ProcessPoolExecutor(
                    max_workers=settings.jobs, mp_context=ctx, initializer=_init_worker, initargs=(plan.threads,)
                ) as pool:
                    futures = {pool.submit(run_task, t): t for t in tasks}
                    for fut in as_completed(futures):
                        t = futures[fut]
                        try:
                            rec = fut.result()
                        except Exception as exc:  # noqa: BLE001 - e.g. a worker killed by the OS
                            rec = {
                                "model": t["model"],
                                "fold": t["fold"]["name"],
                                "seed": t["seed"],
                                "error": f"{type(exc).__name__}: {exc}",
                                "traceback": traceback.format_exc()[-4000:],
                            }
                        collect(rec)
        finally:
            if bar is not None:
                bar.close()
    return out


def _checkpoint(ledgers: dict[str, Any], task: dict[str, Any]) -> Path:
    return ledgers[task["model"]].checkpoint_path(task["model"], task["fold"]["name"], task["seed"])


def measure_efficiency(plan: RunPlan, settings: BenchmarkSettings) -> dict[str, dict[str, Any]]:
    """Model -> parameters, MACs, ONNX size and batch-1 latency ({} with ``efficiency`` off).

    Runs in the main process after training (no competing workers), 1 thread, every model's
    latency timed in the same interleaved rounds so the ratios between them hold.
    """
    if not settings.efficiency:
        return {}
    import torch

    from components.benchmark.efficiency import LATENCY_ROUNDS, efficiency_reports
    from components.models.registry import build_model

    built = {}
    for n in plan.names:
        torch.manual_seed(0)
        built[n] = build_model(base_model(n), plan.spec, **settings.hparams.get(n, {}))
    with _EFFICIENCY_LOCK:  # one measurement at a time per process (clean timings; one exporter)
        return efficiency_reports(built, plan.spec, runs=settings.latency_runs, rounds=LATENCY_ROUNDS)
