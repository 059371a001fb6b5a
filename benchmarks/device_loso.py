"""Finish the LOSO benchmarks on a one-GPU box, one device call at a time.

A device call is at most 10 minutes and returns at most 8 files, so this script trains only
what the committed ledger still lacks and brings the new records back as one archive:

1. reads ``--ledger`` (default ``benchmarks/results/ledger``, committed) and lists, per
   dataset and model, the LOSO folds with no record under the current code;
2. imports the dataset once if its ``data/`` folder is missing (carry the imported folder
   and set ``HAR_DATA_DIR`` to skip this);
3. starts one ``components.benchmark.command`` process per group of at most
   ``--group-size`` folds of one model, each running its folds as CUDA threads;
4. writes ``<copy-to>/ledger-<dataset>.tgz`` (that dataset's ledger folders, named relative
   to the ledger) and
   ``<copy-to>/<dataset>-log.txt`` (every process's log, cut trainings marked).

Several processes, not one: TinyHAR trained ~2.4x faster per epoch as four
processes of 5-7 threads than as 28 threads of one process, whose threads take turns for
every step (``benchmarks/results/device-run-2026-11-28.md``).

``--budget-s`` works as in ``har benchmark --time-budget``: no training starts after it,
running ones are cut at 1.25x of it, and cut trainings are not kept. Only torch, numpy,
pandas, pyarrow, scipy, onnx, onnxruntime, pyyaml, typer, rich and tqdm are needed::

    python3 -m benchmarks.device_loso run --datasets usc-had --models tinyhar,deepconvlstm \\
        --budget-s 440 --copy-to "$OUT"
    # here, afterwards: tar xzf <files_at>/ledger-usc-had.tgz -C benchmarks/results/ledger,
    # then commit the new records

``stage`` merges carried raw ``<dataset>/raw/...`` trees into ``$HAR_DATASETS_DIR`` when the
raw files must travel in several calls (``benchmarks/run_benchmark.md``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATASETS = Path(os.environ.get("HAR_DATASETS_DIR", "/root/har-datasets"))
DEFAULT_LEDGER = REPO / "benchmarks" / "results" / "ledger"
# after the hard cut (1.25x budget): efficiency measurement and the result file
WRAP_UP_S = 90.0


def stage(sources: list[Path], datasets_dir: Path = DEFAULT_DATASETS) -> None:
    """Merge carried ``<dataset>/raw/...`` trees into ``datasets_dir``."""
    for src in sources:
        for path in sorted(p for p in src.rglob("*") if p.is_file()):
            dest = datasets_dir / path.relative_to(src)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest)
        print(f"staged {src} -> {datasets_dir}", flush=True)


def dataset_subjects(dataset_dir: Path) -> list[str]:
    """Subject ids of an imported dataset (its ``recordings.parquet`` index), in numeric order."""
    from components.data.recordings import read_index

    return sorted({str(row["subject"]) for row in read_index(dataset_dir)}, key=lambda s: (len(s), s))


def missing_folds(ledger: Path, dataset: str, models: list[str], subjects: list[str]) -> dict[str, list[str]]:
    """Per model, the LOSO test subjects with no seed-0 record under the current code."""
    from components.benchmark.ledger import ledger_status

    done: dict[str, set[str]] = {m: set() for m in models}
    for row in ledger_status(ledger):
        if row["dataset"] == dataset and row["protocol"] == "loso" and row["current"] and row["model"] in done:
            done[row["model"]] |= {fold.removeprefix("loso-") for fold, seed in row["runs"] if seed == 0}
    return {m: [s for s in subjects if s not in done[m]] for m in models}


def plan_groups(missing: dict[str, list[str]], group_size: int) -> list[tuple[str, list[str]]]:
    """Split each model's missing folds into groups of at most ``group_size``, sizes as even as possible."""
    groups = []
    for model, folds in missing.items():
        if not folds:
            continue
        n = -(-len(folds) // group_size)  # ceil
        groups += [(model, folds[i::n]) for i in range(n)]
    return groups


def _command(dataset: str, model: str, folds: list[str], args: argparse.Namespace, out: Path) -> list[str]:
    cmd = [sys.executable, "-m", "components.benchmark.command", "--dataset", dataset, "--protocol", "loso"]
    cmd += ["--models", model, "--folds", ",".join(folds), "--jobs", str(len(folds)), "--device", args.device]
    cmd += ["--time-budget", str(args.budget_s), "--latency-runs", "20", "--no-progress", "--out", str(out)]
    if args.smoke:
        cmd += ["--epochs", "1"]
    else:
        cmd += ["--ledger", str(args.ledger)]
    return cmd


def run_dataset(dataset: str, args: argparse.Namespace, work: Path) -> int:
    """Train what ``dataset`` lacks in groups of processes; returns the number of failed processes."""
    from components.config import data_dir

    dataset_dir = data_dir() / dataset
    if not (dataset_dir / "manifest.yaml").exists():
        from components.data.importers import import_dataset

        print(f"[{dataset}] importing into {dataset_dir}", flush=True)
        import_dataset(dataset, data_dir(), jobs=os.cpu_count() or 1)
    subjects = dataset_subjects(dataset_dir)
    missing = missing_folds(args.ledger, dataset, args.models, subjects)
    if args.smoke:  # one fold of each model, no ledger: checks this script end to end
        missing = {m: subjects[:1] for m in args.models}
    groups = plan_groups(missing, args.group_size)
    for model, folds in missing.items():
        print(f"[{dataset}] {model}: {len(folds)} of {len(subjects)} folds to train", flush=True)
    procs = []
    for i, (model, folds) in enumerate(groups):
        log = work / f"{dataset}-{i}.log"
        cmd = _command(dataset, model, folds, args, work / f"{dataset}-{i}")
        print(f"[{dataset}] process {i}: {model} folds {','.join(folds)}", flush=True)
        with log.open("w") as out:  # the child keeps its own copy of the handle
            procs.append((subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=REPO), log))
    deadline = time.time() + 1.25 * args.budget_s + WRAP_UP_S
    failed = 0
    for proc, log in procs:
        try:
            rc = proc.wait(timeout=max(1.0, deadline - time.time()))
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
            print(f"[{dataset}] {log.name}: killed after the wrap-up time (finished records are kept)", flush=True)
        failed += rc != 0
    if args.copy_to:
        _copy_back(dataset, args, [log for _, log in procs])
    return failed


def _copy_back(dataset: str, args: argparse.Namespace, logs: list[Path]) -> None:
    """One archive of the dataset's ledger folders and one log: the device returns at most 8 files."""
    args.copy_to.mkdir(parents=True, exist_ok=True)
    text = "".join(f"==> {log.name} <==\n{log.read_text()}\n" for log in logs)
    (args.copy_to / f"{dataset}-log.txt").write_text(text)
    print(text, flush=True)
    folders = sorted(args.ledger.glob(f"{dataset}-loso-*")) if args.ledger.is_dir() else []
    archive = args.copy_to / f"ledger-{dataset}.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        for folder in folders:  # names relative to the ledger, wherever --ledger lies
            tar.add(folder, arcname=folder.name)
    print(f"[{dataset}] wrote {archive} ({len(folders)} ledger folders); unpack with", flush=True)
    print(f"    tar xzf ledger-{dataset}.tgz -C benchmarks/results/ledger", flush=True)


def main(argv: list[str] | None = None) -> int:
    from components.benchmark.protocol import ABLATIONS, BASELINES

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    st = sub.add_parser("stage", help="copy carried raw dataset trees into $HAR_DATASETS_DIR")
    st.add_argument("sources", nargs="+", type=Path)
    rn = sub.add_parser("run", help="train the LOSO folds the ledger lacks, as groups of processes")
    rn.add_argument("--datasets", default="usc-had", help="comma-separated, run one after the other")
    rn.add_argument("--models", default=",".join(BASELINES + ABLATIONS), help="comma-separated registry names")
    rn.add_argument("--budget-s", type=float, default=440.0, help="training budget (seconds) per dataset")
    rn.add_argument("--group-size", type=int, default=7, help="folds (CUDA threads) per process")
    rn.add_argument("--device", default="cuda")
    rn.add_argument("--ledger", type=Path, default=DEFAULT_LEDGER, help="read and extended; archived to --copy-to")
    rn.add_argument("--copy-to", type=Path, default=None, help="where the ledger archive and log go ($OUT)")
    rn.add_argument("--work", type=Path, default=Path("/tmp/device-loso"), help="per-process logs and results")
    rn.add_argument("--smoke", action="store_true", help="1 epoch, first fold of each model, no ledger")
    args = parser.parse_args(argv)
    if args.cmd == "stage":
        stage(args.sources)
        return 0
    args.models = [m for m in args.models.split(",") if m]
    if args.group_size < 1 or args.budget_s <= 0:
        parser.error("--group-size must be >= 1 and --budget-s > 0")
    os.environ.setdefault("HAR_DATASETS_DIR", str(DEFAULT_DATASETS))
    os.environ.setdefault("CUDA_DEVICE_MAX_CONNECTIONS", "32")  # more hardware queues for concurrent streams
    os.environ.setdefault("TQDM_DISABLE", "1")
    args.work.mkdir(parents=True, exist_ok=True)
    failed = sum(run_dataset(d, args, args.work) for d in args.datasets.split(","))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
