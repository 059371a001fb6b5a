"""Plan a benchmark run: windows, folds, device, executor, and the tasks still to train.

:func:`plan_run` checks the settings, cuts (and if needed imports) the dataset, resolves the
folds, opens the ledger and lists every (model, fold, seed) task: those the ledger already
holds are reused, the rest are what :func:`components.benchmark.execute.execute` trains.
"""

from __future__ import annotations

import hashlib
import os
import platform
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from components.benchmark.ledger import Ledger, code_fingerprint, code_scope
from components.benchmark.protocol import (
    HOLDOUT_DEFAULTS,
    VARIANTS,
    WINDOW_LENGTH_S,
    WINDOW_OVERLAP,
    BenchmarkSettings,
    base_model,
    trainer_overrides,
)
from components.config import REPO_ROOT
from components.config import data_dir as default_data_dir
from components.data.splitting import Fold, SplitConfig, SplitError, make_folds
from components.data.window_set import WindowSet
from components.models.spec import InputSpec
from components.provenance import git_info

Task = dict[str, Any]
TaskKey = tuple[str, str, int]  # (model, fold name, seed)


@dataclass
class RunPlan:
    """Everything a run decided before training.

    Attributes:
        names: the models, in result order.
        data_root / out_dir: the data folder and the results folder.
        windows: the cut windows (restricted to ``settings.subjects`` when set).
        folds: the folds to run.
        spec: the models' input structure.
        device / executor / threads: resolved ``auto`` settings; torch threads per task.
        windows_sha256: :func:`windows_hash` of ``windows``.
        ledgers: model -> its :class:`~components.benchmark.ledger.Ledger` (empty: no ledger).
        ledger_provenance: git and environment stored with each new ledger record.
        tasks: the tasks to train now (``windows_dir`` and deadlines are added when they run).
        reused: ledger records that stand in for the other tasks.
        n_total: every task of the run, reused or not.
    """

    names: list[str]
    data_root: Path
    out_dir: Path
    windows: WindowSet
    folds: list[Fold]
    spec: InputSpec
    device: str
    executor: str
    threads: int
    windows_sha256: str
    ledgers: dict[str, Ledger]
    ledger_provenance: dict[str, Any] | None
    tasks: list[Task]
    reused: list[dict[str, Any]]
    n_total: int


def windows_hash(ws: Any) -> str:
    """sha256 over the windows' values, labels, subjects and recordings (order-sensitive)."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(ws.x, dtype=np.float32).tobytes())
    h.update(np.ascontiguousarray(ws.y, dtype=np.int64).tobytes())
    h.update("\n".join(ws.subject.tolist()).encode())
    h.update("\n".join(ws.recording.tolist()).encode())
    return h.hexdigest()


def environment_info(device: str) -> dict[str, Any]:
    """Python / library versions, CPU, and the GPU name when CUDA is available."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "device": device,
    }
    try:
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        info["onnxruntime"] = None
    return info


def _resolve_folds(settings: BenchmarkSettings, subjects: list[str]):
    if settings.protocol not in ("holdout", "loso"):
        raise SplitError(f"protocol must be holdout or loso, got {settings.protocol!r}")
    test, val = settings.test_subjects, settings.val_subjects
    if settings.protocol == "holdout" and not test:
        d_test, d_val = HOLDOUT_DEFAULTS.get(settings.dataset, ((), ()))
        if d_test and set(d_test) <= set(subjects) and set(d_val) <= set(subjects):
            test, val = list(d_test), list(d_val)
        else:
            test = [subjects[-1]]  # last subject (numeric order)
    cfg = SplitConfig(
        protocol=settings.protocol,
        test_subjects=tuple(test or ()),
        val_subjects=tuple(val or ()),
        val_share=settings.val_share,
        seed=0,
    )
    folds = make_folds(subjects, cfg)
    if settings.folds:
        wanted = set(settings.folds)
        folds = [f for f in folds if f.name in wanted or set(f.test) & wanted]
        if not folds:
            raise SplitError(f"--folds {settings.folds} matches no fold")
    return folds


def _open_ledgers(
    settings: BenchmarkSettings, names: list[str], windows_sha256: str, folds: list[Any]
) -> tuple[dict[str, Any], dict[tuple[str, str, int], dict[str, Any]]]:
    """One :class:`~components.benchmark.ledger.Ledger` per model fingerprint, and the records
    already in them: ``(model -> ledger, (model, fold, seed) -> record)``."""
    base = {
        "dataset": settings.dataset,
        "protocol": settings.protocol,
        "windows_sha256": windows_sha256,
        "epochs": settings.epochs,
        "patience": settings.patience,
        **settings.trainer_settings(),
    }
    by_digest: dict[str, Any] = {}
    ledgers: dict[str, Any] = {}
    for n in names:
        fingerprint = {**base, "code_sha256": code_fingerprint(model=n), "code_excludes": code_scope(n)}
        if settings.hparams.get(n):  # only when set, so the records made at the defaults stay current
            fingerprint["hparams"] = dict(settings.hparams[n])
        if trainer_overrides(n):  # a training variant: its own folder
            fingerprint["trainer_overrides"] = trainer_overrides(n)
        led = Ledger(Path(settings.ledger), settings.dataset, settings.protocol, fingerprint)
        ledgers[n] = by_digest.setdefault(led.digest, led)
    done = {
        key: rec
        for led in by_digest.values()
        for key, rec in led.load(folds).items()
        if ledgers.get(key[0]) is led  # a record counts only in its own model's folder
    }
    return ledgers, done


def cut_windows(settings: BenchmarkSettings, log: Callable[[str], None] = print) -> tuple[Path, WindowSet]:
    """``(data folder, windows)``: the dataset cut at the protocol's window settings (imported
    first if missing), restricted to ``settings.subjects`` when set."""
    from components.data.windowing import WindowConfig, window_dataset

    root = Path(settings.data_dir) if settings.data_dir else default_data_dir()
    dataset_dir = root / settings.dataset
    if not (dataset_dir / "manifest.yaml").exists():
        from components.data.importers import import_dataset

        log(f"{dataset_dir} missing: importing {settings.dataset} (all subjects)")
        import_dataset(settings.dataset, root, jobs=max(1, min(settings.jobs, os.cpu_count() or 1)))

    windows = window_dataset(dataset_dir, WindowConfig(length_s=WINDOW_LENGTH_S, overlap=WINDOW_OVERLAP))
    if settings.subjects:
        missing = sorted(set(settings.subjects) - set(windows.subjects))
        if missing:
            raise ValueError(f"subjects {missing} are not in {settings.dataset} ({windows.subjects})")
        windows = windows.for_subjects(settings.subjects)
    return root, windows


def check_settings(settings: BenchmarkSettings) -> list[str]:
    """The run's model names, once the models, hparams, seeds and jobs are checked."""
    from components.models.registry import MODEL_NAMES
    from components.training.trainer import LR_SCHEDULES

    names = settings.model_names()
    unknown = [n for n in names if n not in MODEL_NAMES and n not in VARIANTS]
    if unknown:
        raise ValueError(
            f"unknown models {unknown}; known: {', '.join(MODEL_NAMES)}; training variants: {', '.join(VARIANTS)}"
        )
    not_run = sorted(set(settings.hparams) - set(names))
    if not_run:
        raise ValueError(f"--hparams names models that this run does not train: {not_run} (models: {names})")
    if settings.seeds < 1 or settings.jobs < 1:
        raise ValueError("seeds and jobs must be >= 1")
    if settings.lr_schedule not in LR_SCHEDULES:
        raise ValueError(f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {settings.lr_schedule!r}")
    clash = sorted(set(settings.select) & (set(MODEL_NAMES) | set(VARIANTS)))
    if clash:
        raise ValueError(f"--select names {clash} are model names; give the selection a name of its own")
    return names


def plan_run(settings: BenchmarkSettings, log: Callable[[str], None] = print) -> RunPlan:
    """Check ``settings``, cut the windows, resolve folds, device and executor, and split the
    tasks into those to train and those the ledger already holds."""
    check_settings(settings)
    root, windows = cut_windows(settings, log)
    return plan_for_windows(settings, root, windows, log)


def plan_for_windows(
    settings: BenchmarkSettings, root: Path, windows: WindowSet, log: Callable[[str], None] = print
) -> RunPlan:
    """:func:`plan_run` for windows already cut (:func:`cut_windows`)."""
    import torch  # torch loads here: the CLI imports this package

    from components.models.registry import build_model

    names = check_settings(settings)
    out_dir = Path(settings.out) if settings.out else REPO_ROOT / "benchmarks" / "results"
    folds = _resolve_folds(settings, windows.subjects)
    spec = InputSpec.from_windows(windows)
    for n, hp in settings.hparams.items():  # a misspelt argument fails here, not in every task
        try:
            build_model(base_model(n), spec, **hp)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"--hparams for {n} {hp}: {exc}") from exc
    device = settings.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    executor = settings.executor
    if executor == "auto":
        executor = "threads" if device.startswith("cuda") else "processes"
    if executor not in ("threads", "processes"):
        raise ValueError(f"executor must be auto, threads or processes, got {settings.executor!r}")
    # task threads share this process: one torch thread each (the GPU does the work)
    threads = 1 if executor == "threads" else max(1, (os.cpu_count() or 1) // settings.jobs)
    windows_sha256 = windows_hash(windows)
    ledgers: dict[str, Any] = {}  # model -> its Ledger (models with one fingerprint share one)
    done: dict[TaskKey, dict[str, Any]] = {}
    ledger_provenance = None
    if settings.ledger:
        ledgers, done = _open_ledgers(settings, names, windows_sha256, folds)
        ledger_provenance = {"git": git_info(), "environment": environment_info(device)}

    tasks = [
        {
            "model": n,
            "hparams": settings.hparams.get(n, {}),
            **({"trainer_overrides": trainer_overrides(n)} if trainer_overrides(n) else {}),
            "fold": asdict(f),
            "seed": seed,
            "epochs": settings.epochs,
            "patience": settings.patience,
            "batch_size": settings.batch_size,
            "lr": settings.lr,
            "weight_decay": settings.weight_decay,
            "modality_dropout": settings.modality_dropout,
            "lr_schedule": settings.lr_schedule,
            "augment_rotation_deg": settings.augment_rotation_deg,
            "augment_gain_std": settings.augment_gain_std,
            "device": device,
            "threads": threads,
        }
        # seed-major, so a time budget cuts extra seeds before it cuts folds
        for seed in range(settings.seeds)
        for n in names
        for f in folds
    ]
    n_total = len(tasks)
    keys = [(t["model"], t["fold"]["name"], t["seed"]) for t in tasks]
    reused = [done[k] for k in keys if k in done]
    tasks = [t for t, k in zip(tasks, keys, strict=True) if k not in done]
    if ledgers:
        folders = sorted({led.dir.name for led in ledgers.values()})
        log(
            f"ledger {settings.ledger} ({', '.join(folders)}): {len(reused)} of {n_total} trainings "
            f"already done, {len(tasks)} to run"
        )
        others = sorted({o for led in ledgers.values() for o in led.other_fingerprints()} - set(folders))
        if others and not done:
            log(f"  (other folders for this dataset and protocol, not used: {', '.join(others)})")
    log(
        f"{len(tasks)} tasks to run ({len(names)} models x {len(folds)} folds x {settings.seeds} seeds "
        f"= {n_total}), "
        f"{settings.jobs} {'thread' if executor == 'threads' else 'process'}(es) x {threads} torch "
        f"thread(s), device {device}"
        + (f", time budget {settings.time_budget_s:.0f} s" if settings.time_budget_s else "")
    )
    return RunPlan(
        names=names,
        data_root=root,
        out_dir=out_dir,
        windows=windows,
        folds=folds,
        spec=spec,
        device=device,
        executor=executor,
        threads=threads,
        windows_sha256=windows_sha256,
        ledgers=ledgers,
        ledger_provenance=ledger_provenance,
        tasks=tasks,
        reused=reused,
        n_total=n_total,
    )
