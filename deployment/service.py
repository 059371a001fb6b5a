"""The cmd-har BentoML service: the current champion's ONNX model (int8 or fp32) over HTTP.

    bentoml serve      # from the repo root (bentofile.yaml names this service)
    bentoml build      # from the repo root: a lean Bento of this file + har_runtime/ + the champion model

The model is the BentoML model that promotion saved (its folder is the edge bundle:
int8 ONNX + preprocessing + lineage manifest), chosen in this order: ``HAR_BENTO_MODEL``
(an exact tag); inside a built Bento, the model it was built with; ``HAR_MODEL_NAME``
(that registered model's latest champion: only promoted models are saved); else the
champion in the store when one registered model has champions there, and an error listing
them when several do. No torch, no retraining.

APIs (POST, JSON):
- ``classify``: ``{"windows": [[[...]]]}`` raw windows ``(batch, channels, time)`` in
  manifest order, or ``{"windows": {"channel_names": [...], "values": [[[...]]]}}``, or the
  compact form ``{"windows": {"b64": ..., "shape": [B, C, T], "dtype": "float32"}}``
  (base64 of the little-endian bytes; ``channel_names`` optional beside them).
  Adaptive batching: concurrent requests share one ONNX Runtime call.
- ``classify_stream``: ``{"samples": [[...]] or {"b64", "shape", "dtype"}, "sampling_rate_hz": 25,
  "channel_names": null, "smoothing": 3, "t0": 0}`` -> per-window labels with timestamps and smoothed segments.
- ``metadata``: model version, lineage ids, channels, labels, window, precision, range check.
Bad input gets a 4xx whose message names the problem: 422 for a value outside its channel's
physical range (the manifest's, as data validation checks it; ``HAR_RANGE_CHECK=off`` skips
it), 400 for the rest. ``HAR_MODEL_PRECISION``: ``auto`` (default) times fp32 and int8 on the
bundle's parity windows at start-up and serves the faster; ``int8`` or ``fp32`` forces one.
``/livez`` and ``/readyz`` as BentoML provides.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Annotated, Any

import bentoml
import numpy as np
from bentoml.validators import ContentType
from pydantic import BeforeValidator

from har_runtime.champions import ChampionChoiceError, only_stored_champion
from har_runtime.connections import RotateConnections
from har_runtime.runtime import (
    MODEL_FILES,
    Classifier,
    InputError,
    Limits,
    RangeError,
    faster_precision,
    parity_windows,
    time_classifiers,
)

logger = logging.getLogger("bentoml.cmd_har")
_SRC = Path(__file__).resolve().parents[1]  # a built Bento: <bento>/src/deployment/service.py
BENTO_YAML = _SRC.parent / "bento.yaml" if _SRC.name == "src" else None  # None when run from the checkout


def _model_tag() -> str:
    """``HAR_BENTO_MODEL``; else, inside a built Bento, the model it was built with; else
    ``$HAR_MODEL_NAME:latest``; else the store's champion when only one registered model has one."""
    if os.environ.get("HAR_BENTO_MODEL"):
        return os.environ["HAR_BENTO_MODEL"]
    if BENTO_YAML is not None and BENTO_YAML.is_file():
        import yaml  # a bentoml dependency

        for svc in yaml.safe_load(BENTO_YAML.read_text()).get("services") or []:
            for model in svc.get("models") or []:
                return str(model["tag"])
    if os.environ.get("HAR_MODEL_NAME"):
        return f"{os.environ['HAR_MODEL_NAME']}:latest"
    try:
        return only_stored_champion(
            how_to_choose="set HAR_MODEL_NAME={name} (serve its latest champion) or HAR_BENTO_MODEL={tag} "
            "(serve that exact model).",
            when_none="Run `make run` (or `har train`) until a model passes the promotion gates "
            "(`har lineage` shows why the last one did not), or point HAR_BENTO_MODEL at a tag from "
            "`bentoml models list`.",
        ).tag
    except ChampionChoiceError as e:
        raise RuntimeError(str(e)) from None


MODEL_TAG = _model_tag()
LIMITS = Limits(
    max_windows=int(os.environ.get("HAR_MAX_WINDOWS", 256)),
    max_samples=int(os.environ.get("HAR_MAX_SAMPLES", 60_000)),
)
MAX_BODY_BYTES = int(os.environ.get("HAR_MAX_BODY_BYTES", 32 * 2**20))
THREADS = int(os.environ.get("HAR_ORT_THREADS", 1))  # ONNX Runtime intra-op threads per worker
# One worker per core: a worker serves one request at a time in Python, so on 2 cores a second
# worker doubled single-window requests/s and multi-window windows/s (benchmarks/serving.py,
# "workers-2"); each worker loads the small model and times its precision on its own.
WORKERS = int(os.environ.get("HAR_WORKERS") or os.cpu_count() or 1)
# int8 is the edge model, but on x86 ORT its QDQ graph runs ~2.4x slower than fp32
# (benchmarks/results/serving.json, int8_vs_fp32): "auto" times both on this host at start-up.
PRECISION = os.environ.get("HAR_MODEL_PRECISION", "auto")
PRECISIONS = ("auto", *MODEL_FILES)
AUTO_REPEATS = 20  # timed calls per precision (alternating), median taken
# values outside the manifest's physical range get a 422 ("off": classify them anyway)
RANGE_CHECK = os.environ.get("HAR_RANGE_CHECK", "on")
# Adaptive batching sheds load: a queued request predicted to wait past max latency gets a 503
# ("process is overloaded"). 50 ms shed 611 of ~2,100 requests at 32 clients on 2 shared
# cores (benchmarks/serving.py); 1 s sheds none and stays far below the 30 s request timeout.
MAX_BATCH_SIZE = int(os.environ.get("HAR_MAX_BATCH_SIZE", 512))
MAX_LATENCY_MS = int(os.environ.get("HAR_MAX_LATENCY_MS", 1000))
# Per-request bookkeeping BentoML does in Python: an access-log line and Prometheus metrics.
# On by default (operators expect them); off saves CPU per request (benchmarks/serving.py).
ACCESS_LOG = os.environ.get("HAR_ACCESS_LOG", "1") != "0"
METRICS = os.environ.get("HAR_METRICS", "1") != "0"


def _champion() -> Any:
    """The stored BentoML model to serve, or a clear, actionable error."""
    try:
        return bentoml.models.get(MODEL_TAG)
    except bentoml.exceptions.NotFound:
        raise RuntimeError(
            f"no model {MODEL_TAG!r} in the BentoML store ({os.environ.get('BENTOML_HOME', '~/bentoml')}): "
            "nothing has been promoted to champion yet. Run `make run` (or `har train`) until a model passes "
            "the promotion gates (`har lineage` shows why the last one did not), or point HAR_BENTO_MODEL at "
            "a tag from `bentoml models list`."
        ) from None


def _classifier(folder: Path) -> tuple[Classifier, dict[str, Any]]:
    """The classifier of the configured precision (``auto``: the faster on this host) and how it was chosen."""

    def load(precision: str) -> Classifier:
        return Classifier.from_folder(
            folder, model_file=MODEL_FILES[precision], threads=THREADS, limits=LIMITS, range_check=RANGE_CHECK == "on"
        )

    if PRECISION != "auto":
        logger.info("cmd-har: serving %s (HAR_MODEL_PRECISION=%s)", PRECISION, PRECISION)
        return load(PRECISION), {"setting": PRECISION, "served": PRECISION}
    try:
        x = parity_windows(folder)
    except FileNotFoundError:
        raise RuntimeError(
            f"HAR_MODEL_PRECISION=auto times the models on the bundle's parity windows, but {folder} has none; "
            "set HAR_MODEL_PRECISION=int8 or fp32"
        ) from None
    candidates = {p: load(p) for p in MODEL_FILES}
    seconds = time_classifiers(candidates, x, repeats=AUTO_REPEATS)
    served = faster_precision(seconds)
    ms = {p: round(s * 1e3, 4) for p, s in seconds.items()}
    logger.info(
        "cmd-har: serving %s (HAR_MODEL_PRECISION=auto: ms per window %s, median of %d calls on %d parity windows)",
        served,
        ms,
        AUTO_REPEATS,
        len(x),
    )
    info = {"setting": "auto", "served": served, "ms_per_window": ms, "timed_windows": len(x), "repeats": AUTO_REPEATS}
    return candidates[served], info


if PRECISION not in PRECISIONS:
    raise RuntimeError(f"HAR_MODEL_PRECISION must be one of {list(PRECISIONS)}, got {PRECISION!r}")
if RANGE_CHECK not in ("on", "off"):
    raise RuntimeError(f"HAR_RANGE_CHECK must be 'on' or 'off', got {RANGE_CHECK!r}")
STORED = _champion()
CLASSIFIER, PRECISION_INFO = _classifier(Path(STORED.path))
if RANGE_CHECK == "on" and not CLASSIFIER.range_check:
    logger.warning(
        "cmd-har: %s has no channel ranges in preprocessing.json (exported before they were recorded): "
        "values are not range-checked; re-export the model to get the check",
        STORED.tag,
    )
LINEAGE_IDS = ("dataset", "data_version", "zenml_run_id", "mlflow_run_id", "registered_model", "registered_version")
# the Bento's labels: the lineage ids from the bundle manifest, then the model's own labels
LABELS = {
    **{k: str(CLASSIFIER.lineage[k]) for k in (*LINEAGE_IDS, "git_commit") if CLASSIFIER.lineage.get(k) is not None},
    **{k: str(v) for k, v in STORED.info.labels.items()},
    "model_tag": str(STORED.tag),
}


def _range_error(e: RangeError) -> bentoml.exceptions.UnprocessableEntity:
    return bentoml.exceptions.UnprocessableEntity(f"{e} (HAR_RANGE_CHECK=off disables this check)")


def _windows(value: Any) -> np.ndarray:
    """Request ``windows`` -> checked float32 array in manifest order (ValueError -> HTTP 400;
    a value outside its channel's physical range -> 422, raised past pydantic).

    Nested lists, ``{"values": ..., "channel_names": ...}``, or the compact base64 form
    ``{"b64": ..., "shape": [B, C, T], "dtype": "float32", "channel_names": ...}``.
    """
    try:
        if isinstance(value, dict):
            names = value.get("channel_names")
            data = {k: v for k, v in value.items() if k != "channel_names"}
            if "values" in data and len(data) == 1:
                return CLASSIFIER.prepare_windows(data["values"], names)
            if "b64" in data:
                return CLASSIFIER.prepare_windows(data, names)
            raise InputError(
                "windows object takes 'values' (nested lists) or 'b64', 'shape', 'dtype' (base64), "
                f"and optional 'channel_names'; got {sorted(value)}"
            )
        return CLASSIFIER.prepare_windows(value)
    except RangeError as e:
        raise _range_error(e) from None
    except InputError as e:
        raise ValueError(str(e)) from None


Windows = Annotated[Any, BeforeValidator(_windows)]
# An explicit content type: without it BentoML rebuilds the output's JSON schema for every
# response to find its media type (~12% of the worker's CPU under load, benchmarks/serving.py).
JSONList = Annotated[list[dict[str, Any]], ContentType("application/json")]
JSONDict = Annotated[dict[str, Any], ContentType("application/json")]


class BodyLimit:
    """ASGI middleware: a request body over ``limit`` bytes gets 413 before it is read."""

    def __init__(self, app, limit: int = MAX_BODY_BYTES):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            size = dict(scope.get("headers") or []).get(b"content-length")
            if size is not None and (not size.isdigit() or int(size) > self.limit):
                body = json.dumps(
                    {
                        "error": f"request body of {size.decode()} bytes is over the limit of "
                        f"{self.limit} bytes (HAR_MAX_BODY_BYTES)"
                    }
                ).encode()
                await send(
                    {"type": "http.response.start", "status": 413, "headers": [(b"content-type", b"application/json")]}
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


@bentoml.service(
    name="cmd-har",
    workers=WORKERS,
    traffic={"timeout": 30, "max_concurrency": 512},
    labels=LABELS,
    logging={"access": {"enabled": ACCESS_LOG}},
    metrics={"enabled": METRICS},
)
class HARService:
    """Wearable activity recognition (ONNX Runtime int8 or fp32, standardisation inside the graph)."""

    bento_model = bentoml.models.BentoModel(STORED.tag)

    def __init__(self) -> None:
        self.clf = CLASSIFIER
        self.batch_sizes: dict[int, int] = {}  # batch size -> count (the benchmark reads it)

    @bentoml.api(batchable=True, batch_dim=(0, 0), max_batch_size=MAX_BATCH_SIZE, max_latency_ms=MAX_LATENCY_MS)
    async def classify(self, windows: Windows) -> JSONList:
        """Classify raw windows; returns one ``{label, probabilities, model_version}`` per window.

        Async on purpose: a batch takes ~1 ms of ONNX Runtime, less than the thread-pool hop a
        sync API pays per batch (single-window p50 overhead 4.2 -> 2.4 ms in benchmarks/serving.py).
        """
        n = int(windows.shape[0])
        self.batch_sizes[n] = self.batch_sizes.get(n, 0) + 1
        results = self.clf.results(self.clf.probabilities(windows))
        for r in results:
            r["model_version"] = self.clf.version
        return results

    @bentoml.api
    def classify_stream(
        self,
        samples: Any,
        sampling_rate_hz: float,
        channel_names: list[str] | None = None,
        smoothing: int = 1,
        t0: float = 0.0,
    ) -> JSONDict:
        """Classify a chunk of raw samples ``(samples, channels)``: per-window labels, timestamps, segments."""
        try:
            return self.clf.classify_stream(samples, sampling_rate_hz, channel_names, smoothing, t0)
        except RangeError as e:
            raise _range_error(e) from None
        except InputError as e:
            raise bentoml.exceptions.InvalidArgument(str(e)) from None

    @bentoml.api
    def metadata(self) -> dict[str, Any]:
        """Model version, lineage ids, channels, labels, window, limits, precision, range check."""
        return {
            **self.clf.metadata(),
            "bento_model": str(STORED.tag),
            "model_file": self.clf.model_path.name,
            "precision": PRECISION_INFO,
        }

    @bentoml.api
    def batch_stats(self) -> dict[str, Any]:
        """Batch sizes the adaptive batcher formed for ``classify`` (size -> count) in the worker
        that answers (``pid``); ``workers`` says how many there are."""
        return {
            "pid": os.getpid(),
            "workers": WORKERS,
            "batch_sizes": {str(k): v for k, v in sorted(self.batch_sizes.items())},
        }


HARService.add_asgi_middleware(BodyLimit)
HARService.add_asgi_middleware(RotateConnections)  # spread keep-alive clients over the workers
