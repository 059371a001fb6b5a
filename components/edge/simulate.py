"""Wearable deployment simulation: replay held-out recordings as a live sensor stream.

Samples arrive in sensor-FIFO chunks, enter a ring buffer, and one window is classified
every hop by the int8 model under an edge profile (``configs/edge/*.yaml``: 1 thread,
memory arena off, a latency slowdown factor, RAM/flash budgets, smoothing). Replay runs
at real time (``speed: 1``), faster (``speed: 10``) or as fast as possible (``speed: 0``);
only the sleeping differs, the windows and arithmetic are the same.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from components.config import REPO_ROOT
from components.data.manifest import Manifest
from components.data.recordings import list_recordings, read_meta, read_recording
from components.metrics import classification_metrics
from har_runtime.runtime import Classifier, StreamingClassifier

PROFILES_DIR = REPO_ROOT / "configs" / "edge"
# defaults of configs/train.yaml's ``edge:`` (tests/unit/test_config_defaults.py keeps them equal)
DEFAULT_PROFILES = ("phone", "mcu")
DEFAULT_MAX_RECORDINGS = None  # every test recording
DEFAULT_MAX_SECONDS = 60.0  # the first minute of each


@dataclass(frozen=True)
class EdgeProfile:
    """An edge device class (see ``configs/edge/*.yaml`` for the documented values)."""

    name: str
    description: str = ""
    threads: int = 1
    memory_arena: bool = False
    slowdown: float = 1.0
    ram_budget_bytes: int = 32 * 2**20
    flash_budget_bytes: int = 4 * 2**20
    smoothing: int = 1
    speed: float = 0.0
    chunk_samples: int = 1


def list_profiles() -> list[str]:
    return sorted(p.stem for p in PROFILES_DIR.glob("*.yaml"))


def load_profile(name_or_path: str | Path) -> EdgeProfile:
    """A profile by name (``configs/edge/<name>.yaml``) or path; unknown keys are an error."""
    path = Path(name_or_path)
    if not path.suffix:
        path = PROFILES_DIR / f"{name_or_path}.yaml"
    if not path.exists():
        raise FileNotFoundError(f"edge profile {name_or_path!r} not found; available: {', '.join(list_profiles())}")
    values = yaml.safe_load(path.read_text()) or {}
    known = set(EdgeProfile.__dataclass_fields__)
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{path}: unknown profile keys {unknown}; allowed: {sorted(known)}")
    profile = EdgeProfile(**values)
    if profile.threads < 1 or profile.slowdown <= 0 or profile.smoothing < 1 or profile.chunk_samples < 1:
        raise ValueError(f"{path}: threads, slowdown, smoothing and chunk_samples must be positive")
    return profile


@dataclass
class Stream:
    """One held-out recording to replay."""

    recording_id: str
    values: np.ndarray  # (n, channels) raw, manifest order
    labels: np.ndarray  # (n,) object: str or None
    rate_hz: float


def load_streams(
    dataset_dir: Path, subjects: list[str], limit: int | None = None, max_seconds: float | None = None
) -> list[Stream]:
    """Recordings of ``subjects`` (sorted by id), optionally only the first ``limit``, cut to ``max_seconds``."""
    manifest = Manifest.load(dataset_dir)
    paths = [p for p in list_recordings(dataset_dir) if read_meta(p).subject in set(subjects)]
    if not paths:
        raise FileNotFoundError(f"{dataset_dir}: no recordings of subject(s) {subjects}")
    streams = []
    for p in paths[:limit]:
        rec = read_recording(p, manifest)
        n = len(rec.t) if max_seconds is None else min(len(rec.t), int(max_seconds * manifest.sampling_rate_hz))
        streams.append(Stream(rec.meta.recording_id, rec.values[:n], rec.labels[:n], manifest.sampling_rate_hz))
    return streams


def activation_bytes(int8_path: Path) -> int:
    """Peak bytes of live intermediate tensors for one window (weights excluded: they sit in flash).

    Shapes come from ONNX shape inference at batch 1; tensors are freed after their last
    consumer, as a static-arena MCU runtime would plan them.
    """
    import onnx

    model = onnx.load(str(int8_path))
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1
    model = onnx.shape_inference.infer_shapes(model)
    g = model.graph
    sizes: dict[str, int] = {}
    for v in [*g.value_info, *g.input, *g.output]:
        t = v.type.tensor_type
        dims = [d.dim_value for d in t.shape.dim]
        if dims and all(d > 0 for d in dims):
            itemsize = onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).itemsize
            sizes[v.name] = int(np.prod(dims)) * itemsize
    inits = {i.name for i in g.initializer}
    last_use: dict[str, int] = {}
    for i, node in enumerate(g.node):
        for name in node.input:
            last_use[name] = i
    live = {g.input[0].name}
    peak = sum(sizes.get(n, 0) for n in live)
    for i, node in enumerate(g.node):
        live |= {o for o in node.output if o}
        peak = max(peak, sum(sizes.get(n, 0) for n in live if n not in inits))
        live = {n for n in live if last_use.get(n, -1) > i or n in {o.name for o in g.output}}
    return int(peak)


@dataclass
class SimulationResult:
    """Per-window records and the summary report."""

    report: dict[str, Any]
    t_end: np.ndarray = field(repr=False)  # window end (s, on the concatenated timeline)
    y_true: np.ndarray = field(repr=False)  # -1: not scorable (unlabeled / unknown label)
    y_pred: np.ndarray = field(repr=False)  # smoothed prediction
    boundaries: list[float] = field(default_factory=list)  # recording starts on the timeline
    label_names: list[str] = field(default_factory=list)


def _rss() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # not Linux: fall back to psutil when present
        import psutil

        return int(psutil.Process().memory_info().rss)


def simulate(bundle_dir: Path, streams: list[Stream], profile: EdgeProfile, progress: bool = True) -> SimulationResult:
    """Replay ``streams`` through the bundle's int8 model under ``profile``."""
    from tqdm.auto import tqdm

    bundle_dir = Path(bundle_dir)
    rss0 = _rss()
    clf = Classifier.from_folder(bundle_dir, threads=profile.threads, arena=profile.memory_arena)
    label_index = {name: i for i, name in enumerate(clf.label_names)}
    deadline_ms = clf.hop / clf.rate_hz * 1000
    lat, t_end, y_true, y_pred, y_raw, boundaries = [], [], [], [], [], []
    peak_rss, offset_s, wall0 = _rss(), 0.0, time.perf_counter()
    for s in streams:
        if abs(s.rate_hz - clf.rate_hz) > 0.02 * clf.rate_hz:
            raise ValueError(f"{s.recording_id}: recorded at {s.rate_hz:g} Hz, the model takes {clf.rate_hz:g} Hz")
        boundaries.append(offset_s)
        stream = StreamingClassifier(clf, smoothing=profile.smoothing)
        start = time.perf_counter()
        chunks = range(0, len(s.values), profile.chunk_samples)
        for i in tqdm(chunks, desc=f"replay {s.recording_id}", unit="chunk", disable=not progress, leave=False):
            end = min(i + profile.chunk_samples, len(s.values))
            if profile.speed > 0:  # wait until the chunk's last sample "happens"
                due = start + end / s.rate_hz / profile.speed
                time.sleep(max(0.0, due - time.perf_counter()))
            for e in stream.push(s.values[i:end]):
                lat.append(e.seconds * 1000 * profile.slowdown)
                window_labels = [x for x in s.labels[e.end - clf.window_len : e.end]]
                y_true.append(_majority(window_labels, label_index))
                y_pred.append(e.smoothed)
                y_raw.append(e.label)
                t_end.append(offset_s + e.end / s.rate_hz)
                peak_rss = max(peak_rss, _rss())
        offset_s += len(s.values) / s.rate_hz
    wall = time.perf_counter() - wall0
    report = _report(clf, profile, bundle_dir, streams, lat, y_true, y_pred, y_raw, deadline_ms, offset_s, wall)
    report["peak_rss_delta_bytes"] = int(peak_rss - rss0)
    return SimulationResult(
        report, np.array(t_end), np.array(y_true), np.array(y_pred), boundaries, list(clf.label_names)
    )


def _majority(labels: list, index: dict[str, int]) -> int:
    """The window's true label as training windows define it (majority; unlabeled/unknown -> -1)."""
    values, counts = np.unique(np.array([x if x is not None else "" for x in labels], dtype=object), return_counts=True)
    top = values[counts.argmax()]
    return index.get(top, -1) if top != "" else -1


def _report(clf, profile, bundle_dir, streams, lat, y_true, y_pred, y_raw, deadline_ms, seconds, wall) -> dict:
    lat = np.asarray(lat)
    y_true, y_pred, y_raw = map(np.asarray, (y_true, y_pred, y_raw))
    scored = y_true >= 0
    n = len(clf.label_names)
    smoothed = classification_metrics(y_true[scored], y_pred[scored], n, clf.label_names)
    raw = classification_metrics(y_true[scored], y_raw[scored], n, clf.label_names)
    model_bytes = clf.model_path.stat().st_size
    act = activation_bytes(clf.model_path)
    ring = clf.window_len * len(clf.channel_names) * 4
    p50, p95, p99 = np.percentile(lat, [50, 95, 99]) if len(lat) else (float("nan"),) * 3
    return {
        "profile": asdict(profile),
        "bundle": str(bundle_dir),
        "model_version": clf.version,
        "recordings": [s.recording_id for s in streams],
        "stream_seconds": round(seconds, 3),
        "replay_wall_seconds": round(wall, 3),
        "windows": int(len(lat)),
        "scored_windows": int(scored.sum()),
        "latency_ms_p50": float(p50),
        "latency_ms_p95": float(p95),
        "latency_ms_p99": float(p99),
        "latency_ms_max": float(lat.max()) if len(lat) else float("nan"),
        "deadline_ms": deadline_ms,
        "deadline_misses": int((lat > deadline_ms).sum()),
        "model_bytes": int(model_bytes),
        "flash_budget_bytes": profile.flash_budget_bytes,
        "fits_flash": bool(model_bytes <= profile.flash_budget_bytes),
        "activation_bytes": act,
        "ring_buffer_bytes": ring,
        "ram_estimate_bytes": act + ring,
        "ram_budget_bytes": profile.ram_budget_bytes,
        "fits_ram": bool(act + ring <= profile.ram_budget_bytes),
        "streaming_accuracy": smoothed["accuracy"],
        "streaming_macro_f1": smoothed["macro_f1"],
        "streaming_accuracy_unsmoothed": raw["accuracy"],
        "streaming_macro_f1_unsmoothed": raw["macro_f1"],
    }


def plot_timeline(result: SimulationResult, path: Path) -> Path:
    """Predicted (smoothed) vs true activity over the replayed timeline -> PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = result.label_names
    fig, ax = plt.subplots(figsize=(12, max(3.0, 0.28 * len(names) + 1.5)))
    t = result.t_end / 60
    scored = result.y_true >= 0
    ax.step(t[scored], result.y_true[scored], where="post", lw=2.5, color="0.6", label="true")
    ax.step(t, result.y_pred, where="post", lw=1.0, color="C3", label="predicted (smoothed)")
    for b in result.boundaries[1:]:
        ax.axvline(b / 60, color="0.85", lw=0.8, zorder=0)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.set_xlabel("stream time (min); grey lines: recording boundaries")
    r = result.report
    ax.set_title(
        f"{r['model_version']} on {r['profile']['name']}: macro-F1 {r['streaming_macro_f1']:.3f}, "
        f"p99 {r['latency_ms_p99']:.2f} ms, {r['deadline_misses']} deadline misses",
        fontsize=9,
    )
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
