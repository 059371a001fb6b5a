"""Step: split windows by subject and fit the standardisation on the training part."""

from __future__ import annotations

from typing import Annotated

from zenml import step
from zenml.config import CachePolicy

from components.config import build
from components.data.recordings import source_splits
from components.data.splitting import SplitConfig, SplitWindows, split_windows
from components.data.versioning import materialize
from components.data.window_set import WindowSet
from steps.materializers import SplitWindowsMaterializer


@step(cache_policy=CachePolicy(include_artifact_ids=False), output_materializers=SplitWindowsMaterializer)
def split_windows_step(
    windows: WindowSet, split: dict | None = None, fold: int = 0
) -> Annotated[SplitWindows, "split"]:
    """Split ``windows`` by subject (``holdout``/``loso``/``kfold``) or by the source's split.

    Args:
        windows: output of the window step.
        split: :class:`SplitConfig` fields.
        fold: which fold of a multi-fold protocol this run trains on.
    """
    cfg = build(SplitConfig, split)
    splits = None
    if cfg.protocol == "predefined":  # the source's own split lives in the recordings index of that data version
        with materialize(str(windows.provenance["data_version"]), str(windows.provenance["dataset"])) as folder:
            splits = source_splits(folder)
    folds = split_windows(windows, cfg, splits)
    if not 0 <= fold < len(folds):
        raise ValueError(f"fold {fold} out of range: protocol {cfg.protocol} has {len(folds)} folds")
    return folds[fold]
