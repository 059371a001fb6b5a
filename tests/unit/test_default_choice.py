"""The default-setting rules of docs/decisions/clean-protocol.md (benchmarks/default_choice.py):
validation scores only, the averaging, the margin's direction, and no decision on missing runs.
Result files are built by hand."""

from __future__ import annotations

import json

import pytest

from benchmarks import default_choice as dc


def _result(dataset: str, scores: dict[str, list[tuple[float, float]]], seeds: int = 1) -> dict:
    """scores: model -> per (fold, seed) in fold-major order: (validation, test) macro-F1."""
    n_folds = len(next(iter(scores.values()))) // seeds
    folds = [{"name": f"loso-{i + 1}"} for i in range(n_folds)]
    models = {
        name: {
            "per_fold": [
                {"fold": f"loso-{k // seeds + 1}", "seed": k % seeds, "best_val_macro_f1": v}
                | {"metrics": {"macro_f1": t}}
                for k, (v, t) in enumerate(pairs)
            ]
        }
        for name, pairs in scores.items()
    }
    return {"data": {"dataset": dataset}, "protocol": {"folds": folds}, "settings": {"seeds": seeds}, "models": models}


def test_validation_means_average_seeds_within_a_fold_then_folds():
    result = _result("d", {"m": [(0.8, 0.0), (0.6, 0.0), (0.9, 0.0), (0.9, 0.0)]}, seeds=2)
    assert dc.validation_means(result, ["m"]) == {"m": pytest.approx(((0.8 + 0.6) / 2 + 0.9) / 2)}


def test_a_missing_run_decides_nothing():
    result = _result("d", {"a": [(0.8, 0.8), (0.8, 0.8)], "b": [(0.9, 0.9)] * 2})
    result["models"]["b"]["per_fold"].pop()
    with pytest.raises(dc.Incomplete, match="b: no validation score for 1 of 2 runs"):
        dc.validation_means(result, ["a", "b"])


@pytest.mark.parametrize(
    "challenger, margin, default",
    [
        (0.796, -0.005, "c"),  # within what the challenger may cost: adopted
        (0.794, -0.005, "inc"),  # costs more: the incumbent stays
        (0.804, 0.005, "inc"),  # wins by less than the margin: the incumbent stays
        (0.806, 0.005, "c"),
    ],
)
def test_the_margin_decides_between_incumbent_and_best_challenger(challenger, margin, default):
    per_dataset = {"x": {"inc": 0.8, "c": challenger, "worse": 0.7}, "y": {"inc": 0.8, "c": challenger, "worse": 0.7}}
    choice = dc.decide(per_dataset, "inc", ["worse", "c"], margin)
    assert choice["best_challenger"] == "c" and choice["default"] == default


def test_the_cli_reads_validation_never_test(tmp_path, monkeypatch, capsys):
    inc, challengers, _ = dc.RULES["modulation"]
    # the incumbent has the best test scores everywhere; alpha 0.5 the best validation mean
    scores_a = {inc: [(0.80, 0.99)] * 3, challengers[0]: [(0.70, 0.98)] * 3}
    scores_a |= {challengers[1]: [(0.82, 0.10)] * 3, challengers[2]: [(0.81, 0.50)] * 3}
    scores_b = {name: [(v - 0.05, t) for v, t in pairs[:2]] for name, pairs in scores_a.items()}
    for name, res in (("a.json", _result("da", scores_a)), ("b.json", _result("db", scores_b))):
        (tmp_path / name).write_text(json.dumps(res))
    monkeypatch.setattr(dc, "RESULTS_DIR", tmp_path)
    written = {}
    monkeypatch.setattr(dc, "write_result", lambda name, rec: written.setdefault(name, rec) and tmp_path / name)
    monkeypatch.setattr(dc, "environment", dict)
    assert dc.main(["modulation", "--results", "a.json,b.json"]) == 0
    record = written["default-choice-modulation"]
    assert record["default"] == challengers[1]
    assert record["overall"][challengers[1]] == pytest.approx(0.795)
    assert set(record["files"]) == {"a.json", "b.json"}
    assert "default: cmdhar-with-modulation" in capsys.readouterr().out


def test_the_cli_refuses_an_incomplete_file(tmp_path, monkeypatch, capsys):
    inc, challengers, _ = dc.RULES["class-weighting"]
    (tmp_path / "a.json").write_text(json.dumps(_result("da", {inc: [(0.8, 0.8)], challengers[0]: [(0.9, 0.9)]})))
    monkeypatch.setattr(dc, "RESULTS_DIR", tmp_path)
    assert dc.main(["class-weighting", "--results", "a.json", "--no-write"]) == 2
    assert "no decision: cmdhar-unweighted: no validation score for 1 of 1 runs" in capsys.readouterr().err
