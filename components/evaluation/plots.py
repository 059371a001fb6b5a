"""Report figures: confusion matrix, per-class F1, learning curves, modality balance.

Figures are built with :class:`matplotlib.figure.Figure` on an Agg canvas, never
through ``pyplot``: no global figure registry (nothing to close, no leaks in long
runs), no display needed, and the process-wide backend is left alone. Every
function returns the figure and, given ``path``, also writes it as PNG atomically.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from components.io_utils import atomic_write_bytes

DPI = 120


def _new_figure(width: float, height: float, nrows: int = 1, ncols: int = 1) -> tuple[Figure, Any]:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def _pretty(name: str) -> str:
    """``walking_parking_lot`` -> ``walking parking lot``."""
    return str(name).replace("_", " ")


def _maybe_save(fig: Figure, path: str | Path | None) -> None:
    if path is not None:
        save_figure(fig, path)


def save_figure(fig: Figure, path: str | Path, dpi: int = DPI) -> Path:
    """Render ``fig`` to PNG in memory and write it atomically to ``path``."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return atomic_write_bytes(Path(path), buf.getvalue())


def _message_figure(title: str, message: str, path: str | Path | None) -> Figure:
    fig, axes = _new_figure(6, 3)
    ax = axes[0, 0]
    ax.set_axis_off()
    ax.set_title(title)
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=12, color="0.35", transform=ax.transAxes)
    _maybe_save(fig, path)
    return fig


# -- confusion matrix --------------------------------------------------------------------


def plot_confusion_matrix(
    confusion: Sequence[Sequence[float]] | np.ndarray,
    label_names: Sequence[str],
    normalize: bool = True,
    title: str = "Confusion matrix",
    path: str | Path | None = None,
) -> Figure:
    """Heatmap of a confusion matrix (rows = true class, columns = predicted class).

    With ``normalize`` each row is divided by its support (rows without samples stay
    0), so the diagonal reads as per-class recall. Cells are annotated up to 25 classes.
    """
    cm = np.asarray(confusion, dtype=np.float64)
    k = cm.shape[0]
    if cm.shape != (k, k) or len(label_names) != k:
        raise ValueError(f"confusion {cm.shape} does not match {len(label_names)} label names")
    if normalize:
        rows = cm.sum(axis=1, keepdims=True)
        values = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    else:
        values = cm
    names = [_pretty(n) for n in label_names]
    longest = max((len(n) for n in names), default=1)
    side = max(4.5, 0.45 * k + 0.08 * longest + 2.5)
    fig, axes = _new_figure(side + 1.0, side)
    ax = axes[0, 0]
    vmax = 1.0 if normalize else max(float(values.max()), 1.0)
    im = ax.imshow(values, cmap="Blues", vmin=0.0, vmax=vmax, interpolation="nearest")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of true class" if normalize else "count")
    ax.set_xticks(range(k), names, rotation=45, ha="right", rotation_mode="anchor")
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    if k <= 25:
        fontsize = 9 if k <= 12 else 7
        for i in range(k):
            for j in range(k):
                v = values[i, j]
                text = f"{v:.2f}" if normalize else f"{int(round(v))}"
                color = "white" if v > 0.6 * vmax else "black"
                ax.text(j, i, text, ha="center", va="center", fontsize=fontsize, color=color)
    _maybe_save(fig, path)
    return fig


# -- per-class F1 ------------------------------------------------------------------------


def plot_per_class_f1(
    per_class_f1: Sequence[float],
    label_names: Sequence[str],
    title: str = "Per-class F1",
    path: str | Path | None = None,
) -> Figure:
    """Horizontal bars of per-class F1, best class on top, with the unweighted mean marked."""
    f1 = np.asarray(per_class_f1, dtype=np.float64)
    if len(f1) != len(label_names):
        raise ValueError(f"{len(f1)} F1 values for {len(label_names)} label names")
    order = np.argsort(f1, kind="stable")  # ascending: barh draws index 0 at the bottom
    names = [_pretty(label_names[i]) for i in order]
    k = len(f1)
    fig, axes = _new_figure(7.5, max(2.5, 0.32 * k + 1.2))
    ax = axes[0, 0]
    ax.barh(range(k), f1[order], color="tab:blue")
    ax.set_yticks(range(k), names)
    for y, v in enumerate(f1[order]):
        ax.text(min(v + 0.01, 0.93), y, f"{v:.2f}", va="center", fontsize=8)
    if k:
        ax.axvline(float(f1.mean()), color="tab:red", linestyle="--", linewidth=1, label=f"mean {f1.mean():.3f}")
        ax.legend(loc="lower right", fontsize=8)
    ax.set_xlim(0.0, 1.0)
    ax.set_xlabel("F1")
    ax.set_title(title)
    _maybe_save(fig, path)
    return fig


# -- learning curves ---------------------------------------------------------------------


def _series(history: Sequence[Mapping[str, Any]], key: str) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for i, entry in enumerate(history):
        v = entry.get(key)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            xs.append(float(entry.get("epoch", i)))
            ys.append(float(v))
    return xs, ys


def _ordered_keys(history: Sequence[Mapping[str, Any]]) -> list[str]:
    keys: list[str] = []
    for entry in history:
        for k in entry:
            if k not in keys:
                keys.append(k)
    return keys


def plot_learning_curves(
    history: Sequence[Mapping[str, Any]],
    title: str = "Learning curves",
    path: str | Path | None = None,
) -> Figure:
    """Losses (``train_loss``, ``val_loss``, ``loss_*``) and validation metrics (``val_*``) per epoch.

    Keys are discovered from the history; a key missing (or non-finite) in some
    epochs is plotted where present. The x axis is ``epoch`` (entry index if absent).
    """
    keys = _ordered_keys(history)
    loss_keys = [k for k in keys if k in ("train_loss", "val_loss") or k.startswith("loss_")]
    metric_keys = [k for k in keys if k.startswith("val_") and k != "val_loss"]
    loss_keys = [k for k in loss_keys if _series(history, k)[0]]
    metric_keys = [k for k in metric_keys if _series(history, k)[0]]
    if not loss_keys and not metric_keys:
        return _message_figure(title, "no training history", path)

    fig, axes = _new_figure(11, 4, 1, 2)
    ax_loss, ax_metric = axes[0]
    for k in loss_keys:
        xs, ys = _series(history, k)
        style = "-" if k in ("train_loss", "val_loss") else "--"
        ax_loss.plot(xs, ys, style, marker="o", markersize=3, label=_pretty(k))
    ax_loss.set_title("losses")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("loss")
    for k in metric_keys:
        xs, ys = _series(history, k)
        ax_metric.plot(xs, ys, marker="o", markersize=3, label=_pretty(k))
    ax_metric.set_title("validation")
    ax_metric.set_xlabel("epoch")
    ax_metric.set_ylabel("score")
    for ax, ks in ((ax_loss, loss_keys), (ax_metric, metric_keys)):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if ks:
            ax.legend(fontsize=8)
            ax.grid(alpha=0.3)
        else:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", color="0.35", transform=ax.transAxes)
    fig.suptitle(title)
    _maybe_save(fig, path)
    return fig


# -- modality balance --------------------------------------------------------------------


def _dict_series(history: Sequence[Mapping[str, Any]], key: str) -> dict[str, tuple[list[float], list[float]]]:
    out: dict[str, tuple[list[float], list[float]]] = {}
    for i, entry in enumerate(history):
        d = entry.get(key)
        if not isinstance(d, Mapping):
            continue
        for name, v in d.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                xs, ys = out.setdefault(str(name), ([], []))
                xs.append(float(entry.get("epoch", i)))
                ys.append(float(v))
    return out


def plot_modality_balance(
    history: Sequence[Mapping[str, Any]],
    title: str = "Modality balance",
    path: str | Path | None = None,
) -> Figure:
    """Per-modality ``modality_scores`` and ``modulation_coeffs`` over epochs (two panels).

    Returns a figure saying "no modulation data" when no entry carries either dict.
    """
    scores = _dict_series(history, "modality_scores")
    coeffs = _dict_series(history, "modulation_coeffs")
    if not scores and not coeffs:
        return _message_figure(title, "no modulation data", path)

    fig, axes = _new_figure(11, 4, 1, 2)
    panels = (
        (axes[0, 0], scores, "modality scores", "score"),
        (axes[0, 1], coeffs, "modulation coefficients", "coefficient"),
    )
    for ax, series, name, ylabel in panels:
        for modality, (xs, ys) in series.items():
            ax.plot(xs, ys, marker="o", markersize=3, label=_pretty(modality))
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(ylabel)
        if series:
            ax.legend(fontsize=8)
            ax.grid(alpha=0.3)
        else:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", color="0.35", transform=ax.transAxes)
    fig.suptitle(title)
    _maybe_save(fig, path)
    return fig


# -- benchmark summary ---------------------------------------------------------------------


def plot_benchmark_summary(
    per_fold_f1: Mapping[str, Mapping[str, float]],
    per_class_f1: Mapping[str, Mapping[str, float]],
    title: str = "Cross-subject benchmark",
    reference: Mapping[str, float] | None = None,
    path: str | Path | None = None,
) -> Figure:
    """Left: each model's test macro-F1 per fold (dots) and mean (bar), published numbers as
    dashed lines. Right: per-class F1 (mean over folds) as a class x model heatmap.

    Args:
        per_fold_f1: model -> fold label -> macro-F1.
        per_class_f1: model -> class name -> mean F1 (classes in the order to draw).
        title: figure title.
        reference: published macro-F1 by name (drawn as horizontal lines).
        path: also write the PNG here.
    """
    models = list(per_fold_f1)
    classes = list(next(iter(per_class_f1.values()), {}))
    fig, axes = _new_figure(6.0 + 0.9 * max(len(models), 2), max(4.0, 0.3 * len(classes) + 1.5), 1, 2)
    ax, hm = axes[0]
    rng = np.random.default_rng(0)  # jitter only, so overlapping folds stay visible
    for i, m in enumerate(models):
        vals = np.asarray(list(per_fold_f1[m].values()), dtype=np.float64)
        if len(vals):
            ax.bar(i, vals.mean(), color="tab:blue", alpha=0.35, width=0.6)
            # above the legend (zorder 5): a low fold must never hide behind it
            ax.scatter(i + rng.uniform(-0.15, 0.15, len(vals)), vals, s=14, color="tab:blue", zorder=6)
            ax.text(i, min(vals.mean() + 0.015, 1.0), f"{vals.mean():.3f}", ha="center", fontsize=8)
    for k, (name, v) in enumerate((reference or {}).items()):
        ax.axhline(v, color=f"C{k + 1}", linestyle="--", linewidth=0.8, label=f"{name} {v:.3f}")
    if reference:
        ax.legend(fontsize=7, loc="lower left", title="published (not like for like)", title_fontsize=7, framealpha=0.6)
    ax.set_xticks(range(len(models)), models, rotation=30, ha="right", fontsize=8)
    lows = [min(v.values()) for v in per_fold_f1.values() if v]
    ax.set_ylim(max(0.0, min(lows, default=0.0) - 0.05), 1.0)
    ax.set_ylabel("test macro-F1 (one dot per fold)")
    ax.set_title(title, fontsize=10)
    grid = np.array([[per_class_f1[m].get(c, np.nan) for m in per_class_f1] for c in classes], dtype=np.float64)
    if grid.size:
        hm.imshow(grid, vmin=0.0, vmax=1.0, cmap="RdYlGn", aspect="auto")
        for (r, c), v in np.ndenumerate(grid):
            if np.isfinite(v):
                hm.text(c, r, f"{v:.2f}", ha="center", va="center", fontsize=7)
        hm.set_xticks(range(len(per_class_f1)), list(per_class_f1), rotation=30, ha="right", fontsize=8)
        hm.set_yticks(range(len(classes)), [_pretty(c) for c in classes], fontsize=8)
    hm.set_title("per-class F1, mean over folds", fontsize=10)
    _maybe_save(fig, path)
    return fig
