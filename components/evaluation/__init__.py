"""Evaluation: classification metrics (numpy only) and report figures (matplotlib, Agg).

``components.evaluation.plots`` is imported lazily so code that only needs the
metrics (services, edge checks) does not pull in matplotlib.
"""

from __future__ import annotations

from typing import Any

from components.evaluation.metrics import classification_metrics, confusion_matrix

_PLOT_NAMES = (
    "plot_confusion_matrix",
    "plot_per_class_f1",
    "plot_learning_curves",
    "plot_modality_balance",
    "plot_benchmark_summary",
    "save_figure",
)

__all__ = ["classification_metrics", "confusion_matrix", *_PLOT_NAMES]


def __getattr__(name: str) -> Any:
    if name in _PLOT_NAMES:
        from components.evaluation import plots

        return getattr(plots, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
