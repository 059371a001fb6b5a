"""Per-fold model selection on validation subjects: the benchmark's only way to choose.

A selection (``har benchmark --select NAME=A+B``) is a row of the result that, in every
(fold, seed), reports the test metrics of whichever candidate scored the highest best-epoch
validation macro-F1 on *that fold's* validation subjects, which never include its test
subject. The rule is fixed here, before any run: highest ``best_val_macro_f1``; on a tie the
candidate named first. Test metrics are never read to choose. The result file keeps every
candidate's validation score and the choice per fold, so the choice can be checked.

A (fold, seed) where a candidate has no usable record (failed, cut short, not run yet) gets
no choice: it is listed under ``incomplete`` and left out of the selection's means.
Nothing here imports torch.
"""

from __future__ import annotations

from typing import Any

from components.benchmark.ledger import usable

RULE = (
    "per fold and seed: the candidate with the highest best-epoch validation macro-F1 on the fold's "
    "validation subjects (never its test subjects); ties go to the candidate named first"
)


def parse_select(text: str | None) -> dict[str, list[str]]:
    """``"cmdhar-chosen=cmdhar+cmdhar-with-modulation"`` -> ``{name: [candidates]}``.

    Several selections are separated by commas. Raises ``ValueError`` on an item that is not
    ``NAME=A+B[+...]`` with two or more distinct candidates.
    """
    out: dict[str, list[str]] = {}
    for item in (text or "").split(","):
        item = item.strip()
        if not item:
            continue
        name, sep, raw = (part.strip() for part in item.partition("="))
        candidates = [c.strip() for c in raw.split("+") if c.strip()]
        if not sep or not name or len(candidates) < 2 or len(set(candidates)) != len(candidates):
            raise ValueError(
                f"--select item {item!r} is not NAME=A+B (two or more distinct candidates, "
                "e.g. cmdhar-chosen=cmdhar+cmdhar-with-modulation)"
            )
        if name in out:
            raise ValueError(f"--select names {name!r} twice")
        out[name] = candidates
    return out


def select_per_fold(
    records: dict[str, list[dict[str, Any]]], candidates: list[str]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The chosen candidate's record per (fold, seed), and what the choice looked at.

    Args:
        records: model name -> its task records (as :func:`components.benchmark.execute.run_task`
            writes them: ``fold``, ``seed``, ``best_val_macro_f1``, ``metrics``, ...).
        candidates: the models to choose between, in order of preference on a tie.

    Returns:
        ``(chosen, selection)``: copies of the chosen records, each with ``selected_model``; and
        ``{"rule", "candidates", "per_fold": [{fold, seed, val_macro_f1: {candidate: f1},
        chosen}], "chosen_count": {candidate: n}, "incomplete": [{fold, seed, missing}]}``.
    """
    by_key: dict[str, dict[tuple[str, int], dict[str, Any]]] = {
        c: {(r["fold"], r["seed"]): r for r in records.get(c, [])} for c in candidates
    }
    keys = sorted({k for c in candidates for k in by_key[c]})
    chosen: list[dict[str, Any]] = []
    per_fold: list[dict[str, Any]] = []
    incomplete: list[dict[str, Any]] = []
    for fold, seed in keys:
        recs = {c: by_key[c].get((fold, seed)) for c in candidates}
        missing = [c for c, r in recs.items() if r is None or not usable(r) or r.get("best_val_macro_f1") is None]
        if missing:
            incomplete.append({"fold": fold, "seed": seed, "missing": missing})
            continue
        val = {c: float(r["best_val_macro_f1"]) for c, r in recs.items()}
        best = max(candidates, key=lambda c: (val[c], -candidates.index(c)))
        per_fold.append({"fold": fold, "seed": seed, "val_macro_f1": val, "chosen": best})
        chosen.append({**recs[best], "selected_model": best})
    selection = {
        "rule": RULE,
        "candidates": list(candidates),
        "per_fold": per_fold,
        "chosen_count": {c: sum(p["chosen"] == c for p in per_fold) for c in candidates},
        "incomplete": incomplete,
    }
    return chosen, selection
