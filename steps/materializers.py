"""ZenML materializers for window sets and splits: npz + JSON, never pickles."""

from __future__ import annotations

import os
import tempfile
from typing import Any, ClassVar

from zenml.enums import ArtifactType
from zenml.io import fileio
from zenml.materializers.base_materializer import BaseMaterializer

from components.data.splitting import SplitWindows
from components.data.windows import WindowSet


def _copy_dir_to(local: str, uri: str) -> None:
    fileio.makedirs(uri)
    for name in os.listdir(local):
        fileio.copy(os.path.join(local, name), os.path.join(uri, name), overwrite=True)


def _copy_dir_from(uri: str, local: str) -> None:
    for name in fileio.listdir(uri):
        name = name.decode() if isinstance(name, bytes) else name
        fileio.copy(os.path.join(uri, name), os.path.join(local, name), overwrite=True)


class WindowSetMaterializer(BaseMaterializer):
    """Stores a :class:`WindowSet` as ``windows.npz`` (arrays + JSON metadata)."""

    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (WindowSet,)
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.DATA

    def save(self, data: WindowSet) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            data.save(os.path.join(tmp, "windows.npz"))
            _copy_dir_to(tmp, self.uri)

    def load(self, data_type: type[Any]) -> WindowSet:
        with tempfile.TemporaryDirectory() as tmp:
            _copy_dir_from(self.uri, tmp)
            return WindowSet.load(os.path.join(tmp, "windows.npz"))

    def extract_metadata(self, data: WindowSet) -> dict[str, Any]:
        return {
            "windows": len(data),
            "shape": str(tuple(data.x.shape)),
            "subjects": ",".join(data.subjects),
            "classes": data.n_classes,
            "dataset": str(data.provenance.get("dataset")),
            "data_version": str(data.provenance.get("data_version")),
        }


class SplitWindowsMaterializer(BaseMaterializer):
    """Stores a :class:`SplitWindows` as ``train/val/test.npz`` + ``split.json``."""

    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (SplitWindows,)
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.DATA

    def save(self, data: SplitWindows) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            data.save(tmp)
            _copy_dir_to(tmp, self.uri)

    def load(self, data_type: type[Any]) -> SplitWindows:
        with tempfile.TemporaryDirectory() as tmp:
            _copy_dir_from(self.uri, tmp)
            return SplitWindows.load(tmp)

    def extract_metadata(self, data: SplitWindows) -> dict[str, Any]:
        s = data.summary()
        return {
            "fold": s["fold"],
            "train_ids": ",".join(s["train"]["ids"]),
            "val_ids": ",".join(s["val"]["ids"]),
            "test_ids": ",".join(s["test"]["ids"]),
            "train_windows": s["train"]["windows"],
            "val_windows": s["val"]["windows"],
            "test_windows": s["test"]["windows"],
            "data_version": str(data.provenance.get("data_version")),
        }
