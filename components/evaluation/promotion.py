"""Evaluation gates and the champion/challenger decision (pure logic, no MLflow).

A candidate is promoted only if it passes every gate *and* is not worse than the
current champion (evaluated on the same test split of the same data version), or the
best champion ever recorded on that split, by more than ``tolerance`` macro-F1; on the
champion's own data it must beat the champion. A candidate that passes the gates but loses becomes a
``challenger``; one that fails a gate is ``rejected``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class PromotionConfig:
    """Thresholds (``configs/train.yaml`` -> ``promotion:``; the defaults are that file's values,
    tests/unit/test_config_defaults.py keeps them equal)."""

    min_macro_f1: float = 0.75  # test macro-F1 (holdout subject)
    max_int8_f1_drop: float = 0.005  # 0.5 macro-F1 points
    max_latency_ms: float = 10.0  # int8, batch 1, 1 thread, ONNX Runtime, p50
    max_model_bytes: int = 2_000_000  # int8 file
    min_int8_size_ratio: float = 2.0  # fp32 file bytes / int8 file bytes (both compacted the same way)
    min_class_recall: float = 0.20  # no class left behind
    tolerance: float = 0.005  # may be this much worse than the champion and still win
    # classes the sensors cannot tell apart, by label name: for the recall gate, a window
    # predicted as another class of its group counts as recalled (the strict recall is
    # still reported beside it). Empty: every class on its own.
    recall_groups: tuple[tuple[str, ...], ...] = ()

    def __post_init__(self) -> None:  # YAML gives lists
        object.__setattr__(self, "recall_groups", tuple(tuple(g) for g in self.recall_groups))


# Gates any trained model passes: for runs that check the plumbing (tests, `make rehearsal`),
# never for a model that is served.
OPEN_GATES = {
    "min_macro_f1": 0.0,
    "max_int8_f1_drop": 1.0,
    "max_latency_ms": 1000.0,
    "max_model_bytes": 50_000_000,
    "min_int8_size_ratio": 1.0,
    "min_class_recall": 0.0,
    "tolerance": 0.0,
}


@dataclass
class Decision:
    """The promotion outcome and every reason behind it."""

    outcome: str  # "champion" | "challenger" | "rejected"
    reasons: list[str]
    gates: dict[str, dict[str, Any]] = field(default_factory=dict)
    champion_macro_f1: float | None = None

    @property
    def promoted(self) -> bool:
        return self.outcome == "champion"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "promoted": self.promoted}


def grouped_recall(confusion: list[list[int]], names: list[str], groups: tuple[tuple[str, ...], ...]) -> list[float]:
    """Per-class recall where a prediction of any class in the true class's group counts.

    ``confusion[i][j]`` = windows of true class ``i`` predicted as ``j``. Classes with no
    windows get 0 (the caller only looks at classes present). Unknown names in ``groups``
    raise ``ValueError``, so a typo in the config cannot silently switch the policy off.
    """
    index = {n: i for i, n in enumerate(names)}
    unknown = sorted({n for g in groups for n in g} - set(index))
    if unknown:
        raise ValueError(f"recall_groups name unknown classes {unknown}; classes: {names}")
    mates = {i: {i} for i in range(len(names))}
    for g in groups:
        members = {index[n] for n in g}
        for i in members:
            mates[i] |= members
    out = []
    for i, row in enumerate(confusion):
        support = sum(row)
        out.append(sum(row[j] for j in mates[i]) / support if support else 0.0)
    return out


def checked_classes(candidate: dict[str, Any]) -> list[int]:
    """Positions of the classes the recall gate checks: every class with test windows.

    ``support`` (true windows per class) decides when given; else ``present``, the boolean
    mask that :func:`classification_metrics` returns; else every class.
    """
    n = len(candidate["per_class_recall"])
    mask = candidate.get("support")
    if mask is not None:
        mask = [s > 0 for s in mask]
    else:
        mask = candidate.get("present")
    if mask is None:
        return list(range(n))
    if len(mask) != n or not all(isinstance(m, bool) for m in mask):
        raise ValueError(f"support/present must have one entry per class ({n}), got {list(mask)!r}")
    return [i for i, m in enumerate(mask) if m]


def check_gates(candidate: dict[str, Any], cfg: PromotionConfig) -> dict[str, dict[str, Any]]:
    """Evaluate every gate. ``candidate`` keys: macro_f1, int8_macro_f1, per_class_recall,
    latency_ms_p50 (int8), model_bytes (int8), int8_size_ratio (fp32 / int8 file bytes),
    label_names (optional), confusion (needed with ``cfg.recall_groups``)."""
    strict = candidate["per_class_recall"]
    names = candidate.get("label_names") or [str(i) for i in range(len(strict))]
    recalls = strict
    if cfg.recall_groups:
        if candidate.get("confusion") is None:
            raise ValueError("recall_groups needs the candidate's confusion matrix")
        recalls = grouped_recall(candidate["confusion"], names, cfg.recall_groups)
    present = checked_classes(candidate)
    worst_i = min(present, key=lambda i: recalls[i]) if present else 0
    below = [names[i] for i in present if recalls[i] < cfg.min_class_recall]
    drop = candidate["macro_f1"] - candidate["int8_macro_f1"]
    return {
        "min_macro_f1": _gate(candidate["macro_f1"], cfg.min_macro_f1, candidate["macro_f1"] >= cfg.min_macro_f1),
        "max_int8_f1_drop": _gate(drop, cfg.max_int8_f1_drop, drop <= cfg.max_int8_f1_drop),
        "max_latency_ms": _gate(
            candidate["latency_ms_p50"], cfg.max_latency_ms, candidate["latency_ms_p50"] <= cfg.max_latency_ms
        ),
        "max_model_bytes": _gate(
            candidate["model_bytes"], cfg.max_model_bytes, candidate["model_bytes"] <= cfg.max_model_bytes
        ),
        "min_int8_size_ratio": _gate(
            candidate["int8_size_ratio"],
            cfg.min_int8_size_ratio,
            candidate["int8_size_ratio"] >= cfg.min_int8_size_ratio,
        ),
        "min_class_recall": {
            **_gate(recalls[worst_i], cfg.min_class_recall, recalls[worst_i] >= cfg.min_class_recall),
            "class": names[worst_i],
            "below": below,
            **(
                {
                    "strict_min": float(min(strict[i] for i in present)) if present else 0.0,
                    "strict_class": names[min(present, key=lambda i: strict[i])] if present else "",
                    "groups": [list(g) for g in cfg.recall_groups],
                }
                if cfg.recall_groups
                else {}
            ),
        },
    }


def _gate(value: float, threshold: float, passed: bool) -> dict[str, Any]:
    return {"value": float(value), "threshold": float(threshold), "passed": bool(passed)}


def decide(
    candidate: dict[str, Any],
    champion_macro_f1: float | None,
    cfg: PromotionConfig,
    best_macro_f1: float | None = None,
    same_data: bool = False,
) -> Decision:
    """Gates first, then the comparison with the champion (``None``: there is none).

    The tolerance is measured from a fixed reference, the best of the champion's score and
    ``best_macro_f1`` (the best test macro-F1 any champion recorded on this same split), so
    that a chain of in-tolerance promotions cannot walk the champion down. On the data the
    champion was trained on (``same_data``) the tolerance does not apply: a candidate must
    beat the champion, so a rerun on unchanged data never replaces it.
    """
    gates = check_gates(candidate, cfg)
    failed = [name for name, g in gates.items() if not g["passed"]]
    reasons = [_describe(name, g) for name, g in gates.items()]
    if failed:
        return Decision("rejected", [f"failed gates: {', '.join(failed)}", *reasons], gates, champion_macro_f1)
    f1 = candidate["macro_f1"]
    if champion_macro_f1 is None:
        return Decision("champion", ["passed every gate; there is no champion yet", *reasons], gates)
    reference = max(champion_macro_f1, best_macro_f1 if best_macro_f1 is not None else champion_macro_f1)
    best = f", best champion on this split {reference:.4f}" if reference > champion_macro_f1 else ""
    if same_data:
        wins = f1 > champion_macro_f1
        rule = f"macro-F1 {f1:.4f} vs champion {champion_macro_f1:.4f} on the champion's own data: must be higher"
    else:
        wins = f1 >= reference - cfg.tolerance
        rule = f"macro-F1 {f1:.4f} vs champion {champion_macro_f1:.4f}{best} (tolerance {cfg.tolerance})"
    if wins:
        return Decision("champion", [f"passed every gate and wins: {rule}", *reasons], gates, champion_macro_f1)
    return Decision(
        "challenger",
        [f"passed every gate but loses to the champion: {rule}", *reasons],
        gates,
        champion_macro_f1,
    )


def _describe(name: str, g: dict[str, Any]) -> str:
    mark = "ok" if g["passed"] else "FAILED"
    cls = f" (class {g['class']})" if "class" in g else ""
    if len(g.get("below") or []) > 1:
        cls += f"; {len(g['below'])} classes below: {', '.join(g['below'])}"
    if "strict_min" in g:
        cls += f"; within recall groups {g['groups']}; strict recall {g['strict_min']:.4g} ({g['strict_class']})"
    return f"{name}: {g['value']:.4g} vs {g['threshold']:.4g}{cls} -> {mark}"
