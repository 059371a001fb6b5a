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


def test_recall_gate_checks_every_class_with_metrics_present_mask():
    """``present`` as classification_metrics returns it (booleans): the lowest class of all
    must fail the gate, not class 1 (True used as a position)."""
    from components.metrics import classification_metrics

    # class 0 recalled 1 of 20 (0.05), class 1 18 of 20 (0.9), class 2 10 of 20 (0.5)
    y_true = [0] * 20 + [1] * 20 + [2] * 20
    y_pred = [0] + [1] * 19 + [1] * 18 + [0] * 2 + [2] * 10 + [1] * 10
    m = classification_metrics(y_true, y_pred, 3, ["lying", "walking", "transition"])
    assert m["per_class_recall"] == pytest.approx([0.05, 0.9, 0.5])
    gates = check_gates(
        candidate(per_class_recall=m["per_class_recall"], present=m["present"], label_names=m["label_names"]), CFG
    )
    gate = gates["min_class_recall"]
    assert not gate["passed"]
    assert gate["value"] == pytest.approx(0.05) and gate["class"] == "lying"
    # the same through the support counts that promotion passes
    gates = check_gates(
        candidate(per_class_recall=m["per_class_recall"], support=m["support"], label_names=m["label_names"]), CFG
    )
    assert gates["min_class_recall"]["class"] == "lying" and not gates["min_class_recall"]["passed"]


def test_recall_gate_lists_every_class_below_and_skips_classes_without_test_windows():
    c = candidate(per_class_recall=[0.05, 0.9, 0.1, 0.0], support=[20, 20, 20, 0])
    c["label_names"] = ["a", "b", "c", "absent"]
    d = decide(c, None, CFG)
    gate = d.gates["min_class_recall"]
    assert d.outcome == "rejected" and gate["class"] == "a" and gate["below"] == ["a", "c"]
    assert any("2 classes below: a, c" in r for r in d.reasons)
    # a class with no test windows (recall 0 by convention) is not a failure on its own
    ok = decide(candidate(per_class_recall=[0.95, 0.85, 0.0], support=[10, 10, 0]), None, CFG)
    assert ok.gates["min_class_recall"]["passed"] and ok.gates["min_class_recall"]["value"] == pytest.approx(0.85)


def test_recall_groups_gate_uses_every_present_class():
    cfg = dataclasses.replace(CFG, recall_groups=(("walking", "running"),))
    confusion = [[1, 19, 0], [0, 10, 10], [0, 10, 10]]  # lying 0.05; walking/running grouped 1.0
    c = candidate(per_class_recall=[0.05, 0.5, 0.5], confusion=confusion, support=[20, 20, 20])
    c["label_names"] = ["lying", "walking", "running"]
    gate = check_gates(c, cfg)["min_class_recall"]
    assert not gate["passed"] and gate["class"] == "lying" and gate["strict_class"] == "lying"


def test_recall_gate_rejects_a_malformed_mask():
    with pytest.raises(ValueError, match="one entry per class"):
        check_gates(candidate(present=[0, 2]), CFG)
