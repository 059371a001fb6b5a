"""Test-set evaluation of a trained model and an HTML report for the dashboard."""

from __future__ import annotations

import base64
import html
import io
from typing import Any

import numpy as np

from components.data.splitting import SplitWindows
from components.metrics import classification_metrics
from components.training.trained import TrainedModel
from components.training.trainer import predict


def evaluate_on_test(trained: TrainedModel, split: SplitWindows) -> dict[str, Any]:
    """Metrics on ``split.test`` (standardised with the training-split statistics)."""
    x = trained.standardize(split.test.x)
    y = split.test.y
    n_classes = split.test.n_classes
    pred = predict(trained.model, x).argmax(1)
    metrics = classification_metrics(y, pred, n_classes, label_names=split.test.label_names)
    metrics["label_names"] = list(split.test.label_names)
    metrics["test_subjects"] = list(split.fold.test)
    metrics["missing_modality_macro_f1"] = missing_modality_f1(trained, x, y, n_classes)
    return metrics


def missing_modality_f1(trained: TrainedModel, x: np.ndarray, y: np.ndarray, n_classes: int) -> dict[str, float]:
    """Macro-F1 with each modality absent (models that accept a modality mask only)."""
    modalities = list(getattr(trained.model, "modalities", []) or [])
    if len(modalities) < 2:
        return {}
    out = {}
    for i, name in enumerate(modalities):
        mask = np.ones((len(x), len(modalities)), np.float32)
        mask[:, i] = 0
        pred = predict(trained.model, x, modality_mask=mask).argmax(1)
        out[name] = float(classification_metrics(y, pred, n_classes)["macro_f1"])
    return out


def _png_base64(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode()


def html_report(metrics: dict[str, Any], figures: dict[str, Any], title: str) -> str:
    """A self-contained HTML page (metrics table + embedded plots)."""
    rows = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{metrics[k]:.4f}</td></tr>"
        for k in ("macro_f1", "accuracy", "balanced_accuracy", "gmean")
    )
    missing = "".join(
        f"<tr><td>macro-F1 without {html.escape(m)}</td><td>{v:.4f}</td></tr>"
        for m, v in metrics.get("missing_modality_macro_f1", {}).items()
    )
    imgs = "".join(
        f'<h3>{html.escape(name)}</h3><img src="data:image/png;base64,{_png_base64(fig)}" style="max-width:100%">'
        for name, fig in figures.items()
    )
    return (
        f"<html><body><h2>{html.escape(title)}</h2><table border='1' cellpadding='4'>{rows}{missing}"
        f"</table>{imgs}</body></html>"
    )
