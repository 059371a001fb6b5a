"""Validation catches each injected fault on real recordings, specifically, and loses nothing."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from components.data.recordings import META_KEY, read_index
from components.data.validation import ValidationConfig, ValidationFailed, validate_dataset

VICTIM = "s01_a09"


def _rewrite(path, fn):
    """Apply ``fn`` to a recording's table and write it back (keeping its metadata)."""
    table = pq.read_table(path)
    meta = table.schema.metadata
    table = fn(table)
    pq.write_table(table.replace_schema_metadata(meta), path)


def _set_column(table, name, values):
    i = table.column_names.index(name)
    values = pa.array(values)
    return table.set_column(i, pa.field(name, values.type), values)


def nan_burst(path):
    def f(t):
        v = t["left_leg_gyro_z"].to_numpy().copy()
        v[1000:1040] = np.nan
        return _set_column(t, "left_leg_gyro_z", v)

    _rewrite(path, f)


def dropped_column(path):
    _rewrite(path, lambda t: t.drop_columns(["right_arm_mag_y"]))


def wrong_rate(path):
    _rewrite(path, lambda t: _set_column(t, "t", np.arange(t.num_rows) / 50.0))


def unknown_label(path):
    def f(t):
        labels = t["label"].to_pylist()
        labels[200:260] = ["moonwalking"] * 60
        return _set_column(t, "label", labels)

    _rewrite(path, f)


def truncated(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def out_of_range(path):  # a unit mix-up: acc written in mm/s^2
    _rewrite(path, lambda t: _set_column(t, "torso_acc_z", t["torso_acc_z"].to_numpy() * 1000))


def too_short(path):
    _rewrite(path, lambda t: t.slice(0, 50))


def no_subject(path):
    def f(t):
        meta = json.loads(t.schema.metadata[META_KEY])
        meta["subject"] = ""
        return t.replace_schema_metadata({META_KEY: json.dumps(meta).encode()})

    table = pq.read_table(path)
    pq.write_table(f(table), path)


def wrong_dtype(path):
    _rewrite(path, lambda t: _set_column(t, "torso_gyro_x", t["torso_gyro_x"].to_numpy().astype(np.float64)))


FAULTS = {
    "nan_burst": (nan_burst, "NaN/null values in channels {'left_leg_gyro_z': 40}"),
    "dropped_column": (dropped_column, "missing ['right_arm_mag_y']"),
    "wrong_rate": (wrong_rate, "sampling interval off the manifest rate 25.0 Hz"),
    "unknown_label": (unknown_label, "60 labels not in the vocabulary, e.g. ['moonwalking']"),
    "truncated": (truncated, "not a readable Parquet file"),
    "out_of_range": (out_of_range, "outside the physical range in channels ['torso_acc_z']"),
    "too_short": (too_short, "recording too short: 50 samples, need at least 75"),
    "no_subject": (no_subject, "subject id missing"),
    "wrong_dtype": (wrong_dtype, "channels not float32: {'torso_gyro_x': 'float64'}"),
}


@pytest.fixture
def dsads_copy(small_data_dir, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(small_data_dir / "dsads", data / "dsads")
    return data


def _bytes(folder):
    return {p.name: p.read_bytes() for p in sorted((folder / "recordings").glob("*.parquet"))}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_fault_is_quarantined_with_a_specific_message(dsads_copy, fault):
    inject, expected = FAULTS[fault]
    dataset = dsads_copy / "dsads"
    inject(dataset / "recordings" / f"{VICTIM}.parquet")
    good_before = {k: v for k, v in _bytes(dataset).items() if k != f"{VICTIM}.parquet"}
    bad_bytes = (dataset / "recordings" / f"{VICTIM}.parquet").read_bytes()

    report = validate_dataset(dataset, ValidationConfig(max_quarantine_share=0.5))

    assert report.quarantined == [VICTIM]
    (victim,) = [r for r in report.reports if not r.ok]
    assert any(expected in m for m in victim.messages()), victim.messages()
    # good recordings untouched and still in place; the bad one moved, not deleted
    assert _bytes(dataset) == good_before
    qdir = dsads_copy / "quarantine" / "dsads"
    assert (qdir / f"{VICTIM}.parquet").read_bytes() == bad_bytes
    saved = json.loads((qdir / f"{VICTIM}.report.json").read_text())
    assert saved["recording_id"] == VICTIM and saved["failures"]
    assert expected.split(",")[0] in (qdir / f"{VICTIM}.report.md").read_text()
    assert VICTIM not in {r["recording_id"] for r in read_index(dataset)}


def test_duplicated_recording_is_caught(dsads_copy):
    dataset = dsads_copy / "dsads"
    shutil.copy(dataset / "recordings" / "s02_a12.parquet", dataset / "recordings" / "s02_a12_again.parquet")
    report = validate_dataset(dataset, ValidationConfig(max_quarantine_share=0.5))
    assert report.quarantined == ["s02_a12_again"]
    (dup,) = [r for r in report.reports if not r.ok]
    assert dup.messages() == ["duplicate of recording 's02_a12' (identical content)"]
    assert (dataset / "recordings" / "s02_a12.parquet").exists()


def test_clean_data_passes_untouched(dsads_copy):
    before = _bytes(dsads_copy / "dsads")
    report = validate_dataset(dsads_copy / "dsads", ValidationConfig(jobs=2))
    assert report.n_passed == report.n_recordings == 6 and not report.quarantined
    assert _bytes(dsads_copy / "dsads") == before
    assert not (dsads_copy / "quarantine").exists()


def test_too_many_failures_moves_nothing(dsads_copy):
    dataset = dsads_copy / "dsads"
    for name, fault in [("s01_a01", nan_burst), ("s01_a09", wrong_rate), ("s01_a12", unknown_label)]:
        fault(dataset / "recordings" / f"{name}.parquet")
    before = _bytes(dataset)
    with pytest.raises(ValidationFailed, match=r"3/6 recordings \(50%\) failed validation.*nothing was moved"):
        validate_dataset(dataset, ValidationConfig(max_quarantine_share=0.2))
    assert _bytes(dataset) == before
    assert not (dsads_copy / "quarantine").exists()


def test_nan_ratio_threshold_is_configurable(dsads_copy):
    dataset = dsads_copy / "dsads"
    nan_burst(dataset / "recordings" / f"{VICTIM}.parquet")  # 40 of 7500 samples
    report = validate_dataset(dataset, ValidationConfig(max_nan_ratio=0.01))
    assert not report.quarantined
