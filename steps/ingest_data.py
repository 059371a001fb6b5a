"""Step: make sure ``data/<dataset>`` exists (import it if needed) and record its version."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from zenml import log_metadata, step

from components.config import data_dir
from components.data.importers import import_dataset
from components.data.versioning import pull_data, version_data


@step(enable_cache=False)  # reads data/ as it is now: must run every time
def ingest_data_step(
    dataset: str = "dsads",
    source: str | None = None,
    subjects: list[str] | None = None,
    reimport: bool = False,
    jobs: int = 2,
    pull: bool = False,
) -> Annotated[str, "data_version"]:
    """Import ``dataset`` when missing (or when ``reimport``), then ``dvc add data``.

    Args:
        dataset: ``dsads``, ``usc-had``, ``basicmotions`` or a folder you created under ``data/``.
        source: raw folder; default ``HAR_DATASETS_DIR`` / ``../shared/datasets`` / download.
        subjects: import only these subjects (default all).
        reimport: re-import even when ``data/<dataset>`` exists (the data pipeline does).
        jobs: conversion worker processes.
        pull: ``dvc pull`` the recorded data version first (cluster runs: set in
            configs/cluster.yaml, the pod starts without ``data/``).

    Returns:
        The ``data.dvc`` md5 of ``data/``: the data version every later step keys on.
    """
    if pull:
        pull_data()
    folder = data_dir() / dataset
    if reimport or not (folder / "manifest.yaml").exists():
        import_dataset(dataset, data_dir(), Path(source) if source else None, subjects=subjects, jobs=jobs)
    version = version_data()
    log_metadata({"data_version": version, "dataset": dataset, "imported": bool(reimport)})
    return version
