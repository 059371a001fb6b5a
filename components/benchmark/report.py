"""Write a benchmark result: ``<stem>.json``, ``<stem>.md`` and the ``<stem>.png`` summary plot.

The stem is ``<dataset>-<protocol>``, with ``-smoke`` for runs that deviate from the full
protocol; both text files are written atomically.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from components.benchmark.ledger import fold_order
from components.benchmark.targets import render_targets
from components.io_utils import atomic_write_text


def write_result(result: dict[str, Any], out_dir: Path) -> Path:
    """Write ``result`` (and its plot, named in ``result["plot"]``) to ``out_dir``; the JSON path."""
    stem = f"{result['data']['dataset']}-{result['protocol']['name']}" + (
        "" if result["complete_protocol"] else "-smoke"
    )
    json_path = out_dir / f"{stem}.json"
    plot = write_summary_plot(result, out_dir / f"{stem}.png")
    result["plot"] = plot.name if plot else None
    atomic_write_text(json_path, json.dumps(result, indent=2, default=str))
    atomic_write_text(out_dir / f"{stem}.md", render_markdown(result))
    return json_path


def _fold_key(fold: str, seed: int, seeds: int) -> str:
    short = fold.removeprefix("loso-")
    return short if seeds == 1 else f"{short}/s{seed}"


def _per_fold_f1(result: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Model -> fold label (test subject, ``/s<seed>`` with several seeds) -> test macro-F1."""
    seeds = result["settings"]["seeds"]
    return {
        n: {_fold_key(r["fold"], r["seed"], seeds): r["metrics"]["macro_f1"] for r in m["per_fold"]}
        for n, m in result["models"].items()
    }


def _per_fold_table(result: dict[str, Any]) -> list[str]:
    """Markdown: test macro-F1 of every model on every fold (and seed)."""
    cells = _per_fold_f1(result)
    cols = sorted({k for c in cells.values() for k in c}, key=fold_order)
    if len(cols) < 2:
        return []
    lines = ["", "Test macro-F1 per fold (column = test subject):", ""]
    lines += ["| model | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]
    for n, c in cells.items():
        lines.append(f"| {n} | " + " | ".join(_fmt(c.get(k)) for k in cols) + " |")
    return lines


def _per_class_table(result: dict[str, Any]) -> list[str]:
    """Markdown: per-class F1 (mean over folds), one column per model."""
    models = {n: m["per_class_f1_mean"] for n, m in result["models"].items() if m.get("per_class_f1_mean")}
    if not models:
        return []
    classes = list(next(iter(models.values())))
    lines = ["", "Per-class F1, mean over folds:", ""]
    lines += ["| class | " + " | ".join(models) + " |", "|---|" + "---:|" * len(models)]
    for c in classes:
        lines.append(f"| {c} | " + " | ".join(_fmt(pc.get(c)) for pc in models.values()) + " |")
    pr = {
        n: (m["per_class_precision_mean"], m["per_class_recall_mean"])
        for n, m in result["models"].items()
        if m.get("per_class_precision_mean") and m.get("per_class_recall_mean")
    }
    if pr:
        lines += ["", "Per-class precision / recall, mean over folds:", ""]
        lines += ["| class | " + " | ".join(pr) + " |", "|---|" + "---:|" * len(pr)]
        for c in classes:
            cells = [f"{_fmt(p.get(c), 2)} / {_fmt(r.get(c), 2)}" for p, r in pr.values()]
            lines.append(f"| {c} | " + " | ".join(cells) + " |")
    return lines


def write_summary_plot(result: dict[str, Any], path: Path) -> Path | None:
    """``<stem>.png``: per-fold macro-F1 and the per-class heatmap; None without matplotlib
    (a bare GPU box) or without finished runs."""
    try:
        from components.evaluation.plots import plot_benchmark_summary
    except ImportError:
        return None
    per_fold = {n: f1 for n, f1 in _per_fold_f1(result).items() if f1}
    if not per_fold:
        return None
    per_class = {n: result["models"][n].get("per_class_f1_mean") or {} for n in per_fold}
    ref = result["published_reference"]["datasets"].get(result["data"]["dataset"])
    title = f"{result['data']['dataset']} / {result['protocol']['name']}" + (
        "" if result["complete_protocol"] else " (smoke / partial)"
    )
    plot_benchmark_summary(per_fold, per_class, title=title, reference=ref, path=path)
    return path


def _selection_tables(result: dict[str, Any]) -> list[str]:
    """Per selection row: every candidate's validation macro-F1 and the choice, per fold."""
    lines: list[str] = []
    for name, m in result["models"].items():
        sel = m.get("selection")
        if not sel:
            continue
        cands = sel["candidates"]
        lines += ["", f"Selection `{name}`: {sel['rule']}.", ""]
        lines += ["| fold | seed | " + " | ".join(f"val {c}" for c in cands) + " | chosen |"]
        lines += ["|---|---:|" + "---:|" * len(cands) + "---|"]
        for p in sel["per_fold"]:
            vals = " | ".join(_fmt(p["val_macro_f1"][c]) for c in cands)
            lines.append(f"| {p['fold']} | {p['seed']} | {vals} | {p['chosen']} |")
        for p in sel["incomplete"]:
            lines.append(
                f"| {p['fold']} | {p['seed']} | " + " | ".join("-" for _ in cands) + " | no choice: "
                f"{', '.join(p['missing'])} missing |"
            )
    return lines


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def render_markdown(result: dict[str, Any]) -> str:
    """The Markdown report written beside the JSON."""
    s = result["settings"]
    lines = [f"# Benchmark: {result['data']['dataset']} / {result['protocol']['name']}", ""]
    if not result["complete_protocol"]:
        lines += [
            "> **SMOKE / PARTIAL RUN - not comparable with published results.**",
            "> " + "; ".join(result["deviations"]),
            "",
        ]
    lines += [
        f"- folds: {len(result['protocol']['folds'])}, seeds: {s['seeds']}, epochs cap: {s['epochs']}, "
        f"patience: {s['patience']}, device: {s['device']}, jobs: {s['jobs']}",
        f"- git: `{result['git'].get('commit')}`{' (dirty)' if result['git'].get('dirty') else ''}; "
        f"data.dvc md5: `{result['data'].get('data_dvc_md5')}`; windows sha256: "
        f"`{(result['data'].get('windows_sha256') or '')[:16]}`",
        f"- environment: Python {result['environment']['python']}, torch {result['environment']['torch']}, "
        f"CPU {result['environment']['cpu']}, GPU {result['environment']['gpu'] or '-'}",
    ]
    if result.get("ledger"):
        led = result["ledger"]
        lines.append(
            f"- resumed from the ledger `{led['root']}` ({', '.join(Path(d).name for d in led['dirs'])}): "
            f"{led['reused']} trainings from earlier runs (each record names its own commit and machine), "
            f"{led['ran']} run now"
        )
    lines += [
        "",
        "| model | macro-F1 | ± std | accuracy | balanced acc. | G-mean | params | MACs/window "
        "| ONNX KiB | ORT p50 ms | torch p50 ms | train s/run |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, m in result["models"].items():
        size = m.get("onnx_size_bytes")
        label = name + (" (" + ", ".join(f"{k}={v}" for k, v in m["hparams"].items()) + ")" if m.get("hparams") else "")
        lines.append(
            f"| {label} | {_fmt(m['macro_f1_mean'])} | {_fmt(m['macro_f1_std'])} | {_fmt(m['accuracy_mean'])} "
            f"| {_fmt(m['balanced_accuracy_mean'])} | {_fmt(m['gmean_mean'])} | {_fmt(m.get('params'))} "
            f"| {_fmt(m.get('macs_per_window'))} | {_fmt(size / 1024 if size else None, 1)} "
            f"| {_fmt(m.get('latency_ms_p50'))} | {_fmt(m.get('latency_ms_p50_torch'))} "
            f"| {_fmt(m.get('train_seconds_mean'), 1)} |"
        )
    miss = {
        n: m["missing_modality_macro_f1_mean"]
        for n, m in result["models"].items()
        if m.get("missing_modality_macro_f1_mean")
    }
    if miss:
        groups = list(next(iter(miss.values())))
        lines += ["", "Macro-F1 with one modality removed (`modality_mask`):", ""]
        lines += ["| model | " + " | ".join(f"no {g}" for g in groups) + " |", "|---|" + "---:|" * len(groups)]
        for n, mm in miss.items():
            lines.append(f"| {n} | " + " | ".join(_fmt(mm.get(g)) for g in groups) + " |")
    lines += _selection_tables(result)
    lines += render_targets(result.get("targets") or [])
    lines += _per_fold_table(result)
    if result.get("plot"):
        lines += ["", f"![per-fold and per-class F1]({result['plot']})"]
    lines += _per_class_table(result)
    ref = result["published_reference"]["datasets"].get(result["data"]["dataset"])
    if ref:
        lines += [
            "",
            f"Published reference ({result['published_reference']['source']}), **not like for like**: "
            f"{result['published_reference']['note']}.",
            "",
        ]
        lines += ["| model | macro-F1 |", "|---|---:|"] + [f"| {k} | {v:.3f} |" for k, v in ref.items()]
    if result["failures"]:
        lines += ["", "## Failed tasks", ""]
        lines += [f"- {f['model']} / {f['fold']} / seed {f['seed']}: {f['error']}" for f in result["failures"]]
    if result.get("skipped") or result.get("truncated"):
        lines += ["", "## Not run or cut short (time budget)", ""]
        lines += [f"- not run: {t['model']} / {t['fold']} / seed {t['seed']}" for t in result.get("skipped", [])]
        lines += [f"- cut short: {t['model']} / {t['fold']} / seed {t['seed']}" for t in result.get("truncated", [])]
    lines += ["", f"Protocol: {result['protocol']['description']}", ""]
    return "\n".join(lines)
