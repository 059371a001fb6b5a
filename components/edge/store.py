"""Edge bundles <-> the BentoML model store and the champion (what serve/simulate use by default)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from components import tracking
from components.edge.bundle import read_manifest
from har_runtime.champions import ChampionChoiceError, only_stored_champion


class NoChampionError(LookupError):
    """There is no promoted model to serve or simulate."""


def default_registered_model() -> str:
    """The registered model whose champion ``har edge simulate`` uses without ``-m``: the only
    one with champions in the BentoML store.

    Raises:
        NoChampionError: none there, or several (the message lists them and says to pass ``-m``).
    """
    try:
        return only_stored_champion(
            how_to_choose="pass -m NAME, e.g. `-m {name}`.",
            when_none="`make run` / `har train` trains and promotes; or pass --bundle PATH to use a bundle "
            "folder or .tar.gz.",
        ).name
    except ChampionChoiceError as e:
        raise NoChampionError(str(e)) from None


def champion_labels(bundle_dir: Path) -> dict[str, Any]:
    """The BentoML labels of a champion's bundle: its lineage ids (from the manifest)."""
    lineage = read_manifest(bundle_dir)["lineage"]
    return {
        "data_version": str(lineage.get("data_version")).replace(".dir", ""),
        "zenml_run_id": lineage.get("zenml_run_id"),
        "mlflow_run_id": lineage.get("mlflow_run_id"),
        "registered_version": lineage.get("registered_version"),
        "git_commit": lineage.get("git_commit"),
        "stage": "champion",
    }


def save_to_bentoml(bundle_dir: Path, name: str, labels: dict[str, Any]) -> str:
    """Copy a verified bundle folder into the BentoML store as ``name``; return the tag.

    The BentoML model *is* the bundle (int8 + fp32 ONNX, preprocessing, labels, parity,
    manifest), so the service reads exactly what the edge gets. Labels carry the lineage.
    """
    import bentoml

    manifest = read_manifest(bundle_dir)
    labels = {k: str(v) for k, v in labels.items() if v is not None}
    metadata = _without_none({"lineage": manifest["lineage"], "metrics": manifest["metrics"]})
    with bentoml.models.create(name, labels=labels, metadata=metadata) as model:
        for p in sorted(Path(bundle_dir).iterdir()):
            shutil.copy2(p, Path(model.path) / p.name)
    return str(model.tag)


def _without_none(value: Any) -> Any:
    """BentoML metadata holds no None (a lineage id unknown where the bundle was built, e.g. the
    git commit in a container without .git): such entries are left out."""
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value if v is not None]
    return value


def champion_bundle(registered_model: str) -> Path:
    """The BentoML model folder (= bundle) of ``registered_model``'s MLflow champion.

    Raises:
        NoChampionError: no champion alias, or the champion was never saved to this store.
    """
    import bentoml  # lazy: a heavy import, and only this function needs it

    champion = tracking.alias_version(registered_model, tracking.CHAMPION)
    if champion is None:
        raise NoChampionError(
            f"{registered_model} has no champion: no model has passed the promotion gates yet "
            f"(`har lineage -m {registered_model} <version>` shows the last decision; `make run` / `har train` "
            "trains and promotes). Or pass --bundle PATH to use a bundle folder or .tar.gz."
        )
    try:
        models = bentoml.models.list(registered_model)
    except Exception:  # noqa: BLE001 - no store yet
        models = []
    for m in sorted(models, key=lambda m: m.info.creation_time, reverse=True):
        if m.info.labels.get("registered_version") == str(champion.version):
            return Path(m.path)
    raise NoChampionError(
        f"{registered_model} v{champion.version} is champion but not in the BentoML store "
        "(BENTOML_HOME differs from the training run's?); pass --bundle PATH."
    )
