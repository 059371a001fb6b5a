"""The lineage chain of a registered model version, from raw bytes to deployed artifacts.

raw source checksums -> data.dvc md5 -> ZenML run -> MLflow run -> metrics ->
registered version (int8, served) and its fp32 twin -> aliases -> ZenML model stage ->
BentoML model.

The ZenML side (model version, stage, metadata) comes in through a lookup function the
CLI passes (this module does not import ZenML); :func:`stage_disagreements` compares it
with the MLflow aliases.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from components import registry, tracking
from components.config import data_dir
from components.data.manifest import Manifest


@dataclass
class Link:
    stage: str
    detail: str
    inspect: str  # the command or UI location to look closer


class LineageError(LookupError):
    """The reference does not resolve to a registered model version."""


@dataclass(frozen=True)
class ZenmlVersion:
    """A ZenML model version: its name, stage and the MLflow version its metadata names."""

    name: str
    stage: str | None
    registered_model: str | None = None
    registered_version: str | None = None

    def describe(self) -> str:
        names = (
            f"{self.registered_model or '?'} v{self.registered_version}"
            if self.registered_version
            else "no MLflow version in its metadata"
        )
        return f"version {self.name} ({names})"


@dataclass(frozen=True)
class ZenmlView:
    """What ZenML's model control plane says about a model (the CLI gathers it)."""

    model: str
    of_version: ZenmlVersion | None = None  # the ZenML version of the run that registered the shown version
    production: ZenmlVersion | None = None
    staging: ZenmlVersion | None = None
    error: str | None = None  # ZenML could not be asked, or holds no such model


# (ZenML model name, ZenML model version name or None) -> what ZenML says
ZenmlLookup = Callable[[str, str | None], ZenmlView]
# the ZenML stage that goes with each MLflow alias: the promotion outcome's (champion -> production, ...)
STAGE_OF_ALIAS = {alias: registry.ZENML_STAGE[alias] for alias in (tracking.CHAMPION, tracking.CHALLENGER)}


def stage_disagreements(registered_model: str, aliases: dict[str, str], view: ZenmlView) -> list[str]:
    """Where MLflow's aliases and ZenML's stages disagree (empty: they agree).

    ``aliases``: alias -> version of ``registered_model``. MLflow's ``champion`` must be the
    version the ZenML ``production`` version's metadata names, ``challenger`` the ``staging``
    one's; a stage held with no matching alias, or an alias with no version in the stage,
    disagrees too. ``previous-champion`` is not compared: ZenML's ``archived`` holds every
    older version, not one.
    """
    if view.error:
        return []
    found = []
    for alias, stage in STAGE_OF_ALIAS.items():
        mine, theirs = aliases.get(alias), getattr(view, stage)
        if mine is None and theirs is None:
            continue
        if theirs is None:
            found.append(
                f"MLflow {alias} is {registered_model} v{mine}, "
                f"but no version of ZenML model {view.model} is in {stage}"
            )
        elif mine is None:
            found.append(
                f"ZenML model {view.model} {theirs.describe()} is in {stage}, "
                f"but {registered_model} has no {alias} alias in MLflow"
            )
        elif theirs.registered_version is None:
            found.append(
                f"MLflow {alias} is {registered_model} v{mine}, but ZenML {stage} {theirs.describe()} cannot confirm it"
            )
        elif (theirs.registered_model or registered_model, str(theirs.registered_version)) != (
            registered_model,
            str(mine),
        ):
            found.append(
                f"MLflow {alias} is {registered_model} v{mine}, but the metadata of ZenML {stage} "
                f"version {theirs.name} points to {theirs.registered_model or registered_model} "
                f"v{theirs.registered_version}"
            )
    return found


def zenml_links(registered_model: str, aliases: dict[str, str], view: ZenmlView) -> list[Link]:
    """The "ZenML model" link (the shown version's ZenML version and stage, what is in
    production and staging) and the "MLflow vs ZenML" verdict."""
    inspect = f"zenml model version list {view.model}"
    if view.error:
        return [Link("ZenML model", f"not compared: {view.error}", inspect)]
    parts = []
    if (of := view.of_version) is not None:
        parts.append(f"this version is ZenML {view.model} version {of.name}, stage {of.stage or 'none'}")
    else:
        parts.append(f"this version has no ZenML model version of {view.model}")
    for stage in ("production", "staging"):
        held = getattr(view, stage)
        parts.append(f"{stage}: {held.describe() if held else 'none'}")
    problems = stage_disagreements(registered_model, aliases, view)
    if problems:
        verdict = "DISAGREE: " + "; ".join(problems)
    else:
        held = [f"{a} v{aliases[a]} = ZenML {s}" for a, s in STAGE_OF_ALIAS.items() if a in aliases]
        verdict = "agree" + (f" ({', '.join(held)})" if held else " (no champion or challenger in either)")
    return [Link("ZenML model", "; ".join(parts), inspect), Link("MLflow vs ZenML", verdict, inspect)]


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


def chain(registered_model: str, ref: str | None = None, zenml: ZenmlLookup | None = None) -> list[Link]:
    """Every link for ``ref`` (see :func:`resolve`); ``zenml`` asks ZenML's model control plane
    (without it the ZenML stage is not compared)."""
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
    all_aliases = {a: str(v) for a, v in client.get_registered_model(registered_model).aliases.items()}
    mine = sorted(a for a, v in all_aliases.items() if v == str(mv.version))
    shared = _versions_of_run(client, registered_model, mv.run_id, str(mv.version))
    links.append(
        Link(
            "registered version",
            f"{registered_model} v{mv.version} ({mv.tags.get('precision', 'precision not recorded')}, "
            f"outcome {mv.tags.get('promotion_outcome', '?')})"
            + (f"; training run {mv.run_id} is shared with {', '.join(f'v{v}' for v in shared)}" if shared else ""),
            f"mlflow ui -> Models -> {registered_model} -> Version {mv.version}",
        )
    )
    twin, twin_version = mv.tags.get("fp32_registered_model"), mv.tags.get("fp32_registered_version")
    if twin and twin_version:
        links.append(Link("fp32 twin", f"{twin} v{twin_version} (not served)", f"mlflow ui -> Models -> {twin}"))
    links.append(Link("aliases", ", ".join(mine) or "none", f"models:/{registered_model}@champion"))
    if zenml is not None:
        links.extend(zenml_links(registered_model, all_aliases, _zenml_view(client, registered_model, mv, zenml)))
    links.append(
        Link(
            "BentoML model",
            _bento_tags(registered_model, str(mv.version)) or "none (not promoted)",
            f"bentoml models list {registered_model}",
        )
    )
    return links


def _zenml_view(client: Any, registered_model: str, mv: Any, zenml: ZenmlLookup) -> ZenmlView:
    """Ask ZenML about the model that registered ``mv`` (its ``zenml_model`` tag, else the
    champion's, else the ZenML model named like the registered model)."""
    tags = dict(mv.tags or {})
    name = tags.get("zenml_model")
    if not name:
        champion = tracking.alias_version(registered_model, tracking.CHAMPION)
        name = (champion.tags or {}).get("zenml_model") if champion is not None else None
    return zenml(name or registered_model, tags.get("zenml_model_version") if tags.get("zenml_model") else None)


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
