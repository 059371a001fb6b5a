"""Step: import a public dataset (or refresh it) into the DVC-tracked ``data/`` folder."""

from __future__ import annotations

from typing import Annotated

from zenml import step

from components.config import data_dir
from components.data.importers import import_dataset


@step(enable_cache=False)  # writes into data/: always run, the version step decides what changed
def import_dataset_step(
    dataset: str = "dsads",
    source: str | None = None,
    subjects: list[str] | None = None,
    labels: list[str] | None = None,
    jobs: int = 2,
) -> Annotated[dict, "import_summary"]:
    """Import ``dataset`` into ``data/<dataset>/`` after verifying the raw checksums.

    Args:
        dataset: ``dsads``, ``usc-had`` or ``basicmotions``.
        source: raw folder; default ``HAR_DATASETS_DIR`` / ``../shared/datasets`` / download.
        subjects: keep only these subjects (default all).
        labels: keep only these activities (default all).
        jobs: conversion worker processes.

    Returns:
        Counts of recordings, subjects, samples and hours.
    """
    from pathlib import Path

    s = import_dataset(
        dataset, data_dir(), Path(source) if source else None, subjects=subjects, labels=labels, jobs=jobs
    )
    return {
        "dataset": s.dataset,
        "recordings": s.n_recordings,
        "subjects": s.n_subjects,
        "samples": s.n_samples,
        "hours": round(s.hours, 4),
        "seconds": round(s.seconds, 2),
    }
