"""Step: evaluate the trained model on the held-out test subjects."""

from __future__ import annotations

from typing import Annotated

from zenml import log_metadata, step
from zenml.types import HTMLString

from components import tracking
from components.data.splitting import SplitWindows
from components.evaluation import plots
from components.evaluation.report import evaluate_on_test, html_report
from components.training.trained import TrainedModel


@step(enable_cache=False)
def evaluate_model_step(
    trained_model: TrainedModel, split: SplitWindows, mlflow_run_id: str
) -> tuple[Annotated[dict, "test_metrics"], Annotated[HTMLString, "evaluation_report"]]:
    """Macro-F1 (headline), accuracy, balanced accuracy, G-mean, per-class F1/recall, and
    macro-F1 with each modality removed, on the test subjects only.

    Args:
        trained_model: output of the training step.
        split: the same split it was trained on (its test part is never seen in training).
        mlflow_run_id: the training run to log into.
    """
    metrics = evaluate_on_test(trained_model, split)
    names = metrics["label_names"]
    figures = {
        "plots/confusion_matrix.png": plots.plot_confusion_matrix(metrics["confusion"], names),
        "plots/per_class_f1.png": plots.plot_per_class_f1(metrics["per_class_f1"], names),
    }
    with tracking.run_context(mlflow_run_id):
        import mlflow

        mlflow.log_metrics(
            {f"test_{k}": float(metrics[k]) for k in ("macro_f1", "accuracy", "balanced_accuracy", "gmean")}
        )
        mlflow.log_metrics({f"test_f1.{n}": float(v) for n, v in zip(names, metrics["per_class_f1"], strict=True)})
        mlflow.log_metrics({f"test_macro_f1_without.{m}": v for m, v in metrics["missing_modality_macro_f1"].items()})
        for path, fig in figures.items():
            tracking.log_figure(fig, path)
        tracking.log_json(metrics, "evaluation/test_metrics.json")
    log_metadata({"test_macro_f1": metrics["macro_f1"], "test_accuracy": metrics["accuracy"]})
    return metrics, HTMLString(html_report(metrics, figures, title=f"Test subjects {', '.join(split.fold.test)}"))
