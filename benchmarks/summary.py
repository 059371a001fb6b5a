"""The one current results table of ``benchmarks/README.md``, generated from the result files.

``CURRENT`` names, per dataset and protocol, the result files that hold its numbers. Their
records are merged per (model, fold, seed); a training found in two files must have the
same test macro-F1 in both (the same ledger record), else this stops. Per model: runs,
seeds, mean ± std of test macro-F1 over every (fold, seed) (std with ddof 1, as in the
files), and the paired comparison with CMD-HAR: on how many folds the model beats
``cmdhar``, each fold's macro-F1 the mean over its seeds, on the folds both have.

    .venv/bin/python -m benchmarks.summary           # rewrite the table in benchmarks/README.md
    .venv/bin/python -m benchmarks.summary --check   # exit 1 if the README's table is stale

Nothing here trains; ``tests/unit/test_benchmarks_summary.py`` runs ``--check``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from components.benchmark.assemble import mean_std
from components.benchmark.targets import fold_means
from components.io_utils import atomic_write_text

RESULTS = Path(__file__).resolve().parent / "results"
README = Path(__file__).resolve().parent / "README.md"
BEGIN, END = "<!-- summary:begin (benchmarks/summary.py) -->", "<!-- summary:end -->"
# "dataset, protocol" -> its result files (relative to benchmarks/results), headline file first;
# a model name means the model of its files' commit (today's `cmdhar` differs from the first two)
CURRENT: dict[str, list[str]] = {
    "DSADS, before the clean protocol": ["cpu-loso-per-step/dsads-loso.json", "cpu-loso-seeds/dsads-loso.json"],
    "USC-HAD, before the clean protocol": ["cpu-loso-per-step/usc-had-loso.json", "cpu-loso-seeds/usc-had-loso.json"],
    "DSADS, clean protocol, width 24": ["loso-width24/dsads-loso.json"],
    "USC-HAD, clean protocol, width 24": ["loso-width24/usc-had-loso.json"],
}
REFERENCE = "cmdhar"


def merged_runs(files: list[str], root: Path = RESULTS) -> tuple[dict[str, dict[tuple[str, int], float]], dict]:
    """``(model -> {(fold, seed): test macro-F1}, model -> efficiency and source)`` over ``files``."""
    runs: dict[str, dict[tuple[str, int], float]] = {}
    info: dict[str, dict[str, Any]] = {}
    for rel in files:
        result = json.loads((root / rel).read_text())
        if not result["complete_protocol"] or result["protocol"]["name"] != "loso":
            raise ValueError(f"{rel}: not a complete LOSO result; only those belong in the table")
        for name, m in result["models"].items():
            mine = runs.setdefault(name, {})
            for r in m["per_fold"]:
                key, f1 = (r["fold"], r["seed"]), r["metrics"]["macro_f1"]
                if key in mine and abs(mine[key] - f1) > 1e-12:
                    raise ValueError(f"{rel}: {name} {key} has macro-F1 {f1}, another file {mine[key]}")
                mine[key] = f1
            entry = info.setdefault(name, {"files": [], "params": None, "latency_ms_p50": None})
            entry["files"].append(rel)
            for k in ("params", "latency_ms_p50"):
                entry[k] = entry[k] if entry[k] is not None else m.get(k)
    return runs, info


def table(current: dict[str, list[str]] = CURRENT, root: Path = RESULTS) -> str:
    """The Markdown table (one row per dataset, protocol and model)."""
    lines = [
        "| dataset, protocol | model | runs (folds x seeds) | test macro-F1 mean ± std | folds above cmdhar "
        "| params | ORT batch-1 ms | result files |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for label, files in current.items():
        runs, info = merged_runs(files, root)
        ref = fold_means(runs.get(REFERENCE, {}))
        order = sorted(runs, key=lambda n: (n != REFERENCE, -mean_std(list(runs[n].values()))[0]))
        for name in order:
            values = list(runs[name].values())
            mean, std = mean_std(values)
            seeds = len({s for _, s in runs[name]})
            folds = len({f for f, _ in runs[name]})
            if name == REFERENCE:
                wins = "-"
            else:
                mine = fold_means(runs[name])
                shared = sorted(set(mine) & set(ref))
                wins = f"{sum(mine[f] > ref[f] for f in shared)} of {len(shared)}"
            params, lat = info[name]["params"], info[name]["latency_ms_p50"]
            links = ", ".join(f"[{f[:-5]}](results/{f[:-5]}.md)" for f in info[name]["files"])
            lines.append(
                f"| {label} | `{name}` | {folds} x {seeds} | {mean:.3f} ± {std:.3f} | {wins} "
                f"| {'-' if params is None else f'{params:,}'} | {'-' if lat is None else f'{lat:.3f}'} | {links} |"
            )
    return "\n".join(lines)


def render(readme: str, body: str) -> str:
    """``readme`` with the text between the markers replaced by ``body``."""
    if BEGIN not in readme or END not in readme:
        raise ValueError(f"{README} lacks the markers {BEGIN} ... {END}")
    head, rest = readme.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{body}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if benchmarks/README.md's table is stale")
    args = parser.parse_args(argv)
    text = README.read_text()
    new = render(text, table())
    if args.check:
        if new != text:
            print("benchmarks/README.md's table is stale: run python -m benchmarks.summary", file=sys.stderr)
            return 1
        return 0
    atomic_write_text(README, new)
    print(f"wrote {README}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
