"""Artifacts stored under a type's earlier module path still load (steps/materializers.py)."""

from __future__ import annotations

from zenml.utils import source_utils

from components.data.window_set import WindowSet
from components.export.exported import ExportedModel
from steps.materializers import STORED_MODULE_PATHS


def test_earlier_module_paths_resolve_to_today_s_types():
    assert source_utils.load("components.data.windows.WindowSet") is WindowSet
    assert source_utils.load("components.export.bundle.ExportedModel") is ExportedModel
    assert set(STORED_MODULE_PATHS) == {"components.data.windows", "components.export.bundle"}
