"""train_pipeline: ingest -> validate -> window -> split -> train -> evaluate -> export -> promote
-> edge bundle -> package (BentoML) -> edge simulation."""

from __future__ import annotations

from zenml import get_pipeline_context, pipeline

from components.config import data_dir
from components.train_config import registered_model_name, require_valid_parameters
from pipelines.data_pipeline import prepare_data
from steps.build_edge_bundle import build_edge_bundle_step
from steps.evaluate_model import evaluate_model_step
from steps.export_model import export_model_step
from steps.failure_hook import notify_on_failure
from steps.package_model import package_model_step
from steps.promote_model import promote_model_step
from steps.simulate_edge import simulate_edge_step
from steps.train_model import train_model_step


@pipeline(name="train_pipeline", on_failure=notify_on_failure)
def train_pipeline(
    dataset: str = "dsads",
    source: str | None = None,
    subjects: list[str] | None = None,
    validation: dict | None = None,
    window: dict | None = None,
    split: dict | None = None,
    fold: int = 0,
    model: dict | None = None,
    trainer: dict | None = None,
    export: dict | None = None,
    promotion: dict | None = None,
    edge: dict | None = None,
    registered_model: str | None = None,
    stop_if_unchanged: bool = False,
) -> None:
    """Versioned data -> cross-subject-validated model -> gated promotion -> BentoML model.

    The parameters are checked against the dataset before any step runs;
    ``registered_model`` defaults to ``cmd-har-<dataset>``. ``stop_if_unchanged``
    (scheduled runs) stops the run after ingest when ``registered_model`` was already
    trained on its data version.
    """
    extra = get_pipeline_context().extra
    if extra.get("cron_expression") and not extra.get("scheduled_for"):
        raise ValueError(
            "this run config describes a schedule (extra.cron_expression): create it with "
            "`har schedule deploy -c CONFIG`, which writes the cron the way the active orchestrator reads it"
        )
    registered_model = registered_model or registered_model_name(dataset)
    require_valid_parameters(
        {
            "dataset": dataset,
            "window": window,
            "split": split,
            "model": model,
            "trainer": trainer,
            "export": export,
            "promotion": promotion,
            "edge": edge,
            "registered_model": registered_model,
        },
        data_dir(),
    )
    fold_split = prepare_data(
        dataset,
        source,
        subjects,
        validation,
        window,
        split,
        fold,
        reimport=False,
        stop_if_trained=registered_model if stop_if_unchanged else None,
    )
    trained, run_id = train_model_step(fold_split, model=model or {"name": "cmdhar"}, trainer=trainer)
    metrics, _ = evaluate_model_step(trained, fold_split, run_id)
    exported = export_model_step(trained, fold_split, run_id, **(export or {}))
    decision = promote_model_step(
        exported, metrics, fold_split, run_id, registered_model=registered_model, promotion=promotion
    )
    bundle = build_edge_bundle_step(decision, exported, fold_split)
    package_model_step(decision, bundle)
    simulate_edge_step(bundle, fold_split, run_id, **(edge or {}))
