"""Model efficiency measurements: parameters, MACs, ONNX size, batch-1 CPU latency.

Everything here runs on CPU with one thread so numbers are comparable across machines
and with what is deployed (an fp32 ONNX model in ONNX Runtime):

* :func:`count_params` - trainable parameters;
* :func:`macs_per_window` - multiply-accumulates for one window
  (``torch.utils.flop_counter.FlopCounterMode``, MACs = FLOPs / 2; forward hooks on
  conv/linear/LSTM layers as a fallback);
* :func:`export_onnx` - fp32 ONNX (dynamo exporter, opset 18, dynamic batch axis);
* :func:`latency_ort` / :func:`latency_torch` - p50/p90 over ``runs`` batch-1 calls
  after ``warmup`` calls (ORT: ``intra_op_num_threads=1``, sequential execution;
  torch: eager, ``torch.set_num_threads(1)``, ``no_grad``);
* :func:`efficiency_report` - all of the above in one JSON-serialisable dict.

Only torch / numpy / onnx / onnxruntime are imported (no MLOps stack).
"""

from __future__ import annotations

import copy
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from components.export import onnx_export
from components.models.spec import InputSpec

OPSET = onnx_export.OPSET


def count_params(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad))


def _example(spec: InputSpec, batch: int = 1, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, spec.n_channels, spec.window_len, generator=g)


def _run_with_hooks(model: nn.Module, x: torch.Tensor, types: tuple, hook: Any) -> None:
    """One no-grad forward pass with ``hook`` on every module of ``types``."""
    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, types)]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()


def _macs_by_hooks(model: nn.Module, x: torch.Tensor) -> int:
    """Approximate MACs of conv / linear layers, plus LSTM / GRU (fallback)."""
    total = [0]

    def hook(mod: nn.Module, inp: tuple, out: Any) -> None:
        o = out[0] if isinstance(out, tuple) else out
        if isinstance(mod, (nn.Conv1d, nn.Conv2d)):
            k = int(np.prod(mod.kernel_size)) * (mod.in_channels // mod.groups)
            total[0] += int(o.numel()) * k
        else:
            total[0] += int(o.numel()) * mod.in_features

    _run_with_hooks(model, x, (nn.Conv1d, nn.Conv2d, nn.Linear), hook)
    return total[0] + _rnn_macs(model, x)


def macs_per_window(model: nn.Module, spec: InputSpec) -> int:
    """Multiply-accumulates of one forward pass at batch 1 (eval mode)."""
    model = model.eval()
    x = _example(spec)
    try:
        from torch.utils.flop_counter import FlopCounterMode

        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
        flops = int(counter.get_total_flops())
        rnn = _rnn_macs(model, x)  # FlopCounterMode does not count the fused LSTM/GRU kernels
        if flops > 0:
            return flops // 2 + rnn
    except Exception:  # pragma: no cover - depends on the torch version
        pass
    return _macs_by_hooks(model, x)


def _rnn_macs(model: nn.Module, x: torch.Tensor) -> int:
    """MACs of LSTM/GRU layers only (not counted by FlopCounterMode on CPU)."""
    rnns = [m for m in model.modules() if isinstance(m, (nn.LSTM, nn.GRU))]
    if not rnns:
        return 0
    total = [0]

    def hook(mod: nn.Module, inp: tuple, out: Any) -> None:
        gates = 4 if isinstance(mod, nn.LSTM) else 3
        seq = inp[0]
        steps = int(seq.shape[1] if mod.batch_first else seq.shape[0])
        batch = int(seq.shape[0] if mod.batch_first else seq.shape[1])
        dirs = 2 if mod.bidirectional else 1
        h = mod.hidden_size
        for layer in range(mod.num_layers):
            d_in = mod.input_size if layer == 0 else h * dirs
            total[0] += dirs * steps * batch * gates * h * (d_in + h)

    _run_with_hooks(model, x, (nn.LSTM, nn.GRU), hook)
    return total[0]


def export_onnx(model: nn.Module, spec: InputSpec, path: str | Path) -> Path:
    """Export a CPU copy of ``model`` to fp32 ONNX exactly as the pipeline deploys it
    (:func:`components.export.onnx_export.export_onnx`: opset 18, dynamic batch axis,
    debug info stripped, parity-checked)."""
    path = Path(path)
    onnx_export.export_onnx(copy.deepcopy(model).cpu().eval(), _example(spec, 8).numpy(), path)
    return path


def ort_session(path: str | Path, threads: int = 1):
    """An ONNX Runtime CPU session: ``intra_op_num_threads=threads``, sequential."""
    return onnx_export.onnx_session(Path(path), threads=threads)


def _percentiles(times_s: list[float]) -> dict[str, float]:
    a = np.asarray(times_s) * 1e3
    return {"p50": float(np.percentile(a, 50)), "p90": float(np.percentile(a, 90)), "mean": float(a.mean())}


def latency_ort(path: str | Path, spec: InputSpec, runs: int = 200, warmup: int = 20) -> dict[str, float]:
    """Batch-1 latency (ms) of an ONNX file in ONNX Runtime, 1 intra-op thread."""
    sess = ort_session(path)
    name = sess.get_inputs()[0].name
    x = _example(spec).numpy()
    for _ in range(warmup):
        sess.run(None, {name: x})
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        sess.run(None, {name: x})
        times.append(time.perf_counter() - t0)
    return _percentiles(times)


def latency_torch(model: nn.Module, spec: InputSpec, runs: int = 200, warmup: int = 20) -> dict[str, float]:
    """Batch-1 eager latency (ms) on CPU with ``torch.set_num_threads(1)``."""
    m = copy.deepcopy(model).cpu().eval()
    x = _example(spec)
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.inference_mode():
            for _ in range(warmup):
                m(x)
            times = []
            for _ in range(runs):
                t0 = time.perf_counter()
                m(x)
                times.append(time.perf_counter() - t0)
    finally:
        torch.set_num_threads(prev)
    return _percentiles(times)


def onnx_parity(model: nn.Module, path: str | Path, spec: InputSpec, batches: tuple[int, ...] = (1, 7)) -> float:
    """Max |ORT - torch| over random inputs of the given batch sizes."""
    sess = ort_session(path)
    m = copy.deepcopy(model).cpu().eval()
    worst = 0.0
    for b in batches:
        x = _example(spec, b, seed=b)
        (got,) = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})
        with torch.no_grad():
            want = m(x).numpy()
        worst = max(worst, float(np.abs(got - want).max()))
    return worst


def efficiency_report(
    model: nn.Module,
    spec: InputSpec,
    runs: int = 200,
    warmup: int = 20,
    onnx_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Params, MACs, ONNX size/parity and ORT + torch batch-1 latency of ``model``.

    ``latency_ms_p50`` is the ONNX Runtime number (what is deployed);
    ``latency_ms_p50_torch`` the eager one. If the export fails, the ONNX fields are
    ``None`` and ``onnx_error`` says why (the torch numbers are still measured).
    """
    model = copy.deepcopy(model).cpu().eval()
    out: dict[str, Any] = {
        "params": count_params(model),
        "macs_per_window": macs_per_window(model, spec),
        "onnx_size_bytes": None,
        "onnx_max_abs_diff": None,
        "latency_ms_p50": None,
        "latency_ms_p90": None,
    }
    tmp = None
    if onnx_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="har-onnx-")
        onnx_dir = tmp.name
    try:
        path = export_onnx(model, spec, Path(onnx_dir) / f"{type(model).__name__}-{os.getpid()}.onnx")
        out["onnx_size_bytes"] = path.stat().st_size
        out["onnx_max_abs_diff"] = onnx_parity(model, path, spec)
        lat = latency_ort(path, spec, runs, warmup)
        out["latency_ms_p50"], out["latency_ms_p90"] = lat["p50"], lat["p90"]
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        out["onnx_error"] = f"{type(exc).__name__}: {exc}"[:500]
    finally:
        if tmp is not None:
            tmp.cleanup()
    lt = latency_torch(model, spec, runs, warmup)
    out["latency_ms_p50_torch"], out["latency_ms_p90_torch"] = lt["p50"], lt["p90"]
    out["latency_runs"] = runs
    return out
