"""The public datasets with an importer, by name, and :func:`import_dataset`, which runs one.

Each importer module (``dsads.py``, ...) builds on the shared machinery in ``base.py``; this
module sits above both, so adding a dataset means one line in :data:`IMPORTERS`.
"""

from __future__ import annotations

import time
from pathlib import Path
from types import ModuleType

from components.data.importers import basicmotions, dsads, usc_had
from components.data.importers.base import ImportSummary, run_import, summarise
from components.data.sources import get_source, resolve_raw_dir, verify_raw_dir

# name -> importer module (``build_manifest``, ``plan_tasks``, ``convert_task``)
IMPORTERS: dict[str, ModuleType] = {"dsads": dsads, "usc-had": usc_had, "basicmotions": basicmotions}


def import_dataset(
    name: str,
    data_dir: Path = Path("data"),
    source: Path | None = None,
    subjects: list[str] | None = None,
    labels: list[str] | None = None,
    jobs: int = 1,
    allow_download: bool = True,
) -> ImportSummary:
    """Import public dataset ``name`` into ``data_dir/<name>/``.

    Args:
        name: ``dsads``, ``usc-had`` or ``basicmotions``.
        data_dir: the DVC-tracked data folder.
        source: raw folder (else ``HAR_DATASETS_DIR`` / ``../shared/datasets`` / download).
        subjects: keep only these subject ids (default: all).
        labels: keep only these activity labels (default: all).
        jobs: worker processes for conversion.
        allow_download: download from the official source when no local copy exists.

    Raises:
        ChecksumError: the raw files do not match their pinned checksums (nothing written).
        ValueError: unknown dataset, or filters that select nothing.
    """
    if name not in IMPORTERS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {sorted(IMPORTERS)}")
    t0 = time.perf_counter()
    spec = get_source(name)
    raw_dir = resolve_raw_dir(name, source, allow_download=allow_download)
    sums = verify_raw_dir(raw_dir, spec)
    module = IMPORTERS[name]
    manifest = module.build_manifest(spec, sums)
    unknown = sorted(set(labels or []) - set(manifest.labels))
    if unknown:
        raise ValueError(f"{name}: unknown labels {unknown}; the vocabulary is {manifest.labels}")
    tasks = module.plan_tasks(raw_dir, sums, subjects=subjects, labels=labels)
    rows = run_import(manifest, Path(data_dir), raw_dir, tasks, module.convert_task, jobs=jobs)
    return summarise(name, Path(data_dir) / manifest.name, raw_dir, rows, manifest, t0)
