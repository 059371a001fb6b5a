"""Step: cut the recordings of a data version into fixed-length labelled windows."""

from __future__ import annotations

from typing import Annotated

from zenml import step
from zenml.config import CachePolicy

from components.config import build
from components.data.versioning import materialize
from components.data.window_set import WindowSet
from components.data.windowing import WindowConfig, window_dataset
from steps.materializers import WindowSetMaterializer
from steps.retry import NETWORK_RETRY

# Cache on the *value* of data_version (the data.dvc md5) and the config, not on the
# id of the upstream artifact, so unchanged data + config reuses the windows.
BY_VALUE = CachePolicy(include_artifact_ids=False)


@step(cache_policy=BY_VALUE, output_materializers=WindowSetMaterializer, retry=NETWORK_RETRY)
def window_dataset_step(dataset: str, data_version: str, window: dict | None = None) -> Annotated[WindowSet, "windows"]:
    """Window every recording of ``dataset`` as it is in ``data_version``.

    Args:
        dataset: dataset folder under ``data/``.
        data_version: the validated ``data.dvc`` md5 (what is read, the cache key and provenance).
        window: :class:`WindowConfig` fields (length_s, overlap, min_majority, group_by).
    """
    # windows_format is part of this function's source, hence of the cache key: bump it when the
    # windows carry something new (2: each channel's physical range, for the serving range check)
    provenance = {"data_version": data_version, "windows_format": 2}
    with materialize(data_version, dataset) as folder:
        return window_dataset(folder, build(WindowConfig, window), provenance)
