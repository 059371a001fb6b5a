"""Step: cut the benchmark dataset's windows once for every training step of the run."""

from __future__ import annotations

from typing import Annotated

from zenml import step
from zenml.config import CachePolicy

from components.benchmark.fanout import prepare_windows
from components.benchmark.protocol import BenchmarkSettings
from components.data.window_set import WindowSet
from steps.materializers import WindowSetMaterializer
from steps.retry import NETWORK_RETRY


# Cached on its parameters and the *value* of data_version (the data.dvc md5, not the id of
# data_version_step's artifact, which is new every run), among them the windows' sha256 that
# the caller computed when it planned the run. The artifact's content hash covers that sha256
# (it is in the windows' provenance), which is what the training steps key on. Retried: it may
# fetch the version from the DVC remote.
@step(
    cache_policy=CachePolicy(include_artifact_ids=False),
    output_materializers=WindowSetMaterializer,
    retry=NETWORK_RETRY,
)
def prepare_benchmark_windows_step(
    dataset: str, subjects: list[str] | None, data_version: str, windows_sha256: str
) -> Annotated[WindowSet, "benchmark_windows"]:
    """The protocol's windows of ``dataset`` as it is in ``data_version``, ``subjects`` only.

    Args:
        dataset: dataset folder name under ``data/``.
        subjects: subject ids to keep (None: all).
        data_version: the ``data.dvc`` md5 (``data_version_step``): the recordings are read by
            version (in place when ``data/`` is that version, else from the DVC cache or remote).
        windows_sha256: what the windows must hash to (the step fails if the data changed).
    """
    settings = BenchmarkSettings(dataset=dataset, subjects=subjects)
    return prepare_windows(settings, windows_sha256, data_version)
