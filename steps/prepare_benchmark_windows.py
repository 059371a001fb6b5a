"""Step: cut the benchmark dataset's windows once for every training step of the run."""

from __future__ import annotations

from typing import Annotated

from zenml import step

from components.benchmark.fanout import prepare_windows
from components.benchmark.protocol import BenchmarkSettings
from components.data.window_set import WindowSet
from steps.materializers import WindowSetMaterializer


# Cached on its parameters, among them the windows' sha256 that the caller computed when it
# planned the run: changed data changes the key. The artifact's content hash covers that
# sha256 too (it is in the windows' provenance), which is what the training steps key on.
@step(output_materializers=WindowSetMaterializer)
def prepare_benchmark_windows_step(
    dataset: str, subjects: list[str] | None, data_dir: str | None, windows_sha256: str
) -> Annotated[WindowSet, "benchmark_windows"]:
    """The protocol's windows of ``dataset`` (imported first if missing), ``subjects`` only.

    Args:
        dataset: dataset folder name under the data folder.
        subjects: subject ids to keep (None: all).
        data_dir: the data folder (None: ``$HAR_DATA_DIR`` or ``data/`` where the step runs).
        windows_sha256: what the windows must hash to (the step fails if the data changed).
    """
    settings = BenchmarkSettings(dataset=dataset, subjects=subjects, data_dir=data_dir)
    return prepare_windows(settings, windows_sha256)
