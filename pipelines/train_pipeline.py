"""train_pipeline: ingest -> validate -> window -> split -> train -> evaluate -> export -> promote
-> edge bundle -> package (BentoML) -> edge simulation."""

from __future__ import annotations

from zenml import get_pipeline_context, pipeline

from components.benchmark.ledger import code_fingerprint
from components.config import data_dir, default_parameters
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

# configs/train.yaml's parameters are the defaults: a run config that leaves one out
# (configs/cluster.yaml, configs/schedule.yaml) runs with train.yaml's value
DEFAULTS = default_parameters()


@pipeline(name="train_pipeline", on_failure=notify_on_failure)
def train_pipeline(
    dataset: str = DEFAULTS["dataset"],
    source: str | None = DEFAULTS["source"],
    subjects: list[str] | None = DEFAULTS["subjects"],
    validation: dict | None = DEFAULTS["validation"],
    window: dict | None = DEFAULTS["window"],
    split: dict | None = DEFAULTS["split"],
    fold: int = DEFAULTS["fold"],
    model: dict | None = DEFAULTS["model"],
    trainer: dict | None = DEFAULTS["trainer"],
    export: dict | None = DEFAULTS["export"],
    promotion: dict | None = DEFAULTS["promotion"],
    edge: dict | None = DEFAULTS["edge"],
    registered_model: str | None = DEFAULTS["registered_model"],
    stop_if_unchanged: bool = DEFAULTS.get("stop_if_unchanged", False),
) -> None:
    """Versioned data -> cross-subject-validated model -> gated promotion -> BentoML model.

    Every parameter defaults to ``configs/train.yaml``'s value; a parameter given in the run
    config replaces that value whole (a ``trainer:`` block without ``lr`` gets the
    :class:`~components.training.trainer.TrainConfig` default, which is train.yaml's too).
    The parameters are checked against the dataset before any step runs; ``registered_model:
    null`` means ``cmd-har-<dataset>``. ``stop_if_unchanged`` (scheduled runs) stops the run
    after ingest when ``registered_model`` was already trained on its data version.
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
    trained, run_id = train_model_step(
        fold_split, model=model or DEFAULTS["model"], trainer=trainer, code_sha256=code_fingerprint()
    )
    metrics, _ = evaluate_model_step(trained, fold_split, run_id)
    exported = export_model_step(trained, fold_split, run_id, **(export or {}))
    decision = promote_model_step(
        exported, metrics, fold_split, run_id, registered_model=registered_model, promotion=promotion
    )
    bundle = build_edge_bundle_step(decision, exported, fold_split)
    package_model_step(decision, bundle)
    simulate_edge_step(bundle, fold_split, run_id, **(edge or {}))
