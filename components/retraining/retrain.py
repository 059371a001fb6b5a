"""Should ``har retrain`` train? Compare the data version with what the registry already judged.

The data version of ``data/`` (the ``data.dvc`` md5) is compared with the data version
the current champion was trained on, read from MLflow lineage (the registered
version's ``data_version`` tag, else its run's tag). Equal: nothing new, nothing to do.
A later version that was trained on this same data and lost (challenger / rejected)
also means nothing new: the gates already decided on this data, and re-running the
same seed would only repeat that.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from components import tracking
from components.config import data_dir, load_run_config, run_parameters
from components.data.versioning import VersioningError, data_version, is_up_to_date
from components.retraining.changes import DataChanges, changes_between


class NothingNewError(RuntimeError):
    """A scheduled run found no data version its model has not been judged on already."""


@dataclass
class ModelRef:
    """A registered model version and the data version it was trained on."""

    version: str
    data_version: str | None
    outcome: str | None


@dataclass
class RetrainPlan:
    """The decision, its reason and the ids behind it."""

    run: bool
    reason: str
    registered_model: str
    data_version: str | None
    champion: ModelRef | None = None
    latest: ModelRef | None = None
    changes: DataChanges | None = None
    notes: list[str] = field(default_factory=list)


def registered_model_name(config: dict[str, Any]) -> str:
    """The MLflow registered model a train config promotes into."""
    params = run_parameters(config)
    return str(params.get("registered_model") or f"cmd-har-{params.get('dataset', 'dsads')}")


def _ref(mv: Any) -> ModelRef:
    tags = dict(mv.tags or {})
    version = tags.get("data_version")
    if not version:  # a version without the tag: the training run's tag
        try:
            version = tracking.client().get_run(mv.run_id).data.tags.get("data_version")
        except Exception:  # noqa: BLE001 - a deleted run: lineage is simply unknown
            version = None
    return ModelRef(str(mv.version), version, tags.get("promotion_outcome"))


def champion_ref(registered_model: str) -> ModelRef | None:
    """The champion and the data version it was trained on (None when there is none)."""
    mv = tracking.alias_version(registered_model, tracking.CHAMPION)
    return _ref(mv) if mv is not None else None


def latest_ref(registered_model: str) -> ModelRef | None:
    """The newest registered version (whatever its outcome), or None."""
    versions = tracking.client().search_model_versions(f"name='{registered_model}'")
    return _ref(max(versions, key=lambda v: int(v.version))) if versions else None


def nothing_new(model: str, current: str | None, champion: ModelRef | None, latest: ModelRef | None) -> str | None:
    """Why data version ``current`` is nothing new for ``model`` (None when it is new).

    It is not new when the champion was trained on it, or when the newest registered
    version was (the gates already judged a model of this data).
    """
    if current is None:
        return None
    if champion and champion.data_version == current:
        return f"the champion {model} v{champion.version} was trained on this data version ({current})"
    if latest and latest.data_version == current:
        return (
            f"{model} v{latest.version} was already trained on this data version ({current}) and the gates made it "
            f"{latest.outcome or 'no champion'}; nothing new since"
        )
    return None


def plan_retrain(config_path: Path, force: bool = False) -> RetrainPlan:
    """Decide whether to run train_pipeline for ``config_path``."""
    model = registered_model_name(load_run_config(config_path))
    current = data_version()
    plan = RetrainPlan(False, "", model, current, champion_ref(model), latest_ref(model))
    dirty = _dirty(current)
    if dirty and force:
        plan.notes.append(dirty)
    base = plan.champion or plan.latest
    plan.changes = changes_between(base.data_version if base else None, current, data_dir())
    champ, last = plan.champion, plan.latest
    if force:
        plan.run, plan.reason = True, "--force: retraining whatever the data version"
    elif current is None or dirty:
        plan.run, plan.reason = True, dirty or "no data version yet (data.dvc missing): the pipeline creates it"
    elif reason := nothing_new(model, current, champ, last):
        plan.reason = reason + ("" if champ and champ.data_version == current else " (use --force to retrain anyway)")
    elif champ:
        plan.run = True
        plan.reason = f"data version {current} differs from the champion's ({champ.data_version}, v{champ.version})"
    else:
        plan.run, plan.reason = True, f"no champion for {model} yet"
    return plan


def _dirty(current: str | None) -> str:
    """Why ``data/`` does not match ``data.dvc`` at version ``current`` ('' when it does or
    there is no data.dvc)."""
    if current is None:
        return ""
    try:
        if is_up_to_date():
            return ""
    except VersioningError as e:
        return f"could not check data/ against data.dvc ({e}); retraining to be safe"
    return (
        "data/ does not match data.dvc (recordings added, changed or missing since the last `dvc add`); "
        "the pipeline's ingest step versions (or re-imports) it"
    )
