"""Serving benchmark: the HAR service against its floors, per server configuration.

    python -m benchmarks.serving --bundle DIR [--tinyhar-bundle DIR] [--seconds 10] [--configs a,b]
      -> benchmarks/results/serving.json

Starts `bentoml serve` on 127.0.0.1 (a free port) with the bundle saved into a temporary
BentoML home, sends real DSADS windows (the bundle's parity windows, tiled where more are
needed, always in the compact ``b64`` encoding unless stated) and measures, for each server
configuration (``CONFIGS``; the knobs are the service's ``HAR_*`` environment variables):

(a) the framework floor: ``benchmarks/noop_service.py`` (a BentoML endpoint that does no
    work, served the same way) under 32 keep-alive clients sending a single-window body;
(b) ``classify``, 32 clients, one window per request;
(c) ``classify``, ``--multi-clients`` clients, 16, 64 and 256 windows per request;
(d) ``classify_stream``, ``--multi-clients`` clients, a minute of samples per request;
(e) in-process ONNX Runtime (the served file, the server's thread count, nothing else) at
    the batch sizes the batcher formed in (b) and at 16/64/256, after the server has stopped;
    and in-process ``Classifier.classify_stream`` on the same minute as (d)'s floor.

Each part records windows/s, requests/s, p50/p99 latency per request, errors and 5xx; (b)
its ratio to (a)'s requests/s, (c) to (e) at the request's batch size. Single-window latency
on one sequential keep-alive connection (``json`` and ``b64``) gives the p50 HTTP overhead
over in-process batch-1 ONNX Runtime. The client runs on the same cores, and other jobs may
too: for every configuration the CPU time of everything outside this benchmark's own processes
(the machine's busy time from /proc/stat minus this process's and its reaped children's) is
recorded as a share of the machine, and the configuration counts as idle below ``IDLE_SHARE``.
(A load average cannot tell: the benchmark's own load runs raise it.)
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import REPO_ROOT, environment, write_result
from components.edge.bundle import read_manifest
from har_runtime.runtime import Classifier, encode_b64

CLIENTS = 32  # single-window clients, (a) and (b)
MULTI_SIZES = (16, 64, 256)  # windows per request, (c); 256 is HAR_MAX_WINDOWS' default
STREAM_SECONDS = 60  # classify_stream chunk, (d)
IDLE_SHARE = 0.10  # the machine counts as idle when other processes used < 10 % of its CPU time
ORT_SECONDS = 0.3  # in-process timing per batch size
TARGETS = {
    "single_window_vs_noop_floor_min": 0.85,
    "multi_window_windows_per_s_min": 10_000,
    "multi_window_vs_inprocess_ort_min": 0.5,
    "p50_http_overhead_ms_max": 1.5,
    "errors": 0,
    "http_5xx": 0,
}
# Server configurations, each measured separately: overrides of the service's HAR_* settings
# (deployment/service.py holds their defaults; "baseline" runs with them).
CONFIGS: dict[str, dict[str, str]] = {
    "baseline": {},
    "workers-1": {"HAR_WORKERS": "1"},
    "ort-threads-2": {"HAR_ORT_THREADS": "2"},
    "max-batch-256": {"HAR_MAX_BATCH_SIZE": "256"},
    "max-latency-100ms": {"HAR_MAX_LATENCY_MS": "100"},
    "access-log-off": {"HAR_ACCESS_LOG": "0"},
    "metrics-off": {"HAR_METRICS": "0"},
    "access-log-and-metrics-off": {"HAR_ACCESS_LOG": "0", "HAR_METRICS": "0"},
}
SERVER_KNOBS = (
    "HAR_WORKERS",
    "HAR_ORT_THREADS",
    "HAR_MAX_BATCH_SIZE",
    "HAR_MAX_LATENCY_MS",
    "HAR_ACCESS_LOG",
    "HAR_METRICS",
    "HAR_MODEL_PRECISION",
    "HAR_RANGE_CHECK",
    "HAR_MAX_WINDOWS",
)
FRAMEWORK_KNOBS = ("HAR_WORKERS", "HAR_ACCESS_LOG", "HAR_METRICS")  # the ones the noop floor follows
HOST = "127.0.0.1"


# -- request bodies ----------------------------------------------------------------------
def _windows(x: np.ndarray, n: int, start: int) -> np.ndarray:
    """``n`` windows from the parity windows, tiled, starting at ``start``."""
    idx = (start + np.arange(n)) % len(x)
    return np.ascontiguousarray(x[idx])


def _window_bodies(x: np.ndarray, n: int, encoding: str = "b64", count: int | None = None) -> list[bytes]:
    """``classify`` bodies of ``n`` windows each, encoded once (client encoding is not server time).

    ``json``: nested lists, float32 values in their shortest exact form (orjson), as a client
    sending float32 readings would. ``b64``: the compact form.
    """
    import orjson

    count = count or len(x)
    out = []
    for i in range(count):
        w = _windows(x, n, i * n)
        payload = w if encoding == "json" else encode_b64(w)
        out.append(orjson.dumps({"windows": payload}, option=orjson.OPT_SERIALIZE_NUMPY))
    return out


def _minute(x: np.ndarray, rate_hz: float) -> np.ndarray:
    """``STREAM_SECONDS`` of samples ``(samples, channels)``: the parity windows end to end, tiled."""
    samples = np.concatenate(list(x.transpose(0, 2, 1)), axis=0)
    n = int(round(STREAM_SECONDS * rate_hz))
    return np.ascontiguousarray(np.resize(samples, (n, samples.shape[1])).astype(np.float32))


def _stream_body(samples: np.ndarray, rate_hz: float) -> bytes:
    import orjson

    return orjson.dumps({"samples": encode_b64(samples), "sampling_rate_hz": rate_hz, "smoothing": 3})


def _raw_requests(path: str, bodies: list[bytes]) -> list[bytes]:
    """Complete HTTP/1.1 keep-alive POST requests, built once."""
    head = "POST {} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n"
    return [head.format(path, HOST, len(b)).encode() + b for b in bodies]


# -- load generator ----------------------------------------------------------------------
async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """Status, body, and whether the server closes the connection after it (``connection: close``)."""
    head = await reader.readuntil(b"\r\n\r\n")
    length, close = 0, False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection":
            close = value.strip().lower() == b"close"
    return int(head[9:12]), await reader.readexactly(length), close


async def _throughput(port: int, requests: list[bytes], clients: int, seconds: float) -> dict[str, Any]:
    """``clients`` concurrent keep-alive connections, each posting its next request as soon as it has an answer.

    A minimal asyncio HTTP/1.1 client (pre-built requests, content-length framing): it needs a
    small fraction of the CPU aiohttp needs per request, so on 2 shared cores the server, not
    the load generator, is what gets measured.
    """
    lat, statuses, samples = [], Counter(), []
    stop = time.perf_counter() + seconds

    reconnects = [0]

    async def worker(k: int) -> None:
        reader, writer = await asyncio.open_connection(HOST, port, limit=2**26)
        i = k
        try:
            while time.perf_counter() < stop:
                t0 = time.perf_counter()
                writer.write(requests[i % len(requests)])
                try:
                    status, body, close = await _read_response(reader)
                    if close:  # the server rotates keep-alive connections: reconnect, as HTTP/1.1 clients do
                        writer.close()
                        reader, writer = await asyncio.open_connection(HOST, port, limit=2**26)
                        reconnects[0] += 1
                except (asyncio.IncompleteReadError, ConnectionError) as e:
                    statuses[type(e).__name__] += 1
                    samples.append(repr(e)[:300])
                    return
                if status == 200:
                    lat.append((time.perf_counter() - t0) * 1000)
                else:
                    statuses[str(status)] += 1
                    if len(samples) < 5:
                        samples.append(f"{status}: {body[:300].decode(errors='replace')}")
                i += clients
        finally:
            writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(k) for k in range(clients)))
    wall = time.perf_counter() - t0
    p50, p99 = np.percentile(lat, [50, 99]) if lat else (float("nan"), float("nan"))
    return {
        "clients": clients,
        "seconds": wall,
        "requests": len(lat),
        "requests_per_s": len(lat) / wall,
        "p50_ms": float(p50),
        "p99_ms": float(p99),
        "errors": sum(statuses.values()),
        "http_5xx": sum(v for k, v in statuses.items() if k.startswith("5")),
        "error_statuses": dict(statuses),
        "error_samples": samples,
        "reconnects": reconnects[0],  # connections the server closed (HAR_KEEPALIVE_REQUESTS)
    }


def _load(port: int, path: str, bodies: list[bytes], clients: int, seconds: float, per_request: int) -> dict:
    out = asyncio.run(_throughput(port, _raw_requests(path, bodies), clients, seconds))
    return {"windows_per_request": per_request, "windows_per_s": out["requests_per_s"] * per_request, **out}


# -- sequential latency ------------------------------------------------------------------
def _post(conn: http.client.HTTPConnection, path: str, body: bytes) -> tuple[int, bytes]:
    conn.request("POST", path, body=body, headers={"content-type": "application/json"})
    r = conn.getresponse()
    return r.status, r.read()


def _sequential(port: int, path: str, bodies: list[bytes], n: int) -> dict[str, Any]:
    """``n`` requests one after another on one fresh keep-alive connection (after 50 warm-up ones)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=60)
    try:
        for i in range(50):
            _post(conn, path, bodies[i % len(bodies)])
        lat, statuses, samples = [], Counter(), []
        for i in range(n):
            t0 = time.perf_counter()
            status, text = _post(conn, path, bodies[i % len(bodies)])
            lat.append((time.perf_counter() - t0) * 1000)
            if status != 200:
                statuses[str(status)] += 1
                if len(samples) < 5:
                    samples.append(f"{status}: {text[:300].decode(errors='replace')}")
    finally:
        conn.close()
    p50, p99 = np.percentile(lat, [50, 99])
    return {
        "requests": n,
        "p50_ms": float(p50),
        "p99_ms": float(p99),
        "request_body_bytes_mean": float(np.mean([len(b) for b in bodies])),
        "errors": sum(statuses.values()),
        "http_5xx": sum(v for k, v in statuses.items() if k.startswith("5")),
        "error_statuses": dict(statuses),
        "error_samples": samples,
    }


def _post_json(port: int, path: str, body: bytes = b"{}") -> Any:
    conn = http.client.HTTPConnection(HOST, port, timeout=60)
    try:
        status, text = _post(conn, path, body)
    finally:
        conn.close()
    if status != 200:
        raise RuntimeError(f"POST {path}: HTTP {status}: {text[:500].decode(errors='replace')}")
    return json.loads(text)


class _Formed:
    """The batch sizes ``classify``'s adaptive batcher formed during each load run (``/batch_stats`` deltas).

    ``/batch_stats`` answers for the worker that takes the request (its ``pid``): it is asked on
    new connections until every worker has answered, and the deltas are summed over workers.
    """

    def __init__(self, port: int):
        self.port, self.workers = port, int(_post_json(port, "/batch_stats")["workers"])
        self.before = self._now()

    def _now(self) -> dict[str, dict[str, int]]:
        seen: dict[str, dict[str, int]] = {}
        for _ in range(50 * self.workers):
            stats = _post_json(self.port, "/batch_stats")
            seen[str(stats["pid"])] = stats["batch_sizes"]
            if len(seen) >= self.workers:
                break
        return seen

    def record(self, part: dict[str, Any]) -> None:
        after = self._now()
        formed: Counter = Counter()
        per_worker: dict[str, int] = {}
        for pid, sizes in after.items():
            delta = {k: v - self.before.get(pid, {}).get(k, 0) for k, v in sizes.items()}
            formed.update(delta)
            per_worker[pid] = sum(int(k) * v for k, v in delta.items())
        part["batch_sizes_formed"] = {k: v for k, v in sorted(formed.items(), key=lambda kv: int(kv[0])) if v > 0}
        # keep-alive connections stay on the worker that accepted them: an uneven spread caps throughput
        part["windows_per_worker"] = per_worker
        if len(after) < self.workers:
            part["batch_sizes_note"] = f"{len(after)} of {self.workers} workers answered /batch_stats"
        self.before = after


# -- the servers -------------------------------------------------------------------------
@contextmanager
def _serve(target: list[str], env: dict[str, str], log_path: Path):
    """``bentoml serve TARGET`` on a free port; yields the port; SIGINT and wait on exit."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        port = s.getsockname()[1]
    bentoml = str(Path(sys.executable).parent / "bentoml")
    with open(log_path, "ab") as log:  # a file: an unread pipe fills up and blocks the server
        proc = subprocess.Popen(
            [bentoml, "serve", *target, "--host", HOST, "--port", str(port)],
            env=env,
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_ready(port, proc, log_path)
        yield port
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _wait_ready(port: int, proc: subprocess.Popen, log_path: Path) -> None:
    for _ in range(240):
        if proc.poll() is not None:
            raise RuntimeError(f"bentoml serve exited: {log_path.read_text()[-3000:]}")
        conn = http.client.HTTPConnection(HOST, port, timeout=30)
        try:
            conn.request("GET", "/readyz")
            r = conn.getresponse()
            r.read()
            if r.status == 200:
                return
        except (OSError, http.client.HTTPException):
            pass
        finally:
            conn.close()
        time.sleep(0.5)
    raise RuntimeError(f"bentoml serve not ready in 120 s: {log_path.read_text()[-3000:]}")


# -- in-process floors -------------------------------------------------------------------
def _ort_windows_per_s(clf: Classifier, x: np.ndarray, sizes: list[int]) -> dict[str, float]:
    """In-process ``session.run`` windows/s per batch size (the model floor; no decoding or post-processing)."""
    out = {}
    for n in sorted(set(sizes)):
        w = _windows(x, n, 0)
        for _ in range(3):
            clf.logits(w)
        calls, t0 = 0, time.perf_counter()
        while calls < 5 or time.perf_counter() - t0 < ORT_SECONDS:
            clf.logits(w)
            calls += 1
        out[str(n)] = n * calls / (time.perf_counter() - t0)
    return out


def _batch1_p50_ms(clf: Classifier, x: np.ndarray, n: int) -> float:
    w = np.ascontiguousarray(x[:1])
    for _ in range(50):
        clf.logits(w)
    lat = []
    for _ in range(n):
        t0 = time.perf_counter()
        clf.logits(w)
        lat.append((time.perf_counter() - t0) * 1000)
    return float(np.median(lat))


def _stream_floor(clf: Classifier, samples: np.ndarray, rate_hz: float) -> dict[str, float]:
    """In-process ``classify_stream`` on the same minute (request checks, ring buffer, one ORT call per window)."""
    clf.classify_stream(samples, rate_hz, smoothing=3)
    calls, windows, t0 = 0, 0, time.perf_counter()
    while calls < 3 or time.perf_counter() - t0 < 1.0:
        windows += len(clf.classify_stream(samples, rate_hz, smoothing=3)["windows"])
        calls += 1
    wall = time.perf_counter() - t0
    return {"requests_per_s": calls / wall, "windows_per_s": windows / wall}


def _mix_windows_per_s(formed: dict[str, int], ort: dict[str, float]) -> float | None:
    """In-process windows/s over the batches the server formed (their sizes in their proportions)."""
    windows = sum(int(k) * v for k, v in formed.items())
    seconds = sum(int(k) * v / ort[k] for k, v in formed.items())
    return windows / seconds if seconds else None


# -- how busy the rest of the machine was ------------------------------------------------
def _cpu_clock() -> tuple[float, float, float]:
    """(wall s, machine busy CPU s from /proc/stat, this process's + its reaped children's CPU s)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    busy = sum(fields) - fields[3] - (fields[4] if len(fields) > 4 else 0)  # minus idle and iowait
    t = os.times()
    own = t.user + t.system + t.children_user + t.children_system
    return time.monotonic(), busy / os.sysconf("SC_CLK_TCK"), own


def _others_share(start: tuple[float, float, float]) -> float:
    """Share of the machine's CPU time that processes outside this benchmark used since ``start``
    (call it after every server of the configuration has exited and been reaped)."""
    wall, busy, own = (b - a for a, b in zip(start, _cpu_clock(), strict=True))
    return max(0.0, busy - own) / (wall * (os.cpu_count() or 1))


# -- one configuration -------------------------------------------------------------------
def _run_config(name: str, overrides: dict[str, str], args, ctx: dict[str, Any]) -> dict[str, Any]:
    x, rate = ctx["x"], ctx["rate_hz"]
    env = {**ctx["env"], **overrides}
    knobs = {k: env.get(k) for k in SERVER_KNOBS}
    load_before, clock = os.getloadavg(), _cpu_clock()
    log = ctx["home"] / f"{name}.log"
    single = _window_bodies(x, 1)
    print(f"[{name}] {overrides or 'defaults'}", flush=True)

    # (a) the framework floor, with this configuration's framework knobs, measured again for
    # every configuration: on a shared machine a floor from minutes earlier is no floor
    with _serve(["--working-dir", "benchmarks", "noop_service:NoopService"], env, log) as port:
        noop = {
            "framework_knobs": {k: env.get(k) for k in FRAMEWORK_KNOBS},
            "sequential_b64": _sequential(port, "/noop", single, args.requests),
            "load": _load(port, "/noop", single, CLIENTS, args.seconds, 1),
        }

    with _serve([], env, log) as port:
        meta = _post_json(port, "/metadata")
        # all sequential latency before any load: after a burst the adaptive batcher keeps
        # corking single requests for a while (seen: b64 p50 20.9 ms right after a 10 s load run)
        seq = {enc: _sequential(port, "/classify", _window_bodies(x, 1, enc), args.requests) for enc in ("json", "b64")}
        formed = _Formed(port)
        single_load = _load(port, "/classify", single, CLIENTS, args.seconds, 1)
        formed.record(single_load)
        multi = {}
        for n in MULTI_SIZES:
            bodies = _window_bodies(x, n, count=4)
            multi[str(n)] = _load(port, "/classify", bodies, args.multi_clients, args.seconds, n)
            formed.record(multi[str(n)])
        samples = _minute(x, rate)
        body = _stream_body(samples, rate)
        per_stream = len(_post_json(port, "/classify_stream", body)["windows"])
        stream = _load(port, "/classify_stream", [body], args.multi_clients, args.seconds, per_stream)
        stream["samples_per_request"] = len(samples)

    # (e) in-process, with the server stopped: the file it served, its thread count
    threads = int(env.get("HAR_ORT_THREADS") or 1)
    clf = Classifier.from_folder(ctx["bundle"], model_file=meta["model_file"], threads=threads)
    parts_formed = [single_load["batch_sizes_formed"], *(m["batch_sizes_formed"] for m in multi.values())]
    sizes = [1, *MULTI_SIZES, *(int(k) for f in parts_formed for k in f)]
    ort = _ort_windows_per_s(clf, x, sizes)
    batch1 = _batch1_p50_ms(clf, x, args.requests)
    stream_floor = _stream_floor(clf, samples, rate)
    load_after, others = os.getloadavg(), _others_share(clock)

    single_load["vs_noop_floor"] = single_load["requests_per_s"] / noop["load"]["requests_per_s"]
    single_load["inprocess_ort_windows_per_s_at_formed_batches"] = _mix_windows_per_s(
        single_load["batch_sizes_formed"], ort
    )
    for n, m in multi.items():
        m["inprocess_ort_windows_per_s"] = ort[n]
        m["vs_inprocess_ort"] = m["windows_per_s"] / ort[n]
        # concurrent requests are merged: the batches run were often larger than one request
        m["inprocess_ort_windows_per_s_at_formed_batches"] = _mix_windows_per_s(m["batch_sizes_formed"], ort)
    stream["inprocess_windows_per_s"] = stream_floor["windows_per_s"]
    stream["vs_inprocess"] = stream["windows_per_s"] / stream_floor["windows_per_s"]
    for s in seq.values():
        s["p50_overhead_ms"] = s["p50_ms"] - batch1
    parts = [*seq.values(), single_load, *multi.values(), stream]
    errors, http_5xx = sum(p["errors"] for p in parts), sum(p["http_5xx"] for p in parts)
    checks = {
        "single_window_vs_noop_floor": single_load["vs_noop_floor"] >= TARGETS["single_window_vs_noop_floor_min"],
        "multi_window_windows_per_s": all(
            m["windows_per_s"] >= TARGETS["multi_window_windows_per_s_min"] for m in multi.values()
        ),
        "multi_window_vs_inprocess_ort": all(
            m["vs_inprocess_ort"] >= TARGETS["multi_window_vs_inprocess_ort_min"] for m in multi.values()
        ),
        "p50_http_overhead_ms": seq["b64"]["p50_overhead_ms"] <= TARGETS["p50_http_overhead_ms_max"],
        "errors": errors == 0,
        "http_5xx": http_5xx == 0,
    }
    return {
        "overrides": overrides,
        "server_knobs": knobs,
        "model_file": meta["model_file"],
        "precision": meta.get("precision"),
        "range_check": meta.get("range_check"),
        "load_average_before": list(load_before),
        "load_average_after": list(load_after),
        "others_cpu_share": others,
        "idle": others < IDLE_SHARE,
        "a_noop_floor": noop,
        "b_single_window": single_load,
        "c_multi_window": multi,
        "d_stream_minute": stream,
        "e_inprocess_ort_windows_per_s": ort,
        "inprocess_batch1_p50_ms": batch1,
        "sequential_single_window": seq,
        "errors": errors,
        "http_5xx": http_5xx,
        "targets_met": checks,
        "meets_all_targets": all(checks.values()),
    }


def _headline(c: dict[str, Any]) -> dict[str, Any]:
    """The numbers to compare configurations by."""
    return {
        "noop_floor_requests_per_s": c["a_noop_floor"]["load"]["requests_per_s"],
        "noop_sequential_p50_ms": c["a_noop_floor"]["sequential_b64"]["p50_ms"],
        "single_window_requests_per_s": c["b_single_window"]["requests_per_s"],
        "single_window_vs_noop_floor": c["b_single_window"]["vs_noop_floor"],
        "multi_window_windows_per_s": {n: m["windows_per_s"] for n, m in c["c_multi_window"].items()},
        "multi_window_vs_inprocess_ort": {n: m["vs_inprocess_ort"] for n, m in c["c_multi_window"].items()},
        "stream_windows_per_s": c["d_stream_minute"]["windows_per_s"],
        "sequential_b64_p50_ms": c["sequential_single_window"]["b64"]["p50_ms"],
        "p50_http_overhead_ms": c["sequential_single_window"]["b64"]["p50_overhead_ms"],
        "errors": c["errors"],
        "http_5xx": c["http_5xx"],
        "idle": c["idle"],
        "others_cpu_share": c["others_cpu_share"],
    }


def _vs_baseline(base: dict[str, Any], c: dict[str, Any]) -> dict[str, Any]:
    """Throughput ratios to the baseline (> 1: better) and the single-window p50 change (ms, > 0: slower)."""
    b, h = _headline(base), _headline(c)
    return {
        "single_window_requests_per_s": h["single_window_requests_per_s"] / b["single_window_requests_per_s"],
        "multi_window_windows_per_s": {
            n: v / b["multi_window_windows_per_s"][n] for n, v in h["multi_window_windows_per_s"].items()
        },
        "stream_windows_per_s": h["stream_windows_per_s"] / b["stream_windows_per_s"],
        "sequential_b64_p50_ms_delta": h["sequential_b64_p50_ms"] - b["sequential_b64_p50_ms"],
    }


def _ratios(folder: Path, x: np.ndarray, n: int = 500) -> dict:
    """int8 vs fp32: file sizes, in-process batch-1 p50, macro-F1 from the manifest."""
    m = read_manifest(folder)
    f32 = _batch1_p50_ms(Classifier.from_folder(folder, model_file="model.onnx"), x, n)
    i8 = _batch1_p50_ms(Classifier.from_folder(folder, model_file="model.int8.onnx"), x, n)
    return {
        "model": m["lineage"].get("model_name") or folder.name,
        "fp32_bytes": m["files"]["model.onnx"]["bytes"],
        "int8_bytes": m["files"]["model.int8.onnx"]["bytes"],
        "size_ratio_fp32_over_int8": m["files"]["model.onnx"]["bytes"] / m["files"]["model.int8.onnx"]["bytes"],
        "fp32_latency_ms_p50": f32,
        "int8_latency_ms_p50": i8,
        "latency_ratio_fp32_over_int8": f32 / i8,
        "fp32_macro_f1": m["metrics"].get("fp32_macro_f1"),
        "int8_macro_f1": m["metrics"].get("int8_macro_f1"),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bundle", type=Path, required=True)
    ap.add_argument("--tinyhar-bundle", type=Path)
    ap.add_argument("--seconds", type=float, default=10.0, help="per load run")
    ap.add_argument("--requests", type=int, default=500, help="sequential single-window requests")
    ap.add_argument("--multi-clients", type=int, default=4, help="clients for (c) and (d)")
    ap.add_argument("--configs", default=",".join(CONFIGS), help=f"comma-separated, of {list(CONFIGS)}")
    ap.add_argument("--out", default="serving", help="results name: benchmarks/results/<out>.json")
    args = ap.parse_args()
    names = [c for c in args.configs.split(",") if c]
    unknown = [c for c in names if c not in CONFIGS]
    if unknown or not names:
        ap.error(f"--configs: unknown {unknown}; choose from {list(CONFIGS)}")
    if "baseline" not in names:
        names.insert(0, "baseline")  # every other configuration is compared with it
    load_before = os.getloadavg()
    bundle = args.bundle.resolve()
    with np.load(bundle / "parity.npz") as p:
        x = p["x"].astype(np.float32)
    pre = json.loads((bundle / "preprocessing.json").read_text())
    home = Path(tempfile.mkdtemp(prefix="bench-bentoml-"))
    env = {
        **os.environ,
        "BENTOML_HOME": str(home),
        "BENTOML_DO_NOT_TRACK": "true",
        "HAR_BENTO_MODEL": "bench-model:latest",
    }
    code = (
        "import sys; from pathlib import Path; from components.edge.store import save_to_bentoml; "
        "save_to_bentoml(Path(sys.argv[1]), 'bench-model', {'stage': 'champion'})"
    )
    subprocess.run([sys.executable, "-c", code, str(bundle)], env=env, check=True, cwd=REPO_ROOT)
    ctx = {"x": x, "rate_hz": float(pre["sampling_rate_hz"]), "env": env, "home": home, "bundle": bundle}
    configs = {name: _run_config(name, CONFIGS[name], args, ctx) for name in names}
    comparisons = {"cmdhar": _ratios(bundle, x, args.requests)}
    if args.tinyhar_bundle:
        comparisons["tinyhar"] = _ratios(args.tinyhar_bundle.resolve(), x, args.requests)
    load_after = os.getloadavg()
    base = configs["baseline"]
    import bentoml
    import onnxruntime

    result = {
        "benchmark": "serving",
        "command": "python -m benchmarks.serving " + " ".join(sys.argv[1:]),
        "environment": {**environment(), "bentoml": bentoml.__version__, "onnxruntime": onnxruntime.__version__},
        "bundle": str(args.bundle),
        "load_average_before": list(load_before),
        "load_average_after": list(load_after),
        "machine_idle": all(c["idle"] for c in configs.values()),
        "idle_rule": f"other processes used < {IDLE_SHARE:.0%} of the machine's CPU time during every "
        "configuration (/proc/stat busy time minus this benchmark's own processes)",
        "load_generator": f"minimal asyncio HTTP/1.1 client, one process, on the same 2 cores as the server; "
        f"(a)/(b) {CLIENTS} keep-alive clients x 1 window, (c)/(d) {args.multi_clients} clients; "
        f"{args.seconds:g} s per load run; b64 bodies; sequential latency: http.client, one connection",
        "noop_floor": "benchmarks/noop_service.py: same body, no work, not batchable, same framework knobs",
        "targets": TARGETS,
        "headline": {"config": "baseline", **_headline(base), "targets_met": base["targets_met"]},
        "summary": {name: _headline(c) for name, c in configs.items()},
        "vs_baseline": {name: _vs_baseline(base, c) for name, c in configs.items() if name != "baseline"},
        "configs": configs,
        "int8_vs_fp32": comparisons,
    }
    print(write_result(args.out, result))


if __name__ == "__main__":
    main()
