"""Export a trained model to fp32 + int8 ONNX and measure accuracy, latency and size."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from components.data.splitting import SplitWindows
from components.export.exported import FP32_FILE, INT8_FILE, ExportedModel
from components.export.onnx_export import (
    OPSET,
    QUANTIZED_OPS,
    StandardizedModel,
    export_onnx,
    float_ops,
    latency_ms,
    onnx_logits,
    quantize_int8,
    quantize_int8_guarded,
)
from components.metrics import classification_metrics
from components.training.trained import TrainedModel

# defaults of configs/train.yaml's ``export:`` (tests/unit/test_config_defaults.py keeps them equal)
CALIBRATION_WINDOWS = 1024  # training windows
# share of validation windows whose predicted class int8 activations may change (half the
# promotion gate's 0.5 macro-F1 points, as a share of windows)
MAX_VAL_INT8_CHANGED_SHARE = 0.0025


def calibration_windows_of(train_x: np.ndarray, n: int) -> np.ndarray:
    """The int8 calibration set: ``n`` training windows (all if fewer), drawn with seed 0, in order."""
    idx = np.random.default_rng(0).choice(len(train_x), size=min(n, len(train_x)), replace=False)
    return train_x[np.sort(idx)]


def export_and_measure(
    trained: TrainedModel,
    split: SplitWindows,
    calibration_windows: int = CALIBRATION_WINDOWS,
    max_val_int8_changed_share: float | None = MAX_VAL_INT8_CHANGED_SHARE,
) -> ExportedModel:
    """ONNX fp32 (standardisation inside the graph) + int8 QDQ, measured on the test split.

    With ``max_val_int8_changed_share`` the leading layers stay float until int8 changes at
    most that share of the validation windows' predictions (:func:`quantize_int8_guarded`,
    judged on the validation split only); ``None`` quantises every Conv/MatMul/Gemm.
    """
    pre = trained.preprocessing
    wrapped = StandardizedModel(trained.model, pre["mean"], pre["std"]).eval()
    test_x, test_y = split.test.x, split.test.y
    with tempfile.TemporaryDirectory() as tmp:
        fp32, int8 = Path(tmp) / FP32_FILE, Path(tmp) / INT8_FILE
        parity = export_onnx(wrapped, test_x[:64], fp32)
        calib_x = calibration_windows_of(split.train.x, calibration_windows)
        selection = None
        if max_val_int8_changed_share is None:
            quant = quantize_int8(fp32, calib_x, int8)
        else:
            quant, selection = quantize_int8_guarded(
                fp32, calib_x, split.val.x, split.val.y, split.val.n_classes, int8, max_val_int8_changed_share
            )
        f1 = {}
        for name, path in (("fp32", fp32), ("int8", int8)):
            pred = onnx_logits(path, test_x).argmax(1)
            f1[name] = classification_metrics(test_y, pred, split.test.n_classes)["macro_f1"]
        lat = {name: latency_ms(path, test_x[0]) for name, path in (("fp32", fp32), ("int8", int8))}
        report = {
            "parity_max_abs_diff": parity,
            "fp32_macro_f1": f1["fp32"],
            "int8_macro_f1": f1["int8"],
            "int8_f1_drop": f1["fp32"] - f1["int8"],
            "fp32_bytes": quant.fp32_bytes,
            "int8_bytes": quant.int8_bytes,
            "size_ratio": quant.size_ratio,
            "fp32_latency_ms_p50": lat["fp32"]["p50"],
            "int8_latency_ms_p50": lat["int8"]["p50"],
            "int8_latency_ms_p99": lat["int8"]["p99"],
            "calibration_windows": int(len(calib_x)),
            "quantized_op_types": ",".join(QUANTIZED_OPS) + " (constant weights)",
            "float_op_types": ",".join(float_ops(int8)),
            "residual_int8_initializers": len(quant.residual_int8),
            "float_activation_nodes": len(quant.float_nodes),
            "opset": OPSET,
        }
        if selection is not None and selection["val_int8_changed_share"] is None:
            report["float_prefix_tried"] = "- (no validation windows: every Conv/MatMul/Gemm quantised)"
        elif selection is not None:  # report values stay numbers/strings (BentoML metadata takes no None)
            report.update(
                int8_val_changed_share=selection["val_int8_changed_share"],
                int8_val_max_changed_share=selection["max_changed_share"],
                int8_val_f1_drop=selection["val_int8_f1_drop"],
                quantizable_nodes=selection["quantizable_nodes"],
                float_prefix_tried=", ".join(f"{k}: {v:.4f}" for k, v in selection["tried"].items()),
            )
        return ExportedModel(fp32=fp32.read_bytes(), int8=int8.read_bytes(), preprocessing=dict(pre), report=report)
