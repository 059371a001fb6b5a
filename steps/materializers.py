"""ZenML materializers: window sets, splits, trained and exported models, edge bundles.

Everything is stored as npz / JSON / ONNX / a torch state dict, never as a pickle.
Content hashes are derived from provenance (data.dvc md5, window and split config),
so ZenML's cache keys on what the data *is*, not on artifact ids or file paths.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from typing import Any, ClassVar

from zenml.enums import ArtifactType
from zenml.io import fileio
from zenml.materializers.base_materializer import BaseMaterializer

import components.data.window_set
import components.export.exported
from components.data.splitting import SplitWindows
from components.data.window_set import WindowSet
from components.edge.bundle import EdgeBundle
from components.export.exported import ExportedModel
from components.training.trained import TrainedModel

# ZenML loads an artifact by importing the data type's module path stored with it. Artifacts
# in existing stores name these types by the module paths below, so those paths resolve to
# the modules that hold the types now (docs/decisions/module-names.md).
STORED_MODULE_PATHS = {
    "components.data.windows": components.data.window_set,
    "components.export.bundle": components.export.exported,
}
for _path, _module in STORED_MODULE_PATHS.items():
    sys.modules.setdefault(_path, _module)


def _copy_dir_to(local: str, uri: str) -> None:
    fileio.makedirs(uri)
    for name in os.listdir(local):
        fileio.copy(os.path.join(local, name), os.path.join(uri, name), overwrite=True)


def _copy_dir_from(uri: str, local: str) -> None:
    for name in fileio.listdir(uri):
        name = name.decode() if isinstance(name, bytes) else name
        fileio.copy(os.path.join(uri, name), os.path.join(local, name), overwrite=True)


def _hash(*parts: Any) -> str:
    return hashlib.md5(json.dumps(parts, sort_keys=True, default=str).encode(), usedforsecurity=False).hexdigest()


class _FolderMaterializer(BaseMaterializer):
    """Saves objects that know how to ``save(folder)`` / ``load(folder)`` themselves."""

    SKIP_REGISTRATION: ClassVar[bool] = True
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.DATA

    def save(self, data: Any) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            data.save(tmp)
            _copy_dir_to(tmp, self.uri)

    def load(self, data_type: type[Any]) -> Any:
        with tempfile.TemporaryDirectory() as tmp:
            _copy_dir_from(self.uri, tmp)
            return self.ASSOCIATED_TYPES[0].load(tmp)


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

    def compute_content_hash(self, data: WindowSet) -> str:
        return _hash("windows", data.provenance, data.x.shape, data.channel_names, data.label_names)

    def extract_metadata(self, data: WindowSet) -> dict[str, Any]:
        return {
            "windows": len(data),
            "shape": str(tuple(data.x.shape)),
            "subjects": ",".join(data.subjects),
            "classes": data.n_classes,
            "dataset": str(data.provenance.get("dataset")),
            "data_version": str(data.provenance.get("data_version")),
        }


class SplitWindowsMaterializer(_FolderMaterializer):
    """Stores a :class:`SplitWindows` as ``train/val/test.npz`` + ``split.json``."""

    SKIP_REGISTRATION: ClassVar[bool] = False
    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (SplitWindows,)

    def compute_content_hash(self, data: SplitWindows) -> str:
        return _hash("split", data.provenance, data.fold, data.standardizer, len(data.train), len(data.test))

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


class TrainedModelMaterializer(_FolderMaterializer):
    """Stores a :class:`TrainedModel`: state dict + architecture/preprocessing JSON."""

    SKIP_REGISTRATION: ClassVar[bool] = False
    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (TrainedModel,)
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.MODEL

    def extract_metadata(self, data: TrainedModel) -> dict[str, Any]:
        return {
            "architecture": data.name,
            **{k: v for k, v in data.summary.items() if isinstance(v, int | float | str)},
        }


class ExportedModelMaterializer(_FolderMaterializer):
    """Stores an :class:`ExportedModel`: model.onnx, model.int8.onnx and JSON sidecars."""

    SKIP_REGISTRATION: ClassVar[bool] = False
    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (ExportedModel,)
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.MODEL

    def extract_metadata(self, data: ExportedModel) -> dict[str, Any]:
        return {k: v for k, v in data.report.items() if isinstance(v, int | float | str)}


class EdgeBundleMaterializer(_FolderMaterializer):
    """Stores an :class:`EdgeBundle` as its files (an empty folder when nothing was promoted)."""

    SKIP_REGISTRATION: ClassVar[bool] = False
    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (EdgeBundle,)
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.MODEL

    def extract_metadata(self, data: EdgeBundle) -> dict[str, Any]:
        return {"bundle": data.name, "files": len(data.files), "bytes": sum(map(len, data.files.values()))}
