"""Step: the data version a run uses (importing ``data/<dataset>`` first on a laptop if needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from zenml import log_metadata, step
from zenml.client import Client
from zenml.logger import get_logger

from components.config import data_dir
from components.data.importers import import_dataset
from components.data.versioning import (
    DVC_FILE,
    PUBLISHED_ARTIFACT,
    VersioningError,
    data_version,
    dvc_repo,
    version_data,
)
from steps.retry import NETWORK_RETRY

logger = get_logger(__name__)


# reads data/ as it is now: must run every time; retried: it talks to the DVC remote and ZenML
@step(enable_cache=False, retry=NETWORK_RETRY)
def data_version_step(
    dataset: str = "dsads",
    source: str | None = None,
    subjects: list[str] | None = None,
    reimport: bool = False,
    jobs: int = 2,
    pull: bool = False,
    latest: bool = False,
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
        pull: use a pushed data version as it is: no import, no ``dvc add`` (cluster runs:
            set in configs/cluster.yaml; a pod starts without ``data/`` and must not make
            data versions; the steps that read recordings fetch it from the DVC remote).
            The version recorded in the code's ``data.dvc``, unless ``latest``.
        latest: with ``pull``, the newest version published by ``har data version --push``
            or ``har data ingest --push`` (the ZenML artifact ``har_data_version``) instead
            of ``data.dvc``'s: a schedule's code and ``data.dvc`` are frozen when it is made.

    Returns:
        The ``data.dvc`` md5 of ``data/``: the data version every later step keys on.
    """
    source_of_version = "imported"
    if pull:
        version, source_of_version = pulled_version(dataset, latest)
    else:
        folder = data_dir() / dataset
        if reimport or not (folder / "manifest.yaml").exists():
            import_dataset(dataset, data_dir(), Path(source) if source else None, subjects=subjects, jobs=jobs)
        version = version_data()
    log_metadata(
        {
            "data_version": version,
            "dataset": dataset,
            "imported": bool(reimport) and not pull,
            "data_version_source": source_of_version,
        }
    )
    return version


def pulled_version(dataset: str, latest: bool) -> tuple[str, str]:
    """(data version, where it came from) for a run that imports nothing."""
    if latest:
        try:
            published = Client().get_artifact_version(PUBLISHED_ARTIFACT)
        except KeyError:
            published = None
        if published is not None:
            version = str(published.run_metadata.get("md5") or published.load())
            logger.info("newest published data version: %s (%s v%s)", version, PUBLISHED_ARTIFACT, published.version)
            return version, f"{PUBLISHED_ARTIFACT} v{published.version}"
        logger.warning("no %s published yet (har data version --push): using data.dvc's version", PUBLISHED_ARTIFACT)
    version = data_version()
    if not version:
        raise VersioningError(
            f"{dvc_repo() / DVC_FILE} records no data version; on the host: `har data import {dataset}` "
            "(or `har data ingest`), `har data version --push`, and commit data.dvc"
        )
    return version, DVC_FILE
