"""Step: save a promoted model's edge bundle into the BentoML store (what `bentoml serve` loads)."""

from __future__ import annotations

from typing import Annotated

from zenml import log_metadata, step

from components.edge.bundle import EdgeBundle, verify_bundle
from components.edge.store import champion_labels, save_to_bentoml


@step(enable_cache=False)
def package_model_step(promotion_decision: dict, edge_bundle: EdgeBundle) -> Annotated[str, "bento_model_tag"]:
    """Save the bundle (int8 + fp32 ONNX, preprocessing, lineage manifest) as a BentoML model.

    Only champions are saved, so ``<model>:latest`` is the current champion. The bundle is
    re-verified (hashes, parity) after its trip through the artifact store. Its labels
    carry the lineage ids (data version, ZenML run, MLflow run, registered version, git
    commit); the service copies them onto the Bento. Returns the BentoML model tag, or
    ``""`` when nothing was promoted (the served model stays what it was).
    """
    if not promotion_decision["promoted"] or not edge_bundle:
        return ""
    with edge_bundle.unpacked() as folder:
        verify_bundle(folder)
        tag = save_to_bentoml(folder, str(promotion_decision["registered_model"]), champion_labels(folder))
    log_metadata({"bento_model_tag": tag})
    return tag
