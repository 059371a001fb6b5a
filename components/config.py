"""Typed views of the pipeline YAML files in ``configs/``.

The YAML is a ZenML run configuration (``parameters:`` feed the pipeline function),
so ``zenml pipeline run pipelines.data_pipeline -c configs/data.yaml`` and
``har data pipeline -c configs/data.yaml`` read the very same file.
"""

from __future__ import annotations

import os
from dataclasses import fields
from pathlib import Path
from typing import Any, TypeVar

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]  # the checkout (or the copy a step image holds)

T = TypeVar("T")

# analytics off, quiet logs: for every process the project starts (the Makefile exports the same)
TELEMETRY_OFF = {
    "ZENML_ANALYTICS_OPT_IN": "false",
    "BENTOML_DO_NOT_TRACK": "true",
    "GX_ANALYTICS_ENABLED": "false",
    "DVC_NO_ANALYTICS": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "ZENML_LOGGING_VERBOSITY": "WARNING",
}


def data_dir() -> Path:
    """The DVC-tracked data folder (``$HAR_DATA_DIR`` or ``<repo>/data``)."""
    return Path(os.environ.get("HAR_DATA_DIR", REPO_ROOT / "data"))


def artifacts_dir() -> Path:
    """Local reports that are not data (``$HAR_ARTIFACTS_DIR`` or ``<repo>/artifacts``)."""
    return Path(os.environ.get("HAR_ARTIFACTS_DIR", REPO_ROOT / "artifacts"))


def load_run_config(path: str | Path) -> dict[str, Any]:
    """Load a ZenML run-config YAML and return it as a dict."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"config {path} not found")
    return yaml.safe_load(path.read_text()) or {}


def build(cls: type[T], values: dict[str, Any] | None) -> T:
    """Instantiate a config dataclass from a dict, rejecting unknown keys by name."""
    values = dict(values or {})
    known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown keys {unknown}; allowed: {sorted(known)}")
    for name, value in values.items():
        if isinstance(value, list):  # YAML lists (of lists) -> tuples for frozen dataclasses
            values[name] = tuple(tuple(str(x) for x in v) if isinstance(v, list) else str(v) for v in value)
    return cls(**values)  # type: ignore[call-arg]
