"""The lineage chain of a registered model version, from raw bytes to deployed artifacts.

raw source checksums -> data.dvc md5 -> ZenML run -> MLflow run -> metrics ->
registered version -> aliases -> BentoML model (and, later, edge bundles).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from components import tracking
from components.config import data_dir


@dataclass
class Link:
    stage: str
    detail: str
    inspect: str  # the command or UI location to look closer


class LineageError(LookupError):
    """The reference does not resolve to a registered model version."""


def resolve(registered_model: str, ref: str | None) -> Any:
    """A model version from ``ref``: None (= champion), an alias, a version number, or a
    BentoML model tag (``name:tag``)."""
    from mlflow.exceptions import MlflowException

    client = tracking.client()
    ref = ref or tracking.CHAMPION
    try:
        if ref.isdigit():
            return client.get_model_version(registered_model, ref)
        if ":" in ref:
            import bentoml

            labels = bentoml.models.get(ref).info.labels
            return client.get_model_version(registered_model, labels["registered_version"])
        return client.get_model_version_by_alias(registered_model, ref)
    except (MlflowException, KeyError) as e:
        raise LineageError(f"{registered_model}: nothing found for {ref!r} ({e})") from e
    except Exception as e:  # bentoml.exceptions.NotFound and friends
        raise LineageError(f"{ref!r} is not a known BentoML model tag ({e})") from e


def chain(registered_model: str, ref: str | None = None) -> list[Link]:
    """Every link for ``ref`` (see :func:`resolve`)."""
    from components.data.manifest import Manifest

    client = tracking.client()
    mv = resolve(registered_model, ref)
    run = client.get_run(mv.run_id)
    tags, metrics = run.data.tags, run.data.metrics
    dataset = tags.get("dataset", "?")
    links = []
    try:
        src = Manifest.load(data_dir() / dataset).source
        links.append(
            Link(
                "raw source",
                f"{src.get('dataset')} | SHA256SUMS sha256 {src.get('sha256sums_sha256')} | "
                f"tree digest {src.get('tree_digest')}",
                f"data/{dataset}/manifest.yaml",
            )
        )
    except Exception:  # noqa: BLE001 - the data folder may be gone; lineage still prints
        links.append(Link("raw source", f"{dataset} (manifest not present locally)", "har data import " + dataset))
    links.append(Link("data version", f"data.dvc md5 {tags.get('data_version')}", "git log -p data.dvc · dvc status"))
    links.append(
        Link(
            "ZenML run",
            f"{tags.get('zenml_pipeline_run_name')} ({tags.get('zenml_pipeline_run_id')})",
            f"zenml pipeline runs describe {tags.get('zenml_pipeline_run_id')} · zenml login --local",
        )
    )
    exp = client.get_experiment(run.info.experiment_id)
    links.append(
        Link(
            "MLflow run",
            f"{run.info.run_id} in experiment {exp.name!r} "
            f"(git {tags.get('git_commit', '?')[:10]}, dirty={tags.get('git_dirty')})",
            f"mlflow ui --backend-store-uri {tracking.tracking_uri()}  -> "
            f"#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}",
        )
    )
    shown = [
        "test_macro_f1",
        "test_accuracy",
        "export.int8_macro_f1",
        "export.int8_latency_ms_p50",
        "export.int8_bytes",
    ]
    links.append(
        Link(
            "metrics",
            ", ".join(f"{k}={metrics[k]:.4g}" for k in shown if k in metrics),
            "MLflow run page: metrics, plots/, evaluation/, promotion/decision.json",
        )
    )
    aliases = list(client.get_registered_model(registered_model).aliases.items())
    mine = sorted(a for a, v in aliases if str(v) == str(mv.version))
    links.append(
        Link(
            "registered version",
            f"{registered_model} v{mv.version} (outcome {mv.tags.get('promotion_outcome', '?')})",
            f"mlflow ui -> Models -> {registered_model} -> Version {mv.version}",
        )
    )
    links.append(Link("aliases", ", ".join(mine) or "none", f"models:/{registered_model}@champion"))
    links.append(
        Link(
            "BentoML model",
            _bento_tags(registered_model, str(mv.version)) or "none (not promoted)",
            f"bentoml models list {registered_model}",
        )
    )
    return links


def _bento_tags(name: str, version: str) -> str:
    try:
        import bentoml

        return ", ".join(
            str(m.tag) for m in bentoml.models.list(name) if m.info.labels.get("registered_version") == version
        )
    except Exception:  # noqa: BLE001 - no store yet
        return ""
