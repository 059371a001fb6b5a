"""What a candidate becomes in the MLflow model registry: the served int8 ONNX and its fp32 twin.

- ``<registered_model>`` (e.g. ``cmd-har-dsads``) holds the int8 graph that BentoML and the
  edge bundle serve; the aliases ``champion``, ``challenger`` and ``previous-champion`` live
  there and nowhere else.
- ``<registered_model>-fp32`` holds the fp32 graph of the same candidate, for reference and
  re-evaluation; it never carries an alias.

Each version has an MLflow signature (float32 windows ``(-1, channels, window_len)`` under
the ONNX input's name -> logits ``(-1, n_classes)``), a description naming the data version,
dataset, test subjects, precision and test macro-F1, and tags linking it to its twin.
``ZENML_STAGE`` is how the same promotion decision sets the ZenML model version's stage
(docs/decisions/registry-int8-fp32-and-zenml-stage.md). MLflow is imported lazily; nothing
here needs ZenML.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components import tracking
from components.export.exported import ExportedModel

INT8, FP32 = "int8", "fp32"
FP32_SUFFIX = "-fp32"
# the ZenML stage each promotion outcome gives the ZenML model version of the run that
# registered the candidate ("rejected": no stage). `set_stage(..., force=True)` archives the
# version that held the stage before: the previous champion's goes from production to archived.
ZENML_STAGE = {"champion": "production", "challenger": "staging"}
OUTCOMES = ("champion", "challenger", "rejected")  # what components.evaluation.promotion.decide returns
ARTIFACT_NAME = {INT8: "onnx-int8", FP32: "onnx-fp32"}
SERVED_BY = "BentoML service and edge bundle"


def alias_moves(outcome: str, candidate_version: str, aliases: Mapping[str, str]) -> dict[str, str]:
    """The aliases a promotion decision moves: ``{alias: version}``, in the order to set them.

    ``aliases`` holds the registered model's current aliases (``{alias: version}``, as
    ``RegisteredModel.aliases``); only ``champion`` matters here.

    - ``champion``: the current champion, if there is one, becomes ``previous-champion``
      (replacing the one before), then the candidate becomes ``champion``; ``challenger``
      stays where it is;
    - ``challenger``: the candidate becomes ``challenger`` (replacing an earlier challenger);
      ``champion`` and ``previous-champion`` stay;
    - ``rejected``: nothing moves.

    Raises:
        ValueError: ``outcome`` is not one of ``OUTCOMES``, or the candidate already holds
            ``champion`` (a promotion always registers a new version).
    """
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown promotion outcome {outcome!r}; expected one of {', '.join(OUTCOMES)}")
    champion = aliases.get(tracking.CHAMPION)
    if champion is not None and str(champion) == str(candidate_version):
        raise ValueError(f"version {candidate_version} already holds {tracking.CHAMPION!r}: promote a new version")
    if outcome == "champion":
        moves = {tracking.PREVIOUS: str(champion)} if champion is not None else {}
        return {**moves, tracking.CHAMPION: str(candidate_version)}
    if outcome == "challenger":
        return {tracking.CHALLENGER: str(candidate_version)}
    return {}


def fp32_twin(registered_model: str) -> str:
    """The registered model holding the fp32 twins of ``registered_model``'s (int8) versions."""
    return registered_model + FP32_SUFFIX


@dataclass(frozen=True)
class CandidateFacts:
    """What the description and tags of both registered versions state."""

    dataset: str
    data_version: str
    test_subjects: tuple[str, ...]
    fp32_macro_f1: float
    int8_macro_f1: float
    mlflow_run_id: str

    def macro_f1(self, precision: str) -> float:
        return self.int8_macro_f1 if precision == INT8 else self.fp32_macro_f1


@dataclass(frozen=True)
class RegisteredPair:
    """The int8 version (served; aliases) and its fp32 twin."""

    model: str
    version: str
    fp32_model: str
    fp32_version: str

    def to_dict(self) -> dict[str, str]:
        return {
            "registered_model": self.model,
            "registered_version": self.version,
            "fp32_registered_model": self.fp32_model,
            "fp32_registered_version": self.fp32_version,
        }


def onnx_io_names(onnx_bytes: bytes) -> tuple[str, str, list[Any], list[Any]]:
    """(input name, output name, input dims, output dims) of a single-input, single-output
    ONNX graph; a dim is an int, or a string for a symbolic (dynamic) axis."""
    import onnx

    graph = onnx.load_from_string(onnx_bytes).graph
    initializers = {i.name for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise ValueError(
            f"expected an ONNX graph with one input and one output, got inputs {[i.name for i in inputs]} "
            f"and outputs {[o.name for o in graph.output]}"
        )

    def dims(value: Any) -> list[Any]:
        shape = value.type.tensor_type.shape.dim
        return [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in shape]

    return inputs[0].name, graph.output[0].name, dims(inputs[0]), dims(graph.output[0])


def onnx_signature(onnx_bytes: bytes, channels: int, window_len: int, n_classes: int) -> Any:
    """The MLflow signature of an exported graph: float32 ``(-1, channels, window_len)`` under the
    ONNX input's name -> float32 logits ``(-1, n_classes)`` under the output's name.

    Raises:
        ValueError: the graph's fixed dimensions disagree with the preprocessing's.
    """
    import numpy as np
    from mlflow.models import ModelSignature
    from mlflow.types.schema import Schema, TensorSpec

    in_name, out_name, in_dims, out_dims = onnx_io_names(onnx_bytes)
    for what, got, want in (("input", in_dims, [channels, window_len]), ("output", out_dims, [n_classes])):
        fixed = [d if isinstance(d, int) else None for d in got[1:]]
        if len(got) != len(want) + 1 or any(f is not None and f != w for f, w in zip(fixed, want, strict=True)):
            raise ValueError(
                f"the ONNX {what} has shape {got}, the preprocessing says (batch, {', '.join(map(str, want))})"
            )
    return ModelSignature(
        inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, channels, window_len), in_name)]),
        outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, n_classes), out_name)]),
    )


def describe(precision: str, facts: CandidateFacts, registered_model: str, twin: str | None = None) -> str:
    """The description of one registered version (``twin``: ``name vN`` of the other precision)."""
    role = (
        f"int8 ONNX served by the {SERVED_BY}; the aliases champion/challenger/previous-champion of "
        f"{registered_model} name served models"
        if precision == INT8
        else "fp32 ONNX twin of the served int8 model (reference and re-evaluation; never served, no aliases)"
    )
    other = INT8 if precision == FP32 else FP32
    lines = [
        f"{role}.",
        f"Precision: {precision}. Dataset: {facts.dataset}. Data version (data.dvc md5): {facts.data_version}.",
        f"Test subjects: {', '.join(facts.test_subjects)}. "
        f"Test macro-F1 ({precision}): {facts.macro_f1(precision):.4f} ({other}: {facts.macro_f1(other):.4f}).",
        f"Training MLflow run: {facts.mlflow_run_id}.",
    ]
    if twin:
        lines.append(f"{other} twin: {twin}.")
    return "\n".join(lines)


MODEL_DESCRIPTION = {
    INT8: "Served int8 ONNX models (BentoML service, edge bundle). The aliases champion, challenger and "
    "previous-champion here decide what is in production; fp32 twins: {twin}.",
    FP32: "fp32 ONNX twins of {twin}'s int8 versions (tag int8_registered_version). No aliases: {twin}'s "
    "aliases decide what is in production.",
}


def register_pair(
    exported: ExportedModel,
    registered_model: str,
    facts: CandidateFacts,
    example: Any,
    tags: dict[str, str] | None = None,
) -> RegisteredPair:
    """Log both ONNX graphs in the active MLflow run, register them (int8 in ``registered_model``,
    fp32 in its ``-fp32`` twin) with signature, description and tags; return both versions.

    ``tags``: extra tags for both versions (e.g. ``promotion_outcome``).
    """
    pre = exported.preprocessing
    channels, window_len, n_classes = len(pre["channel_names"]), int(pre["window_len"]), len(pre["label_names"])
    twin = fp32_twin(registered_model)
    metadata = {"preprocessing": pre, "export": exported.report}
    versions = {}
    with tempfile.TemporaryDirectory() as tmp:
        for precision, name, data in ((INT8, registered_model, exported.int8), (FP32, twin, exported.fp32)):
            path = Path(tmp) / f"{precision}.onnx"
            path.write_bytes(data)
            versions[precision] = tracking.register_onnx(
                path,
                name,
                example,
                {**metadata, "precision": precision},
                signature=onnx_signature(data, channels, window_len, n_classes),
                artifact_name=ARTIFACT_NAME[precision],
            )
    pair = RegisteredPair(registered_model, versions[INT8], twin, versions[FP32])
    client = tracking.client()
    common = {
        "dataset": facts.dataset,
        "data_version": facts.data_version,
        "test_subjects": ",".join(facts.test_subjects),
        "mlflow_run_id": facts.mlflow_run_id,
        **(tags or {}),
    }
    for precision, name, version, other in (
        (INT8, pair.model, pair.version, {"fp32_registered_model": twin, "fp32_registered_version": pair.fp32_version}),
        (FP32, twin, pair.fp32_version, {"int8_registered_model": pair.model, "int8_registered_version": pair.version}),
    ):
        version_tags = {**common, **other, "precision": precision, "test_macro_f1": f"{facts.macro_f1(precision):.4f}"}
        for key, value in version_tags.items():
            client.set_model_version_tag(name, version, key, str(value))
        twin_ref = f"{twin} v{pair.fp32_version}" if precision == INT8 else f"{pair.model} v{pair.version}"
        client.update_model_version(name, version, description=describe(precision, facts, pair.model, twin_ref))
    client.update_registered_model(pair.model, description=MODEL_DESCRIPTION[INT8].format(twin=twin))
    client.update_registered_model(twin, description=MODEL_DESCRIPTION[FP32].format(twin=pair.model))
    return pair
