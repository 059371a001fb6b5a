"""data_pipeline: import -> validate -> version -> window -> split."""

from __future__ import annotations

from zenml import pipeline

from steps.import_dataset import import_dataset_step
from steps.split_windows import split_windows_step
from steps.validate_dataset import validate_dataset_step
from steps.version_data import version_data_step
from steps.window_dataset import window_dataset_step


@pipeline(name="data_pipeline")
def data_pipeline(
    dataset: str = "dsads",
    source: str | None = None,
    subjects: list[str] | None = None,
    validation: dict | None = None,
    window: dict | None = None,
    split: dict | None = None,
    fold: int = 0,
) -> None:
    """Raw public dataset -> validated, versioned, windowed, subject-wise split."""
    summary = import_dataset_step(dataset=dataset, source=source, subjects=subjects)
    report, _ = validate_dataset_step(summary, validation=validation)
    version = version_data_step(report)
    windows = window_dataset_step(dataset=dataset, data_version=version, window=window)
    split_windows_step(windows, split=split, fold=fold)
