"""Step: stop a scheduled run before training when its data version is nothing new."""

from __future__ import annotations

from typing import Annotated

from zenml import log_metadata, step

from components.retraining.retrain import NothingNewError, champion_ref, latest_ref, nothing_new


@step(enable_cache=False)  # asks the registry as it is now; not retried: "nothing new" is an answer
def check_new_data_step(data_version: str, registered_model: str) -> Annotated[str, "new_data_version"]:
    """Pass ``data_version`` on, or raise :class:`NothingNewError` when ``registered_model``'s
    champion (or its newest registered version) was trained on it already: the same rule
    as ``har retrain``. Wired by ``train_pipeline(stop_if_unchanged=True)`` (configs/schedule.yaml).
    """
    reason = nothing_new(registered_model, data_version, champion_ref(registered_model), latest_ref(registered_model))
    log_metadata({"data_version": data_version, "registered_model": registered_model, "nothing_new": reason or ""})
    if reason:
        raise NothingNewError(f"nothing new, stopping before training: {reason}")
    return data_version
