"""Importers on real data: canonical format, units, determinism, and safe failure."""

from __future__ import annotations

import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest

from components.data.importers import import_dataset
from components.data.manifest import G, Manifest
from components.data.recordings import list_recordings, read_index, read_recording
from components.data.sources import ChecksumError
from tests.conftest import DATASETS_DIR, DSADS_SMALL


def _tree_bytes(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_dsads_subset_canonical_format(small_data_dir):
    folder = small_data_dir / "dsads"
    m = Manifest.load(folder)
    assert m.sampling_rate_hz == 25 and len(m.channels) == 45 and len(m.labels) == 19
    assert m.channel_names[:4] == ["torso_acc_x", "torso_acc_y", "torso_acc_z", "torso_gyro_x"]
    assert {c.position for c in m.channels} == {"torso", "right_arm", "left_arm", "right_leg", "left_leg"}
    groups = m.modality_groups()
    assert list(groups) == ["acc", "gyro", "mag"] and all(len(v) == 15 for v in groups.values())
    assert len(m.modality_groups("position")) == 5
    files = list_recordings(folder)
    assert [f.stem for f in files] == ["s01_a01", "s01_a09", "s01_a12", "s02_a01", "s02_a09", "s02_a12"]
    table = pq.read_table(files[0])
    assert table.column_names == m.columns
    assert str(table.schema.field("torso_acc_x").type) == "float"  # float32
    rec = read_recording(files[0], m)
    assert rec.n_samples == 7500 and rec.meta.subject == "1" and len(rec.meta.source_files) == 60
    np.testing.assert_allclose(np.diff(rec.t), 1 / 25)
    # first value of data/a01/p1/s01.txt (SOURCE.md): 8.1305
    assert rec.values[0, 0] == pytest.approx(8.1305, abs=1e-4)
    # sitting: |acc| at the torso ~ g
    assert np.linalg.norm(rec.values[:, :3], axis=1).mean() == pytest.approx(G, rel=0.02)
    index = read_index(folder)
    assert [r["recording_id"] for r in index] == [f.stem for f in files]
    assert {r["labels"] for r in index} == set(DSADS_SMALL["labels"])


def test_usc_had_units_converted_to_si(small_data_dir):
    m = Manifest.load(small_data_dir / "usc-had")
    assert [c.unit for c in m.channels] == ["m/s^2"] * 3 + ["rad/s"] * 3
    assert m.sampling_rate_hz == 100
    rec = read_recording(small_data_dir / "usc-had" / "recordings" / "s01_a09_t1.parquet", m)  # standing
    assert set(rec.labels) == {"standing"}
    assert np.linalg.norm(rec.values[:, :3], axis=1).mean() == pytest.approx(G, rel=0.05)
    assert np.abs(rec.values[:, 3:]).mean() < 0.5  # rad/s at rest, not deg/s


def test_basicmotions_has_no_subjects(small_data_dir):
    m = Manifest.load(small_data_dir / "basicmotions")
    assert m.subject_wise is False
    files = list_recordings(small_data_dir / "basicmotions")
    assert len(files) == 80
    rec = read_recording(files[0], m)
    assert rec.meta.subject == "unknown" and rec.meta.extra["split"] in ("train", "test")
    assert rec.n_samples == 100


def test_import_is_byte_identical(tmp_path, small_data_dir):
    import_dataset("dsads", tmp_path / "data", jobs=2, **DSADS_SMALL)
    assert _tree_bytes(tmp_path / "data" / "dsads") == _tree_bytes(small_data_dir / "dsads")


def test_checksum_mismatch_writes_nothing_and_keeps_previous(tmp_path):
    raw = tmp_path / "raw"
    shutil.copytree(DATASETS_DIR / "uea_basicmotions" / "raw", raw)
    data = tmp_path / "data"
    import_dataset("basicmotions", data, source=raw)
    before = _tree_bytes(data / "basicmotions")
    text = (raw / "BasicMotions_TRAIN.ts").read_text()
    (raw / "BasicMotions_TRAIN.ts").write_text(text.replace("0.079106", "0.079107", 1))
    with pytest.raises(ChecksumError, match="BasicMotions_TRAIN.ts"):
        import_dataset("basicmotions", data, source=raw)
    assert _tree_bytes(data / "basicmotions") == before
    assert sorted(p.name for p in data.iterdir()) == ["basicmotions"]  # no temp folders left


def test_filters_are_checked(tmp_path):
    with pytest.raises(ValueError, match="unknown labels"):
        import_dataset("dsads", tmp_path, labels=["moonwalking"])
    with pytest.raises(ValueError, match="unknown subjects"):
        import_dataset("dsads", tmp_path, subjects=["9"])
    assert not (tmp_path / "dsads").exists()
