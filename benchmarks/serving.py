"""Serving benchmark: HTTP overhead vs in-process ONNX Runtime, throughput with batching, int8 vs fp32.

    python -m benchmarks.serving --bundle DIR [--tinyhar-bundle DIR] [--seconds 10]
      -> benchmarks/results/serving.json

Starts `bentoml serve` on 127.0.0.1 (a free port) with the bundle saved into a temporary
BentoML home, sends real DSADS test windows (from the bundle's parity file) and measures:
single-window latency over HTTP (p50/p99) vs the same int8 model in-process (the floor),
throughput with 32 concurrent clients (adaptive batching; batch sizes the server formed),
and int8-vs-fp32 batch-1 latency and file-size ratios per bundle.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import environment, write_result
from components.edge.bundle import read_manifest
from har_runtime.runtime import Classifier


def _in_process(folder: Path, x: np.ndarray, model_file: str, n: int = 500) -> list[float]:
    clf = Classifier.from_folder(folder, model_file=model_file)
    w = np.ascontiguousarray(x[:1])
    for _ in range(50):
        clf.logits(w)
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        clf.logits(w)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def _ratios(folder: Path, x: np.ndarray) -> dict:
    m = read_manifest(folder)
    f32, i8 = np.median(_in_process(folder, x, "model.onnx")), np.median(_in_process(folder, x, "model.int8.onnx"))
    return {
        "model": m["lineage"].get("model_name") or folder.name,
        "fp32_bytes": m["files"]["model.onnx"]["bytes"],
        "int8_bytes": m["files"]["model.int8.onnx"]["bytes"],
        "size_ratio_fp32_over_int8": m["files"]["model.onnx"]["bytes"] / m["files"]["model.int8.onnx"]["bytes"],
        "fp32_latency_ms_p50": float(f32),
        "int8_latency_ms_p50": float(i8),
        "latency_ratio_fp32_over_int8": float(f32 / i8),
        "fp32_macro_f1": m["metrics"].get("fp32_macro_f1"),
        "int8_macro_f1": m["metrics"].get("int8_macro_f1"),
    }


async def _throughput(url: str, x: np.ndarray, clients: int, seconds: float) -> dict:
    import httpx

    bodies = [{"windows": x[i : i + 1].tolist()} for i in range(len(x))]
    done, errors = 0, 0
    stop = time.perf_counter() + seconds

    async def worker(k: int, client: httpx.AsyncClient) -> None:
        nonlocal done, errors
        i = k
        while time.perf_counter() < stop:
            r = await client.post("/classify", json=bodies[i % len(bodies)])
            if r.status_code == 200:
                done += 1
            else:
                errors += 1
            i += clients

    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(k, client) for k in range(clients)))
        wall = time.perf_counter() - t0
    return {"clients": clients, "seconds": wall, "windows": done, "errors": errors, "windows_per_s": done / wall}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bundle", type=Path, required=True)
    ap.add_argument("--tinyhar-bundle", type=Path)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--requests", type=int, default=500)
    args = ap.parse_args()
    import httpx

    with np.load(args.bundle / "parity.npz") as p:
        x = p["x"].astype(np.float32)
    floor = _in_process(args.bundle, x, "model.int8.onnx", args.requests)
    home = tempfile.mkdtemp(prefix="bench-bentoml-")
    env = {**os.environ, "BENTOML_HOME": home, "BENTOML_DO_NOT_TRACK": "true", "HAR_BENTO_MODEL": "bench-model:latest"}
    code = (
        "import sys; from pathlib import Path; from components.edge.store import save_to_bentoml; "
        "save_to_bentoml(Path(sys.argv[1]), 'bench-model', {'stage': 'champion'})"
    )
    subprocess.run([sys.executable, "-c", code, str(args.bundle)], env=env, check=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    bentoml = str(Path(sys.executable).parent / "bentoml")
    proc = subprocess.Popen(
        [bentoml, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        client = httpx.Client(base_url=url, timeout=30)
        for _ in range(240):
            try:
                if client.get("/readyz").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        body = {"windows": x[:1].tolist()}
        for _ in range(50):
            client.post("/classify", json=body)
        http, errors = [], 0
        for i in range(args.requests):
            b = {"windows": x[i % len(x) : i % len(x) + 1].tolist()}
            t0 = time.perf_counter()
            r = client.post("/classify", json=b)
            http.append((time.perf_counter() - t0) * 1000)
            errors += r.status_code != 200
        tput = asyncio.run(_throughput(url, x, 32, args.seconds))
        batches = client.post("/batch_stats").json()["batch_sizes"]
        version = client.post("/metadata").json()["model_version"]
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    comparisons = {"cmdhar": _ratios(args.bundle, x)}
    if args.tinyhar_bundle:
        comparisons["tinyhar"] = _ratios(args.tinyhar_bundle, x)
    p50_http, p99_http = np.percentile(http, [50, 99])
    p50_floor = float(np.median(floor))
    result = {
        "benchmark": "serving",
        "command": "python -m benchmarks.serving " + " ".join(sys.argv[1:]),
        "environment": environment(),
        "model_version": version,
        "bundle": str(args.bundle),
        "single_window_requests": args.requests,
        "inprocess_p50_ms": p50_floor,
        "http_p50_ms": float(p50_http),
        "p99_latency_ms": float(p99_http),
        "p50_overhead_ms": float(p50_http - p50_floor),
        "throughput_windows_per_s": tput["windows_per_s"],
        "throughput": tput,
        "errors": int(errors + tput["errors"]),
        "batch_sizes_formed": batches,
        "targets": {"p50_overhead_ms": 2.0, "throughput_windows_per_s": 2000, "errors": 0},
        "meets_targets": bool(
            p50_http - p50_floor <= 2.0 and tput["windows_per_s"] >= 2000 and errors + tput["errors"] == 0
        ),
        "int8_vs_fp32": comparisons,
    }
    print(write_result("serving", result))


if __name__ == "__main__":
    main()
