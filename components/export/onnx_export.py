"""torch -> ONNX (fp32, raw sensor units in, logits out) and ONNX Runtime int8 (QDQ).

The exported graph includes the training-split standardisation, so whoever runs it
feeds raw sensor values ``(batch, channels, time)`` in manifest channel order and
never re-implements preprocessing. The batch axis is dynamic.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from components.metrics import classification_metrics
from har_runtime.runtime import session as onnx_session  # the sessions the service and the edge run

OPSET = 18  # the dynamo exporter's native opset; >= 17 as required by the edge runtimes
MAX_BATCH = 4096
# Only weight-bearing ops are quantised (everything else stays float): small models are
# dominated by graph size, and QDQ pairs around every elementwise op would make the int8
# file larger, not smaller.
QUANTIZED_OPS = ("Conv", "MatMul", "Gemm")
# Float initializers left after QDQ (embeddings, 3-D batched biases) with at least this many
# elements are stored int8 too (weight-only: an int8 tensor + one DequantizeLinear), see
# :func:`quantize_residual_weights`. Smaller ones (the 45-element mean/std, LayerNorm
# vectors, scalars) stay float: they are a few hundred bytes and matter for accuracy.
RESIDUAL_MIN_ELEMENTS = 64


class StandardizedModel(nn.Module):
    """``model((x - mean) / std)``: carries the training-split standardisation into the graph."""

    def __init__(self, model: nn.Module, mean, std):
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.as_tensor(np.asarray(mean), dtype=torch.float32).reshape(1, -1, 1))
        self.register_buffer("std", torch.as_tensor(np.asarray(std), dtype=torch.float32).reshape(1, -1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T) raw -> (B, K) logits
        return self.model((x - self.mean) / self.std)


class ExportError(RuntimeError):
    """The exported graph does not reproduce the torch model."""


def export_onnx(model: nn.Module, example: np.ndarray, path: Path, atol: float = 1e-4) -> float:
    """Export ``model`` (eval mode) to a single ONNX file and check parity on ``example``.

    Args:
        model: maps ``(B, C, T)`` float32 to logits ``(B, K)``.
        example: real windows ``(n, C, T)`` used for tracing and the parity check.
        path: output file; written atomically.
        atol: largest tolerated |onnx - torch| over ``example``.

    Returns:
        The measured max |diff|.

    Raises:
        ExportError: parity worse than ``atol``.
    """
    import onnxruntime as ort

    model = model.eval().cpu()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    x = torch.from_numpy(np.ascontiguousarray(example[: min(len(example), 64)], dtype=np.float32))
    fd, tmp = tempfile.mkstemp(suffix=".onnx", dir=path.parent)
    os.close(fd)
    try:
        _quiet_exporter_logs()
        torch.onnx.export(
            model,
            (x[:2],),
            tmp,
            input_names=["x"],
            output_names=["logits"],
            opset_version=OPSET,
            dynamo=True,
            dynamic_shapes={"x": {0: torch.export.Dim("batch", min=1, max=MAX_BATCH)}},
            external_data=False,
            verbose=False,
        )
        _strip_debug_info(tmp)
        compact_onnx(tmp)
        sess = ort.InferenceSession(tmp, providers=["CPUExecutionProvider"])
        (got,) = sess.run(None, {"x": x.numpy()})
        with torch.no_grad():
            want = model(x).numpy()
        diff = float(np.abs(got - want).max())
        if diff > atol:
            raise ExportError(f"ONNX export differs from torch by {diff:.3g} (> {atol})")
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return diff


def _quiet_exporter_logs() -> None:
    """The dynamo exporter logs every phase and missing optional libraries at INFO/WARNING."""
    import logging

    for name in ("torch.onnx", "torch.onnx._internal.exporter._registration", "torch.export"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _strip_debug_info(path: str) -> None:
    """Drop exporter debug info (per-node source stack traces, value_info, doc strings).

    It is most of the file for small models and means nothing to a runtime.
    """
    import onnx

    model = onnx.load(path)
    for node in model.graph.node:
        del node.metadata_props[:]
        node.doc_string = ""
    del model.graph.value_info[:]
    onnx.save(model, path)


def compact_onnx(path: Path | str) -> None:
    """Rewrite an ONNX file without bytes that mean nothing to a runtime.

    Tensor names become short ids (``t0``, ``t1``, ...; the graph input ``x`` and output
    ``logits`` keep their names), node names and doc strings are dropped, and identical
    scalar initializers (the many zero points and scales of a QDQ graph) are shared.
    For a ~30k-parameter model the exporter's long names are a fifth of the fp32 file and
    a third of the int8 file. Applied to fp32 and int8 alike, so the size ratio compares
    like with like.
    """
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    g = model.graph
    keep = {v.name for v in g.input} | {v.name for v in g.output}
    alias: dict[str, str] = {}
    seen: dict[tuple, str] = {}
    for init in list(g.initializer):  # share identical scalars (zero points, scales)
        a = numpy_helper.to_array(init)
        if a.size == 1:
            key = (init.data_type, a.shape, a.tobytes())
            if key in seen:
                alias[init.name] = seen[key]
                g.initializer.remove(init)
            else:
                seen[key] = init.name
    names: dict[str, str] = {}

    def short(name: str) -> str:
        name = alias.get(name, name)
        if not name or name in keep:
            return name
        return names.setdefault(name, "t" + np.base_repr(len(names), 36).lower())

    for init in g.initializer:
        init.name, init.doc_string = short(init.name), ""
    for node in g.node:
        node.input[:] = [short(n) for n in node.input]
        node.output[:] = [short(n) for n in node.output]
        node.name, node.doc_string = "", ""
        del node.metadata_props[:]
    del g.value_info[:]
    g.doc_string = model.doc_string = ""
    onnx.save(model, str(path))


def quantize_residual_weights(path: Path | str, min_elements: int = RESIDUAL_MIN_ELEMENTS) -> list[str]:
    """Store float initializers that QDQ left in float (>= ``min_elements``) as int8.

    Weight-only, symmetric, one scale per leading-axis slice: the int8 tensor feeds a
    ``DequantizeLinear`` whose float output replaces the initializer, so the arithmetic
    stays float (these are embeddings and the biases of batched matmuls, consumed by
    ``Add``). Returns the rewritten initializer names.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(path))
    g = model.graph
    dequantized = {n.input[0] for n in g.node if n.op_type == "DequantizeLinear"}
    new_inits, new_nodes, done = [], [], []
    for init in list(g.initializer):
        if init.data_type != TensorProto.FLOAT or init.name in dequantized or min_elements <= 0:
            continue
        a = numpy_helper.to_array(init)
        if a.size < min_elements:
            continue
        axis = 0 if a.ndim > 1 and a.shape[0] > 1 else None
        amax = np.abs(a).reshape(a.shape[0], -1).max(1) if axis == 0 else np.array(np.abs(a).max())
        scale = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
        q = np.clip(np.round(a / (scale.reshape(-1, *([1] * (a.ndim - 1))) if axis == 0 else scale)), -127, 127)
        g.initializer.remove(init)
        new_inits += [
            numpy_helper.from_array(q.astype(np.int8), init.name + "_i8"),
            numpy_helper.from_array(scale, init.name + "_scale"),
            numpy_helper.from_array(np.zeros_like(scale, np.int8), init.name + "_zp"),
        ]
        attrs = {"axis": axis} if axis is not None else {}
        new_nodes.append(
            helper.make_node(
                "DequantizeLinear", [init.name + "_i8", init.name + "_scale", init.name + "_zp"], [init.name], **attrs
            )
        )
        done.append(init.name)
    g.initializer.extend(new_inits)
    nodes = list(g.node)
    del g.node[:]
    g.node.extend(new_nodes + nodes)  # initializer-only inputs: topological order holds
    onnx.save(model, str(path))
    return done


class _Calibration:
    """ONNX Runtime calibration reader over training windows (batches of 32).

    Every batch has the same size (a last partial batch is dropped when there is more than
    one): ONNX Runtime's histogram collection fails on intermediate outputs of mixed batch
    sizes once some nodes stay float.
    """

    def __init__(self, x: np.ndarray, batch: int = 32):
        n = len(x) if len(x) <= batch else len(x) - len(x) % batch
        self.batches = iter([x[i : i + batch] for i in range(0, n, batch)])

    def get_next(self):
        b = next(self.batches, None)
        return None if b is None else {"x": np.ascontiguousarray(b, dtype=np.float32)}

    def rewind(self):  # pragma: no cover - not used by MinMax calibration
        pass


@dataclass
class QuantizationResult:
    path: Path
    fp32_bytes: int
    int8_bytes: int
    excluded_ops: list[str]
    residual_int8: list[str] = field(default_factory=list)
    float_nodes: list[str] = field(default_factory=list)

    @property
    def size_ratio(self) -> float:
        return self.fp32_bytes / max(self.int8_bytes, 1)


def _name_nodes(model) -> list[str]:
    """Name every node ``n<index>_<op>`` (compaction strips names, and ONNX Runtime's
    ``nodes_to_exclude`` matches by name: with empty names, excluding one node excluded
    all); returns the names of the quantisable nodes, in graph order."""
    for i, node in enumerate(model.graph.node):
        node.name = f"n{i}_{node.op_type}"
    return [n.name for n in model.graph.node if n.op_type in QUANTIZED_OPS]


def quantizable_nodes(fp32_path: Path) -> list[str]:
    """Names (as :func:`quantize_int8` sees them) of the Conv/MatMul/Gemm nodes, in graph order."""
    import onnx
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=True)
        return _name_nodes(onnx.load(str(pre)))


def quantize_int8(
    fp32_path: Path,
    calibration_x: np.ndarray,
    out_path: Path,
    exclude_op_types: tuple[str, ...] = (),
    residual_min_elements: int = RESIDUAL_MIN_ELEMENTS,
    float_nodes: tuple[str, ...] | list[str] = (),
) -> QuantizationResult:
    """Static int8 quantisation (QDQ, per-channel weights, percentile calibration).

    Conv, Gemm and MatMul with a constant weight are quantised (int8 weights per output
    channel, int8 activations from calibration); matmuls of two activations (attention
    scores) and every other op stay float. The result is then compacted
    (:func:`compact_onnx`) and leftover large float initializers stored int8
    (:func:`quantize_residual_weights`).

    Args:
        fp32_path: the exported fp32 model.
        calibration_x: raw training windows only (never validation/test).
        out_path: int8 model path (written atomically).
        exclude_op_types: op types kept in float (e.g. ``("Softmax",)`` if they lose accuracy).
        residual_min_elements: see :func:`quantize_residual_weights` (0: keep them float).
        float_nodes: nodes (names from :func:`quantizable_nodes`) whose activations stay
            float; their weights are still stored int8 by the residual pass.
    """
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    out_path = Path(out_path)
    with tempfile.TemporaryDirectory(dir=out_path.parent) as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=True)
        model = onnx.load(str(pre))
        known = set(_name_nodes(model))
        unknown = sorted(set(float_nodes) - known)
        if unknown:
            raise ValueError(f"float_nodes {unknown} are not quantisable nodes of {fp32_path}")
        nodes_to_exclude = [n.name for n in model.graph.node if n.op_type in exclude_op_types] + list(float_nodes)
        named = Path(tmp) / "named.onnx"
        onnx.save(model, str(named))
        staged = Path(tmp) / "int8.onnx"
        quantize_static(
            str(named),
            str(staged),
            _Calibration(calibration_x),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
            # Percentile (99.999) ignores the rare extreme activations that MinMax lets set the
            # scale: on CMD-HAR/DSADS it kept int8 within 0.3 macro-F1 points of fp32 (MinMax: 5.5).
            calibrate_method=CalibrationMethod.Percentile,
            nodes_to_exclude=nodes_to_exclude,
            op_types_to_quantize=list(QUANTIZED_OPS),
            extra_options={"ActivationSymmetric": False, "WeightSymmetric": True, "MatMulConstBOnly": True},
        )
        residual = quantize_residual_weights(staged, residual_min_elements)
        compact_onnx(staged)
        os.replace(staged, out_path)
    return QuantizationResult(
        path=out_path,
        fp32_bytes=Path(fp32_path).stat().st_size,
        int8_bytes=out_path.stat().st_size,
        excluded_ops=sorted(set(exclude_op_types)),
        residual_int8=residual,
        float_nodes=list(float_nodes),
    )


def quantize_int8_guarded(
    fp32_path: Path,
    calibration_x: np.ndarray,
    val_x: np.ndarray,
    val_y: np.ndarray,
    n_classes: int,
    out_path: Path,
    max_changed_share: float,
) -> tuple[QuantizationResult, dict]:
    """:func:`quantize_int8`, keeping the first quantisable nodes' activations in float
    until int8 changes the predicted class of at most ``max_changed_share`` of the
    *validation* windows (against the fp32 graph).

    The criterion is fidelity to fp32, not the validation macro-F1 drop: flipped windows
    cannot cancel out, so the share does not improve by chance the way one validation
    subject's macro-F1 does (which can rise under quantisation and so let through a graph
    that changes several percent of its predictions). Quantisation error compounds from the
    input onwards, so the candidates are prefixes of the graph-ordered Conv/MatMul/Gemm
    nodes: the smallest float prefix that meets the budget is found by bisection (about
    log2(#nodes) + 1 quantisations); when none does, every activation stays float. Every
    weight stays int8-stored either way. Test windows are never used.

    Returns the result for ``out_path`` and a report: fp32 validation macro-F1, the chosen
    graph's validation changed share and macro-F1 drop, the float prefix length, and the
    changed share for every prefix tried.
    """
    nodes = quantizable_nodes(fp32_path)
    if len(val_x) == 0:  # nothing to judge by: quantise everything, and say so
        res = quantize_int8(fp32_path, calibration_x, out_path)
        return res, {
            "val_fp32_macro_f1": None,
            "val_int8_changed_share": None,
            "val_int8_f1_drop": None,
            "max_changed_share": max_changed_share,
            "float_prefix": 0,
            "quantizable_nodes": len(nodes),
            "tried": {},
        }
    ref = onnx_logits(fp32_path, val_x).argmax(1)
    f1_fp32 = classification_metrics(val_y, ref, n_classes)["macro_f1"]
    tried: dict[int, float] = {}
    f1_int8: dict[int, float] = {}

    def attempt(k: int) -> QuantizationResult:
        res = quantize_int8(fp32_path, calibration_x, out_path, float_nodes=nodes[:k])
        pred = onnx_logits(out_path, val_x).argmax(1)
        tried[k] = float((pred != ref).mean())
        f1_int8[k] = classification_metrics(val_y, pred, n_classes)["macro_f1"]
        return res

    res, last = attempt(0), 0
    if tried[0] > max_changed_share:
        lo, hi = 0, len(nodes)  # prefix lo fails; all-float activations (hi) is the fallback
        while hi - lo > 1:
            mid = (lo + hi) // 2
            res, last = attempt(mid), mid
            lo, hi = (lo, mid) if tried[mid] <= max_changed_share else (mid, hi)
        if last != hi:
            res, last = attempt(hi), hi
    report = {
        "val_fp32_macro_f1": f1_fp32,
        "val_int8_changed_share": tried[last],
        "val_int8_f1_drop": f1_fp32 - f1_int8[last],
        "max_changed_share": max_changed_share,
        "float_prefix": last,
        "quantizable_nodes": len(nodes),
        "tried": dict(sorted(tried.items())),
    }
    return res, report


def float_ops(int8_path: Path) -> list[str]:
    """Op types of an int8 graph that compute in float (every op but Q/DQ and the QLinear fusions)."""
    import onnx

    model = onnx.load(str(int8_path))
    return sorted({n.op_type for n in model.graph.node} - {"QuantizeLinear", "DequantizeLinear", *QUANTIZED_OPS})


def onnx_logits(path_or_session, x: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """Logits of an ONNX model over ``x`` (raw windows), batched."""
    sess = onnx_session(path_or_session) if isinstance(path_or_session, str | Path) else path_or_session
    out = [
        sess.run(None, {"x": np.ascontiguousarray(x[i : i + batch_size], np.float32)})[0]
        for i in range(0, len(x), batch_size)
    ]
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def latency_ms(path: Path, window: np.ndarray, runs: int = 200, warmup: int = 20, threads: int = 1) -> dict:
    """Batch-1 latency percentiles (ms) of an ONNX model on one real window."""
    sess = onnx_session(path, threads=threads)
    x = np.ascontiguousarray(window[None], np.float32)
    for _ in range(warmup):
        sess.run(None, {"x": x})
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        sess.run(None, {"x": x})
        times.append((time.perf_counter() - t0) * 1000)
    p50, p95, p99 = np.percentile(times, [50, 95, 99])
    return {"p50": float(p50), "p95": float(p95), "p99": float(p99)}
