"""benchmarks/device_loso.py: which LOSO folds a device call trains, and in which processes."""

from __future__ import annotations

import argparse
import json
import tarfile

import pytest

from benchmarks.device_loso import _copy_back, missing_folds, plan_groups
from components.benchmark.ledger import code_fingerprint, code_scope


def _folder(root, name, model, folds, *, current=True, dataset="usc-had", seed=0, extra=None):
    folder = root / name
    folder.mkdir(parents=True)
    sha = code_fingerprint(model=model) if current else "0" * 64
    fp = {"dataset": dataset, "protocol": "loso", "code_excludes": code_scope(model), "code_sha256": sha}
    (folder / "fingerprint.json").write_text(json.dumps(fp))
    for fold in folds:
        rec = {"model": model, "fold": f"loso-{fold}", "seed": seed, "metrics": {"macro_f1": 0.5}}
        rec |= {"train_subjects": ["1"], "val_subjects": ["2"], "test_subjects": [fold]} | (extra or {})
        (folder / f"{model}__loso-{fold}__seed{seed}.json").write_text(json.dumps(rec))


def test_missing_folds_counts_only_current_kept_seed0_records(tmp_path):
    subjects = [str(s) for s in range(1, 15)]
    _folder(tmp_path, "usc-had-loso-a", "tinyhar", ["1", "2", "7"])
    _folder(tmp_path, "usc-had-loso-b", "tinyhar", ["3"], current=False)  # other code: trained again
    _folder(tmp_path, "usc-had-loso-c", "cnn", ["4"], extra={"truncated": "cut"})  # cut: not kept
    _folder(tmp_path, "usc-had-loso-d", "cnn", ["5"], seed=1)  # another seed does not count
    _folder(tmp_path, "dsads-loso-e", "cnn", ["6"], dataset="dsads")  # another dataset
    missing = missing_folds(tmp_path, "usc-had", ["tinyhar", "cnn"], subjects)
    assert missing["tinyhar"] == [s for s in subjects if s not in {"1", "2", "7"}]
    assert missing["cnn"] == subjects


def test_plan_groups_splits_each_model_evenly_and_skips_finished_models():
    missing = {"tinyhar": [str(s) for s in range(1, 10)], "cnn": [], "deepconvlstm": ["1", "2", "3"]}
    groups = plan_groups(missing, group_size=7)
    assert [(m, len(f)) for m, f in groups] == [("tinyhar", 5), ("tinyhar", 4), ("deepconvlstm", 3)]
    assert sorted(s for m, folds in groups if m == "tinyhar" for s in folds) == sorted(missing["tinyhar"])
    assert plan_groups({"cnn": ["1"]}, group_size=1) == [("cnn", ["1"])]


@pytest.mark.parametrize("where", ["benchmarks/results/ledger", "elsewhere/ledger"])
def test_copy_back_names_archive_members_relative_to_the_ledger(tmp_path, monkeypatch, where):
    # inside the repo (the default) or outside it: one unpack command fits both
    monkeypatch.setattr("benchmarks.device_loso.REPO", tmp_path)
    ledger = tmp_path / where
    _folder(ledger, "usc-had-loso-a", "tinyhar", ["1"])
    _folder(ledger, "dsads-loso-b", "cnn", ["1"], dataset="dsads")  # another dataset: not archived
    log = tmp_path / "usc-had-0.log"
    log.write_text("done tinyhar loso-1\n")
    args = argparse.Namespace(copy_to=tmp_path / "out", ledger=ledger)
    _copy_back("usc-had", args, [log])
    with tarfile.open(args.copy_to / "ledger-usc-had.tgz") as tar:
        names = sorted(tar.getnames())
    assert names == ["usc-had-loso-a", "usc-had-loso-a/fingerprint.json", "usc-had-loso-a/tinyhar__loso-1__seed0.json"]
    assert "done tinyhar loso-1" in (args.copy_to / "usc-had-log.txt").read_text()
