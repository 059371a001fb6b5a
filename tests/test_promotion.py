"""Promotion gates and the champion/challenger decision."""

from __future__ import annotations

import dataclasses

import pytest

from components.config import build
from components.evaluation.promotion import PromotionConfig, check_gates, decide, grouped_recall

CFG = PromotionConfig(
    min_macro_f1=0.8,
    max_int8_f1_drop=0.005,
    max_latency_ms=5.0,
    max_model_bytes=1_000_000,
    min_int8_size_ratio=3.0,
    min_class_recall=0.3,
    tolerance=0.01,
)


def candidate(**over):
    c = {
        "macro_f1": 0.90,
        "int8_macro_f1": 0.898,
        "per_class_recall": [0.95, 0.85, 0.7],
        "label_names": ["sitting", "walking", "running"],
        "latency_ms_p50": 1.2,
        "model_bytes": 200_000,
        "int8_size_ratio": 3.4,
    }
    return {**c, **over}


def test_first_model_passing_every_gate_becomes_champion():
    d = decide(candidate(), None, CFG)
    assert d.outcome == "champion" and d.promoted
    assert "no champion yet" in d.reasons[0]
    assert all(g["passed"] for g in d.gates.values())


@pytest.mark.parametrize(
    "override, gate",
    [
        ({"macro_f1": 0.79, "int8_macro_f1": 0.79}, "min_macro_f1"),
        ({"int8_macro_f1": 0.89}, "max_int8_f1_drop"),
        ({"latency_ms_p50": 7.0}, "max_latency_ms"),
        ({"model_bytes": 2_000_000}, "max_model_bytes"),
        ({"int8_size_ratio": 2.3}, "min_int8_size_ratio"),
        ({"per_class_recall": [0.95, 0.1, 0.9]}, "min_class_recall"),
    ],
)
def test_each_gate_can_reject(override, gate):
    d = decide(candidate(**override), None, CFG)
    assert d.outcome == "rejected" and not d.promoted
    failed = [name for name, g in d.gates.items() if not g["passed"]]
    assert failed == [gate]
    assert gate in d.reasons[0]


def test_worst_class_is_named():
    gates = check_gates(candidate(per_class_recall=[0.95, 0.1, 0.9]), CFG)
    assert gates["min_class_recall"]["class"] == "walking"


def test_champion_comparison_with_tolerance():
    assert decide(candidate(macro_f1=0.90), 0.905, CFG).outcome == "champion"  # within tolerance
    d = decide(candidate(macro_f1=0.88, int8_macro_f1=0.879), 0.90, CFG)
    assert d.outcome == "challenger" and "loses to the champion" in d.reasons[0]
    assert decide(candidate(macro_f1=0.70, int8_macro_f1=0.70), 0.90, CFG).outcome == "rejected"


def test_recall_groups_count_confusions_inside_a_group_only():
    names = ["standing", "standing_in_elevator", "walking"]
    # standing: 10 windows, 8 predicted as standing_in_elevator, 2 as walking
    confusion = [[0, 8, 2], [1, 9, 0], [0, 0, 10]]
    assert grouped_recall(confusion, names, ()) == [0.0, 0.9, 1.0]
    assert grouped_recall(confusion, names, (("standing", "standing_in_elevator"),)) == [0.8, 1.0, 1.0]
    with pytest.raises(ValueError, match="unknown classes"):
        grouped_recall(confusion, names, (("standing", "standin_in_elevator"),))

    cand = {
        "macro_f1": 0.9,
        "int8_macro_f1": 0.9,
        "per_class_recall": [0.0, 0.9, 1.0],
        "confusion": confusion,
        "label_names": names,
        "latency_ms_p50": 1.0,
        "model_bytes": 1000,
        "int8_size_ratio": 3.5,
    }
    strict = dataclasses.replace(CFG, min_class_recall=0.5)
    assert not check_gates(cand, strict)["min_class_recall"]["passed"]
    grouped = build(PromotionConfig, {**dataclasses.asdict(strict), "recall_groups": [list(names[:2])]})
    gate = check_gates(cand, grouped)["min_class_recall"]
    assert gate["passed"] and gate["value"] == 0.8 and gate["strict_min"] == 0.0 and gate["strict_class"] == "standing"
    assert "strict recall 0 (standing)" in decide(cand, None, grouped).reasons[-1]
    # a confusion outside the group still fails the gate
    cand_bad = {**cand, "confusion": [[0, 2, 8], [1, 9, 0], [0, 0, 10]]}
    assert not check_gates(cand_bad, grouped)["min_class_recall"]["passed"]
