"""Apply a default-setting rule of docs/decisions/clean-protocol.md to the LOSO result files.

A rule compares an incumbent (today's default) with challengers on **validation** scores only:
each model's mean best-epoch validation macro-F1, per dataset over its folds (each fold the
mean over its seeds), then averaged over the datasets. The best challenger replaces the
incumbent when its mean is at least the incumbent's plus ``margin`` (negative: it may cost up
to that much; positive: it must win by that much). Test metrics are never read. Every model
must have every (fold, seed) of every file, else nothing is decided.

    .venv/bin/python -m benchmarks.default_choice modulation
    .venv/bin/python -m benchmarks.default_choice class-weighting --results loso-width24/dsads-loso.json

writes ``benchmarks/results/default-choice-<rule>.json`` and prints the table.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from benchmarks.common import RESULTS_DIR, environment, write_result
from components.benchmark.targets import fold_means
from components.io_utils import sha256_file

# rule name -> (incumbent, challengers, margin); the text of each is in clean-protocol.md
RULES: dict[str, tuple[str, tuple[str, ...], float]] = {
    "modulation": (
        "cmdhar",
        ("cmdhar-with-modulation-alpha-0-1", "cmdhar-with-modulation", "cmdhar-with-modulation-alpha-1-0"),
        -0.005,
    ),
    "class-weighting": ("cmdhar", ("cmdhar-sqrt-weights", "cmdhar-unweighted"), 0.005),
}
DEFAULT_RESULTS = ("loso-width24/dsads-loso.json", "loso-width24/usc-had-loso.json")


class Incomplete(ValueError):
    """A model lacks a validation score for some (fold, seed) of a result file."""


def validation_means(result: dict[str, Any], models: list[str]) -> dict[str, float]:
    """model -> mean over folds of the fold's mean best-epoch validation macro-F1 over seeds."""
    folds = [f["name"] for f in result["protocol"]["folds"]]
    seeds = int(result["settings"]["seeds"])
    wanted = {(f, s) for f in folds for s in range(seeds)}
    out: dict[str, float] = {}
    for name in models:
        recs = (result["models"].get(name) or {}).get("per_fold") or []
        runs = {(r["fold"], r["seed"]): r["best_val_macro_f1"] for r in recs if r.get("best_val_macro_f1") is not None}
        missing = sorted(wanted - set(runs))
        if missing:
            shown = ", ".join(f"{f} seed {s}" for f, s in missing[:5])
            raise Incomplete(f"{name}: no validation score for {len(missing)} of {len(wanted)} runs ({shown})")
        per_fold = fold_means({k: v for k, v in runs.items() if k in wanted})
        out[name] = sum(per_fold.values()) / len(per_fold)
    return out


def decide(per_dataset: dict[str, dict[str, float]], incumbent: str, challengers: list[str], margin: float) -> dict:
    """The rule on ``dataset -> model -> validation mean``; returns the means and the choice."""
    names = [incumbent, *challengers]
    overall = {n: sum(d[n] for d in per_dataset.values()) / len(per_dataset) for n in names}
    best = max(challengers, key=lambda n: (overall[n], -challengers.index(n)))  # tie: the one listed first
    adopted = overall[best] >= overall[incumbent] + margin
    return {
        "per_dataset": per_dataset,
        "overall": overall,
        "best_challenger": best,
        "difference": overall[best] - overall[incumbent],
        "margin": margin,
        "default": best if adopted else incumbent,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("rule", choices=sorted(RULES))
    ap.add_argument(
        "--results",
        default=",".join(DEFAULT_RESULTS),
        help="comma-separated result files, relative to benchmarks/results (default: both loso-width24 files)",
    )
    ap.add_argument("--no-write", action="store_true", help="print only")
    args = ap.parse_args(argv)
    incumbent, challengers, margin = RULES[args.rule]
    files = [RESULTS_DIR / rel.strip() for rel in args.results.split(",") if rel.strip()]
    per_dataset: dict[str, dict[str, float]] = {}
    try:
        for path in files:
            result = json.loads(path.read_text())
            per_dataset[result["data"]["dataset"]] = validation_means(result, [incumbent, *challengers])
    except (Incomplete, FileNotFoundError) as exc:
        print(f"no decision: {exc}", file=sys.stderr)
        return 2
    choice = decide(per_dataset, incumbent, list(challengers), margin)
    print(f"{args.rule}: mean best-epoch validation macro-F1 (never test)")
    for name, mean in choice["overall"].items():
        cells = "  ".join(f"{d} {m[name]:.4f}" for d, m in per_dataset.items())
        print(f"  {name:36s} {cells}  mean {mean:.4f}")
    print(
        f"best challenger {choice['best_challenger']} ({choice['difference']:+.4f} against {incumbent}, "
        f"margin {margin:+.3f}) -> default: {choice['default']}"
    )
    if not args.no_write:
        record = {
            "rule": args.rule,
            "incumbent": incumbent,
            "challengers": list(challengers),
            "reads": "best_val_macro_f1 of each (fold, seed); test metrics are not read",
            "files": {str(p.relative_to(RESULTS_DIR)): sha256_file(p) for p in files},
            **choice,
            "environment": environment(),
        }
        print(f"wrote {write_result(f'default-choice-{args.rule}', record)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
