"""Metrics (hand-checked against sklearn's conventions) and report figures."""

from __future__ import annotations

import json

import numpy as np
import pytest

from components.evaluation.plots import (
    plot_confusion_matrix,
    plot_learning_curves,
    plot_modality_balance,
    plot_per_class_f1,
    save_figure,
)
from components.metrics import classification_metrics, confusion_matrix

# y_true / y_pred with 4 classes where class 3 never occurs (neither true nor predicted).
Y_TRUE = [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]
Y_PRED = [0, 0, 1, 2, 1, 1, 0, 2, 2, 2]


def test_confusion_matrix_rows_are_true_classes():
    cm = confusion_matrix(Y_TRUE, Y_PRED, 4)
    assert cm.tolist() == [
        [2, 1, 1, 0],
        [1, 2, 0, 0],
        [0, 0, 3, 0],
        [0, 0, 0, 0],
    ]
    assert cm.dtype == np.int64


def test_hand_checked_example():
    m = classification_metrics(Y_TRUE, Y_PRED, 4, label_names=["a", "b", "c", "d"])
    # tp = [2, 2, 3, 0], support = [4, 3, 3, 0], predicted = [3, 3, 4, 0]
    assert m["n"] == 10
    assert m["support"] == [4, 3, 3, 0]
    assert m["accuracy"] == pytest.approx(7 / 10)
    assert m["per_class_precision"] == pytest.approx([2 / 3, 2 / 3, 3 / 4, 0.0])
    assert m["per_class_recall"] == pytest.approx([2 / 4, 2 / 3, 1.0, 0.0])
    # F1 = 2 tp / (support + predicted)
    assert m["per_class_f1"] == pytest.approx([4 / 7, 4 / 6, 6 / 7, 0.0])
    # class 3 is absent from y_true and y_pred: it does not count (sklearn: 44/63, not 44/84)
    assert m["present"] == [True, True, True, False]
    assert m["macro_f1"] == pytest.approx((4 / 7 + 4 / 6 + 6 / 7) / 3)  # = 44/63
    assert m["macro_f1"] == pytest.approx(44 / 63)
    assert m["balanced_accuracy"] == pytest.approx((1 / 2 + 2 / 3 + 1) / 3)
    assert m["gmean"] == pytest.approx((1 / 2 * 2 / 3 * 1) ** (1 / 3))
    assert m["confusion"] == confusion_matrix(Y_TRUE, Y_PRED, 4).tolist()
    assert m["label_names"] == ["a", "b", "c", "d"]
    json.dumps(m)  # plain Python types only


def test_predicted_but_never_true_class_counts_in_macro_f1():
    # class 2 is predicted once but never true: F1 = 0 and it counts (as sklearn's default labels)
    m = classification_metrics([0, 0, 1, 1], [0, 2, 1, 1], 3)
    assert m["per_class_f1"] == pytest.approx([2 / 3, 1.0, 0.0])
    assert m["macro_f1"] == pytest.approx((2 / 3 + 1.0 + 0.0) / 3)
    # balanced accuracy and gmean only look at classes present in y_true
    assert m["balanced_accuracy"] == pytest.approx((1 / 2 + 1) / 2)
    assert m["gmean"] == pytest.approx(np.sqrt(1 / 2))


def test_perfect_prediction():
    y = np.array([0, 1, 2, 2, 1, 0, 3])
    m = classification_metrics(y, y.copy(), 5)  # class 4 absent
    for key in ("macro_f1", "accuracy", "balanced_accuracy", "gmean"):
        assert m[key] == pytest.approx(1.0), key
    assert m["per_class_f1"] == pytest.approx([1, 1, 1, 1, 0])


def test_gmean_zero_when_a_class_has_zero_recall():
    m = classification_metrics([0, 1, 2], [0, 1, 1], 3)
    assert m["per_class_recall"][2] == 0.0
    assert m["gmean"] == 0.0
    assert m["balanced_accuracy"] == pytest.approx(2 / 3)


def test_empty_and_invalid_inputs():
    m = classification_metrics([], [], 3)
    assert m["n"] == 0 and m["macro_f1"] == 0.0 and m["confusion"] == [[0] * 3] * 3
    with pytest.raises(ValueError):
        classification_metrics([0, 1], [0], 2)
    with pytest.raises(ValueError):
        classification_metrics([0, 3], [0, 1], 3)
    with pytest.raises(ValueError):
        classification_metrics([0, 1], [0, 1], 2, label_names=["only-one"])


# -- plots ------------------------------------------------------------------------------

LABELS = ["sitting", "walking_in_parking_lot", "running_on_treadmill", "jumping"]


def _assert_png(path, min_bytes=5_000):
    assert path.exists()
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > min_bytes, len(data)
    assert not list(path.parent.glob("*.tmp"))  # atomic write left no temp file behind


def test_plot_confusion_matrix(tmp_path):
    cm = confusion_matrix(Y_TRUE, Y_PRED, 4)
    fig = plot_confusion_matrix(cm, LABELS, normalize=True, title="subject 2", path=tmp_path / "cm.png")
    _assert_png(tmp_path / "cm.png")
    assert fig.axes
    plot_confusion_matrix(cm.tolist(), LABELS, normalize=False, path=tmp_path / "cm_counts.png")
    _assert_png(tmp_path / "cm_counts.png")


def test_plot_per_class_f1(tmp_path):
    m = classification_metrics(Y_TRUE, Y_PRED, 4)
    plot_per_class_f1(m["per_class_f1"], LABELS, path=tmp_path / "f1.png")
    _assert_png(tmp_path / "f1.png")


def test_plot_learning_curves(tmp_path):
    history = [
        {
            "epoch": e,
            "train_loss": 1.5 / (e + 1),
            "loss_ce": 1.0 / (e + 1),
            "loss_aux": 0.3 / (e + 1),
            "loss_sim": 0.1 / (e + 1),
            "val_macro_f1": 0.5 + 0.1 * e,
            "val_accuracy": 0.55 + 0.1 * e,
            "lr": 1e-3,
        }
        for e in range(4)
    ]
    history[2]["loss_recon"] = 0.2  # sparse key: plotted where present
    fig = plot_learning_curves(history)
    save_figure(fig, tmp_path / "sub" / "curves.png")  # creates the folder
    _assert_png(tmp_path / "sub" / "curves.png")
    plot_learning_curves([], path=tmp_path / "empty.png")
    _assert_png(tmp_path / "empty.png", min_bytes=2_000)


def test_plot_modality_balance(tmp_path):
    history = [
        {
            "epoch": e,
            "train_loss": 1.0,
            "modality_scores": {"acc": 0.5 + 0.1 * e, "gyro": 0.3, "mag": 0.2 - 0.02 * e},
            "modulation_coeffs": {"acc": 1.0 - 0.1 * e, "gyro": 1.0, "mag": 1.0},
        }
        for e in range(4)
    ]
    plot_modality_balance(history, path=tmp_path / "balance.png")
    _assert_png(tmp_path / "balance.png")
    fig = plot_modality_balance([{"epoch": 0, "train_loss": 1.0}], path=tmp_path / "none.png")
    _assert_png(tmp_path / "none.png", min_bytes=2_000)
    assert any("no modulation data" in t.get_text() for ax in fig.axes for t in ax.texts)
