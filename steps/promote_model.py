"""Step: register the candidate, apply the gates, and move the champion alias if it wins."""

from __future__ import annotations

from typing import Annotated

from zenml import get_step_context, log_metadata, step

from components import registry, tracking
from components.config import build
from components.data.splitting import SplitWindows
from components.evaluation.champion import champion_macro_f1, champion_reference
from components.evaluation.promotion import PromotionConfig, decide
from components.export.exported import ExportedModel


@step(enable_cache=False)
def promote_model_step(
    exported_model: ExportedModel,
    test_metrics: dict,
    split: SplitWindows,
    mlflow_run_id: str,
    registered_model: str,
    promotion: dict | None = None,
) -> Annotated[dict, "promotion_decision"]:
    """Register the served int8 ONNX and its fp32 twin in MLflow, decide, set aliases and the ZenML stage.

    The int8 graph (what BentoML and the edge bundle serve) becomes a version of
    ``registered_model``, the fp32 graph a version of ``<registered_model>-fp32``; both carry
    a signature, a description and tags linking them (:mod:`components.registry`).
    ``champion`` moves only when every gate passes and the candidate is not worse than
    the current champion (on this test split and data version), or the best champion
    recorded on it, by more than the tolerance (on the champion's own data: better than
    it); the old champion becomes ``previous-champion``. A candidate that passes
    the gates but loses becomes ``challenger``. The same decision sets the stage of this
    run's ZenML model version (when the run config has a ``model:``): ``production`` for a
    champion (the previous production version becomes ``archived``), ``staging`` for a
    challenger, none when rejected; its metadata records the scores, the data version, the
    test subjects, the MLflow run and both registered versions.

    Args:
        exported_model: ONNX fp32 + int8 with measurements.
        test_metrics: fp32 test metrics of the candidate.
        split: the split (test subjects, data version).
        mlflow_run_id: the candidate's training run.
        registered_model: MLflow registered model name, e.g. ``cmd-har-dsads``.
        promotion: :class:`PromotionConfig` fields.
    """
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
    context = get_step_context()
    zenml_run, zenml_version = context.pipeline_run, context.model_version  # None without a `model:`
    facts = registry.CandidateFacts(
        dataset=str(exported_model.preprocessing.get("dataset") or split.provenance.get("dataset")),
        data_version=str(split.provenance.get("data_version")),
        test_subjects=tuple(split.fold.test),
        fp32_macro_f1=float(report["fp32_macro_f1"]),
        int8_macro_f1=float(report["int8_macro_f1"]),
        mlflow_run_id=mlflow_run_id,
    )
    tags = {"promotion_outcome": decision.outcome}
    if zenml_version is not None:
        tags.update(zenml_model=zenml_version.model.name, zenml_model_version=zenml_version.name)
    with tracking.run_context(mlflow_run_id):
        import mlflow

        pair = registry.register_pair(
            exported_model, registered_model, facts, np.asarray(split.test.x[:1], np.float32), tags
        )
        version = pair.version
        mlflow.set_tags({"promotion_outcome": decision.outcome, **pair.to_dict()})
        tracking.log_json({**decision.to_dict(), **pair.to_dict()}, "promotion/decision.json")
    runs = tracking.link_version_runs(
        registered_model, version, mlflow_run_id, promoting_run_id, str(zenml_run.id), zenml_run.name
    )
    current = {tracking.CHAMPION: champion.version} if champion is not None else {}
    for alias, alias_version in registry.alias_moves(decision.outcome, version, current).items():
        tracking.set_alias(registered_model, alias, alias_version)
    if zenml_version is not None:  # the same decision, in ZenML's model control plane
        log_metadata(
            {
                "promotion_outcome": decision.outcome,
                "test_macro_f1_fp32": facts.fp32_macro_f1,
                "test_macro_f1_int8": facts.int8_macro_f1,
                "dataset": facts.dataset,
                "data_version": facts.data_version,
                "test_subjects": ",".join(facts.test_subjects),
                "mlflow_run_id": mlflow_run_id,
                **pair.to_dict(),
            },
            infer_model=True,
        )
        stage = registry.ZENML_STAGE.get(decision.outcome)
        if stage is not None:  # force: the version that held the stage is archived
            zenml_version.set_stage(stage, force=True)
    result = {
        **decision.to_dict(),
        "registered_model": registered_model,
        "registered_version": version,
        "mlflow_run_id": mlflow_run_id,
        "previous_champion_version": getattr(champion, "version", None),
        **pair.to_dict(),
        **runs,
    }
    ids = {
        "promotion_outcome": decision.outcome,
        "registered_model": registered_model,
        "registered_version": version,
        "mlflow_run_id": mlflow_run_id,
        "data_version": facts.data_version,
        **pair.to_dict(),
        **runs,
    }
    log_metadata(ids)  # on this step ...
    log_metadata(ids, run_id_name_or_prefix=zenml_run.id)  # ... and on the ZenML run
    return result
