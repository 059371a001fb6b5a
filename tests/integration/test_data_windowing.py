"""Windowing and subject-wise splitting on real recordings."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from components.data.manifest import Manifest
from components.data.recordings import list_recordings, read_recording, source_splits
from components.data.splitting import SplitConfig, SplitError, SplitWindows, make_folds, split_windows
from components.data.window_set import WindowSet
from components.data.windowing import WindowConfig, window_dataset, window_recording


@pytest.fixture(scope="module")
def dsads(small_data_dir):
    return window_dataset(small_data_dir / "dsads", WindowConfig(length_s=3.0, overlap=0.5))


@pytest.fixture(scope="module")
def dsads_recording(small_data_dir):
    m = Manifest.load(small_data_dir / "dsads")
    return m, read_recording(list_recordings(small_data_dir / "dsads")[0], m)


def test_window_counts_and_boundaries(dsads, dsads_recording):
    m, rec = dsads_recording
    length, hop = WindowConfig(3.0, 0.5).samples(25)
    assert (length, hop) == (75, 38)
    per_recording = (7500 - length) // hop + 1
    assert len(dsads) == 6 * per_recording
    for rid in np.unique(dsads.recording):  # windows never cross recordings
        starts = np.sort(dsads.start_s[dsads.recording == rid])
        assert starts[0] == 0 and starts[-1] * 25 + length <= 7500
    # window content equals the recording slice it was cut from
    first = dsads.select(dsads.recording == rec.meta.recording_id)
    k = 7
    np.testing.assert_array_equal(first.x[k], rec.values[k * hop : k * hop + length].T)
    assert dsads.modality_groups == m.modality_groups()
    assert dsads.provenance["window_length"] == 75 and dsads.provenance["hop"] == 38


def test_majority_label_and_unlabeled_samples(dsads_recording):
    m, rec = dsads_recording
    index = {name: i for i, name in enumerate(m.labels)}
    labels = rec.labels.copy()
    labels[:50] = None  # window 0 (0-74): 50 of 75 unlabeled -> dropped
    labels[76:120] = "standing"  # window 2 (76-150): 44 standing vs 31 sitting -> standing
    rec.labels = labels
    x, y, starts = window_recording(rec, 75, 38, index)
    assert starts[0] == 38  # the mostly-unlabeled first window is gone
    assert y[list(starts).index(76)] == index["standing"]
    assert np.all(y[starts >= 152] == index["sitting"])
    # threshold: drop windows whose majority share < 0.7 (window at 76 has 44/75 = 0.59)
    _, _, kept = window_recording(rec, 75, 38, index, min_majority=0.7)
    assert 76 not in kept and 38 not in kept  # window 38-112: 37 standing, 26 sitting, 12 unlabeled
    # fully unlabeled recording gives no windows
    rec.labels = np.array([None] * rec.n_samples, dtype=object)
    assert len(window_recording(rec, 75, 38, index)[1]) == 0


def test_bad_window_config():
    with pytest.raises(ValueError, match="overlap"):
        WindowConfig(3.0, 1.0).samples(25)
    with pytest.raises(ValueError, match="under 2 samples"):
        WindowConfig(0.01, 0.5).samples(25)


SUBJECTS = [str(i) for i in range(1, 9)]


@pytest.mark.parametrize(
    "cfg",
    [
        SplitConfig("holdout", test_subjects=("8",), val_subjects=("7",)),
        SplitConfig("holdout", test_subjects=("3", "4"), val_share=0.2),
        SplitConfig("loso", val_share=0.2),
        SplitConfig("kfold", n_folds=4),
        SplitConfig("kfold", n_folds=3, seed=5),
    ],
)
def test_no_subject_in_two_parts(cfg):
    folds = make_folds(SUBJECTS, cfg)
    for f in folds:
        parts = [set(f.train), set(f.val), set(f.test)]
        for a, b in itertools.combinations(parts, 2):
            assert not a & b, f
        assert set().union(*parts) == set(SUBJECTS)
    tested = [s for f in folds for s in f.test]
    if cfg.protocol != "holdout":  # every subject is tested exactly once
        assert sorted(tested, key=int) == SUBJECTS
    if cfg.protocol == "loso":
        assert len(folds) == 8 and all(len(f.val) == 1 for f in folds)  # round(0.2 * 7)


def test_holdout_default_and_errors():
    (fold,) = make_folds(SUBJECTS, SplitConfig("holdout", ("8",), ("7",)))
    assert fold.train == ("1", "2", "3", "4", "5", "6") and fold.val == ("7",) and fold.test == ("8",)
    with pytest.raises(SplitError, match=r"\['9'\]"):
        make_folds(SUBJECTS, SplitConfig("holdout", ("9",)))
    with pytest.raises(SplitError, match="n_folds"):
        make_folds(SUBJECTS, SplitConfig("kfold", n_folds=9))


def test_split_windows_standardises_on_train_only(dsads, tmp_path):
    (split,) = split_windows(dsads, SplitConfig("holdout", test_subjects=("2",), val_share=0.0))
    assert set(split.train.subject) == {"1"} and set(split.test.subject) == {"2"}
    np.testing.assert_allclose(split.standardizer.mean, split.train.x.mean(axis=(0, 2)), rtol=1e-5)
    assert not np.allclose(split.standardizer.mean, dsads.x.mean(axis=(0, 2)), rtol=1e-3)
    train, _, test = split.standardized()
    assert abs(train.x.mean()) < 1e-3 and abs(train.x.std() - 1) < 0.05
    assert abs(test.x.mean()) > 1e-3  # unseen subject: not exactly standardised
    # round trip through the npz artifact (no pickle)
    loaded = SplitWindows.load(split.save(tmp_path / "split"))
    np.testing.assert_array_equal(loaded.test.x, split.test.x)
    assert loaded.fold == split.fold and loaded.standardizer == split.standardizer
    assert loaded.provenance["protocol"] == "holdout"


def test_subject_free_dataset_refuses_subject_wise_protocols(small_data_dir):
    ws = window_dataset(small_data_dir / "basicmotions", WindowConfig(10.0, 0.0))
    with pytest.raises(SplitError, match="no subject ids"):
        split_windows(ws, SplitConfig("loso"))
    (split,) = split_windows(
        ws, SplitConfig("predefined", val_share=0.25), source_splits(small_data_dir / "basicmotions")
    )
    assert len(split.test) == 40 and len(split.train) + len(split.val) == 40 and len(split.val) == 10
    assert not set(split.train.recording) & set(split.val.recording)
    assert all(r.startswith("test_") for r in split.test.recording)


def test_windowset_npz_roundtrip(dsads, tmp_path):
    path = dsads.save(tmp_path / "w.npz")
    loaded = WindowSet.load(path)
    np.testing.assert_array_equal(loaded.x, dsads.x)
    assert loaded.label_names == dsads.label_names and loaded.provenance == dsads.provenance
    np.load(path, allow_pickle=False)  # no object arrays inside
