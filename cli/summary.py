"""What ``har train`` and ``har retrain`` print after a train_pipeline run: metrics, per-class
table, the promotion decision, lineage ids and the next commands."""

from __future__ import annotations

from rich.table import Table

from cli.common import console
from components import tracking


def per_class_table(metrics: dict, worst: int = 3) -> Table:
    """Per-class test recall, precision, F1 and support, lowest recall first; the ``worst``
    lowest-recall classes in red (rare classes otherwise hide behind the macro average).
    Classes absent from the test windows are left out and counted in the caption."""
    names = metrics.get("label_names") or [str(i) for i in range(len(metrics["support"]))]
    rows = [
        (names[i], metrics["per_class_recall"][i], metrics["per_class_precision"][i], metrics["per_class_f1"][i], n)
        for i, n in enumerate(metrics["support"])
        if n > 0
    ]
    rows.sort(key=lambda r: (r[1], r[0]))
    absent = len(metrics["support"]) - len(rows)
    table = Table(
        title="per class (test), lowest recall first",
        caption=f"{absent} classes absent from the test windows" if absent else None,
        title_justify="left",
        pad_edge=False,
        box=None,
    )
    for col in ("class", "recall", "precision", "F1", "support"):
        table.add_column(col, justify="left" if col == "class" else "right")
    for k, (name, recall, precision, f1, n) in enumerate(rows):
        style = "red" if k < worst else None
        table.add_row(name, f"{recall:.3f}", f"{precision:.3f}", f"{f1:.3f}", str(n), style=style)
    return table


def budget_hint(trained: dict) -> str | None:
    """What to do when the time budget, not early stopping, ended a training whose validation
    macro-F1 was at its best in its last epoch (more epochs may score higher); else None."""
    if trained.get("stopped_by") != "time_budget" or trained.get("best_epoch", -1) + 1 < trained.get("epochs_run", 0):
        return None
    return (
        f"the time budget ended training after {trained['epochs_run']} epochs with validation macro-F1 at its "
        "best in the last one, so more epochs may score higher: raise parameters.trainer.time_budget_min, "
        "or set it to null to train until patience ends it"
    )


def print_train_run_summary(run) -> None:
    """Test metrics, per-class precision/recall, the promotion decision with reasons,
    lineage ids and next commands."""
    from zenml.client import Client  # lazy: ZenML is slow to import and `har edge` never needs it

    run = Client().get_pipeline_run(run.id)
    steps = run.steps
    metrics = steps["evaluate_model_step"].outputs["test_metrics"][0].load()
    decision = steps["promote_model_step"].outputs["promotion_decision"][0].load()
    exported = steps["export_model_step"].outputs["exported_model"][0].run_metadata
    bento = steps["package_model_step"].outputs["bento_model_tag"][0].load()
    version = steps["validate_dataset_step"].outputs["validated_data_version"][0].load()
    trained = steps["train_model_step"].outputs["trained_model"][0].run_metadata
    table = Table(title=f"train_pipeline run {run.name} ({run.status.value})", show_header=False)
    table.add_row("data version", f"{version} (data.dvc)")
    if "epochs_run" in trained:
        table.add_row(
            "training",
            f"{trained['epochs_run']} of {trained.get('planned_epochs', '?')} planned epochs "
            f"(best: epoch {trained.get('best_epoch', -1) + 1}), "
            f"stopped by {trained.get('stopped_by', '?')}, {trained.get('train_seconds', float('nan')):.0f} s",
        )
        hint = budget_hint(trained)
        if hint:
            table.add_row("", f"[yellow]{hint}[/]")
    table.add_row("test subjects", ", ".join(metrics["test_subjects"]))
    table.add_row(
        "test macro-F1",
        f"{metrics['macro_f1']:.4f}  (accuracy {metrics['accuracy']:.4f}, balanced {metrics['balanced_accuracy']:.4f})",
    )
    without = metrics.get("missing_modality_macro_f1") or {}
    if without:
        table.add_row("without modality", ", ".join(f"{m}: {v:.3f}" for m, v in without.items()))
    table.add_row(
        "int8",
        f"macro-F1 {exported.get('int8_macro_f1', float('nan')):.4f}, "
        f"{exported.get('int8_bytes')} bytes, p50 {exported.get('int8_latency_ms_p50', 0):.2f} ms",
    )
    colour = {"champion": "green", "challenger": "yellow"}.get(decision["outcome"], "red")
    table.add_row("promotion", f"[{colour}]{decision['outcome']}[/]")
    for reason in decision["reasons"]:
        table.add_row("", reason)
    table.add_row("MLflow run", decision["mlflow_run_id"])
    registered = f"{decision['registered_model']} v{decision['registered_version']} (int8, served)"
    if decision.get("fp32_registered_version"):
        registered += f" · fp32 twin {decision['fp32_registered_model']} v{decision['fp32_registered_version']}"
    table.add_row("registered", registered)
    table.add_row("BentoML model", bento or "unchanged (not promoted)")
    cached = [name for name, s in steps.items() if s.status.value == "cached"]
    table.add_row("cached steps", ", ".join(cached) or "none")
    console.print(table)
    if metrics.get("per_class_recall"):
        console.print(per_class_table(metrics))
    lineage = f"har lineage {decision['registered_version']} -m {decision['registered_model']}"
    bento = f"bentoml models list {decision['registered_model']}" if decision["promoted"] else "(no new champion)"
    console.print(
        f"next: [bold]mlflow ui --backend-store-uri {tracking.tracking_uri()}[/] · [bold]{lineage}[/] · "
        f"[bold]{bento}[/] · [bold]zenml login --local[/] (dashboard)"
    )
