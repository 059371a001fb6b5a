"""benchmarks/README.md's results table is generated from the committed result files
(benchmarks/summary.py) and stays equal to what they say."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import summary


def test_the_committed_table_matches_the_result_files():
    assert summary.main(["--check"]) == 0, "run: python -m benchmarks.summary"


def _file(path: Path, models: dict[str, dict[tuple[str, int], float]], complete: bool = True) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    per_model = {
        name: {
            "per_fold": [{"fold": f, "seed": s, "metrics": {"macro_f1": v}} for (f, s), v in runs.items()],
            "params": 100,
            "latency_ms_p50": 0.5,
        }
        for name, runs in models.items()
    }
    result = {"complete_protocol": complete, "protocol": {"name": "loso"}, "models": per_model}
    path.write_text(json.dumps(result))
    return path.parent.name + "/" + path.name


def test_seeds_merge_across_files_and_wins_compare_fold_means(tmp_path):
    a = _file(
        tmp_path / "a" / "x-loso.json",
        {"cmdhar": {("loso-1", 0): 0.8, ("loso-2", 0): 0.9}, "tinyhar": {("loso-1", 0): 0.85, ("loso-2", 0): 0.7}},
    )
    b = _file(tmp_path / "b" / "x-loso.json", {"cmdhar": {("loso-1", 1): 0.9, ("loso-1", 0): 0.8}})
    text = summary.table({"x": [a, b]}, root=tmp_path)
    cmd = next(line for line in text.splitlines() if "`cmdhar`" in line)
    tiny = next(line for line in text.splitlines() if "`tinyhar`" in line)
    assert "| 2 x 2 |" in cmd and "0.867 ±" in cmd  # (0.8 + 0.9 + 0.9) / 3: three trainings, 0.8 once
    assert "| 0 of 2 |" in tiny  # fold 1: 0.85 vs (0.8 + 0.9) / 2 = 0.85 is no win; fold 2 lost


def test_a_training_with_two_scores_or_a_partial_file_is_refused(tmp_path):
    a = _file(tmp_path / "a" / "x.json", {"cmdhar": {("loso-1", 0): 0.8}})
    b = _file(tmp_path / "b" / "x.json", {"cmdhar": {("loso-1", 0): 0.7}})
    with pytest.raises(ValueError, match="another file"):
        summary.table({"x": [a, b]}, root=tmp_path)
    c = _file(tmp_path / "c" / "x.json", {"cmdhar": {("loso-1", 0): 0.8}}, complete=False)
    with pytest.raises(ValueError, match="not a complete LOSO"):
        summary.table({"x": [c]}, root=tmp_path)
