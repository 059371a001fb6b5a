"""Importers: public datasets -> canonical recordings under ``data/<dataset>/``.

Each importer verifies the raw checksums first, converts into a temporary folder,
and swaps it in only when everything succeeded, so a failed import leaves the
previous version of ``data/<dataset>/`` untouched.
"""

from __future__ import annotations

from components.data.importers.base import ImportSummary
from components.data.importers.registry import IMPORTERS, import_dataset

__all__ = ["ImportSummary", "import_dataset", "DATASETS"]

DATASETS = tuple(IMPORTERS)
