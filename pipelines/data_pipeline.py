"""data_pipeline: import -> version -> validate -> window -> split."""

from __future__ import annotations

from typing import Any

from zenml import pipeline

from steps.check_new_data import check_new_data_step
from steps.data_version import data_version_step
from steps.failure_hook import notify_on_failure
from steps.split_windows import split_windows_step
from steps.validate_dataset import validate_dataset_step
from steps.window_dataset import window_dataset_step


def prepare_data(
    dataset: str,
    source: str | None,
    subjects: list[str] | None,
    validation: dict | None,
    window: dict | None,
    split: dict | None,
    fold: int,
    reimport: bool,
    stop_if_trained: str | None = None,
) -> Any:
    """Wire the data steps (shared by every pipeline); returns the split artifact.

    ``stop_if_trained``: a registered model; the run stops after ingest when that model
    was already trained on the data version (scheduled retraining).
    """
    version = data_version_step(dataset=dataset, source=source, subjects=subjects, reimport=reimport)
    if stop_if_trained:
        version = check_new_data_step(version, registered_model=stop_if_trained)
    validated, _, _ = validate_dataset_step(dataset=dataset, data_version=version, validation=validation)
    windows = window_dataset_step(dataset=dataset, data_version=validated, window=window)
    return split_windows_step(windows, split=split, fold=fold)


@pipeline(name="data_pipeline", on_failure=notify_on_failure)
def data_pipeline(
    dataset: str = "dsads",
    source: str | None = None,
    subjects: list[str] | None = None,
    validation: dict | None = None,
    window: dict | None = None,
    split: dict | None = None,
    fold: int = 0,
) -> None:
    """Raw public dataset -> (re)imported, versioned, validated, windowed, subject-wise split."""
    prepare_data(dataset, source, subjects, validation, window, split, fold, reimport=True)
