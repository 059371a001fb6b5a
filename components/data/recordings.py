"""Canonical recordings: one Parquet file per continuous session of one subject.

Columns: ``t`` (float64 seconds), one float32 column per manifest channel (in
manifest order), ``label`` (string from the vocabulary, or null = unlabeled).
Recording metadata (subject, session, source files) lives in the Parquet schema
metadata under ``cmd_har.recording`` and in the dataset's ``recordings.parquet``
index. Files are written deterministically so identical input gives identical bytes.
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from components.data.manifest import RECORDINGS_INDEX, Manifest
from components.io_utils import atomic_write_bytes, sha256_bytes

META_KEY = b"cmd_har.recording"
RECORDINGS_DIR = "recordings"


class RecordingError(ValueError):
    """A recording file cannot be read or does not match its manifest."""


@dataclass
class RecordingMeta:
    """Who and what a recording is.

    Attributes:
        recording_id: unique within the dataset; also the file stem.
        subject: subject id (string); ``"unknown"`` when the source has none.
        session: session / trial id within the subject.
        source_files: raw files the recording was converted from.
        extra: anything else worth keeping (e.g. the source's own split).
    """

    recording_id: str
    subject: str
    session: str
    source_files: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Recording:
    """A loaded recording: arrays plus metadata."""

    t: np.ndarray  # (n,) float64 seconds
    values: np.ndarray  # (n, channels) float32
    labels: np.ndarray  # (n,) object: str or None
    meta: RecordingMeta

    @property
    def n_samples(self) -> int:
        return len(self.t)


def recording_path(dataset_dir: Path, recording_id: str) -> Path:
    return Path(dataset_dir) / RECORDINGS_DIR / f"{recording_id}.parquet"


def recording_to_bytes(
    manifest: Manifest, t: np.ndarray, values: np.ndarray, labels: list | np.ndarray, meta: RecordingMeta
) -> bytes:
    """Encode one recording as deterministic Parquet bytes."""
    values = np.asarray(values, dtype=np.float32)
    if values.ndim != 2 or values.shape[1] != len(manifest.channels):
        raise RecordingError(
            f"{meta.recording_id}: values have shape {values.shape}, "
            f"manifest {manifest.name!r} has {len(manifest.channels)} channels"
        )
    columns: dict[str, pa.Array] = {"t": pa.array(np.asarray(t, dtype=np.float64))}
    for i, name in enumerate(manifest.channel_names):
        columns[name] = pa.array(values[:, i])
    columns["label"] = pa.array(list(labels), type=pa.string())
    table = pa.table(columns)
    table = table.replace_schema_metadata({META_KEY: json.dumps(asdict(meta), sort_keys=True).encode()})
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd", use_dictionary=["label"], write_statistics=False)
    return buf.getvalue()


def write_recording(
    dataset_dir: Path,
    manifest: Manifest,
    t: np.ndarray,
    values: np.ndarray,
    labels: list | np.ndarray,
    meta: RecordingMeta,
) -> tuple[Path, str]:
    """Write a recording atomically; return its path and the sha256 of its bytes."""
    data = recording_to_bytes(manifest, t, values, labels, meta)
    path = atomic_write_bytes(recording_path(dataset_dir, meta.recording_id), data)
    return path, sha256_bytes(data)


def read_meta(path: Path) -> RecordingMeta:
    """Read only the recording metadata from a Parquet file's schema."""
    try:
        schema_meta = pq.read_schema(path).metadata or {}
    except Exception as e:  # pyarrow raises several types for corrupt files
        raise RecordingError(f"{path.name}: not a readable Parquet file ({e})") from e
    if META_KEY not in schema_meta:
        raise RecordingError(f"{path.name}: no cmd_har.recording metadata (subject id etc.) in schema")
    return RecordingMeta(**json.loads(schema_meta[META_KEY]))


def read_table(path: Path) -> pa.Table:
    """Read a recording's Parquet table, with a clear error for unreadable files."""
    try:
        return pq.read_table(path)
    except Exception as e:
        raise RecordingError(f"{Path(path).name}: not a readable Parquet file ({e})") from e


def read_recording(path: Path, manifest: Manifest) -> Recording:
    """Load a recording as arrays, checking its columns against the manifest."""
    table = read_table(path)
    missing = [c for c in manifest.columns if c not in table.column_names]
    if missing:
        raise RecordingError(f"{Path(path).name}: missing columns {missing}")
    values = np.stack([table[c].to_numpy().astype(np.float32) for c in manifest.channel_names], axis=1)
    return Recording(
        t=table["t"].to_numpy().astype(np.float64),
        values=values,
        labels=np.array(table["label"].to_pylist(), dtype=object),
        meta=read_meta(path),
    )


def list_recordings(dataset_dir: Path) -> list[Path]:
    """Recording files of a dataset, sorted by name."""
    return sorted((Path(dataset_dir) / RECORDINGS_DIR).glob("*.parquet"))


INDEX_SCHEMA = pa.schema(
    [
        ("recording_id", pa.string()),
        ("file", pa.string()),
        ("subject", pa.string()),
        ("session", pa.string()),
        ("n_samples", pa.int64()),
        ("duration_s", pa.float64()),
        ("labels", pa.string()),
        ("sha256", pa.string()),
        ("source_files", pa.string()),
    ]
)


def write_index(dataset_dir: Path, rows: list[dict[str, Any]]) -> Path:
    """Write ``recordings.parquet`` (one row per recording, sorted by id) atomically."""
    rows = sorted(rows, key=lambda r: r["recording_id"])
    table = pa.Table.from_pylist(rows, schema=INDEX_SCHEMA)
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd", write_statistics=False)
    return atomic_write_bytes(Path(dataset_dir) / RECORDINGS_INDEX, buf.getvalue())


def index_row(dataset_dir: Path, meta: RecordingMeta, t: np.ndarray, labels: Any, sha256: str) -> dict:
    """The index row describing one written recording."""
    present = sorted({str(x) for x in labels if x is not None})
    duration = float(t[-1] - t[0]) if len(t) > 1 else 0.0
    return {
        "recording_id": meta.recording_id,
        "file": f"{RECORDINGS_DIR}/{meta.recording_id}.parquet",
        "subject": meta.subject,
        "session": meta.session,
        "n_samples": int(len(t)),
        "duration_s": duration,
        "labels": ",".join(present),
        "sha256": sha256,
        "source_files": json.dumps(meta.source_files),
    }


def read_index(dataset_dir: Path) -> list[dict[str, Any]]:
    """Rows of ``recordings.parquet`` (empty list if absent)."""
    p = Path(dataset_dir) / RECORDINGS_INDEX
    return pq.read_table(p).to_pylist() if p.exists() else []


def source_splits(dataset_dir: Path) -> dict[str, str]:
    """``{recording_id: split}`` from recordings that carry the source's own split (``extra.split``)."""
    out = {}
    for path in list_recordings(dataset_dir):
        split = read_meta(path).extra.get("split")
        if split:
            out[path.stem] = str(split)
    return out
