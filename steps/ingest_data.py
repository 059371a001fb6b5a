"""Step: the data version a run uses (importing ``data/<dataset>`` first on a laptop if needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from zenml import log_metadata, step

from components.config import data_dir
from components.data.importers import import_dataset
from components.data.versioning import DVC_FILE, VersioningError, data_version, dvc_repo, version_data


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

    Later steps fetch their recordings by the returned version (see
    :func:`components.data.versioning.materialize`); nothing else passes between steps.

    Args:
        dataset: ``dsads``, ``usc-had``, ``basicmotions`` or a folder you created under ``data/``.
        source: raw folder; default ``HAR_DATASETS_DIR`` / ``../shared/datasets`` / download.
        subjects: import only these subjects (default all).
        reimport: re-import even when ``data/<dataset>`` exists (the data pipeline does).
        jobs: conversion worker processes.
        pull: use the version recorded in the code's ``data.dvc`` as it is: no import, no
            ``dvc add`` (cluster runs: set in configs/cluster.yaml; a pod starts without
            ``data/`` and must not make data versions; the steps that read recordings
            fetch that version from the DVC remote).

    Returns:
        The ``data.dvc`` md5 of ``data/``: the data version every later step keys on.
    """
    if pull:
        version = data_version()
        if not version:
            raise VersioningError(
                f"{dvc_repo() / DVC_FILE} records no data version; on the host: `har data import {dataset}` "
                "(or `har data ingest`), `har data version --push`, and commit data.dvc"
            )
    else:
        folder = data_dir() / dataset
        if reimport or not (folder / "manifest.yaml").exists():
            import_dataset(dataset, data_dir(), Path(source) if source else None, subjects=subjects, jobs=jobs)
        version = version_data()
    log_metadata({"data_version": version, "dataset": dataset, "imported": bool(reimport) and not pull})
    return version
