"""MLflow lineage helpers (MLflow is imported lazily; nothing here needs ZenML).

Tracking URI: ``$MLFLOW_TRACKING_URI`` (the Makefile points it at the sqlite store
``.mlflow/mlflow.db`` inside the checkout) or that same default. When ZenML's MLflow
experiment tracker is in the stack it has already opened the run; otherwise the
training step opens one itself, so steps also run without the tracker (tests).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from components import provenance
from components.config import REPO_ROOT

DEFAULT_EXPERIMENT = "cmd-har"
CHAMPION, PREVIOUS, CHALLENGER = "champion", "previous-champion", "challenger"


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{REPO_ROOT / '.mlflow' / 'mlflow.db'}"


_OWN_REGISTRY_URI: str | None = None  # the registry URI configure() set (not the user's)


def configure() -> None:
    """Point MLflow at the configured store (creating the sqlite folder if needed)."""
    import mlflow

    if mlflow.active_run() is not None:  # ZenML's tracker already configured this process
        return
    uri = tracking_uri()
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    if mlflow.get_tracking_uri() != uri:
        mlflow.set_tracking_uri(uri)
    # the registry follows the tracking store unless the user chose one; mlflow exports
    # what set_registry_uri sets, so a value we set ourselves must not count as a choice.
    # Set it every time: a registry URI set earlier in this process outranks the variable.
    global _OWN_REGISTRY_URI
    chosen = os.environ.get("MLFLOW_REGISTRY_URI")
    target = uri if not chosen or chosen == _OWN_REGISTRY_URI else chosen
    if mlflow.get_registry_uri() != target:
        mlflow.set_registry_uri(target)
    if target == uri:
        _OWN_REGISTRY_URI = uri


def client():
    from mlflow.tracking import MlflowClient

    configure()
    return MlflowClient()


@contextlib.contextmanager
def run_context(
    run_id: str | None = None, experiment: str = DEFAULT_EXPERIMENT, run_name: str | None = None
) -> Iterator[Any]:
    """The MLflow run to log into.

    - ``run_id`` given: that run (resumed if another run is active, e.g. when the step
      that created it was cached by ZenML);
    - else the active run (ZenML's tracker), or a new run in ``experiment``.
    """
    import mlflow

    configure()
    active = mlflow.active_run()
    if run_id is None and active is not None:
        yield active
        return
    if run_id is not None and active is not None and active.info.run_id == run_id:
        yield active
        return
    if run_id is None:
        mlflow.set_experiment(experiment)
    with mlflow.start_run(run_id=run_id, run_name=None if run_id else run_name, nested=active is not None) as run:
        yield run


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}} -> {"a.b": 1}`` (lists/None as JSON strings), for MLflow params."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, f"{key}."))
        else:
            out[key] = json.dumps(v) if isinstance(v, list | tuple | type(None)) else v
    return out


def config_hash(config: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


def git_info() -> dict[str, str]:
    """MLflow tags for the checkout's commit and whether tracked files were modified."""
    info = provenance.git_info()
    return {"git_commit": info["commit"] or "unknown", "git_dirty": str(bool(info["dirty"])).lower()}


def log_history(history: list[dict[str, Any]]) -> None:
    """Per-epoch metrics (loss terms, val metrics, modality scores and coefficients)."""
    import mlflow

    for rec in history:
        step = int(rec["epoch"])
        metrics = {}
        for k, v in rec.items():
            if k == "epoch":
                continue
            if isinstance(v, dict):
                metrics.update({f"{k}.{m}": float(x) for m, x in v.items()})
            elif isinstance(v, int | float):
                metrics[f"epoch.{k}"] = float(v)
        mlflow.log_metrics(metrics, step=step)


def log_split_datasets(split: Any, data_version: str) -> None:
    """Log train/val/test as MLflow dataset inputs: digest = the data.dvc md5."""
    import mlflow
    import mlflow.data

    dataset = split.provenance.get("dataset", "data")
    for context, part, ws in (
        ("training", "train", split.train),
        ("validation", "val", split.val),
        ("test", "test", split.test),
    ):
        subjects = ",".join(getattr(split.fold, part))
        with warnings.catch_warnings():  # "source can be interpreted in multiple ways": it is a label
            warnings.simplefilter("ignore", UserWarning)
            ds = mlflow.data.from_numpy(
                features=ws.x[:1],  # schema only; the digest identifies the data version
                targets=ws.y[:1],
                source=f"{dataset}/{split.fold.name}/{part}:{split.fold.by}s={subjects}",
                name=f"{dataset}-{part}",
                digest=data_version[:36],
            )
        mlflow.log_input(ds, context=context, tags={"windows": str(len(ws)), "subjects": subjects})


def log_figure(fig: Any, artifact_file: str) -> None:
    import mlflow

    mlflow.log_figure(fig, artifact_file)


def log_json(data: dict[str, Any], artifact_file: str) -> None:
    import mlflow

    mlflow.log_dict(data, artifact_file)


def log_dir(folder: Path, artifact_path: str) -> None:
    import mlflow

    mlflow.log_artifacts(str(folder), artifact_path)


def register_onnx(
    onnx_path: Path,
    registered_model: str,
    example: Any,
    metadata: dict[str, Any],
    signature: Any = None,
    artifact_name: str = "onnx-model",
) -> str:
    """Log the ONNX model in the active run as ``artifact_name`` and register it; return the new version."""
    import mlflow
    import mlflow.onnx
    import onnx

    info = mlflow.onnx.log_model(
        onnx.load(str(onnx_path)),
        name=artifact_name,
        registered_model_name=registered_model,
        signature=signature,
        input_example=example,
        metadata=metadata,
        save_as_external_data=False,
        onnx_execution_providers=["CPUExecutionProvider"],
    )
    return str(info.registered_model_version)


def active_run_id() -> str | None:
    """The id of the active MLflow run (ZenML's tracker opens one per pipeline run), or None."""
    import mlflow

    run = mlflow.active_run()
    return run.info.run_id if run is not None else None


def link_version_runs(
    registered_model: str,
    version: str,
    training_run_id: str,
    promoting_run_id: str | None,
    zenml_run_id: str,
    zenml_run_name: str,
) -> dict[str, str]:
    """Tag a registered version with the runs that trained and promoted it; return the tags.

    A registered version's ``run_id`` is its training run. When ZenML cached the training
    step, a later pipeline run promotes a new version from that same run: the
    ``promoting_*`` tags name the run that registered this version (its MLflow run is the
    tracker's run of that pipeline run; absent without the tracker). That MLflow run is
    tagged back with the version and the training run.
    """
    tags = {
        "training_mlflow_run_id": training_run_id,
        "promoting_zenml_run_id": zenml_run_id,
        "promoting_zenml_run_name": zenml_run_name,
    }
    if promoting_run_id:
        tags["promoting_mlflow_run_id"] = promoting_run_id
    c = client()
    for key, value in tags.items():
        c.set_model_version_tag(registered_model, version, key, value)
    if promoting_run_id and promoting_run_id != training_run_id:
        for key, value in {
            "registered_model": registered_model,
            "registered_version": version,
            "training_mlflow_run_id": training_run_id,
        }.items():
            c.set_tag(promoting_run_id, key, value)
    return tags


def alias_version(registered_model: str, alias: str) -> Any | None:
    """The model version behind ``alias`` (None if the alias or the model does not exist)."""
    from mlflow.exceptions import MlflowException

    try:
        return client().get_model_version_by_alias(registered_model, alias)
    except MlflowException:
        return None


def set_alias(registered_model: str, alias: str, version: str) -> None:
    client().set_registered_model_alias(registered_model, alias, version)


def download_artifacts(run_id: str, path: str) -> Path:
    import mlflow

    configure()
    dest = Path(tempfile.mkdtemp(prefix="mlflow-"))
    return Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=path, dst_path=str(dest)))
