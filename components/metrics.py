"""Classification metrics for activity recognition (numpy only).

Conventions (chosen to match scikit-learn so numbers are comparable with the literature):

* ``confusion[i][j]`` counts windows of true class ``i`` predicted as class ``j``.
* per-class precision / recall / F1 use 0.0 where the denominator is zero
  (sklearn's ``zero_division=0``).
* **macro-F1 averages over the classes present in ``y_true`` or ``y_pred``** (a class
  absent from both has no defined F1 and is left out), i.e. sklearn's
  ``f1_score(y_true, y_pred, average="macro")`` with its default ``labels``
  (the sorted union of both arrays). A class that is predicted but never true still
  counts, with F1 = 0.
* balanced accuracy is the mean recall over the classes present in ``y_true`` (as
  ``sklearn.metrics.balanced_accuracy_score``).
* gmean is the geometric mean of the recall of the classes present in ``y_true``;
  it is 0 as soon as one such class has zero recall.
* The per-class lists always have ``n_classes`` entries (0.0 for absent classes);
  ``present`` tells which entries count in the macro averages.
* With no samples (``n == 0``) every score is 0.0.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def _as_labels(y: Any, n_classes: int, name: str) -> np.ndarray:
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.equal(np.mod(arr, 1), 0)):
            raise ValueError(f"{name} must hold integer class indices")
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < 0 or arr.max() >= n_classes):
        raise ValueError(f"{name} has labels outside [0, {n_classes}): min {arr.min()}, max {arr.max()}")
    return arr


def confusion_matrix(y_true: Any, y_pred: Any, n_classes: int) -> np.ndarray:
    """``(n_classes, n_classes)`` int64 counts, rows = true class, columns = predicted class."""
    yt = _as_labels(y_true, n_classes, "y_true")
    yp = _as_labels(y_pred, n_classes, "y_pred")
    if len(yt) != len(yp):
        raise ValueError(f"y_true has {len(yt)} entries but y_pred has {len(yp)}")
    flat = yt * n_classes + yp
    return np.bincount(flat, minlength=n_classes * n_classes).reshape(n_classes, n_classes).astype(np.int64)


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.zeros_like(num, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def classification_metrics(
    y_true: Any,
    y_pred: Any,
    n_classes: int,
    label_names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Window-level classification scores (see the module docstring for conventions).

    Returns a JSON-serialisable dict with keys ``macro_f1``, ``accuracy``,
    ``balanced_accuracy``, ``gmean``, ``per_class_f1``, ``per_class_recall``,
    ``per_class_precision``, ``confusion`` (rows = true), ``support`` (true count per
    class), ``n``, ``present`` (class counts in the macro averages) and, when given,
    ``label_names``.
    """
    if label_names is not None and len(label_names) != n_classes:
        raise ValueError(f"{len(label_names)} label names for {n_classes} classes")
    cm = confusion_matrix(y_true, y_pred, n_classes)
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1)  # true count per class
    predicted = cm.sum(axis=0)  # predicted count per class
    n = int(cm.sum())

    precision = _safe_div(tp, predicted.astype(np.float64))
    recall = _safe_div(tp, support.astype(np.float64))
    f1 = _safe_div(2 * tp, (support + predicted).astype(np.float64))  # = 2PR/(P+R)

    present = (support + predicted) > 0  # in y_true or y_pred
    in_true = support > 0
    if n == 0:
        macro_f1 = accuracy = balanced = gmean = 0.0
    else:
        macro_f1 = float(f1[present].mean())
        accuracy = float(tp.sum() / n)
        balanced = float(recall[in_true].mean())
        r = recall[in_true]
        gmean = 0.0 if np.any(r == 0) else float(np.exp(np.log(r).mean()))

    out: dict[str, Any] = {
        "macro_f1": macro_f1,
        "accuracy": accuracy,
        "balanced_accuracy": balanced,
        "gmean": gmean,
        "per_class_f1": f1.tolist(),
        "per_class_recall": recall.tolist(),
        "per_class_precision": precision.tolist(),
        "confusion": cm.tolist(),
        "support": support.tolist(),
        "n": n,
        "present": present.tolist(),
    }
    if label_names is not None:
        out["label_names"] = list(label_names)
    return out
