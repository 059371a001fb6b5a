"""Full LOSO benchmarks on a one-GPU box within a fixed time budget.

Runs ``har benchmark --protocol loso`` for DSADS (4 models + 4 ablations) and USC-HAD
(4 models) *concurrently in one process*: two harness runs in two threads, every task a
thread with its own CUDA stream and CUDA-graph step (see components/benchmark/harness.py),
so all ~120 small trainings share one GPU context. Only torch, numpy, pandas, pyarrow,
scipy, onnx, onnxruntime, pyyaml, typer, rich and tqdm are needed (no MLOps stack).

The raw datasets do not travel with the checkout, so they are staged first::

    python -m benchmarks.device_loso stage SRC...   # copy raw files into $HAR_DATASETS_DIR
    python -m benchmarks.device_loso run --budget-s 420 --copy-to "$OUT"

(``--datasets usc-had`` / ``--datasets dsads`` runs one; benchmarks/run_benchmark.md has
the exact sequence of device calls used for the committed results.)

``--budget-s`` is the training budget per dataset: no task starts after it, running
trainings are cut at 1.25x of it, and anything not run is listed in the results (which
are then written as ``*-smoke.json``, never under the full-protocol name).

Every finished training is kept in ``--ledger`` (default ``benchmarks/results/ledger``,
committed) and copied back under ``--copy-to``/ledger: commit it, and the next device
session trains only what is still missing, until the full-protocol file can be written.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATASETS = Path(os.environ.get("HAR_DATASETS_DIR", "/root/har-datasets"))


def stage(sources: list[Path], datasets_dir: Path = DEFAULT_DATASETS) -> None:
    """Merge carried ``<dataset>/raw/...`` trees into ``datasets_dir``."""
    for src in sources:
        for path in sorted(p for p in src.rglob("*") if p.is_file()):
            dest = datasets_dir / path.relative_to(src)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest)
        print(f"staged {src} -> {datasets_dir}", flush=True)


def run(
    budget_s: float,
    jobs: dict[str, int],
    copy_to: Path | None,
    seeds: int,
    device: str = "cuda",
    smoke: dict | None = None,
    datasets: list[str] | None = None,
    ledger: Path | None = None,
) -> int:
    """Both LOSO benchmarks at once; returns the number of failed tasks."""
    from components.benchmark.harness import BASELINES, BenchmarkSettings, run_benchmark

    runs = {
        "dsads": BenchmarkSettings(dataset="dsads", ablations=True, models=list(BASELINES)),
        "usc-had": BenchmarkSettings(dataset="usc-had", models=list(BASELINES)),
    }
    runs = {k: v for k, v in runs.items() if datasets is None or k in datasets}
    outcome: dict[str, tuple[dict, Path] | BaseException] = {}

    def one(name: str, settings: BenchmarkSettings) -> None:
        settings.protocol, settings.device, settings.jobs = "loso", device, jobs[name]
        settings.seeds, settings.time_budget_s, settings.ledger = seeds, budget_s, ledger
        for key, value in (smoke or {}).items():  # local check of this script: tiny settings
            setattr(settings, key, value)
        try:
            outcome[name] = run_benchmark(settings, progress=False, log=lambda s: print(f"[{name}] {s}", flush=True))
        except BaseException as exc:  # noqa: BLE001 - reported below
            outcome[name] = exc

    t0 = time.time()
    threads = [threading.Thread(target=one, args=item, name=item[0]) for item in runs.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    failed = 0
    for name, res in outcome.items():
        if isinstance(res, BaseException):
            print(f"[{name}] FAILED: {type(res).__name__}: {res}", flush=True)
            failed += 1
            continue
        result, path = res
        failed += len(result["failures"])
        print(f"[{name}] wrote {path} (complete protocol: {result['complete_protocol']})", flush=True)
        for model, m in result["models"].items():
            print(f"[{name}]   {model:26s} macro-F1 {m['macro_f1_mean']}  runs {m['n_runs']}", flush=True)
        if copy_to:
            copy_to.mkdir(parents=True, exist_ok=True)
            for p in (path, path.with_suffix(".md")):
                shutil.copy2(p, copy_to / p.name)
            if result.get("ledger"):  # the finished trainings travel back, to be committed and resumed
                for led in map(Path, result["ledger"]["dirs"]):
                    shutil.copytree(led, copy_to / "ledger" / led.name, dirs_exist_ok=True)
    print(f"total {time.time() - t0:.0f} s", flush=True)
    return failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    st = sub.add_parser("stage", help="copy carried raw dataset trees into $HAR_DATASETS_DIR")
    st.add_argument("sources", nargs="+", type=Path)
    rn = sub.add_parser("run", help="run the DSADS and USC-HAD LOSO benchmarks concurrently on CUDA")
    rn.add_argument("--budget-s", type=float, default=420.0, help="training budget per dataset (seconds)")
    rn.add_argument("--jobs-dsads", type=int, default=24)
    rn.add_argument("--jobs-usc", type=int, default=16)
    rn.add_argument("--seeds", type=int, default=1)
    rn.add_argument("--copy-to", type=Path, default=None, help="also copy the JSON/Markdown results here")
    rn.add_argument("--device", default="cuda")
    rn.add_argument("--datasets", default="dsads,usc-had", help="comma-separated subset of dsads,usc-had")
    rn.add_argument(
        "--ledger",
        type=Path,
        default=REPO / "benchmarks" / "results" / "ledger",
        help="finished trainings are kept here and not re-run (commit the folder --copy-to brings back)",
    )
    rn.add_argument("--smoke", action="store_true", help="1 epoch, first fold, cnn+cmdhar: checks the script")
    args = parser.parse_args(argv)
    if args.cmd == "stage":
        stage(args.sources)
        return 0
    os.environ.setdefault("HAR_DATASETS_DIR", str(DEFAULT_DATASETS))
    os.environ.setdefault("CUDA_DEVICE_MAX_CONNECTIONS", "32")  # more hardware queues for concurrent streams
    smoke = None
    if args.smoke:
        smoke = {"epochs": 1, "folds": ["1"], "models": ["cnn", "cmdhar"], "ablations": False, "latency_runs": 10}
    jobs = {"dsads": args.jobs_dsads, "usc-had": args.jobs_usc}
    datasets = args.datasets.split(",")
    ledger = None if args.smoke else args.ledger
    return 1 if run(args.budget_s, jobs, args.copy_to, args.seeds, args.device, smoke, datasets, ledger) else 0


if __name__ == "__main__":
    sys.exit(main())
