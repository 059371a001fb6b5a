"""Step: export ONNX fp32 + int8 and measure what the promotion gates need."""

from __future__ import annotations

from typing import Annotated

from zenml import log_metadata, step

from components import tracking
from components.data.splitting import SplitWindows
from components.export.exported import ExportedModel
from components.export.pipeline import CALIBRATION_WINDOWS, MAX_VAL_INT8_CHANGED_SHARE, export_and_measure
from components.training.trained import TrainedModel
from steps.materializers import ExportedModelMaterializer


@step(enable_cache=False, output_materializers={"exported_model": ExportedModelMaterializer})
def export_model_step(
    trained_model: TrainedModel,
    split: SplitWindows,
    mlflow_run_id: str,
    calibration_windows: int = CALIBRATION_WINDOWS,
    max_val_int8_changed_share: float | None = MAX_VAL_INT8_CHANGED_SHARE,
) -> Annotated[ExportedModel, "exported_model"]:
    """torch -> ONNX (fp32, parity-checked) -> int8 (static QDQ, calibrated on training windows).

    Which layers keep float activations is chosen on the validation split; the test split
    only measures. Measures fp32 and int8 test macro-F1, int8 batch-1 latency (1 thread) and file sizes.

    Args:
        trained_model: output of the training step.
        split: its split (train windows calibrate, test windows measure).
        mlflow_run_id: the training run to log into.
        calibration_windows: how many training windows calibrate the int8 ranges.
        max_val_int8_changed_share: leading layers stay float until int8 changes the predicted
            class of at most this share of validation windows (``None``: quantise every
            Conv/MatMul/Gemm).
    """
    exported = export_and_measure(trained_model, split, calibration_windows, max_val_int8_changed_share)
    with tracking.run_context(mlflow_run_id):
        import tempfile

        import mlflow

        mlflow.log_metrics({f"export.{k}": float(v) for k, v in exported.report.items() if isinstance(v, int | float)})
        with tempfile.TemporaryDirectory() as tmp:
            tracking.log_dir(exported.save(tmp), "exported")
    log_metadata({k: v for k, v in exported.report.items() if isinstance(v, int | float | str)})
    return exported
