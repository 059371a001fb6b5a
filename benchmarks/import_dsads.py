"""Benchmark: full DSADS import (verify checksums + convert 152 recordings).

Measures wall time and the peak resident memory of the whole process tree (importer
plus its worker processes, sampled every 20 ms) and writes
``benchmarks/results/import-dsads.json``. Targets: under 60 s and under 2 GB on 2 cores.

    .venv/bin/python -m benchmarks.import_dsads [--jobs 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from benchmarks.common import environment, write_result

TARGET_S, TARGET_MB = 60.0, 2048.0

CHILD = """
import sys
from pathlib import Path
from components.data.importers import import_dataset
s = import_dataset("dsads", Path(sys.argv[1]), jobs=int(sys.argv[2]))
print(s.n_recordings, s.n_samples)
"""


def tree_rss_mb(proc: psutil.Process) -> float:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total / 2**20


def run_once(jobs: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, tmp, str(jobs)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        ps, peak, done = psutil.Process(proc.pid), [0.0], threading.Event()

        def sample() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], tree_rss_mb(ps))
                time.sleep(0.02)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        out, _ = proc.communicate()
        wall = time.perf_counter() - t0
        done.set()
        sampler.join()
        if proc.returncode != 0:
            raise SystemExit(f"import failed with exit code {proc.returncode}")
        recordings, samples = map(int, out.split())
        size = sum(f.stat().st_size for f in Path(tmp).rglob("*") if f.is_file())
    return {
        "wall_s": round(wall, 2),
        "peak_rss_mb": round(peak[0], 1),
        "recordings": recordings,
        "samples": samples,
        "output_mb": round(size / 2**20, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    runs = [run_once(args.jobs) for _ in range(args.repeats)]
    worst_wall = max(r["wall_s"] for r in runs)
    worst_mem = max(r["peak_rss_mb"] for r in runs)
    result = {
        "benchmark": "import-dsads",
        "command": f"python -m benchmarks.import_dsads --jobs {args.jobs} --repeats {args.repeats}",
        "jobs": args.jobs,
        "runs": runs,
        "wall_s_median": sorted(r["wall_s"] for r in runs)[len(runs) // 2],
        "wall_s_max": worst_wall,
        "peak_rss_mb_max": worst_mem,
        "targets": {"wall_s": TARGET_S, "peak_rss_mb": TARGET_MB},
        "meets_targets": worst_wall < TARGET_S and worst_mem < TARGET_MB,
        "environment": environment(),
    }
    path = write_result("import-dsads", result)
    print(
        f"DSADS import: median {result['wall_s_median']} s, max {worst_wall} s, peak {worst_mem} MB "
        f"(targets < {TARGET_S} s, < {TARGET_MB} MB): "
        f"{'PASS' if result['meets_targets'] else 'FAIL'} -> {path}"
    )


if __name__ == "__main__":
    main()
