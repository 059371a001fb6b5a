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


def default_registered_model(ref: str | None = None) -> str:
    """The registered model ``har lineage`` shows without ``-m``.

    A BentoML model tag names it (models are saved under the registered-model name);
    otherwise it is the only registered model with a ``champion`` alias.

    Raises:
        LineageError: no registered model has a champion, or several do (the message lists them).
    """
    if ref and ":" in ref:
        return ref.split(":", 1)[0]
    client = tracking.client()
    models, token = [], None
    while True:
        page = client.search_registered_models(max_results=1000, page_token=token)
        models.extend(page)
        token = page.token
        if not token:
            break
    champions = sorted((m.name, m.aliases[tracking.CHAMPION]) for m in models if tracking.CHAMPION in (m.aliases or {}))
    if len(champions) == 1:
        return champions[0][0]
    if champions:
        listing = ", ".join(f"{name} (v{version})" for name, version in champions)
        raise LineageError(
            f"{len(champions)} registered models have a champion: {listing}. "
            f"Choose one with -m NAME, e.g. `har lineage -m {champions[0][0]}`."
        )
    known = ", ".join(sorted(m.name for m in models)) or "none"
    raise LineageError(
        f"no registered model in MLflow ({tracking.tracking_uri()}) has a champion alias: nothing has been "
        f"promoted yet (registered models: {known}). Pass -m NAME with a version number to see one that was "
        "not promoted, e.g. `har lineage 1 -m NAME`."
    )


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
        links.append(Link("raw source", _source_detail(dataset, src), f"data/{dataset}/manifest.yaml"))
    except Exception:  # noqa: BLE001 - the data folder may be gone; lineage still prints
        links.append(Link("raw source", f"{dataset} (manifest not present locally)", "har data import " + dataset))
    links.append(Link("data version", f"data.dvc md5 {tags.get('data_version')}", "git log -p data.dvc · dvc status"))
    train_id, train_name = tags.get("zenml_pipeline_run_id"), tags.get("zenml_pipeline_run_name")
    promo_id, promo_name = mv.tags.get("promoting_zenml_run_id"), mv.tags.get("promoting_zenml_run_name")
    promo_mlflow = mv.tags.get("promoting_mlflow_run_id")
    describe = "zenml pipeline runs describe {} · zenml login --local"
    if promo_id and promo_id != train_id:
        links.append(
            Link(
                "ZenML run",
                f"trained in run {train_name} (cached), promoted by run {promo_name}",
                describe.format(promo_id),
            )
        )
        training = f"ZenML {train_name} ({train_id}), MLflow {run.info.run_id}"
        links.append(Link("training run", training, describe.format(train_id)))
        promo_ui = _run_page(client, promo_mlflow) if promo_mlflow else ""
        links.append(
            Link(
                "promoting run",
                f"ZenML {promo_name} ({promo_id})"
                + (f", MLflow {promo_mlflow}" if promo_mlflow and promo_mlflow != run.info.run_id else ""),
                " · ".join(x for x in (describe.format(promo_id), promo_ui) if x),
            )
        )
    else:
        links.append(Link("ZenML run", f"{train_name} ({train_id})", describe.format(train_id)))
    exp = client.get_experiment(run.info.experiment_id)
    links.append(
        Link(
            "MLflow run",
            f"{run.info.run_id} in experiment {exp.name!r} "
            f"(git {tags.get('git_commit', '?')[:10]}, dirty={tags.get('git_dirty')})",
            f"{_ui(tracking.tracking_uri())}#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}",
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
    shared = _versions_of_run(client, registered_model, mv.run_id, str(mv.version))
    links.append(
        Link(
            "registered version",
            f"{registered_model} v{mv.version} (outcome {mv.tags.get('promotion_outcome', '?')})"
            + (f"; training run {mv.run_id} is shared with {', '.join(f'v{v}' for v in shared)}" if shared else ""),
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


def _ui(uri: str) -> str:
    """Where the MLflow UI is: the tracking server itself, or `mlflow ui` over a local store."""
    if uri.startswith(("http://", "https://")):
        return uri.rstrip("/") + "/"
    return f"mlflow ui --backend-store-uri {uri}  -> "


def _source_detail(dataset: str, src: dict[str, Any]) -> str:
    """Checksums of a dataset's raw bytes: a public import's SHA256SUMS and tree digest,
    and the source files ``har data ingest`` added (see :mod:`components.data.ingest`)."""
    parts = []
    if src.get("sha256sums_sha256") or src.get("tree_digest"):
        parts.append(
            f"{src.get('dataset', dataset)} | SHA256SUMS sha256 {src.get('sha256sums_sha256')} | "
            f"tree digest {src.get('tree_digest')}"
        )
    files = src.get("ingested_files") or {}
    if files:
        ingested = f"tree digest {src.get('ingested_tree_digest')} over {len(files)} ingested source files"
        parts.append(f"+ {ingested}" if parts else f"{dataset} (own data) | {ingested}")
    return " ".join(parts) or f"{dataset}: no source checksums recorded (`har data ingest` records them)"


def _run_page(client: Any, run_id: str) -> str:
    """Where the MLflow UI shows run ``run_id`` (or that this store does not hold it)."""
    from mlflow.exceptions import MlflowException

    try:
        return f"mlflow ui -> #/experiments/{client.get_run(run_id).info.experiment_id}/runs/{run_id}"
    except MlflowException:
        return f"MLflow run {run_id} is not in {tracking.tracking_uri()}"


def _versions_of_run(client: Any, registered_model: str, run_id: str, version: str) -> list[str]:
    """The other versions of ``registered_model`` registered from the MLflow run ``run_id``."""
    found = client.search_model_versions(f"name = '{registered_model}' and run_id = '{run_id}'")
    return sorted((str(m.version) for m in found if str(m.version) != version), key=int)


def _bento_tags(name: str, version: str) -> str:
    try:
        import bentoml

        return ", ".join(
            str(m.tag) for m in bentoml.models.list(name) if m.info.labels.get("registered_version") == version
        )
    except Exception:  # noqa: BLE001 - no store yet
        return ""
