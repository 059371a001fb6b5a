"""Step: register the candidate, apply the gates, and move the champion alias if it wins."""

from __future__ import annotations

from typing import Annotated

from zenml import get_step_context, log_metadata, step

from components import tracking
from components.config import build
from components.data.splitting import SplitWindows
from components.evaluation.champion import champion_macro_f1, champion_reference
from components.evaluation.promotion import PromotionConfig, decide
from components.export.bundle import ExportedModel


@step(enable_cache=False)
def promote_model_step(
    exported_model: ExportedModel,
    test_metrics: dict,
    split: SplitWindows,
    mlflow_run_id: str,
    registered_model: str,
    promotion: dict | None = None,
) -> Annotated[dict, "promotion_decision"]:
    """Register the ONNX model in MLflow, decide, and set aliases.

    ``champion`` moves only when every gate passes and the candidate is not worse than
    the current champion (on this test split and data version), or the best champion
    recorded on it, by more than the tolerance (on the champion's own data: better than
    it); the old champion becomes ``previous-champion``. A candidate that passes
    the gates but loses becomes ``challenger``. The ZenML model version is set to stage
    ``production`` on promotion.

    Args:
        exported_model: ONNX fp32 + int8 with measurements.
        test_metrics: fp32 test metrics of the candidate.
        split: the split (test subjects, data version).
        mlflow_run_id: the candidate's training run.
        registered_model: MLflow registered model name, e.g. ``cmd-har-dsads``.
        promotion: :class:`PromotionConfig` fields.
    """
    import tempfile

    import numpy as np

    cfg = build(PromotionConfig, promotion)
    report = exported_model.report
    candidate = {
        "macro_f1": report["fp32_macro_f1"],
        "int8_macro_f1": report["int8_macro_f1"],
        "per_class_recall": test_metrics["per_class_recall"],
        "confusion": test_metrics.get("confusion"),
        "support": test_metrics["support"],
        "label_names": test_metrics["label_names"],
        "latency_ms_p50": report["int8_latency_ms_p50"],
        "model_bytes": report["int8_bytes"],
        "int8_size_ratio": report["size_ratio"],
    }
    champion, champion_f1, champion_note = champion_macro_f1(registered_model, split, mlflow_run_id)
    best_f1, same_data = champion_reference(registered_model, champion, split)
    decision = decide(candidate, champion_f1, cfg, best_macro_f1=best_f1, same_data=same_data)
    decision.reasons.insert(0, champion_note)
    # the tracker's run of *this* pipeline run; not the training run when training was cached
    promoting_run_id = tracking.active_run_id()
    zenml_run = get_step_context().pipeline_run
    with tracking.run_context(mlflow_run_id):
        import mlflow

        with tempfile.TemporaryDirectory() as tmp:
            path = exported_model.save(tmp) / "model.onnx"
            version = tracking.register_onnx(
                path,
                registered_model,
                np.asarray(split.test.x[:1], np.float32),
                metadata={"preprocessing": exported_model.preprocessing, "export": report},
            )
        mlflow.set_tags(
            {
                "promotion_outcome": decision.outcome,
                "registered_model": registered_model,
                "registered_version": version,
            }
        )
        tracking.log_json({**decision.to_dict(), "registered_version": version}, "promotion/decision.json")
    client = tracking.client()
    for key, value in {
        "data_version": split.provenance.get("data_version"),
        "mlflow_run_id": mlflow_run_id,
        "promotion_outcome": decision.outcome,
    }.items():
        client.set_model_version_tag(registered_model, version, key, str(value))
    runs = tracking.link_version_runs(
        registered_model, version, mlflow_run_id, promoting_run_id, str(zenml_run.id), zenml_run.name
    )
    if decision.promoted:
        if champion is not None:
            tracking.set_alias(registered_model, tracking.PREVIOUS, champion.version)
        tracking.set_alias(registered_model, tracking.CHAMPION, version)
        _set_zenml_stage()
    elif decision.outcome == "challenger":
        tracking.set_alias(registered_model, tracking.CHALLENGER, version)
    result = {
        **decision.to_dict(),
        "registered_model": registered_model,
        "registered_version": version,
        "mlflow_run_id": mlflow_run_id,
        "previous_champion_version": getattr(champion, "version", None),
        **runs,
    }
    ids = {
        "promotion_outcome": decision.outcome,
        "registered_model": registered_model,
        "registered_version": version,
        "mlflow_run_id": mlflow_run_id,
        "data_version": str(split.provenance.get("data_version")),
        **runs,
    }
    log_metadata(ids)  # on this step ...
    log_metadata(ids, run_id_name_or_prefix=zenml_run.id)  # ... and on the ZenML run
    return result


def _set_zenml_stage() -> None:
    """Mark this run's ZenML model version as production (if the pipeline has a model)."""
    model = get_step_context().model
    if model is not None:
        model.set_stage("production", force=True)
