"""Cross-subject benchmark harness: folds x seeds x models -> JSON + Markdown results.

The protocol (the WHAR Arena one: windows, subject-wise splits, trainer, epochs, patience,
seeds, validation subjects) is :mod:`components.benchmark.protocol`, its single source.

Every (model, fold, seed) is one *task*; tasks run in ``jobs`` spawned processes (each
with ``max(1, cpu_count // jobs)`` torch threads), or in-process when ``jobs == 1``. On
CUDA they run in ``jobs`` threads of this process instead: each training gets its own
CUDA stream and replays its step as a CUDA graph, so many small trainings share the GPU
concurrently (separate processes would only time-slice it). ``time_budget_s`` stops
starting tasks once it is spent (and cuts running trainings at 1.25x of it); tasks not
run are listed under ``skipped`` and make the run incomplete.
A failing task is recorded (``failures`` in the JSON, printed, non-zero exit of the
command), never dropped silently. Efficiency (parameters, MACs, ONNX size, batch-1
ONNX Runtime and torch latency) is measured in the main process after training, so
the timings are not disturbed by the training workers.

Results go to ``<out>/<dataset>-<protocol>.json`` and ``.md`` (atomic writes). Runs that
deviate from the full protocol (fewer epochs, other patience, a subset of subjects or
folds, overridden test/validation subjects) are marked ``"complete_protocol": false``
and written to ``<dataset>-<protocol>-smoke.json`` / ``.md`` instead.

Nothing here imports ZenML, MLflow, DVC or Great Expectations.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import platform
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from components.benchmark.ledger import Ledger, code_fingerprint, code_scope, fold_order
from components.benchmark.protocol import EPOCHS as FULL_EPOCHS
from components.benchmark.protocol import HOLDOUT_SUBJECTS as HOLDOUT_DEFAULTS
from components.benchmark.protocol import PATIENCE as FULL_PATIENCE
from components.benchmark.protocol import SEEDS, TIME_BUDGET_MIN, VAL_SHARE, WINDOW_LENGTH_S, WINDOW_OVERLAP
from components.benchmark.protocol import TRAINER as PROTOCOL_TRAINER
from components.benchmark.protocol import describe as describe_protocol
from components.benchmark.targets import check_targets, render_targets
from components.config import REPO_ROOT
from components.config import data_dir as default_data_dir
from components.data.splitting import Fold, SplitConfig, SplitError, apply_fold, make_folds
from components.data.versioning import data_version
from components.data.windows import WindowSet
from components.io_utils import atomic_write_text
from components.metrics import classification_metrics
from components.models.spec import InputSpec
from components.provenance import git_info

BASELINES = ("cmdhar", "tinyhar", "deepconvlstm", "cnn")
# CMD-HAR with one part removed, and with OGM-GE added (off by default since 2026-11-28)
ABLATIONS = (
    "cmdhar-no-disentangle",
    "cmdhar-with-modulation",
    "cmdhar-no-attention",
    "cmdhar-no-decomposition",
)
PROTOCOL_DESCRIPTION = describe_protocol()

PUBLISHED_REFERENCE: dict[str, Any] = {
    "source": "WHAR Arena, cross-subject (leave-subject-group-out) macro-F1",
    "metric": "macro_f1",
    "note": "published numbers for orientation only: different splits/seeds than this harness",
    "datasets": {
        "dsads": {
            "Random Forest": 0.893,
            "DynamicWHAR": 0.878,
            "CNN-HAR": 0.869,
            "TinyHAR": 0.868,
            "Attend-and-Discriminate": 0.862,
            "DeepConvLSTM": 0.820,
        },
        "usc-had": {"MLP-Mixer": 0.788, "TinyHAR": 0.781, "CNN-HAR": 0.762, "DeepConvLSTM": 0.735},
    },
}


@dataclass
class BenchmarkSettings:
    """What to run (the command line maps 1:1 onto this).

    Attributes:
        dataset: dataset folder under ``data_dir`` (imported first if missing).
        protocol: ``holdout`` or ``loso``.
        models: registry names to benchmark.
        ablations: also run the four ``cmdhar-no-*`` ablations.
        seeds: number of seeds (0 .. seeds-1) per fold and model.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (training only; latency is CPU).
        jobs: parallel worker processes.
        epochs: epoch cap (protocol: :data:`components.benchmark.protocol.EPOCHS`).
        patience: early-stopping patience (protocol: :data:`components.benchmark.protocol.PATIENCE`).
        subjects: restrict to these subject ids (smoke runs).
        folds: run only these folds: fold names (``loso-3``) or test-subject ids (``3``).
        test_subjects / val_subjects: holdout override (default per dataset).
        val_share: share of training subjects used for validation when not named.
        data_dir: data folder (default ``components.config.data_dir()``).
        out: results folder (default ``<repo>/benchmarks/results``).
        batch_size, lr, weight_decay: trainer settings of the protocol.
        modality_dropout: fusion-token dropout for CMD-HAR models (as ``configs/train.yaml``;
            what makes the missing-modality scores meaningful; ignored by the baselines).
        augment_rotation_deg / augment_gain_std: training-window sensor augmentation
            (:mod:`components.training.augment`), the same for every model.
        latency_runs: timed batch-1 calls per latency measurement (p50 over these).
        efficiency: measure params/MACs/ONNX/latency (off only to save time in tests).
        executor: ``processes``, ``threads`` or ``auto`` (threads on CUDA, else processes).
        time_budget_s: start no task after this many seconds of training (None: no limit).
        ledger: folder that keeps every finished training (:mod:`components.benchmark.ledger`);
            a later run with the same fingerprint trains only what is missing.
        hparams: model name -> constructor keyword arguments (e.g. ``{"cmdhar": {"d_model": 24}}``,
            parsed from ``--hparams cmdhar.d_model=24`` by :func:`parse_hparams`); recorded in the
            result and in that model's ledger fingerprint. Empty: every model at its defaults.
    """

    dataset: str = "dsads"
    protocol: str = "loso"
    models: list[str] = field(default_factory=lambda: list(BASELINES))
    ablations: bool = False
    seeds: int = SEEDS
    device: str = "auto"
    jobs: int = 1
    epochs: int = FULL_EPOCHS
    patience: int = FULL_PATIENCE
    subjects: list[str] | None = None
    folds: list[str] | None = None
    test_subjects: list[str] | None = None
    val_subjects: list[str] | None = None
    val_share: float = VAL_SHARE
    data_dir: Path | None = None
    out: Path | None = None
    batch_size: int = PROTOCOL_TRAINER["batch_size"]
    lr: float = PROTOCOL_TRAINER["lr"]
    weight_decay: float = PROTOCOL_TRAINER["weight_decay"]
    modality_dropout: float = PROTOCOL_TRAINER["modality_dropout"]
    augment_rotation_deg: float = PROTOCOL_TRAINER["augment_rotation_deg"]
    augment_gain_std: float = PROTOCOL_TRAINER["augment_gain_std"]
    latency_runs: int = 200
    efficiency: bool = True
    executor: str = "auto"
    time_budget_s: float | None = None
    ledger: Path | None = None
    hparams: dict[str, dict[str, Any]] = field(default_factory=dict)

    def model_names(self) -> list[str]:
        names = list(dict.fromkeys(self.models))
        if self.ablations:
            names += [a for a in ABLATIONS if a not in names]
        return names

    def trainer_settings(self) -> dict[str, float]:
        return {k: getattr(self, k) for k in PROTOCOL_TRAINER}

    def deviations(self) -> list[str]:
        """Why this run is not the full protocol (empty list = complete)."""
        out = []
        if self.epochs < FULL_EPOCHS:
            out.append(f"epochs capped at {self.epochs} (protocol: {FULL_EPOCHS})")
        if self.patience != FULL_PATIENCE:
            out.append(f"patience {self.patience} (protocol: {FULL_PATIENCE})")
        if self.subjects:
            out.append(f"subjects restricted to {self.subjects}")
        if self.folds:
            out.append(f"folds restricted to {self.folds}")
        if self.test_subjects or self.val_subjects:
            out.append(f"test/val subjects overridden ({self.test_subjects} / {self.val_subjects})")
        if self.trainer_settings() != PROTOCOL_TRAINER:
            out.append("trainer settings differ from the protocol")
        return out


# ---------------------------------------------------------------------------------
# provenance helpers
# ---------------------------------------------------------------------------------
def data_dvc_md5(repo: Path = REPO_ROOT) -> str | None:
    """The data version recorded in ``<repo>/data.dvc`` (read as YAML; DVC is not imported)."""
    return data_version(repo)


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


# ---------------------------------------------------------------------------------
# windows shared with the workers (uncompressed .npy, memory-mapped)
# ---------------------------------------------------------------------------------
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


def run_task(task: dict[str, Any]) -> dict[str, Any]:
    """Train and test one (model, fold, seed); returns a JSON-able record (``error`` on failure)."""
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
        windows = _load_windows(task["windows_dir"])
        fold = Fold(**task["fold"])
        split = apply_fold(windows, fold)
        train, val, test = split.standardized()
        if len(val) == 0:
            raise ValueError(f"fold {fold.name} has no validation windows (too few subjects?)")
        spec = InputSpec.from_windows(train)
        seed_everything(task["seed"])  # weight init happens outside train_model
        model = build_model(task["model"], spec, **task.get("hparams", {}))
        cfg = TrainConfig(
            lr=task["lr"],
            weight_decay=task["weight_decay"],
            epochs=task["epochs"],
            batch_size=task["batch_size"],
            patience=task["patience"],
            seed=task["seed"],
            modality_dropout=task["modality_dropout"],
            augment_rotation_deg=task["augment_rotation_deg"],
            augment_gain_std=task["augment_gain_std"],
            device=task["device"],
            progress=False,
            deadline=task.get("deadline"),
            time_budget_min=TIME_BUDGET_MIN,
        )
        result = train_model(model, train, val, cfg, split.standardizer)
        probs = predict(model, test.x)
        m = classification_metrics(test.y, probs.argmax(1), test.n_classes, test.label_names)
        record["metrics"] = {
            k: m[k] for k in ("macro_f1", "accuracy", "balanced_accuracy", "gmean", "per_class_f1", "n")
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
        if result.cuda_graph_error:
            record["cuda_graph_error"] = result.cuda_graph_error
        if result.stopped_by == "deadline":
            record["truncated"] = f"stopped by the time budget after {result.epochs_run} epochs"
    except Exception as exc:  # noqa: BLE001 - reported by the caller, never dropped
        record["error"] = f"{type(exc).__name__}: {exc}"
        record["traceback"] = traceback.format_exc()[-4000:]
    record["seconds"] = time.time() - t0
    return record


# ---------------------------------------------------------------------------------
# aggregation and reports
# ---------------------------------------------------------------------------------
def _mean_std(values: list[float]) -> tuple[float | None, float | None]:
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
        mean, std = _mean_std([r["metrics"][key] for r in ok])
        out[f"{key}_mean"], out[f"{key}_std"] = mean, std
    out["train_seconds_mean"] = _mean_std([r["train_seconds"] for r in ok])[0]
    out["epochs_run_mean"] = _mean_std([r["epochs_run"] for r in ok])[0]
    out["per_class_f1_mean"] = _per_class_mean([r["metrics"] for r in ok])
    missing = [r["missing_modality_macro_f1"] for r in ok if "missing_modality_macro_f1" in r]
    if missing:
        out["missing_modality_macro_f1_mean"] = {g: _mean_std([mm[g] for mm in missing])[0] for g in missing[0]}
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


def _per_class_mean(metrics: list[dict[str, Any]]) -> dict[str, float]:
    """Class name -> F1 averaged over the runs whose test subjects have that class."""
    sums: dict[str, list[float]] = {}
    for m in metrics:
        if "per_class_f1" not in m or "label_names" not in m:
            continue
        present = m.get("present") or [True] * len(m["label_names"])
        for name, f1, here in zip(m["label_names"], m["per_class_f1"], present, strict=True):
            if here:
                sums.setdefault(name, []).append(f1)
    return {name: sum(v) / len(v) for name, v in sums.items()}


def _fold_key(fold: str, seed: int, seeds: int) -> str:
    short = fold.removeprefix("loso-")
    return short if seeds == 1 else f"{short}/s{seed}"


def _per_fold_f1(result: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Model -> fold label (test subject, ``/s<seed>`` with several seeds) -> test macro-F1."""
    seeds = result["settings"]["seeds"]
    return {
        n: {_fold_key(r["fold"], r["seed"], seeds): r["metrics"]["macro_f1"] for r in m["per_fold"]}
        for n, m in result["models"].items()
    }


def _per_fold_table(result: dict[str, Any]) -> list[str]:
    """Markdown: test macro-F1 of every model on every fold (and seed)."""
    cells = _per_fold_f1(result)
    cols = sorted({k for c in cells.values() for k in c}, key=fold_order)
    if len(cols) < 2:
        return []
    lines = ["", "Test macro-F1 per fold (column = test subject):", ""]
    lines += ["| model | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]
    for n, c in cells.items():
        lines.append(f"| {n} | " + " | ".join(_fmt(c.get(k)) for k in cols) + " |")
    return lines


def _per_class_table(result: dict[str, Any]) -> list[str]:
    """Markdown: per-class F1 (mean over folds), one column per model."""
    models = {n: m["per_class_f1_mean"] for n, m in result["models"].items() if m.get("per_class_f1_mean")}
    if not models:
        return []
    classes = list(next(iter(models.values())))
    lines = ["", "Per-class F1, mean over folds:", ""]
    lines += ["| class | " + " | ".join(models) + " |", "|---|" + "---:|" * len(models)]
    for c in classes:
        lines.append(f"| {c} | " + " | ".join(_fmt(pc.get(c)) for pc in models.values()) + " |")
    return lines


def write_summary_plot(result: dict[str, Any], path: Path) -> Path | None:
    """``<stem>.png``: per-fold macro-F1 and the per-class heatmap; None without matplotlib
    (a bare GPU box) or without finished runs."""
    try:
        from components.evaluation.plots import plot_benchmark_summary
    except ImportError:
        return None
    per_fold = {n: f1 for n, f1 in _per_fold_f1(result).items() if f1}
    if not per_fold:
        return None
    per_class = {n: result["models"][n].get("per_class_f1_mean") or {} for n in per_fold}
    ref = result["published_reference"]["datasets"].get(result["data"]["dataset"])
    title = f"{result['data']['dataset']} / {result['protocol']['name']}" + (
        "" if result["complete_protocol"] else " (smoke / partial)"
    )
    plot_benchmark_summary(per_fold, per_class, title=title, reference=ref, path=path)
    return path


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def render_markdown(result: dict[str, Any]) -> str:
    """The Markdown report written beside the JSON."""
    s = result["settings"]
    lines = [f"# Benchmark: {result['data']['dataset']} / {result['protocol']['name']}", ""]
    if not result["complete_protocol"]:
        lines += [
            "> **SMOKE / PARTIAL RUN - not comparable with published results.**",
            "> " + "; ".join(result["deviations"]),
            "",
        ]
    lines += [
        f"- folds: {len(result['protocol']['folds'])}, seeds: {s['seeds']}, epochs cap: {s['epochs']}, "
        f"patience: {s['patience']}, device: {s['device']}, jobs: {s['jobs']}",
        f"- git: `{result['git'].get('commit')}`{' (dirty)' if result['git'].get('dirty') else ''}; "
        f"data.dvc md5: `{result['data'].get('data_dvc_md5')}`; windows sha256: "
        f"`{(result['data'].get('windows_sha256') or '')[:16]}`",
        f"- environment: Python {result['environment']['python']}, torch {result['environment']['torch']}, "
        f"CPU {result['environment']['cpu']}, GPU {result['environment']['gpu'] or '-'}",
    ]
    if result.get("ledger"):
        led = result["ledger"]
        lines.append(
            f"- resumed from the ledger `{led['root']}` ({', '.join(Path(d).name for d in led['dirs'])}): "
            f"{led['reused']} trainings from earlier runs (each record names its own commit and machine), "
            f"{led['ran']} run now"
        )
    lines += [
        "",
        "| model | macro-F1 | ± std | accuracy | balanced acc. | G-mean | params | MACs/window "
        "| ONNX KiB | ORT p50 ms | torch p50 ms | train s/run |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, m in result["models"].items():
        size = m.get("onnx_size_bytes")
        label = name + (" (" + ", ".join(f"{k}={v}" for k, v in m["hparams"].items()) + ")" if m.get("hparams") else "")
        lines.append(
            f"| {label} | {_fmt(m['macro_f1_mean'])} | {_fmt(m['macro_f1_std'])} | {_fmt(m['accuracy_mean'])} "
            f"| {_fmt(m['balanced_accuracy_mean'])} | {_fmt(m['gmean_mean'])} | {_fmt(m.get('params'))} "
            f"| {_fmt(m.get('macs_per_window'))} | {_fmt(size / 1024 if size else None, 1)} "
            f"| {_fmt(m.get('latency_ms_p50'))} | {_fmt(m.get('latency_ms_p50_torch'))} "
            f"| {_fmt(m.get('train_seconds_mean'), 1)} |"
        )
    miss = {
        n: m["missing_modality_macro_f1_mean"]
        for n, m in result["models"].items()
        if m.get("missing_modality_macro_f1_mean")
    }
    if miss:
        groups = list(next(iter(miss.values())))
        lines += ["", "Macro-F1 with one modality removed (`modality_mask`):", ""]
        lines += ["| model | " + " | ".join(f"no {g}" for g in groups) + " |", "|---|" + "---:|" * len(groups)]
        for n, mm in miss.items():
            lines.append(f"| {n} | " + " | ".join(_fmt(mm.get(g)) for g in groups) + " |")
    lines += render_targets(result.get("targets") or [])
    lines += _per_fold_table(result)
    if result.get("plot"):
        lines += ["", f"![per-fold and per-class F1]({result['plot']})"]
    lines += _per_class_table(result)
    ref = result["published_reference"]["datasets"].get(result["data"]["dataset"])
    if ref:
        lines += ["", f"Published reference ({result['published_reference']['source']}; different splits):", ""]
        lines += ["| model | macro-F1 |", "|---|---:|"] + [f"| {k} | {v:.3f} |" for k, v in ref.items()]
    if result["failures"]:
        lines += ["", "## Failed tasks", ""]
        lines += [f"- {f['model']} / {f['fold']} / seed {f['seed']}: {f['error']}" for f in result["failures"]]
    if result.get("skipped") or result.get("truncated"):
        lines += ["", "## Not run or cut short (time budget)", ""]
        lines += [f"- not run: {t['model']} / {t['fold']} / seed {t['seed']}" for t in result.get("skipped", [])]
        lines += [f"- cut short: {t['model']} / {t['fold']} / seed {t['seed']}" for t in result.get("truncated", [])]
    lines += ["", f"Protocol: {result['protocol']['description']}", ""]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------
# the run
# ---------------------------------------------------------------------------------
def parse_hparams(text: str | None) -> dict[str, dict[str, Any]]:
    """``"cmdhar.d_model=24,cmdhar.n_heads=2,tinyhar.filter_num=16"`` -> ``{model: {key: value}}``.

    Values are read as JSON where they parse (``24`` -> int, ``true`` -> bool, ``0.5`` -> float),
    else kept as strings. Raises ``ValueError`` on an item that is not ``MODEL.KEY=VALUE``.
    """
    out: dict[str, dict[str, Any]] = {}
    for item in (text or "").split(","):
        item = item.strip()
        if not item:
            continue
        target, sep, raw = (part.strip() for part in item.partition("="))
        model, dot, key = (part.strip() for part in target.rpartition("."))
        if not sep or not dot or not model or not key or not raw:
            raise ValueError(f"--hparams item {item!r} is not MODEL.KEY=VALUE (e.g. cmdhar.d_model=24)")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        out.setdefault(model, {})[key] = value
    return out


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
        led = Ledger(Path(settings.ledger), settings.dataset, settings.protocol, fingerprint)
        ledgers[n] = by_digest.setdefault(led.digest, led)
    done = {
        key: rec
        for led in by_digest.values()
        for key, rec in led.load(folds).items()
        if ledgers.get(key[0]) is led  # a record counts only in its own model's folder
    }
    return ledgers, done


def run_benchmark(
    settings: BenchmarkSettings,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> tuple[dict[str, Any], Path]:
    """Run the benchmark; returns ``(result dict, path of the JSON written)``."""
    import torch  # torch and pyarrow-backed windowing load here: the CLI imports this module

    from components.data.windowing import WindowConfig, window_dataset
    from components.models.registry import MODEL_NAMES, build_model

    t_start = time.time()
    names = settings.model_names()
    unknown = [n for n in names if n not in MODEL_NAMES]
    if unknown:
        raise ValueError(f"unknown models {unknown}; known: {', '.join(MODEL_NAMES)}")
    not_run = sorted(set(settings.hparams) - set(names))
    if not_run:
        raise ValueError(f"--hparams names models that this run does not train: {not_run} (models: {names})")
    if settings.seeds < 1 or settings.jobs < 1:
        raise ValueError("seeds and jobs must be >= 1")
    root = Path(settings.data_dir) if settings.data_dir else default_data_dir()
    out_dir = Path(settings.out) if settings.out else REPO_ROOT / "benchmarks" / "results"
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
    folds = _resolve_folds(settings, windows.subjects)
    spec = InputSpec.from_windows(windows)
    for n, hp in settings.hparams.items():  # a misspelt argument fails here, not in every task
        try:
            build_model(n, spec, **hp)
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
    done: dict[tuple[str, str, int], dict[str, Any]] = {}
    if settings.ledger:
        ledgers, done = _open_ledgers(settings, names, windows_sha256, folds)
        ledger_provenance = {"git": git_info(), "environment": environment_info(device)}
    t_train = time.time()
    start_deadline = t_train + settings.time_budget_s if settings.time_budget_s else None
    deadline = t_train + 1.25 * settings.time_budget_s if settings.time_budget_s else None

    failures: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    truncated: list[dict[str, Any]] = []
    records: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    with tempfile.TemporaryDirectory(prefix="har-bench-") as tmp:
        windows_dir = str(_save_windows(windows, Path(tmp) / "windows"))
        tasks = [
            {
                "model": n,
                "hparams": settings.hparams.get(n, {}),
                "fold": asdict(f),
                "seed": seed,
                "windows_dir": windows_dir,
                "epochs": settings.epochs,
                "patience": settings.patience,
                "batch_size": settings.batch_size,
                "lr": settings.lr,
                "weight_decay": settings.weight_decay,
                "modality_dropout": settings.modality_dropout,
                "augment_rotation_deg": settings.augment_rotation_deg,
                "augment_gain_std": settings.augment_gain_std,
                "device": device,
                "threads": threads,
                "start_deadline": start_deadline,
                "deadline": deadline,
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
        for rec in reused:
            records[rec["model"]].append({**rec, "from_ledger": True})
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
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(tasks), desc="benchmark", unit="task")

        def collect(rec: dict[str, Any]) -> None:
            records[rec["model"]].append(rec)
            if rec["model"] in ledgers:
                ledgers[rec["model"]].save(rec, ledger_provenance)
            key = {k: rec.get(k) for k in ("model", "fold", "seed")}
            if "skipped" in rec:
                skipped.append(key)
            if "truncated" in rec:
                truncated.append({**key, "reason": rec["truncated"]})
            if "error" in rec:
                failures.append({k: rec.get(k) for k in ("model", "fold", "seed", "error", "traceback")})
                log(f"FAILED {rec['model']} / {rec['fold']} / seed {rec['seed']}: {rec['error']}")
            if bar is None and "metrics" in rec:
                log(
                    f"done {rec['model']} {rec['fold']} seed {rec['seed']}: macro-F1 {rec['metrics']['macro_f1']:.3f}, "
                    f"{rec['epochs_run']} epochs, {rec['train_seconds']:.0f} s, cuda graph {rec.get('cuda_graph')}"
                    + (f" ({rec['cuda_graph_error']})" if rec.get("cuda_graph_error") else "")
                    + (" - cut by the time budget, not kept" if "truncated" in rec else "")
                )
            if bar is not None:
                bar.update(1)
                if "metrics" in rec:
                    bar.set_postfix_str(f"{rec['model']} {rec['fold']} F1={rec['metrics']['macro_f1']:.3f}")

        try:
            if executor == "threads" and settings.jobs > 1:
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
                    max_workers=settings.jobs, mp_context=ctx, initializer=_init_worker, initargs=(threads,)
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

    # efficiency: main process, after training (no competing workers), 1 thread, every model's
    # latency timed in the same interleaved rounds so the ratios between them hold
    effs: dict[str, dict[str, Any]] = {}
    if settings.efficiency:
        from components.benchmark.efficiency import LATENCY_ROUNDS, efficiency_reports

        built = {}
        for n in names:
            torch.manual_seed(0)
            built[n] = build_model(n, spec, **settings.hparams.get(n, {}))
        with _EFFICIENCY_LOCK:  # one measurement at a time per process (clean timings; one exporter)
            effs = efficiency_reports(built, spec, runs=settings.latency_runs, rounds=LATENCY_ROUNDS)
    models_out: dict[str, Any] = {n: aggregate(n, records[n], effs.get(n)) for n in names}
    for n, hp in settings.hparams.items():  # every n is in names (checked above)
        if hp:
            models_out[n]["hparams"] = dict(hp)

    deviations = settings.deviations()
    if skipped:
        deviations.append(f"time budget: {len(skipped)} of {n_total} tasks not run")
    if truncated:
        deviations.append(f"time budget: {len(truncated)} trainings cut short (left out of the means)")
    complete = not deviations
    result: dict[str, Any] = {
        "complete_protocol": complete,
        "deviations": deviations,
        "models": models_out,
        "protocol": {
            "name": settings.protocol,
            "description": PROTOCOL_DESCRIPTION,
            "window_s": WINDOW_LENGTH_S,
            "overlap": WINDOW_OVERLAP,
            "folds": [asdict(f) for f in folds],
        },
        "settings": {
            "models": names,
            "ablations": settings.ablations,
            "epochs": settings.epochs,
            "patience": settings.patience,
            "seeds": settings.seeds,
            "device": device,
            "jobs": settings.jobs,
            "executor": executor,
            "threads_per_job": threads,
            "time_budget_s": settings.time_budget_s,
            "batch_size": settings.batch_size,
            "lr": settings.lr,
            "weight_decay": settings.weight_decay,
            "val_share": settings.val_share,
            "modality_dropout": settings.modality_dropout,
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
            "data_dir": str(root),
            "data_dvc_md5": data_dvc_md5(),
            "windows_sha256": windows_sha256,
            "n_windows": len(windows),
            "subjects": windows.subjects,
            "n_classes": windows.n_classes,
            "n_channels": windows.n_channels,
            "window_len": windows.window_len,
            "sampling_rate_hz": windows.sampling_rate_hz,
            "modality_groups": {k: list(v) for k, v in windows.modality_groups.items()},
        },
        "environment": environment_info(device),
        "published_reference": PUBLISHED_REFERENCE,
        "failures": failures,
        "skipped": skipped,
        "truncated": truncated,
        "ledger": None
        if not ledgers
        else {
            "root": str(settings.ledger),
            "dirs": sorted({str(led.dir) for led in ledgers.values()}),
            "fingerprint_sha256": {n: led.digest for n, led in ledgers.items()},
            "reused": len(reused),
            "ran": len(tasks),
        },
        "created_unix": time.time(),
        "duration_s": time.time() - t_start,
        "command": " ".join(sys.argv),
    }
    stem = f"{settings.dataset}-{settings.protocol}" + ("" if complete else "-smoke")
    json_path = out_dir / f"{stem}.json"
    result["targets"] = check_targets(result)
    plot = write_summary_plot(result, out_dir / f"{stem}.png")
    result["plot"] = plot.name if plot else None
    atomic_write_text(json_path, json.dumps(result, indent=2, default=str))
    atomic_write_text(out_dir / f"{stem}.md", render_markdown(result))
    return result, json_path
