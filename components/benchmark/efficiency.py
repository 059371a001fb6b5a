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
* :func:`efficiency_report` - all of the above in one JSON-serialisable dict;
  :func:`efficiency_reports` the same for several models, their latencies timed in
  interleaved rounds (:func:`interleaved_times`) so that ratios between models hold on a
  shared machine.

Only torch / numpy / onnx / onnxruntime are imported (no MLOps stack).
"""

from __future__ import annotations

import contextlib
import copy
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from components.export import onnx_export
from components.models.spec import InputSpec

OPSET = onnx_export.OPSET
# latency blocks per model in efficiency_reports (each model is timed once per round)
LATENCY_ROUNDS = 5


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


def _time_calls(call: Callable[[], Any], runs: int, warmup: int) -> list[float]:
    """Seconds per call of ``runs`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return times


def _ort_call(path: str | Path, spec: InputSpec) -> Callable[[], Any]:
    """One batch-1 ONNX Runtime inference as a no-argument call."""
    sess = ort_session(path)
    feed = {sess.get_inputs()[0].name: _example(spec).numpy()}
    return lambda: sess.run(None, feed)


def _torch_call(model: nn.Module, spec: InputSpec) -> Callable[[], Any]:
    """One batch-1 eager inference of a CPU copy of ``model`` (run under :func:`_one_torch_thread`)."""
    m = copy.deepcopy(model).cpu().eval()
    x = _example(spec)
    return lambda: m(x)


@contextlib.contextmanager
def _one_torch_thread() -> Iterator[None]:
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.inference_mode():
            yield
    finally:
        torch.set_num_threads(prev)


def interleaved_times(
    calls: dict[str, Callable[[], Any]], runs: int = 200, warmup: int = 20, rounds: int = LATENCY_ROUNDS
) -> dict[str, list[float]]:
    """Seconds per call for each of ``calls``, timed in ``rounds`` interleaved blocks.

    Each round times every call in turn (``runs / rounds`` calls each, after a short warm-up),
    starting one place later each round, so a slow spell of a shared machine falls on every
    model alike instead of on whichever was timed during it: the ratios between models hold.
    """
    names = list(calls)
    per_round = max(1, -(-runs // rounds))
    times: dict[str, list[float]] = {n: [] for n in names}
    for n in names:
        _time_calls(calls[n], 0, warmup)
    for r in range(rounds if names else 0):
        for n in names[r % len(names) :] + names[: r % len(names)]:
            times[n] += _time_calls(calls[n], per_round, max(1, warmup // rounds))
    return times


def latency_ort(path: str | Path, spec: InputSpec, runs: int = 200, warmup: int = 20) -> dict[str, float]:
    """Batch-1 latency (ms) of an ONNX file in ONNX Runtime, 1 intra-op thread."""
    return _percentiles(_time_calls(_ort_call(path, spec), runs, warmup))


def latency_torch(model: nn.Module, spec: InputSpec, runs: int = 200, warmup: int = 20) -> dict[str, float]:
    """Batch-1 eager latency (ms) on CPU with ``torch.set_num_threads(1)``."""
    call = _torch_call(model, spec)
    with _one_torch_thread():
        return _percentiles(_time_calls(call, runs, warmup))


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
    return efficiency_reports({"model": model}, spec, runs, warmup, rounds=1, onnx_dir=onnx_dir)["model"]


def efficiency_reports(
    models: dict[str, nn.Module],
    spec: InputSpec,
    runs: int = 200,
    warmup: int = 20,
    rounds: int = LATENCY_ROUNDS,
    onnx_dir: str | Path | None = None,
) -> dict[str, dict[str, Any]]:
    """:func:`efficiency_report` for several models, their latencies timed side by side.

    The latencies come from :func:`interleaved_times`. Timed one after the other in a single
    block each, two models with the same inference graph (``cmdhar`` and
    ``cmdhar-with-modulation``) once measured 0.47 and 0.32 ms in the same USC-HAD file.
    """
    reports: dict[str, dict[str, Any]] = {}
    ort_calls: dict[str, Callable[[], Any]] = {}
    torch_calls: dict[str, Callable[[], Any]] = {}
    with contextlib.ExitStack() as stack:
        if onnx_dir is None:
            onnx_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="har-onnx-"))
        for i, (name, model) in enumerate(models.items()):
            model = copy.deepcopy(model).cpu().eval()
            out: dict[str, Any] = {
                "params": count_params(model),
                "macs_per_window": macs_per_window(model, spec),
                "onnx_size_bytes": None,
                "onnx_max_abs_diff": None,
                "latency_ms_p50": None,
                "latency_ms_p90": None,
            }
            try:
                path = Path(onnx_dir) / f"{type(model).__name__}-{os.getpid()}-{i}.onnx"
                export_onnx(model, spec, path)
                out["onnx_size_bytes"] = path.stat().st_size
                out["onnx_max_abs_diff"] = onnx_parity(model, path, spec)
                ort_calls[name] = _ort_call(path, spec)
            except Exception as exc:  # noqa: BLE001 - reported, not raised
                out["onnx_error"] = f"{type(exc).__name__}: {exc}"[:500]
            torch_calls[name] = _torch_call(model, spec)
            reports[name] = out
        for name, times in interleaved_times(ort_calls, runs, warmup, rounds).items():
            lat = _percentiles(times)
            reports[name]["latency_ms_p50"], reports[name]["latency_ms_p90"] = lat["p50"], lat["p90"]
    with _one_torch_thread():
        torch_times = interleaved_times(torch_calls, runs, warmup, rounds)
    for name, times in torch_times.items():
        lat = _percentiles(times)
        reports[name]["latency_ms_p50_torch"], reports[name]["latency_ms_p90_torch"] = lat["p50"], lat["p90"]
        reports[name]["latency_runs"] = len(times)
        reports[name]["latency_rounds"] = rounds
    return reports
