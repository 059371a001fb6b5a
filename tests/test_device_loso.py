"""benchmarks/device_loso.py: which LOSO folds a device call trains, and in which processes."""

from __future__ import annotations

import json

from benchmarks.device_loso import missing_folds, plan_groups
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
