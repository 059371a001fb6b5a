"""Typed views of the pipeline YAML files in ``configs/``.

The YAML is a ZenML run configuration (``parameters:`` feed the pipeline function),
so ``zenml pipeline run pipelines.data_pipeline -c configs/data.yaml`` and
``har data pipeline -c configs/data.yaml`` read the very same file.
"""

from __future__ import annotations

import copy
import functools
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


# the reference run config: its ``parameters:`` are train_pipeline's defaults, and the config
# dataclasses' defaults equal them (tests/unit/test_config_defaults.py)
TRAIN_CONFIG = REPO_ROOT / "configs" / "train.yaml"


@functools.cache
def _parameters_text(path: Path) -> str:
    try:
        params = (yaml.safe_load(path.read_text()) or {}).get("parameters")
    except OSError as e:
        raise FileNotFoundError(f"{path} is missing or unreadable ({e}): it holds train_pipeline's defaults") from e
    if not isinstance(params, dict) or not params:
        raise ValueError(f"{path} has no parameters: block; it holds train_pipeline's defaults")
    return yaml.safe_dump(params)


def default_parameters(base: Path = TRAIN_CONFIG) -> dict[str, Any]:
    """``configs/train.yaml``'s ``parameters:`` (a fresh copy): what train_pipeline runs with when
    a run config leaves a parameter out (configs/cluster.yaml, configs/schedule.yaml).
    ``base``: another checkout's train.yaml."""
    return yaml.safe_load(_parameters_text(Path(base)))


def run_parameters(config: dict[str, Any], base: Path = TRAIN_CONFIG) -> dict[str, Any]:
    """The parameters train_pipeline runs ``config`` (a whole run config) with: the defaults of
    :func:`default_parameters`, each replaced whole by the config's value where it gives one
    (as ZenML passes ``parameters:`` to the pipeline function; blocks are not merged key by key)."""
    return {**default_parameters(base), **copy.deepcopy(config.get("parameters") or {})}


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
