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
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
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


def _bodies(x: np.ndarray) -> list[bytes]:
    """One single-window request body per test window, encoded once (client encoding is not server time).

    float32 values are written in their shortest exact form (orjson), as a client sending float32
    sensor readings would: the server decodes bit-identical windows from ~2.4x fewer bytes than
    Python's float64 repr of the same values.
    """
    import orjson

    return [orjson.dumps({"windows": x[i : i + 1]}, option=orjson.OPT_SERIALIZE_NUMPY) for i in range(len(x))]


async def _throughput(url: str, bodies: list[bytes], clients: int, seconds: float) -> dict:
    """``clients`` concurrent keep-alive clients (aiohttp: cheap on the shared CPUs) posting single windows."""
    import aiohttp

    done, statuses, samples = 0, Counter(), []
    stop = time.perf_counter() + seconds
    headers = {"content-type": "application/json"}

    async def worker(k: int, session: aiohttp.ClientSession) -> None:
        nonlocal done
        i = k
        while time.perf_counter() < stop:
            try:
                async with session.post(url + "/classify", data=bodies[i % len(bodies)], headers=headers) as r:
                    text = await r.read()
                    if r.status == 200:
                        done += 1
                    else:
                        statuses[str(r.status)] += 1
                        if len(samples) < 5:
                            samples.append(f"{r.status}: {text[:300].decode(errors='replace')}")
            except (aiohttp.ClientError, asyncio.TimeoutError) as e:
                statuses[type(e).__name__] += 1
                if len(samples) < 5:
                    samples.append(repr(e)[:300])
            i += clients

    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(k, session) for k in range(clients)))
        wall = time.perf_counter() - t0
    errors = sum(statuses.values())
    return {
        "clients": clients,
        "seconds": wall,
        "windows": done,
        "errors": errors,
        "error_statuses": dict(statuses),
        "error_samples": samples,
        "windows_per_s": done / wall,
    }


def _single(client, bodies: list[bytes], n: int) -> tuple[list[float], Counter, list[str]]:
    """Sequential single-window requests: latency per request (ms), error statuses, sample error bodies."""
    headers = {"content-type": "application/json"}
    for i in range(50):
        client.post("/classify", content=bodies[i % len(bodies)], headers=headers)
    lat, statuses, samples = [], Counter(), []
    for i in range(n):
        t0 = time.perf_counter()
        r = client.post("/classify", content=bodies[i % len(bodies)], headers=headers)
        lat.append((time.perf_counter() - t0) * 1000)
        if r.status_code != 200:
            statuses[str(r.status_code)] += 1
            if len(samples) < 5:
                samples.append(f"{r.status_code}: {r.text[:300]}")
    return lat, statuses, samples


SERVER_KNOBS = ("HAR_WORKERS", "HAR_ORT_THREADS", "HAR_MAX_BATCH_SIZE", "HAR_MAX_LATENCY_MS")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bundle", type=Path, required=True)
    ap.add_argument("--tinyhar-bundle", type=Path)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--requests", type=int, default=500)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--out", default="serving", help="results name: benchmarks/results/<out>.json")
    args = ap.parse_args()
    import httpx

    with np.load(args.bundle / "parity.npz") as p:
        x = p["x"].astype(np.float32)
    bodies = _bodies(x)
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
    log_path = Path(home) / "bentoml-serve.log"
    with open(log_path, "wb") as log:  # a file: an unread pipe fills up and blocks the server
        proc = subprocess.Popen(
            [bentoml, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
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
        http, single_statuses, single_samples = _single(client, bodies, args.requests)
        trivial = []  # the HTTP stack's own floor: a POST that does no work
        for _ in range(args.requests):
            t0 = time.perf_counter()
            client.post("/batch_stats", json={})
            trivial.append((time.perf_counter() - t0) * 1000)
        tput = asyncio.run(_throughput(url, bodies, args.clients, args.seconds))
        batches = client.post("/batch_stats").json()["batch_sizes"]
        version = client.post("/metadata").json()["model_version"]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    errors = sum(single_statuses.values())
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
        "request_body_bytes_mean": float(np.mean([len(b) for b in bodies])),
        "single_window_errors": dict(single_statuses),
        "single_window_error_samples": single_samples,
        "server_knobs": {k: os.environ.get(k) for k in SERVER_KNOBS},
        "server_log": str(log_path),
        "inprocess_p50_ms": p50_floor,
        "http_p50_ms": float(p50_http),
        "p99_latency_ms": float(p99_http),
        "p50_overhead_ms": float(p50_http - p50_floor),
        "trivial_endpoint_p50_ms": float(np.median(trivial)),
        "throughput_windows_per_s": tput["windows_per_s"],
        "throughput": tput,
        "errors": int(errors + tput["errors"]),
        "batch_sizes_formed": batches,
        "targets": {"p50_overhead_ms": 2.0, "throughput_windows_per_s": 2000, "errors": 0},
        "meets_targets": bool(
            p50_http - p50_floor <= 2.0 and tput["windows_per_s"] >= 2000 and errors + tput["errors"] == 0
        ),
        "load_generator": f"aiohttp, {args.clients} keep-alive clients in one process on the same machine",
        "int8_vs_fp32": comparisons,
    }
    print(write_result(args.out, result))


if __name__ == "__main__":
    main()
