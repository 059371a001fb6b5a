"""Run an exported model on raw sensor data: input checks, batch classification, streaming.

The ONNX graph contains the training-split standardisation, so callers pass raw sensor
units. Everything the caller must match (channel order, window length, hop, sampling
rate, labels) comes from ``preprocessing.json`` next to the model, never from guesses.
Every bad input raises :class:`InputError` with a message that names the problem.
"""

from __future__ import annotations

import binascii
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

INT8_FILE, FP32_FILE = "model.int8.onnx", "model.onnx"
PREPROCESSING_FILE, MANIFEST_FILE, PARITY_FILE = "preprocessing.json", "manifest.json", "parity.npz"
MODEL_FILES = {"int8": INT8_FILE, "fp32": FP32_FILE}  # precision -> file in the bundle
RATE_TOLERANCE = 0.02  # a stream's stated rate may differ this much from the model's (as in validation)


class InputError(ValueError):
    """The caller's input cannot be classified; the message says why."""


class RangeError(InputError):
    """Well-formed input with a value outside its channel's physical range (HTTP 422)."""


@dataclass(frozen=True)
class Limits:
    """Request limits (the service's config; also guards memory)."""

    max_windows: int = 256  # per classify request
    max_samples: int = 60_000  # per classify_stream chunk (40 min at 25 Hz)
    max_smoothing: int = 50


def session(path: Path | str, threads: int = 1, arena: bool = True):
    """An ONNX Runtime CPU session (sequential, ``threads`` intra-op threads)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.enable_cpu_mem_arena = arena
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def faster_precision(seconds: dict[str, float]) -> str:
    """The precision with the smallest measured time; a tie goes to int8 (the edge model)."""
    if not seconds:
        raise ValueError("no timings to choose a precision from")
    return min(sorted(seconds), key=lambda p: (seconds[p], p != "int8"))


def time_classifiers(
    classifiers: dict[str, Classifier], x: np.ndarray, repeats: int = 20, timer=None
) -> dict[str, float]:
    """Median seconds per window of each classifier on the windows ``x`` (one batch per call).

    Every classifier runs once to warm up, then the calls alternate between them (so a load
    spike hits both alike); ``timer`` defaults to :func:`time.perf_counter`.
    """
    import time

    timer = timer or time.perf_counter
    x = np.ascontiguousarray(x, np.float32)
    for clf in classifiers.values():
        clf.logits(x)
    samples: dict[str, list[float]] = {name: [] for name in classifiers}
    for r in range(repeats):
        names = list(classifiers) if r % 2 == 0 else list(reversed(classifiers))
        for name in names:
            t0 = timer()
            classifiers[name].logits(x)
            samples[name].append((timer() - t0) / len(x))
    return {name: float(np.median(v)) for name, v in samples.items()}


def parity_windows(folder: Path | str) -> np.ndarray:
    """The real test windows the bundle stores for its parity check (raw units)."""
    with np.load(Path(folder) / PARITY_FILE, allow_pickle=False) as z:
        return np.ascontiguousarray(z["x"], np.float32)


# The compact encoding: ``{"b64": base64 of the C-order little-endian bytes, "shape": [...], "dtype": ...}``.
# ~1.6x smaller than float32 JSON text and decoded with no per-number work (benchmarks/serving.py).
ENCODED_KEYS = frozenset({"b64", "shape", "dtype"})
ENCODED_DTYPES = {"float32": np.dtype("<f4"), "float64": np.dtype("<f8")}


def encode_b64(x: np.ndarray) -> dict[str, Any]:
    """A float32 array -> the compact form a client sends (the inverse of :func:`decode_b64`)."""
    import base64

    a = np.ascontiguousarray(x, dtype="<f4")
    return {"b64": base64.b64encode(a.tobytes()).decode("ascii"), "shape": list(a.shape), "dtype": "float32"}


def decode_b64(obj: dict[str, Any], what: str, ndim: int) -> np.ndarray:
    """``{"b64", "shape", "dtype"}`` -> array, checking that the three agree (InputError naming the problem)."""
    missing, unknown = sorted(ENCODED_KEYS - set(obj)), sorted(set(obj) - ENCODED_KEYS)
    if missing or unknown:
        raise InputError(
            f"{what}: the base64 form takes exactly 'b64', 'shape' and 'dtype'; missing {missing}, unknown {unknown}"
        )
    data, shape, dtype = obj["b64"], obj["shape"], obj["dtype"]
    if not isinstance(data, str):
        raise InputError(f"{what}.b64 must be a base64 string, got {type(data).__name__}")
    if not isinstance(dtype, str) or dtype not in ENCODED_DTYPES:  # a list or dict would not even hash
        raise InputError(f"{what}.dtype must be one of {sorted(ENCODED_DTYPES)} (little-endian), got {dtype!r}")
    if (
        not isinstance(shape, list)
        or len(shape) != ndim
        or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape)
    ):
        raise InputError(f"{what}.shape must be a list of {ndim} non-negative integers, got {shape!r}")
    try:
        raw = binascii.a2b_base64(data, strict_mode=True)
    except (binascii.Error, ValueError) as e:
        raise InputError(f"{what}.b64 is not valid base64 ({e})") from None
    item = ENCODED_DTYPES[dtype]
    expected = math.prod(shape) * item.itemsize
    if len(raw) != expected:
        raise InputError(f"{what}.b64 holds {len(raw)} bytes, but shape {shape} of {dtype} needs {expected} bytes")
    return np.frombuffer(raw, dtype=item).reshape(shape)


def _as_float_array(values: Any, what: str, ndim: int) -> np.ndarray:
    """Nested lists / arrays of real numbers, or the base64 form -> float32 array (booleans, strings, ragged: error)."""
    if isinstance(values, dict):
        arr = decode_b64(values, what, ndim)
    elif isinstance(values, np.ndarray):
        arr = values
    else:
        try:
            arr = np.asarray(values)
        except (ValueError, TypeError) as e:  # ragged nesting
            raise InputError(f"{what} must be a rectangular array of numbers ({e})") from None
    if arr.dtype == object or arr.dtype.kind not in "iuf":
        kind = {"b": "booleans", "U": "strings", "S": "bytes", "O": "mixed or ragged values"}.get(arr.dtype.kind)
        raise InputError(f"{what} must contain numbers only, got {kind or arr.dtype}")
    with np.errstate(over="ignore"):
        out = arr.astype(np.float32)
    bad = ~np.isfinite(out)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise InputError(
            f"{what} contains {int(bad.sum())} non-finite value(s) (NaN, Inf or beyond float32), first at index {idx}"
        )
    return out


class Classifier:
    """An ONNX model (raw windows in, logits out) plus its preprocessing metadata."""

    def __init__(
        self,
        model_path: Path | str,
        preprocessing: dict[str, Any],
        lineage: dict[str, Any] | None = None,
        threads: int = 1,
        arena: bool = True,
        limits: Limits = Limits(),
        range_check: bool = True,
    ):
        self.model_path = Path(model_path)
        self.pre = preprocessing
        self.lineage = dict(lineage or {})
        self.limits = limits
        self.session = session(model_path, threads=threads, arena=arena)
        self.channel_names: list[str] = list(preprocessing["channel_names"])
        self.label_names: list[str] = list(preprocessing["label_names"])
        self.window_len = int(preprocessing["window_len"])
        self.hop = int(preprocessing["hop"])
        self.rate_hz = float(preprocessing["sampling_rate_hz"])
        self._index = {name: i for i, name in enumerate(self.channel_names)}
        # the manifest's physical range per channel (preprocessing.json, written at export);
        # a preprocessing.json without ranges: nothing is checked
        self.channel_ranges: dict[str, dict[str, Any]] | None = preprocessing.get("channel_ranges")
        self.range_check = bool(range_check and self.channel_ranges)
        if self.channel_ranges:
            missing = [n for n in self.channel_names if n not in self.channel_ranges]
            if missing:
                raise ValueError(f"preprocessing channel_ranges lacks channels {missing[:5]}")
            lo_hi = np.array(
                [[self.channel_ranges[n]["min"], self.channel_ranges[n]["max"]] for n in self.channel_names]
            )
            self._lo, self._hi = lo_hi[:, 0], lo_hi[:, 1]

    @classmethod
    def from_folder(cls, folder: Path | str, model_file: str = INT8_FILE, **kwargs: Any) -> Classifier:
        """Load ``model_file`` + ``preprocessing.json`` (+ ``manifest.json`` lineage if present)."""
        folder = Path(folder)
        pre = json.loads((folder / PREPROCESSING_FILE).read_text())
        lineage = {}
        if (folder / MANIFEST_FILE).exists():
            lineage = json.loads((folder / MANIFEST_FILE).read_text()).get("lineage", {})
        return cls(folder / model_file, pre, lineage, **kwargs)

    # -- metadata ------------------------------------------------------------------
    @property
    def version(self) -> str:
        """``<registered model> v<version>`` when known (lineage), else the file name."""
        name, version = self.lineage.get("registered_model"), self.lineage.get("registered_version")
        return f"{name} v{version}" if name and version else self.model_path.name

    def metadata(self) -> dict[str, Any]:
        return {
            "model_version": self.version,
            "lineage": self.lineage,
            "dataset": self.pre.get("dataset"),
            "channels": self.channel_names,
            "modality_groups": self.pre.get("modality_groups", {}),
            "labels": self.label_names,
            "window": {
                "length_samples": self.window_len,
                "hop_samples": self.hop,
                "sampling_rate_hz": self.rate_hz,
                "length_s": self.window_len / self.rate_hz,
                "hop_s": self.hop / self.rate_hz,
            },
            "input": "raw sensor units; classify: (batch, channels, time); classify_stream: (samples, channels)",
            "limits": {
                "max_windows": self.limits.max_windows,
                "max_samples": self.limits.max_samples,
                "max_smoothing": self.limits.max_smoothing,
            },
            "range_check": "on" if self.range_check else ("off" if self.channel_ranges else "unavailable"),
            "channel_ranges": self.channel_ranges,
        }

    # -- input checks ----------------------------------------------------------------
    def check_range(self, x: np.ndarray, what: str, axes: tuple[str, ...]) -> None:
        """RangeError naming the first value outside its channel's physical range.

        ``x`` is in manifest channel order; ``axes`` names its axes, one of them ``"channel"``
        (``("window", "channel", "sample")`` or ``("sample", "channel")``).
        """
        if not self.range_check:
            return
        c = axes.index("channel")
        shape = [1] * x.ndim
        shape[c] = -1
        bad = (x < self._lo.reshape(shape)) | (x > self._hi.reshape(shape))
        if not bad.any():
            return
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        name = self.channel_names[idx[c]]
        r = self.channel_ranges[name]
        where = ", ".join(f"{axis} {i}" for axis, i in zip(axes, idx, strict=True) if axis != "channel")
        per_channel = bad.any(axis=tuple(a for a in range(x.ndim) if a != c))
        channels = [self.channel_names[i] for i in np.flatnonzero(per_channel)]
        unit = f" {r['unit']}" if r.get("unit") else ""
        raise RangeError(
            f"{what}: channel {name!r} has value {float(x[idx]):.7g} ({where}), outside its physical range "
            f"[{r['min']:.7g}, {r['max']:.7g}]{unit}; {int(bad.sum())} value(s) out of range in "
            f"{len(channels)} channel(s) {channels[:5]}{'...' if len(channels) > 5 else ''}"
        )

    def channel_order(self, channel_names: Sequence[str] | None) -> np.ndarray | None:
        """Indices that put the caller's channels into manifest order (None: already in it)."""
        if channel_names is None:
            return None
        names = list(channel_names)
        if not all(isinstance(n, str) for n in names):
            raise InputError("channel_names must be a list of strings")
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise InputError(f"channel_names has duplicates: {dup}")
        missing = [n for n in self.channel_names if n not in names]
        unknown = [n for n in names if n not in self._index]
        if missing or unknown:
            raise InputError(
                f"channel_names do not match the model's {len(self.channel_names)} channels: "
                f"missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
                f"unknown {unknown[:5]}{'...' if len(unknown) > 5 else ''}"
            )
        order = np.array([names.index(n) for n in self.channel_names])
        return None if np.array_equal(order, np.arange(len(order))) else order

    def prepare_windows(self, windows: Any, channel_names: Sequence[str] | None = None) -> np.ndarray:
        """Check a batch of raw windows and return it as float32 ``(batch, channels, time)``."""
        order = self.channel_order(channel_names)
        x = _as_float_array(windows, "windows", 3)
        c, t = len(self.channel_names), self.window_len
        if x.size == 0 and x.ndim < 3:
            raise InputError("windows is an empty batch; send at least one window")
        if x.ndim != 3:
            raise InputError(f"windows must have shape (batch, {c} channels, {t} samples), got {x.ndim}-D {x.shape}")
        if x.shape[0] == 0:
            raise InputError("windows is an empty batch; send at least one window")
        if x.shape[0] > self.limits.max_windows:
            raise InputError(f"batch of {x.shape[0]} windows is over the limit of {self.limits.max_windows}")
        if x.shape[1] != c:
            raise InputError(f"windows have {x.shape[1]} channels, the model takes {c} ({self.channel_names[:3]}...)")
        if x.shape[2] != t:
            raise InputError(
                f"windows have {x.shape[2]} samples, the model takes {t} "
                f"({t / self.rate_hz:g} s at {self.rate_hz:g} Hz)"
            )
        if order is not None:
            x = x[:, order, :]
        self.check_range(x, "windows", ("window", "channel", "sample"))
        return np.ascontiguousarray(x, dtype=np.float32)

    # -- inference --------------------------------------------------------------------
    def logits(self, x: np.ndarray) -> np.ndarray:
        """Logits for prepared windows (no checks; see :meth:`prepare_windows`)."""
        return self.session.run(None, {"x": x})[0]

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        return softmax(self.logits(x).astype(np.float64))

    def results(self, probs: np.ndarray) -> list[dict[str, Any]]:
        """One ``{label, probabilities}`` dict per row of ``probs``."""
        out = []
        for p in probs:
            out.append(
                {
                    "label": self.label_names[int(p.argmax())],
                    "probabilities": {name: round(float(v), 6) for name, v in zip(self.label_names, p, strict=True)},
                }
            )
        return out

    def classify(self, windows: Any, channel_names: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Check, standardise (inside the graph) and classify a batch of raw windows."""
        return self.results(self.probabilities(self.prepare_windows(windows, channel_names)))

    def classify_stream(
        self,
        samples: Any,
        sampling_rate_hz: float,
        channel_names: Sequence[str] | None = None,
        smoothing: int = 1,
        t0: float = 0.0,
    ) -> dict[str, Any]:
        """Classify a chunk of raw samples ``(samples, channels)``: one window every hop.

        Returns per-window labels with their start/end timestamps (seconds from ``t0``),
        the labels smoothed over the last ``smoothing`` windows, and segments of equal
        smoothed label.
        """
        if not isinstance(sampling_rate_hz, int | float) or not math.isfinite(sampling_rate_hz):
            raise InputError("sampling_rate_hz must be a finite number")
        if abs(sampling_rate_hz - self.rate_hz) > RATE_TOLERANCE * self.rate_hz:
            raise InputError(
                f"sampling_rate_hz {sampling_rate_hz:g} does not match the model's {self.rate_hz:g} Hz "
                f"(tolerance {RATE_TOLERANCE:.0%}); resample the stream first"
            )
        if not isinstance(smoothing, int) or not 1 <= smoothing <= self.limits.max_smoothing:
            raise InputError(f"smoothing must be an integer in [1, {self.limits.max_smoothing}], got {smoothing!r}")
        order = self.channel_order(channel_names)
        x = _as_float_array(samples, "samples", 2)
        c = len(self.channel_names)
        if x.ndim != 2 or x.shape[1] != c:
            raise InputError(f"samples must have shape (samples, {c} channels), got {x.shape}")
        if x.shape[0] > self.limits.max_samples:
            raise InputError(f"chunk of {x.shape[0]} samples is over the limit of {self.limits.max_samples}")
        if x.shape[0] < self.window_len:
            raise InputError(
                f"chunk of {x.shape[0]} samples is shorter than one window ({self.window_len} samples, "
                f"{self.window_len / self.rate_hz:g} s)"
            )
        if order is not None:
            x = x[:, order]
        self.check_range(x, "samples", ("sample", "channel"))
        stream = StreamingClassifier(self, smoothing=smoothing)
        events = stream.push(x)
        windows = [
            {
                "start_s": round(t0 + (e.end - self.window_len) / self.rate_hz, 6),
                "end_s": round(t0 + e.end / self.rate_hz, 6),
                "label": self.label_names[e.label],
                "smoothed_label": self.label_names[e.smoothed],
                "confidence": round(float(e.probs[e.label]), 6),
            }
            for e in events
        ]
        return {"model_version": self.version, "windows": windows, "segments": segments(windows)}


def segments(windows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Runs of windows with the same smoothed label -> ``{label, start_s, end_s, windows}``."""
    out: list[dict[str, Any]] = []
    for w in windows:
        if out and out[-1]["label"] == w["smoothed_label"]:
            out[-1]["end_s"] = w["end_s"]
            out[-1]["windows"] += 1
        else:
            out.append({"label": w["smoothed_label"], "start_s": w["start_s"], "end_s": w["end_s"], "windows": 1})
    return out


class RingBuffer:
    """The last ``capacity`` samples of a multichannel stream (fixed memory, no reallocation)."""

    def __init__(self, channels: int, capacity: int):
        self.buf = np.zeros((capacity, channels), np.float32)
        self.capacity = capacity
        self.count = 0  # samples ever pushed

    def push(self, samples: np.ndarray) -> None:
        samples = samples[-self.capacity :]
        n = len(samples)
        start = self.count % self.capacity
        first = min(n, self.capacity - start)
        self.buf[start : start + first] = samples[:first]
        self.buf[: n - first] = samples[first:]
        self.count += n

    def latest(self, n: int) -> np.ndarray:
        """The last ``n`` samples in time order, as ``(channels, n)``."""
        if n > min(self.count, self.capacity):
            raise ValueError(f"only {min(self.count, self.capacity)} samples buffered, {n} requested")
        end = self.count % self.capacity
        idx = (np.arange(end - n, end)) % self.capacity
        return self.buf[idx].T


@dataclass
class WindowEvent:
    """One classified window of a stream."""

    end: int  # sample index (exclusive) where the window ends
    label: int
    smoothed: int
    probs: np.ndarray
    seconds: float  # inference wall time


class StreamingClassifier:
    """Samples in -> ring buffer -> one window classified every hop -> smoothing over k windows.

    The first window is classified once ``window_len`` samples have arrived, then one
    every ``hop`` samples, exactly as training windows were cut.
    """

    def __init__(self, classifier: Classifier, smoothing: int = 1, timer=None):
        import time

        self.clf = classifier
        self.k = smoothing
        self.ring = RingBuffer(len(classifier.channel_names), classifier.window_len)
        self.next_end = classifier.window_len
        self.recent: list[np.ndarray] = []
        self.timer = timer or time.perf_counter

    def push(self, samples: np.ndarray) -> list[WindowEvent]:
        """Feed raw samples ``(n, channels)`` in manifest order; return windows completed by them."""
        events = []
        pos = 0
        while pos < len(samples):
            # push up to the next window end, so the ring always holds exactly that window
            take = min(len(samples) - pos, self.next_end - self.ring.count)
            self.ring.push(samples[pos : pos + take])
            pos += take
            if self.ring.count == self.next_end:
                events.append(self._classify())
                self.next_end += self.clf.hop
        return events

    def _classify(self) -> WindowEvent:
        x = np.ascontiguousarray(self.ring.latest(self.clf.window_len)[None])
        t0 = self.timer()
        probs = softmax(self.clf.logits(x).astype(np.float64))[0]
        seconds = self.timer() - t0
        self.recent = [*self.recent[-(self.k - 1) :], probs] if self.k > 1 else [probs]
        smoothed = int(np.mean(self.recent, axis=0).argmax())
        return WindowEvent(self.ring.count, int(probs.argmax()), smoothed, probs, seconds)
