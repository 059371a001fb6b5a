"""Step: save a promoted model into the BentoML model store (what `bentoml serve` loads)."""

from __future__ import annotations

from typing import Annotated

from zenml import log_metadata, step

from components.export.bundle import ExportedModel


@step(enable_cache=False)
def package_model_step(promotion_decision: dict, exported_model: ExportedModel) -> Annotated[str, "bento_model_tag"]:
    """Save the int8 ONNX model to the BentoML store when it became champion.

    Its labels carry the lineage ids (data version, MLflow run, registered version), its
    metadata the preprocessing. Returns the BentoML model tag, or ``""`` when nothing was
    promoted (the served model stays what it was).
    """
    if not promotion_decision["promoted"]:
        return ""
    import bentoml
    import onnx

    pre = exported_model.preprocessing
    name = str(promotion_decision["registered_model"])
    model = bentoml.onnx.save_model(
        name,
        onnx.load_model_from_string(exported_model.int8),
        labels={
            "data_version": str(pre.get("data_version")).replace(".dir", ""),
            "mlflow_run_id": promotion_decision["mlflow_run_id"],
            "registered_version": str(promotion_decision["registered_version"]),
            "stage": "champion",
        },
        metadata={"preprocessing": pre, "export": exported_model.report},
    )
    tag = str(model.tag)
    log_metadata({"bento_model_tag": tag})
    return tag
