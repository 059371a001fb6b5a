"""Step: train a model on the training split; log the run to MLflow."""

from __future__ import annotations

from typing import Annotated

import torch
from zenml import get_step_context, log_metadata, step
from zenml.config import CachePolicy

from components import tracking
from components.config import build
from components.data.splitting import SplitWindows
from components.evaluation import plots
from components.models.registry import build_model
from components.models.spec import InputSpec
from components.training.trained import TrainedModel, preprocessing_from_split
from components.training.trainer import TrainConfig, train_model
from steps.materializers import TrainedModelMaterializer


# Cached on the split's content (data version, fold, window config) + model/trainer config +
# the fingerprint of the code that trains: changing only a model parameter re-trains without
# re-running the data steps, and a model trained by other code is never reused.
@step(
    cache_policy=CachePolicy(include_artifact_ids=False),
    output_materializers={"trained_model": TrainedModelMaterializer},
)
def train_model_step(
    split: SplitWindows,
    model: dict,
    trainer: dict | None = None,
    experiment: str = tracking.DEFAULT_EXPERIMENT,
    code_sha256: str = "",
) -> tuple[Annotated[TrainedModel, "trained_model"], Annotated[str, "mlflow_run_id"]]:
    """Train ``model`` on ``split.train`` with early stopping on ``split.val``.

    Args:
        split: the subject-wise split (raw windows + training-split standardiser).
        model: ``{"name": cmdhar|tinyhar|deepconvlstm|cnn|cmdhar-no-..., "hparams": {...}}``.
        trainer: :class:`TrainConfig` fields.
        experiment: MLflow experiment when no tracker run is active.
        code_sha256: fingerprint of the model and training code
            (:func:`components.benchmark.ledger.code_fingerprint`); unused here, part of the cache
            key, so a weights file is never rebuilt by other code than trained it.

    Returns:
        The trained model with its preprocessing, and the MLflow run id holding its lineage.
    """
    cfg = build(TrainConfig, trainer)
    train, val, _ = split.standardized()
    torch.manual_seed(cfg.seed)  # weight init happens before train_model seeds the loop
    net = build_model(model["name"], InputSpec.from_windows(train), **model.get("hparams", {}))
    result = train_model(net, train, val, cfg, split.standardizer)  # augmentation un-standardises
    summary = {
        "best_epoch": result.best_epoch,
        "best_val_macro_f1": result.best_val_f1,
        "epochs_run": result.epochs_run,
        "planned_epochs": result.planned_epochs,  # with a budget: reproduce with epochs=N, no budget
        "stopped_by": result.stopped_by,  # patience | epochs | time_budget | deadline
        "train_seconds": round(result.seconds, 1),
        "params": sum(p.numel() for p in net.parameters()),
    }
    data_version = str(split.provenance.get("data_version"))
    params = {
        "model": model,
        "trainer": cfg.to_dict(),
        "window": split.provenance.get("window", {}),
        "split": {
            "protocol": split.provenance.get("protocol"),
            "fold": split.fold.name,
            "train": list(split.fold.train),
            "val": list(split.fold.val),
            "test": list(split.fold.test),
        },
        "dataset": split.provenance.get("dataset"),
    }
    zenml_run = get_step_context().pipeline_run
    with tracking.run_context(experiment=experiment, run_name=zenml_run.name) as run:
        import mlflow

        mlflow.set_tags(
            {
                "zenml_pipeline_run_id": str(zenml_run.id),
                "zenml_pipeline_run_name": zenml_run.name,
                "data_version": data_version,
                "dataset": str(split.provenance.get("dataset")),
                "test_subjects": ",".join(split.fold.test),
                "config_hash": tracking.config_hash(params),
                "model_architecture": model["name"],
                "stopped_by": result.stopped_by,
                **tracking.git_info(),
            }
        )
        mlflow.log_params(tracking.flatten(params))
        tracking.log_split_datasets(split, data_version)
        tracking.log_history(result.history)
        mlflow.log_metrics({f"train.{k}": float(v) for k, v in summary.items() if not isinstance(v, str)})
        mlflow.log_metric("train.stopped_by_time_budget", float(result.stopped_by == "time_budget"))
        tracking.log_figure(plots.plot_learning_curves(result.history), "plots/learning_curves.png")
        tracking.log_figure(plots.plot_modality_balance(result.history), "plots/modality_balance.png")
        run_id = run.info.run_id
    log_metadata({"mlflow_run_id": run_id, **summary})
    log_metadata({"mlflow_run_id": run_id}, run_id_name_or_prefix=zenml_run.id)
    return TrainedModel(net, preprocessing_from_split(split), result.history, summary), run_id
