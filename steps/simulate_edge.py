"""Step: the wearable deployment simulation of a new champion's bundle, logged to MLflow."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

from zenml import log_metadata, step

from components import tracking
from components.data.splitting import SplitWindows
from components.data.versioning import materialize
from components.edge.bundle import EdgeBundle
from components.edge.simulate import (
    DEFAULT_MAX_RECORDINGS,
    DEFAULT_MAX_SECONDS,
    DEFAULT_PROFILES,
    load_profile,
    load_streams,
    plot_timeline,
    simulate,
)


@step(enable_cache=False)
def simulate_edge_step(
    edge_bundle: EdgeBundle,
    split: SplitWindows,
    mlflow_run_id: str,
    profiles: list[str] | None = None,
    max_recordings: int | None = DEFAULT_MAX_RECORDINGS,
    max_seconds: float | None = DEFAULT_MAX_SECONDS,
) -> Annotated[dict, "edge_simulation"]:
    """Replay held-out test recordings (of the split's data version) through the int8 bundle
    under each edge profile.

    Logs ``edge.<profile>.*`` metrics (latency p50/p95/p99, deadline misses, peak memory,
    size vs budget, streaming accuracy/macro-F1), the report JSON and the timeline plot
    to the MLflow run. Does nothing (returns ``{}``) when nothing was promoted.

    Args:
        edge_bundle: the bundle (empty: no new champion).
        split: its split (the test subjects whose recordings are replayed).
        mlflow_run_id: the candidate's training run.
        profiles: ``configs/edge/<name>.yaml`` names (default: ``DEFAULT_PROFILES``).
        max_recordings: replay only the first N test recordings (None: all).
        max_seconds: cut each recording to this many seconds (None: whole).
    """
    if not edge_bundle:
        return {}
    version, dataset = str(split.provenance.get("data_version")), str(split.provenance.get("dataset"))
    with materialize(version, dataset) as folder:
        streams = load_streams(folder, list(split.fold.test), max_recordings, max_seconds)
    reports = {}
    with tracking.run_context(mlflow_run_id), tempfile.TemporaryDirectory() as tmp, edge_bundle.unpacked() as bundle:
        import mlflow

        for name in profiles or DEFAULT_PROFILES:
            result = simulate(bundle, streams, load_profile(name), progress=False)
            r = result.report
            mlflow.log_metrics({f"edge.{name}.{k}": float(v) for k, v in r.items() if isinstance(v, int | float)})
            mlflow.log_artifact(str(plot_timeline(result, Path(tmp) / f"timeline_{name}.png")), "edge")
            tracking.log_json(r, f"edge/simulation_{name}.json")
            reports[name] = r
    log_metadata({f"{p}.{k}": r[k] for p, r in reports.items() for k in ("latency_ms_p99", "streaming_macro_f1")})
    return reports
