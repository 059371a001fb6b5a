"""Shared import machinery: filter, convert, write into a temp folder, swap in atomically."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from components.data.manifest import Manifest
from components.data.recordings import RecordingMeta, index_row, write_index, write_recording
from components.io_utils import swap_in

# A converted recording: metadata, t (n,), values (n, C), labels (n,)
Converted = tuple[RecordingMeta, np.ndarray, np.ndarray, list]


@dataclass
class ImportSummary:
    """What an import produced."""

    dataset: str
    out_dir: Path
    raw_dir: Path
    n_recordings: int
    n_subjects: int
    n_samples: int
    hours: float
    seconds: float
    labels: dict[str, float] = field(default_factory=dict)  # label -> hours

    def lines(self) -> list[str]:
        return [
            f"dataset {self.dataset}: {self.n_recordings} recordings, {self.n_subjects} subjects, "
            f"{self.n_samples:,} samples ({self.hours:.2f} h) -> {self.out_dir}",
            f"raw source {self.raw_dir} (checksums verified), took {self.seconds:.1f} s",
        ]


def write_converted(out_dir: Path, manifest: Manifest, converted: Iterator[Converted]) -> list[dict[str, Any]]:
    """Write converted recordings into ``out_dir``; return their index rows."""
    rows = []
    for meta, t, values, labels in converted:
        _, digest = write_recording(out_dir, manifest, t, values, labels, meta)
        rows.append(index_row(out_dir, meta, t, labels, digest))
    return rows


def run_import(
    manifest: Manifest,
    data_dir: Path,
    raw_dir: Path,
    tasks: list[Any],
    convert_task: Callable[[Any], list[Converted]],
    jobs: int = 1,
) -> list[dict[str, Any]]:
    """Convert ``tasks`` (in parallel when ``jobs`` > 1) into a temp folder and swap it in.

    ``convert_task`` must be a module-level function (it may run in a subprocess) and
    writes nothing itself; this function does all writing, in task order.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    final_dir = data_dir / manifest.name
    tmp_dir = data_dir / f".import-{manifest.name}-{os.getpid()}"
    if tmp_dir.exists():
        shutil.rmtree(tmp_dir)
    rows: list[dict[str, Any]] = []
    try:
        bar = tqdm(total=len(tasks), desc=f"import {manifest.name}", unit="task")
        if jobs > 1 and len(tasks) > 1:
            with ProcessPoolExecutor(max_workers=jobs) as pool:
                for converted in pool.map(convert_task, tasks):
                    rows += write_converted(tmp_dir, manifest, iter(converted))
                    bar.update()
        else:
            for task in tasks:
                rows += write_converted(tmp_dir, manifest, iter(convert_task(task)))
                bar.update()
        bar.close()
        if not rows:
            raise ValueError(f"{manifest.name}: the filters selected no recordings; nothing was written")
        write_index(tmp_dir, rows)
        manifest.save(tmp_dir)
        swap_in(tmp_dir, final_dir)
    finally:
        if tmp_dir.exists():
            shutil.rmtree(tmp_dir)
    return rows


def summarise(dataset: str, out_dir: Path, raw_dir: Path, rows: list[dict], manifest: Manifest, t0: float):
    hours_per_label: dict[str, float] = {}
    for r in rows:
        for label in r["labels"].split(","):
            if label:
                hours_per_label[label] = (
                    hours_per_label.get(label, 0.0) + r["n_samples"] / manifest.sampling_rate_hz / 3600
                )
    n_samples = sum(r["n_samples"] for r in rows)
    return ImportSummary(
        dataset=dataset,
        out_dir=out_dir,
        raw_dir=raw_dir,
        n_recordings=len(rows),
        n_subjects=len({r["subject"] for r in rows}),
        n_samples=n_samples,
        hours=n_samples / manifest.sampling_rate_hz / 3600,
        seconds=time.perf_counter() - t0,
        labels=hours_per_label,
    )
