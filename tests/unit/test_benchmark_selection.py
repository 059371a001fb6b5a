"""Per-fold selection on validation subjects (components/benchmark/selection.py): the rule,
its ties, and what happens when a candidate's record is missing. Records are built by hand."""

from __future__ import annotations

import pytest

from components.benchmark.selection import parse_select, select_per_fold


def _rec(fold: str, val: float, test: float, seed: int = 0, **extra) -> dict:
    return {"fold": fold, "seed": seed, "best_val_macro_f1": val, "metrics": {"macro_f1": test}, **extra}


def test_the_choice_reads_validation_scores_only():
    records = {
        # fold 1: a wins on validation although b has the better test score
        "a": [_rec("loso-1", 0.90, 0.70), _rec("loso-2", 0.80, 0.95)],
        "b": [_rec("loso-1", 0.85, 0.99), _rec("loso-2", 0.81, 0.60)],
    }
    chosen, sel = select_per_fold(records, ["a", "b"])
    assert [(r["fold"], r["selected_model"], r["metrics"]["macro_f1"]) for r in chosen] == [
        ("loso-1", "a", 0.70),
        ("loso-2", "b", 0.60),
    ]
    assert sel["chosen_count"] == {"a": 1, "b": 1} and sel["incomplete"] == []
    assert sel["per_fold"][0] == {"fold": "loso-1", "seed": 0, "val_macro_f1": {"a": 0.90, "b": 0.85}, "chosen": "a"}
    assert "never its test subjects" in sel["rule"]


def test_a_tie_goes_to_the_candidate_named_first():
    records = {"a": [_rec("loso-1", 0.9, 0.1)], "b": [_rec("loso-1", 0.9, 0.9)]}
    assert select_per_fold(records, ["b", "a"])[0][0]["selected_model"] == "b"
    assert select_per_fold(records, ["a", "b"])[0][0]["selected_model"] == "a"


def test_a_fold_without_every_candidate_gets_no_choice():
    records = {
        "a": [_rec("loso-1", 0.9, 0.9), _rec("loso-2", 0.9, 0.9), _rec("loso-3", 0.9, 0.9)],
        "b": [
            _rec("loso-1", 0.5, 0.5),
            _rec("loso-2", 0.99, 0.9, truncated="cut"),
            {"fold": "loso-3", "seed": 0, "error": "x"},
        ],
    }
    chosen, sel = select_per_fold(records, ["a", "b"])
    assert [r["fold"] for r in chosen] == ["loso-1"]
    assert sel["incomplete"] == [
        {"fold": "loso-2", "seed": 0, "missing": ["b"]},
        {"fold": "loso-3", "seed": 0, "missing": ["b"]},
    ]


def test_parse_select():
    assert parse_select("x=cmdhar+tinyhar, y=cnn+cmdhar+tinyhar") == {
        "x": ["cmdhar", "tinyhar"],
        "y": ["cnn", "cmdhar", "tinyhar"],
    }
    assert parse_select(None) == {} and parse_select("") == {}
    for bad in ("x=cmdhar", "x=cmdhar+cmdhar", "cmdhar+tinyhar", "=a+b", "x=a+b,x=c+d"):
        with pytest.raises(ValueError, match="--select"):
            parse_select(bad)
