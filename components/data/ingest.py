"""New recordings into an existing dataset (``har data ingest PATH...``).

Each file (canonical Parquet, or CSV with a header block or a sidecar; see
docs/data_format.md) is checked against its dataset's manifest *before* anything is
written: an unknown dataset, extra or missing channels, or another sampling rate is
rejected with the reason (another rate is resampled only when asked). Accepted files
are re-encoded in the canonical format and run through the dataset's GX suite;
failures go to ``data/quarantine/<dataset>/`` with JSON + Markdown reports,
recordings whose content equals an existing one are skipped. The good ones enter
``data/<dataset>/`` as a whole-folder swap (old files hard-linked into a new folder,
new index and manifest written, then renamed), so a crash leaves the previous dataset intact.

Provenance: the manifest's ``source.ingested_files`` maps every ingested recording id
to ``{file: <original file name>, sha256: <sha256 of that file as read from disk>}``,
and ``source.ingested_tree_digest`` is the sha256 over the sorted lines
``"<sha256>  <recording_id>/<file>"`` of those entries (the tree digest format of the
public imports, :func:`components.data.sources.digest_of_sums`). A public dataset's own
``sha256sums_sha256`` / ``tree_digest`` are left as they are.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import yaml
from tqdm.auto import tqdm

from components.data.manifest import MANIFEST_FILE, Manifest, ManifestError
from components.data.recordings import (
    META_KEY,
    RECORDINGS_DIR,
    RecordingError,
    RecordingMeta,
    index_row,
    list_recordings,
    read_index,
    read_table,
    write_index,
    write_recording,
)
from components.data.sources import digest_of_sums
from components.data.validation import (
    QUARANTINE_DIR,
    RecordingReport,
    RecordingValidator,
    ValidationConfig,
    content_hash,
    markdown_report,
)
from components.io_utils import atomic_write_text, sha256_file, swap_in

SUFFIXES = (".parquet", ".csv")
SIDECAR_SUFFIXES = (".yaml", ".yml", ".json")
META_KEYS = {"dataset", "recording_id", "subject", "session", "sampling_rate_hz", "label", "extra"}
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class IngestError(ValueError):
    """A file cannot be ingested as given; nothing was written for it."""


@dataclass
class Incoming:
    """A recording read from a user file and conformed to its dataset's manifest."""

    source: Path
    dataset: str
    meta: RecordingMeta
    t: np.ndarray
    values: np.ndarray
    labels: np.ndarray
    notes: list[str] = field(default_factory=list)
    source_sha256: str = ""  # of the user's file as read from disk ("" = not yet computed)


@dataclass
class FileOutcome:
    """What happened to one input file.

    ``status``: ``added``, ``duplicate`` (skipped), ``quarantined`` (failed the GX suite)
    or ``rejected`` (not readable as a recording of a known dataset; nothing written).
    """

    source: str
    status: str
    message: str = ""
    dataset: str | None = None
    recording_id: str | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class DatasetStats:
    """Recordings, subjects and labelled hours per activity of one dataset."""

    recordings: int = 0
    subjects: set[str] = field(default_factory=set)
    hours: dict[str, float] = field(default_factory=dict)

    def add(self, subject: str, label_samples: dict[str, int], rate_hz: float) -> None:
        self.recordings += 1
        self.subjects.add(subject)
        for label, n in label_samples.items():
            self.hours[label] = self.hours.get(label, 0.0) + n / rate_hz / 3600


@dataclass
class IngestReport:
    """Every file's outcome and each touched dataset before and after."""

    outcomes: list[FileOutcome]
    before: dict[str, DatasetStats] = field(default_factory=dict)
    after: dict[str, DatasetStats] = field(default_factory=dict)

    def by_status(self, status: str) -> list[FileOutcome]:
        return [o for o in self.outcomes if o.status == status]

    @property
    def changed(self) -> bool:
        """Whether ``data/`` was modified (added or quarantined files)."""
        return bool(self.by_status("added") or self.by_status("quarantined"))

    def to_dict(self) -> dict[str, Any]:
        def stats(s: DatasetStats) -> dict[str, Any]:
            return {"recordings": s.recordings, "subjects": sorted(s.subjects), "hours": s.hours}

        return {
            "outcomes": [asdict(o) for o in self.outcomes],
            "before": {k: stats(v) for k, v in self.before.items()},
            "after": {k: stats(v) for k, v in self.after.items()},
        }


# -- reading user files ----------------------------------------------------------------
def expand_paths(paths: list[Path]) -> list[Path]:
    """Files to ingest: the given files, and every .parquet/.csv below given folders."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.suffix.lower() in SUFFIXES and not f.name.startswith("."))
        else:
            out.append(p)
    return out


def sidecar(path: Path) -> dict[str, Any]:
    """Metadata from ``<stem>.yaml`` / ``.yml`` / ``.json`` next to ``path`` (empty if none)."""
    for suffix in SIDECAR_SUFFIXES:
        side = path.with_suffix(suffix)
        if side.exists():
            try:
                data = json.loads(side.read_text()) if suffix == ".json" else yaml.safe_load(side.read_text())
            except (ValueError, yaml.YAMLError) as e:
                raise IngestError(f"{path.name}: sidecar {side.name} is not valid {suffix[1:]}: {e}") from e
            if not isinstance(data, dict):
                raise IngestError(f"{path.name}: sidecar {side.name} must be a mapping of key: value")
            return data
    return {}


def _csv_header(path: Path) -> tuple[dict[str, Any], int]:
    """``# key: value`` lines at the top of a CSV file, and how many lines they take."""
    meta: dict[str, Any] = {}
    n = 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.startswith("#"):
                break
            n += 1
            body = line[1:].strip()
            if not body:
                continue
            if ":" not in body:
                raise IngestError(f"{path.name}: header line {n} is not '# key: value': {line.strip()!r}")
            key, value = body.split(":", 1)
            meta[key.strip()] = yaml.safe_load(value.strip()) if value.strip() else None
    return meta, n


def _read_columns(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Columns and embedded metadata of a Parquet or CSV file."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        table = read_table(path)
        schema_meta = table.schema.metadata or {}
        embedded = json.loads(schema_meta[META_KEY]) if META_KEY in schema_meta else {}
        extra = dict(embedded.get("extra") or {})
        if "dataset" in extra:
            embedded.setdefault("dataset", extra["dataset"])
        columns = {name: table[name].to_numpy(zero_copy_only=False) for name in table.column_names}
        return columns, embedded
    if suffix == ".csv":
        import pandas as pd

        header, skip = _csv_header(path)
        try:
            df = pd.read_csv(path, skiprows=skip, dtype={"label": "string"})
        except (ValueError, pd.errors.ParserError) as e:
            raise IngestError(f"{path.name}: not a readable CSV file ({e})") from e
        columns = {str(c).strip(): df[c].to_numpy() for c in df.columns}
        if "label" in columns:
            columns["label"] = np.array([None if pd.isna(v) else str(v) for v in df["label"]], dtype=object)
        return columns, header
    raise IngestError(f"{path.name}: unsupported file type {path.suffix!r}; use .parquet or .csv")


def read_incoming(
    path: Path, data_dir: Path, dataset: str | None = None, resample: bool = False, rate_tolerance: float = 0.02
) -> Incoming:
    """Read one file and conform it to its dataset's manifest, or raise :class:`IngestError`.

    Metadata comes from (later wins) the file itself (Parquet schema metadata or CSV
    ``# key: value`` header), its sidecar, then ``dataset`` from the command line.

    Raises:
        IngestError: unreadable file, unknown dataset, channel mismatch, another
            sampling rate without ``resample``, missing subject, bad recording id.
    """
    path = Path(path)
    if not path.exists():
        raise IngestError(f"{path}: no such file")
    try:
        columns, meta = _read_columns(path)
    except RecordingError as e:
        raise IngestError(str(e)) from e
    meta = {**meta, **sidecar(path)}
    if dataset:
        meta["dataset"] = dataset
    unknown = sorted(set(meta) - META_KEYS - {"source_files"})
    if unknown:
        raise IngestError(f"{path.name}: unknown metadata keys {unknown}; allowed: {sorted(META_KEYS)}")
    manifest = _manifest_for(path, data_dir, meta.get("dataset"))
    values = _channels(path, columns, manifest)
    t, rate = _time_axis(path, columns, meta, len(values), rate_tolerance)
    labels = _labels(path, columns, meta, len(values))
    notes: list[str] = []
    if abs(rate - manifest.sampling_rate_hz) > rate_tolerance * manifest.sampling_rate_hz:
        if not resample:
            raise IngestError(
                f"{path.name}: sampled at {rate:.4g} Hz but dataset {manifest.name!r} is "
                f"{manifest.sampling_rate_hz:g} Hz; resample it yourself or pass --resample "
                f"(linear interpolation of every channel, labels from the nearest earlier sample)"
            )
        t, values, labels = resample_to(t, values, labels, manifest.sampling_rate_hz)
        notes.append(f"resampled {rate:.4g} Hz -> {manifest.sampling_rate_hz:g} Hz ({len(t)} samples)")
        meta.setdefault("extra", {})
        meta["extra"] = {**(meta["extra"] or {}), "resampled_from_hz": round(float(rate), 6)}
    meta_out = _recording_meta(path, meta, manifest)
    return Incoming(path, manifest.name, meta_out, t, values, labels, notes, source_sha256=sha256_file(path))


def _manifest_for(path: Path, data_dir: Path, name: str | None) -> Manifest:
    known = sorted(p.parent.name for p in Path(data_dir).glob(f"*/{MANIFEST_FILE}"))
    if not name:
        raise IngestError(
            f"{path.name}: no dataset named; pass --dataset NAME or set 'dataset' in the "
            f"sidecar / CSV header (datasets here: {known or 'none'})"
        )
    if name not in known:
        raise IngestError(
            f"{path.name}: unknown dataset {name!r}; data/ holds {known or 'no datasets'}. Import it first "
            f"(har data import NAME) or create data/{name}/manifest.yaml (docs/data_format.md)"
        )
    try:
        return Manifest.load(Path(data_dir) / name)
    except ManifestError as e:
        raise IngestError(f"{path.name}: {e}") from e


def _channels(path: Path, columns: dict[str, np.ndarray], manifest: Manifest) -> np.ndarray:
    given = [c for c in columns if c not in ("t", "label")]
    missing = [c for c in manifest.channel_names if c not in columns]
    extra = [c for c in given if c not in manifest.channel_names]
    if missing or extra:
        raise IngestError(
            f"{path.name}: channels do not match dataset {manifest.name!r} "
            f"({len(manifest.channels)} channels): missing {missing}, unexpected {extra}"
        )
    out = []
    for name in manifest.channel_names:
        col = columns[name]
        if not np.issubdtype(np.asarray(col).dtype, np.number):
            raise IngestError(f"{path.name}: channel {name!r} is not numeric (dtype {np.asarray(col).dtype})")
        out.append(np.asarray(col, dtype=np.float32))
    return np.stack(out, axis=1) if out else np.zeros((0, 0), np.float32)


def _time_axis(
    path: Path, columns: dict[str, np.ndarray], meta: dict[str, Any], n: int, tolerance: float
) -> tuple[np.ndarray, float]:
    """``t`` (given, or built from the declared rate) and the recording's sampling rate."""
    declared = meta.get("sampling_rate_hz")
    if declared is not None:
        try:
            declared = float(declared)
        except (TypeError, ValueError):
            raise IngestError(f"{path.name}: sampling_rate_hz {declared!r} is not a number") from None
        if declared <= 0:
            raise IngestError(f"{path.name}: sampling_rate_hz must be > 0, not {declared:g}")
    if "t" not in columns:
        if declared is None:
            raise IngestError(f"{path.name}: no 't' column and no sampling_rate_hz in the header or sidecar")
        return np.arange(n, dtype=np.float64) / declared, declared
    t = np.asarray(columns["t"], dtype=np.float64)
    dt = np.diff(t)
    if n < 2 or not np.all(np.isfinite(t)) or np.median(dt) <= 0:
        raise IngestError(f"{path.name}: column 't' must hold increasing times in seconds")
    observed = 1.0 / float(np.median(dt))
    if declared is not None and abs(observed - declared) > tolerance * declared:
        raise IngestError(f"{path.name}: sampling_rate_hz says {declared:g} Hz but 't' is spaced at {observed:.4g} Hz")
    return t, declared if declared is not None else observed


def _labels(path: Path, columns: dict[str, np.ndarray], meta: dict[str, Any], n: int) -> np.ndarray:
    if "label" in columns:
        if meta.get("label") is not None:
            raise IngestError(f"{path.name}: both a 'label' column and a 'label' in the header/sidecar")
        return np.array([None if v is None or v != v else str(v) for v in columns["label"]], dtype=object)
    label = meta.get("label")
    return np.array([None if label is None else str(label)] * n, dtype=object)


def _recording_meta(path: Path, meta: dict[str, Any], manifest: Manifest) -> RecordingMeta:
    rid = str(meta.get("recording_id") or path.stem)
    if not _ID.match(rid):
        raise IngestError(f"{path.name}: recording_id {rid!r} may only use letters, digits, '_', '-', '.'")
    subject = meta.get("subject")
    if subject in (None, ""):
        if manifest.subject_wise:
            raise IngestError(
                f"{path.name}: no subject id; dataset {manifest.name!r} is split by subject, so set "
                f"'subject' in the sidecar / CSV header (or the Parquet metadata)"
            )
        subject = "unknown"
    extra = dict(meta.get("extra") or {})
    extra.pop("dataset", None)
    extra["ingested_from"] = path.name
    return RecordingMeta(
        recording_id=rid,
        subject=str(subject),
        session=str(meta.get("session") or rid),
        source_files=[str(s) for s in meta.get("source_files") or [path.name]],
        extra=extra,
    )


def resample_to(
    t: np.ndarray, values: np.ndarray, labels: np.ndarray, rate_hz: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Resample onto a regular grid at ``rate_hz``: channels linearly, labels from the nearest earlier sample."""
    n = int(np.floor((t[-1] - t[0]) * rate_hz + 1e-9)) + 1
    grid = t[0] + np.arange(n, dtype=np.float64) / rate_hz
    out = np.stack([np.interp(grid, t, values[:, c]) for c in range(values.shape[1])], axis=1).astype(np.float32)
    idx = np.clip(np.searchsorted(t, grid, side="right") - 1, 0, len(t) - 1)
    return grid, out, labels[idx]


# -- dataset scans and writing --------------------------------------------------------
def label_samples(labels: Any) -> dict[str, int]:
    """Labelled samples per activity (unlabelled samples are not counted)."""
    return dict(Counter(str(x) for x in labels if x is not None))


def scan_dataset(dataset_dir: Path, manifest: Manifest) -> tuple[DatasetStats, dict[str, str]]:
    """The dataset's statistics and ``{content hash: recording_id}`` of its recordings."""
    stats = DatasetStats()
    hashes: dict[str, str] = {}
    for path in list_recordings(dataset_dir):
        table = pq.read_table(path, columns=["label"])
        subject = json.loads((pq.read_schema(path).metadata or {}).get(META_KEY, b"{}")).get("subject", "?")
        stats.add(str(subject), label_samples(table["label"].to_pylist()), manifest.sampling_rate_hz)
        digest = content_hash(path)
        if digest:
            hashes.setdefault(digest, path.stem)
    return stats, hashes


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:  # another filesystem or no hard links: copy
        shutil.copy2(src, dst)


def _quarantine(data_dir: Path, dataset: str, staged: Path, report: RecordingReport) -> Path:
    qdir = Path(data_dir) / QUARANTINE_DIR / dataset
    qdir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(qdir / f"{report.recording_id}.report.json", json.dumps(asdict(report), indent=2, sort_keys=True))
    atomic_write_text(qdir / f"{report.recording_id}.report.md", markdown_report(dataset, [report]))
    os.replace(staged, qdir / staged.name)
    return qdir


def ingested_tree_digest(files: dict[str, dict[str, str]]) -> str:
    """sha256 over the sorted lines ``"<sha256>  <recording_id>/<file>"`` of ``source.ingested_files``."""
    return digest_of_sums({f"{rid}/{entry['file']}": entry["sha256"] for rid, entry in files.items()})


def _record_provenance(work: Path, new: list[tuple[Path, Incoming, str]], present: set[str]) -> None:
    """Add the new recordings' source files and the tree digest to ``work``'s manifest.

    The manifest is edited as YAML (keys this code does not know are kept) and replaced
    by a rename, so the hard link to the live dataset's manifest is never written through.
    Entries of recordings no longer in the dataset are dropped.
    """
    path = work / MANIFEST_FILE
    raw = yaml.safe_load(path.read_text())
    source = raw.get("source") or {}
    if not isinstance(source, dict):
        raise IngestError(f"{path.parent.name}: manifest 'source' must be a mapping, not {type(source).__name__}")
    files = {rid: e for rid, e in (source.get("ingested_files") or {}).items() if rid in present}
    for _, inc, _ in new:
        files[inc.meta.recording_id] = {
            "file": inc.source.name,
            "sha256": inc.source_sha256 or sha256_file(inc.source),
        }
    source["ingested_files"] = dict(sorted(files.items()))
    source["ingested_tree_digest"] = ingested_tree_digest(files)
    raw["source"] = source
    Manifest.from_dict(raw)  # still a valid manifest
    atomic_write_text(path, yaml.safe_dump(raw, sort_keys=False, allow_unicode=True, width=100))


def _commit(dataset_dir: Path, new: list[tuple[Path, Incoming, str]]) -> None:
    """Swap in ``dataset_dir`` + the new recordings (old files hard-linked, new index,
    manifest with the new source files' checksums)."""
    work = dataset_dir.with_name(f".ingest-{dataset_dir.name}-{os.getpid()}-new")
    if work.exists():
        shutil.rmtree(work)
    (work / RECORDINGS_DIR).mkdir(parents=True)  # a new dataset has only its manifest so far
    try:
        for item in dataset_dir.iterdir():
            if item.is_dir():
                for f in item.rglob("*"):
                    if f.is_file():
                        _link_or_copy(f, work / f.relative_to(dataset_dir))
            elif item.name != "recordings.parquet":
                _link_or_copy(item, work / item.name)
        rows = read_index(dataset_dir)
        for staged, inc, digest in new:
            os.replace(staged, work / RECORDINGS_DIR / staged.name)
            rows.append(index_row(work, inc.meta, inc.t, inc.labels, digest))
        write_index(work, rows)
        _record_provenance(work, new, {str(r["recording_id"]) for r in rows})
        swap_in(work, dataset_dir)
    finally:
        if work.exists():
            shutil.rmtree(work)


def _staging(data_dir: Path, dataset: str) -> Path:
    """A fresh staging folder; leftovers of interrupted ingests (under the lock: none live) go."""
    for old in Path(data_dir).glob(".ingest-*"):
        shutil.rmtree(old, ignore_errors=True)
    stage = Path(data_dir) / f".ingest-{dataset}-{os.getpid()}"
    (stage / RECORDINGS_DIR).mkdir(parents=True)
    return stage


def ingest_dataset(
    data_dir: Path, dataset: str, incoming: list[Incoming], cfg: ValidationConfig
) -> tuple[list[FileOutcome], DatasetStats, DatasetStats]:
    """Validate, de-duplicate and add ``incoming`` recordings of one dataset."""
    dataset_dir = Path(data_dir) / dataset
    manifest = Manifest.load(dataset_dir)
    before, hashes = scan_dataset(dataset_dir, manifest)
    existing_ids = {p.stem for p in list_recordings(dataset_dir)}
    after = DatasetStats(before.recordings, set(before.subjects), dict(before.hours))
    validator = RecordingValidator(manifest, cfg)
    stage = _staging(data_dir, dataset)
    outcomes: list[FileOutcome] = []
    accepted: list[tuple[Path, Incoming, str]] = []
    try:
        for inc in tqdm(incoming, desc=f"ingest {dataset}", unit="rec", disable=len(incoming) < 2):
            rid = inc.meta.recording_id
            out = FileOutcome(str(inc.source), "added", dataset=dataset, recording_id=rid, notes=inc.notes)
            outcomes.append(out)
            staged, file_sha256 = write_recording(stage, manifest, inc.t, inc.values, inc.labels, inc.meta)
            digest = content_hash(staged)
            if digest in hashes:
                out.status, out.message = "duplicate", f"same content as recording {hashes[digest]!r}; skipped"
                staged.unlink()
                continue
            if rid in existing_ids:  # already in the dataset, or accepted earlier in this call
                out.status = "rejected"
                out.message = f"recording_id {rid!r} already exists with different content; give it a new id"
                staged.unlink()
                continue
            report = validator.validate(staged)
            if not report.ok:
                qdir = _quarantine(data_dir, dataset, staged, report)
                out.status, out.message = "quarantined", "; ".join(report.messages()) + f" (report in {qdir})"
                continue
            hashes[digest] = rid
            existing_ids.add(rid)
            accepted.append((staged, inc, file_sha256))
            after.add(inc.meta.subject, label_samples(inc.labels), manifest.sampling_rate_hz)
        if accepted:
            _commit(dataset_dir, accepted)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return outcomes, before, after


def ingest(
    paths: list[Path],
    data_dir: Path,
    dataset: str | None = None,
    resample: bool = False,
    cfg: ValidationConfig = ValidationConfig(),
) -> IngestReport:
    """Ingest recording files into their datasets under ``data_dir`` (no versioning here).

    Files that cannot be read as a recording of a known dataset are rejected with the
    reason; nothing else is affected by them.
    """
    files = expand_paths(paths)
    if not files:
        raise IngestError("no .parquet or .csv files found in the given paths")
    report = IngestReport(outcomes=[])
    groups: dict[str, list[Incoming]] = {}
    for f in files:
        try:
            inc = read_incoming(f, data_dir, dataset, resample, cfg.rate_tolerance)
        except IngestError as e:
            report.outcomes.append(FileOutcome(str(f), "rejected", str(e)))
            continue
        groups.setdefault(inc.dataset, []).append(inc)
    for name, incoming in sorted(groups.items()):
        outcomes, before, after = ingest_dataset(data_dir, name, incoming, cfg)
        report.outcomes += outcomes
        report.before[name], report.after[name] = before, after
    return report


def change_lines(report: IngestReport) -> list[str]:
    """``dsads: recordings 57 -> 60 (+3), subjects +['4'], hours walking 0.25 -> 0.33 (+0.08)``."""
    lines = []
    for name, after in report.after.items():
        before = report.before[name]
        new_subjects = sorted(after.subjects - before.subjects)
        lines.append(
            f"{name}: recordings {before.recordings} -> {after.recordings} (+{after.recordings - before.recordings}), "
            f"subjects {len(before.subjects)} -> {len(after.subjects)}"
            + (f" (new: {', '.join(new_subjects)})" if new_subjects else "")
        )
        for label in sorted(set(after.hours) | set(before.hours)):
            b, a = before.hours.get(label, 0.0), after.hours.get(label, 0.0)
            if abs(a - b) > 1e-12:
                lines.append(f"  {label}: {b:.3f} h -> {a:.3f} h (+{a - b:.3f} h)")
    return lines
