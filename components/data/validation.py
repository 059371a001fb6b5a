"""Recording validation with Great Expectations 1.x (direct API, no ZenML integration).

A suite is built from the manifest and run on every recording: exact columns in
order, float32 channels, no NaN/Inf (or under a configured ratio), values inside the
sensor's physical range, ``t`` strictly increasing at the manifest rate (+-2 %),
labels inside the vocabulary, at least one window long, a subject id present.
Dataset-level checks add unreadable files and duplicated recordings.

Failing recordings are *moved* (never deleted) to ``data/quarantine/<dataset>/``
with a JSON and a Markdown report naming each failed expectation and example
values. If more than ``max_quarantine_share`` would be quarantined, nothing is moved
and :class:`ValidationFailed` is raised, so a bad delivery cannot gut the dataset.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from tqdm.auto import tqdm

from components.data.manifest import Manifest
from components.data.recordings import (
    RecordingError,
    list_recordings,
    read_index,
    read_meta,
    read_table,
    write_index,
)
from components.io_utils import atomic_write_text

QUARANTINE_DIR = "quarantine"
DT_COLUMN = "_dt"  # derived: seconds between consecutive samples
SUBJECT_COLUMN = "_subject"  # derived: the recording's subject id on every row


class ValidationFailed(RuntimeError):
    """Too much of the dataset failed validation; nothing was moved."""


@dataclass(frozen=True)
class ValidationConfig:
    """Validation thresholds (``configs/*.yaml`` -> ``validation:``).

    Attributes:
        max_nan_ratio: largest tolerated share of NaN per channel (0 = none).
        rate_tolerance: allowed relative deviation of the sampling interval.
        rate_mostly: share of intervals that must be within tolerance (gaps allowed).
        min_duration_s: shortest acceptable recording (default: one 3-s window).
        max_quarantine_share: above this share of bad recordings, fail without moving.
        jobs: worker processes.
    """

    max_nan_ratio: float = 0.0
    rate_tolerance: float = 0.02
    rate_mostly: float = 0.99
    min_duration_s: float = 3.0
    max_quarantine_share: float = 0.2
    jobs: int = 2


@dataclass
class RecordingReport:
    """Validation outcome of one recording."""

    recording_id: str
    file: str
    ok: bool
    failures: list[dict[str, Any]] = field(default_factory=list)

    def messages(self) -> list[str]:
        return [f["message"] for f in self.failures]


@dataclass
class DatasetReport:
    """Validation outcome of a dataset."""

    dataset: str
    n_recordings: int
    n_passed: int
    quarantined: list[str]
    reports: list[RecordingReport]

    @property
    def quarantined_share(self) -> float:
        return len(self.quarantined) / max(self.n_recordings, 1)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "n_recordings": self.n_recordings,
            "n_passed": self.n_passed,
            "quarantined": self.quarantined,
            "failures": {r.recording_id: r.failures for r in self.reports if not r.ok},
        }


# -- the suites ----------------------------------------------------------------------
# Two batches per recording keep GX fast (one expectation per check, not per channel):
# the wide "samples" frame (columns, t, labels, subject) and a long "values" frame
# with one row per (sample, channel): channel index, value, value / physical limit.
VALUE, SCALED, CHANNEL = "value", "value_over_limit", "channel"


def build_suites(manifest: Manifest, cfg: ValidationConfig):
    """The GX expectation suites (samples, values) for one dataset's recordings."""
    import great_expectations as gx
    import great_expectations.expectations as gxe

    samples = gx.ExpectationSuite(name=f"{manifest.name}-samples")
    add = samples.add_expectation
    add(gxe.ExpectTableColumnsToMatchOrderedList(column_list=[*manifest.columns, DT_COLUMN, SUBJECT_COLUMN]))
    min_rows = int(np.ceil(cfg.min_duration_s * manifest.sampling_rate_hz))
    add(gxe.ExpectTableRowCountToBeBetween(min_value=min_rows))
    add(gxe.ExpectColumnValuesToNotBeNull(column=SUBJECT_COLUMN))
    add(gxe.ExpectColumnValuesToBeIncreasing(column="t", strictly=True))
    dt = 1.0 / manifest.sampling_rate_hz
    add(
        gxe.ExpectColumnValuesToBeBetween(
            column=DT_COLUMN,
            min_value=dt * (1 - cfg.rate_tolerance),
            max_value=dt * (1 + cfg.rate_tolerance),
            mostly=cfg.rate_mostly,
        )
    )
    add(gxe.ExpectColumnValuesToBeInSet(column="label", value_set=list(manifest.labels)))

    values = gx.ExpectationSuite(name=f"{manifest.name}-values")
    # float32 overall <=> every channel column is float32 (any other dtype upcasts the stack)
    values.add_expectation(gxe.ExpectColumnValuesToBeOfType(column=VALUE, type_="float32"))
    values.add_expectation(gxe.ExpectColumnValuesToNotBeNull(column=VALUE, mostly=1.0 - cfg.max_nan_ratio))
    # |value| <= the sensor's physical limit; Inf fails here, NaN is left to the null check
    values.add_expectation(gxe.ExpectColumnValuesToBeBetween(column=SCALED, min_value=-1.0, max_value=1.0))
    return samples, values


def _quiet_gx_logs() -> None:
    """GX logs INFO chatter (e.g. ephemeral docs sites) on its own child loggers."""
    for name in [n for n in logging.root.manager.loggerDict if n.startswith("great_expectations")]:
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("great_expectations").setLevel(logging.WARNING)


class RecordingValidator:
    """Runs the suites on recordings (one GX ephemeral context per process)."""

    def __init__(self, manifest: Manifest, cfg: ValidationConfig):
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        self.manifest = manifest
        self.cfg = cfg
        _quiet_gx_logs()
        self.context = gx.get_context(mode="ephemeral")
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
        asset = self.context.data_sources.add_pandas("recordings").add_dataframe_asset("recording")
        self.batch_definition = asset.add_batch_definition_whole_dataframe("whole")
        samples, values = build_suites(manifest, cfg)
        self.samples_suite = self.context.suites.add(samples)
        self.values_suite = self.context.suites.add(values)
        self.limits = np.array([c.limit for c in manifest.channels])

    def _run(self, suite, df) -> list:
        batch = self.batch_definition.get_batch(batch_parameters={"dataframe": df})
        return [r for r in batch.validate(suite, result_format="SUMMARY").results if not r.success]

    def validate(self, path: Path) -> RecordingReport:
        path = Path(path)
        report = RecordingReport(recording_id=path.stem, file=path.name, ok=True)
        try:
            meta = read_meta(path)
            table = read_table(path)
        except RecordingError as e:
            report.ok = False
            report.failures.append({"expectation": "readable_parquet", "column": None, "message": str(e)})
            return report
        df = table.to_pandas()
        df[DT_COLUMN] = df["t"].diff() if "t" in df else np.nan
        if len(df):
            df.loc[0, DT_COLUMN] = 1.0 / self.manifest.sampling_rate_hz  # first sample has no interval
        df[SUBJECT_COLUMN] = meta.subject or None
        failed = [describe_failure(r, self.manifest) for r in self._run(self.samples_suite, df)]
        present = [c for c in self.manifest.channel_names if c in df.columns]
        if present:
            failed += [
                self._describe_value_failure(r, df, present)
                for r in self._run(self.values_suite, self._long(df, present))
            ]
        report.failures, report.ok = failed, not failed
        return report

    def _long(self, df, present: list[str]):
        import pandas as pd

        idx = [self.manifest.channel_names.index(c) for c in present]
        v = df[present].to_numpy()  # (samples, channels); mixed dtypes upcast, caught by the dtype check
        return pd.DataFrame(
            {
                CHANNEL: np.tile(np.array(idx), len(v)),
                VALUE: v.ravel(),
                SCALED: (v.astype(np.float64) / self.limits[idx]).ravel(),
            }
        )

    def _describe_value_failure(self, r: Any, df, present: list[str]) -> dict[str, Any]:
        """Name the channels behind a failed values expectation (GX only sees the stack)."""
        kind = r.expectation_config.type
        if kind == "expect_column_values_to_be_of_type":
            bad = {c: str(df[c].dtype) for c in present if str(df[c].dtype) != "float32"}
            return {"expectation": kind, "column": sorted(bad), "message": f"channels not float32: {bad}"}
        v = {c: df[c].to_numpy(dtype=np.float64) for c in present}
        if kind == "expect_column_values_to_not_be_null":
            counts = {c: int(np.isnan(x).sum()) for c, x in v.items() if np.isnan(x).any()}
            msg = f"NaN/null values in channels {counts} (allowed ratio {self.cfg.max_nan_ratio:g})"
            return {
                "expectation": kind,
                "column": sorted(counts),
                "message": msg,
                "unexpected_count": sum(counts.values()),
            }
        lim = {c: self.manifest.channels[self.manifest.channel_names.index(c)].limit for c in present}
        out = {c: x[np.abs(x) > lim[c]] for c, x in v.items()}
        out = {c: x for c, x in out.items() if len(x)}
        examples = {c: [_jsonable(e) for e in x[:3]] for c, x in out.items()}
        limits = {c: round(lim[c], 3) for c in out}
        msg = f"values outside the physical range in channels {sorted(out)}: e.g. {examples} (limits +-{limits})"
        return {"expectation": kind, "column": sorted(out), "message": msg, "examples": examples}


def describe_failure(r: Any, manifest: Manifest) -> dict[str, Any]:
    """Turn one failed GX expectation result into a specific, human-readable failure."""
    kind = r.expectation_config.type
    kwargs = r.expectation_config.kwargs
    column = kwargs.get("column")
    res = r.result or {}
    examples = [_jsonable(v) for v in (res.get("partial_unexpected_list") or [])[:5]]
    count = res.get("unexpected_count")
    if r.exception_info and r.exception_info.get("raised_exception"):
        msg = f"{kind} on {column!r} could not run: {r.exception_info.get('exception_message')}"
    elif kind == "expect_table_columns_to_match_ordered_list":
        observed = [c for c in res.get("observed_value") or [] if c not in (DT_COLUMN, SUBJECT_COLUMN)]
        missing = [c for c in manifest.columns if c not in observed]
        extra = [c for c in observed if c not in manifest.columns]
        msg = f"columns differ from the manifest: missing {missing}, unexpected {extra}"
        if not missing and not extra:
            msg = "columns are in the wrong order"
    elif kind == "expect_table_row_count_to_be_between":
        msg = (
            f"recording too short: {res.get('observed_value')} samples, need at least "
            f"{kwargs.get('min_value')} (one window)"
        )
    elif column == DT_COLUMN:
        msg = (
            f"sampling interval off the manifest rate {manifest.sampling_rate_hz} Hz (+-tolerance) for "
            f"{count} samples, e.g. dt = {examples} s (expected {1 / manifest.sampling_rate_hz:.6g} s)"
        )
    elif column == SUBJECT_COLUMN:
        msg = "subject id missing"
    elif kind == "expect_column_values_to_not_be_null":
        msg = f"{count} NaN/null values in channel {column!r} (max ratio {1 - kwargs.get('mostly', 1.0):.3g})"
    elif kind == "expect_column_values_to_be_between":
        msg = (
            f"{count} values of {column!r} outside the physical range +-{kwargs.get('max_value'):.6g}, e.g. {examples}"
        )
    elif kind == "expect_column_values_to_be_in_set":
        msg = f"{count} labels not in the vocabulary, e.g. {sorted(set(map(str, examples)))}"
    elif kind == "expect_column_values_to_be_increasing":
        msg = f"t is not strictly increasing ({count} samples), e.g. {examples}"
    elif kind == "expect_column_values_to_be_of_type":
        msg = f"channel {column!r} has dtype {res.get('observed_value')}, expected float32"
    else:
        msg = f"{kind} failed on {column!r}: {res}"
    return {
        "expectation": kind,
        "column": column,
        "message": msg,
        "unexpected_count": count,
        "examples": examples,
    }


def _jsonable(v: Any) -> Any:
    if isinstance(v, float | np.floating):
        return None if np.isnan(v) else (str(v) if np.isinf(v) else float(v))
    if isinstance(v, np.integer):
        return int(v)
    return v if isinstance(v, str | int | type(None)) else str(v)


# -- dataset level -------------------------------------------------------------------
def content_hash(path: Path) -> str | None:
    """Hash of a recording's data (not its file bytes or metadata), to spot duplicates."""
    try:
        table = read_table(path)
    except RecordingError:
        return None
    h = hashlib.sha256()
    for name in table.column_names:
        col = table[name]
        h.update(name.encode())
        if pa.types.is_string(col.type) or pa.types.is_dictionary(col.type):
            h.update("\x00".join(map(str, col.to_pylist())).encode())
        else:
            h.update(col.to_numpy(zero_copy_only=False).tobytes())
    return h.hexdigest()


_WORKER: RecordingValidator | None = None


def _init_worker(manifest_dict: dict, cfg_dict: dict) -> None:
    global _WORKER
    _WORKER = RecordingValidator(Manifest.from_dict(manifest_dict), ValidationConfig(**cfg_dict))


def _validate_in_worker(path: str) -> RecordingReport:
    assert _WORKER is not None
    return _WORKER.validate(Path(path))


def validate_dataset(
    dataset_dir: Path, cfg: ValidationConfig = ValidationConfig(), quarantine: bool = True
) -> DatasetReport:
    """Validate every recording of ``data/<dataset>/``; quarantine the failures.

    Raises:
        ValidationFailed: more than ``cfg.max_quarantine_share`` failed (nothing moved).
    """
    dataset_dir = Path(dataset_dir)
    manifest = Manifest.load(dataset_dir)
    files = list_recordings(dataset_dir)
    reports = _run_suite(files, manifest, cfg)
    _flag_duplicates(files, reports)
    bad = [r for r in reports if not r.ok]
    report = DatasetReport(
        dataset=manifest.name,
        n_recordings=len(reports),
        n_passed=len(reports) - len(bad),
        quarantined=[r.recording_id for r in bad],
        reports=reports,
    )
    if bad and report.quarantined_share > cfg.max_quarantine_share:
        worst = "; ".join(f"{r.recording_id}: {r.messages()[0]}" for r in bad[:5])
        raise ValidationFailed(
            f"{manifest.name}: {len(bad)}/{len(reports)} recordings ({report.quarantined_share:.0%}) failed "
            f"validation, above the allowed {cfg.max_quarantine_share:.0%}; nothing was moved. "
            f"First failures: {worst}"
        )
    if quarantine and bad:
        quarantine_recordings(dataset_dir, manifest.name, bad)
    return report


def _run_suite(files: list[Path], manifest: Manifest, cfg: ValidationConfig) -> list[RecordingReport]:
    bar_kw = {"desc": f"validate {manifest.name}", "unit": "rec", "total": len(files)}
    if cfg.jobs > 1 and len(files) > 8:
        args = (manifest.to_dict(), asdict(cfg))
        with ProcessPoolExecutor(cfg.jobs, initializer=_init_worker, initargs=args) as pool:
            return list(tqdm(pool.map(_validate_in_worker, map(str, files), chunksize=4), **bar_kw))
    validator = RecordingValidator(manifest, cfg)
    return [validator.validate(f) for f in tqdm(files, **bar_kw)]


def _flag_duplicates(files: list[Path], reports: list[RecordingReport]) -> None:
    """Mark every recording whose content equals an earlier one (by sorted name)."""
    seen: dict[str, str] = {}
    for path, report in zip(files, reports, strict=True):
        digest = content_hash(path)
        if digest is None:
            continue
        if digest in seen:
            report.ok = False
            report.failures.append(
                {
                    "expectation": "unique_recording",
                    "column": None,
                    "message": f"duplicate of recording {seen[digest]!r} (identical content)",
                }
            )
        else:
            seen[digest] = report.recording_id


def quarantine_recordings(dataset_dir: Path, dataset: str, bad: list[RecordingReport]) -> Path:
    """Move failed recordings to ``data/quarantine/<dataset>/`` with JSON + Markdown reports."""
    qdir = dataset_dir.parent / QUARANTINE_DIR / dataset
    qdir.mkdir(parents=True, exist_ok=True)
    for r in bad:
        src = dataset_dir / "recordings" / r.file
        atomic_write_text(qdir / f"{r.recording_id}.report.json", json.dumps(asdict(r), indent=2, sort_keys=True))
        atomic_write_text(qdir / f"{r.recording_id}.report.md", markdown_report(dataset, [r]))
        if src.exists():
            os.replace(src, qdir / r.file)
    ids = {r.recording_id for r in bad}
    rows = [row for row in read_index(dataset_dir) if row["recording_id"] not in ids]
    write_index(dataset_dir, rows)
    return qdir


def markdown_report(dataset: str, reports: list[RecordingReport]) -> str:
    """Human-readable report of failed recordings."""
    lines = [f"# Validation report: {dataset}", ""]
    for r in reports:
        status = "passed" if r.ok else "FAILED (quarantined)"
        lines += [f"## {r.recording_id}: {status}", ""]
        if r.failures:
            lines += ["| expectation | column | problem | examples |", "| --- | --- | --- | --- |"]
            for f in r.failures:
                cells = [f["expectation"], f.get("column") or "", f["message"], f.get("examples", "")]
                lines.append("| " + " | ".join(str(c) for c in cells) + " |")
            lines.append("")
    return "\n".join(lines) + "\n"
