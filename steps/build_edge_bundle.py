"""Step: build the edge bundle of a promoted model; it travels to later steps as an artifact."""

from __future__ import annotations

from typing import Annotated

from zenml import get_step_context, log_metadata, step

from components import provenance, tracking
from components.config import artifacts_dir
from components.data.splitting import SplitWindows
from components.edge.bundle import EdgeBundle, build_bundle, verify_bundle
from components.export.exported import ExportedModel
from steps.materializers import EdgeBundleMaterializer


@step(enable_cache=False, output_materializers={"edge_bundle": EdgeBundleMaterializer})
def build_edge_bundle_step(
    promotion_decision: dict, exported_model: ExportedModel, split: SplitWindows, parity_windows: int = 8
) -> Annotated[EdgeBundle, "edge_bundle"]:
    """Build and verify the bundle of a new champion; return its files.

    The manifest carries sha256 of every file, the lineage ids (data.dvc md5, ZenML run,
    MLflow run, registered version, git commit) and the export metrics. The tarball is
    logged to the MLflow run under ``edge/``; a copy stays in ``artifacts/edge/<model>-v<version>/``
    (+ ``.tar.gz``) on the machine that ran the step, for ``har edge verify``; no step reads it.
    Returns the empty bundle when nothing was promoted.

    Args:
        promotion_decision: output of the promotion step.
        exported_model: the ONNX files and their measurements.
        split: the split (test windows for the parity check, test subjects).
        parity_windows: real test windows stored for ``har edge verify``.
    """
    if not promotion_decision["promoted"]:
        return EdgeBundle()
    name, version = promotion_decision["registered_model"], str(promotion_decision["registered_version"])
    git = provenance.git_info()
    lineage = {
        "dataset": exported_model.preprocessing.get("dataset"),
        "data_version": exported_model.preprocessing.get("data_version"),
        "zenml_run_id": str(get_step_context().pipeline_run.id),
        "mlflow_run_id": promotion_decision["mlflow_run_id"],
        "registered_model": name,
        "registered_version": version,
        "git_commit": git.get("commit"),
        "git_dirty": bool(git.get("dirty")),
        "test_subjects": list(split.fold.test),
    }
    folder = build_bundle(
        exported_model.fp32,
        exported_model.int8,
        exported_model.preprocessing,
        split.test.x[:parity_windows],
        lineage,
        exported_model.report,
        artifacts_dir() / "edge",
        f"{name}-v{version}",
    )
    checked = verify_bundle(folder)
    with tracking.run_context(promotion_decision["mlflow_run_id"]):
        import mlflow

        mlflow.log_artifact(str(folder) + ".tar.gz", "edge")
        mlflow.set_tag("edge_bundle", f"edge/{folder.name}.tar.gz")
    log_metadata({"edge_bundle": folder.name, "files": checked["files"]})
    return EdgeBundle.load(folder)
