"""Benchmark: train_pipeline re-run times with ZenML caching.

Three runs of ``har train`` in an isolated ZenML/MLflow/BentoML/data setup:
1. cold: everything runs;
2. unchanged data and config: ingest re-checks data/, validate/window/split/train are
   reused from the cache (evaluate/export/promote/package always run);
3. only a model parameter changed: training re-runs, the data steps stay cached.

Writes ``benchmarks/results/train-cache.json`` with wall times and the cached steps of
each run.

    .venv/bin/python -m benchmarks.train_cache [--config configs/train.yaml] [--subjects 1,2,3]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from benchmarks.common import REPO_ROOT, environment, write_result
from components.config import run_parameters


def har(env: dict, *args: str) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "cli", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"har {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return wall, proc.stdout


def cached_steps(out: str) -> list[str]:
    m = re.search(r"cached steps\s*│\s*([^│\n]*)", out)
    return [s.strip() for s in m.group(1).split(",")] if m and m.group(1).strip() != "none" else []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=REPO_ROOT / "configs" / "train.yaml")
    parser.add_argument("--subjects", default=None, help="comma-separated subset to import (default: config)")
    parser.add_argument("--model", default=None, help="override the model name (e.g. cnn for a quick run)")
    args = parser.parse_args()
    config = yaml.safe_load(args.config.read_text())
    config.pop("steps", None)  # isolated stack without the MLflow tracker component
    params = config["parameters"] = run_parameters(config)  # an overlay (configs/cluster.yaml) in full
    if args.subjects:
        subjects = args.subjects.split(",")
        params["subjects"] = subjects
        params["split"] = {
            "protocol": "holdout",
            "test_subjects": [subjects[-1]],
            "val_subjects": [subjects[-2]],
        }
    if args.model:
        params["model"] = {"name": args.model, "hparams": {}}
    params["trainer"]["progress"] = False

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "proj").mkdir()
        (root / "zen").mkdir()
        env = {
            **os.environ,
            "HAR_DATA_DIR": str(root / "proj" / "data"),
            "ZENML_CONFIG_PATH": str(root / "zcfg"),
            "ZENML_REPOSITORY_PATH": str(root / "zen"),
            "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
            "BENTOML_HOME": str(root / "bento"),
            "COLUMNS": "250",
            "ZENML_ANALYTICS_OPT_IN": "false",
            "ZENML_LOGGING_VERBOSITY": "WARNING",
            "DVC_NO_ANALYTICS": "1",
            "GX_ANALYTICS_ENABLED": "false",
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "BENTOML_DO_NOT_TRACK": "true",
        }
        subprocess.run([sys.executable, "-m", "dvc", "init", "--no-scm", "-q"], cwd=root / "proj", env=env, check=True)
        subprocess.run(
            [str(Path(sys.executable).parent / "zenml"), "init"],
            cwd=root / "zen",
            env=env,
            check=True,
            capture_output=True,
        )
        runs = []
        for label in ("cold", "unchanged", "model_param_changed"):
            if label == "model_param_changed":
                params["trainer"]["seed"] = int(params["trainer"].get("seed", 0)) + 1
            cfg = root / f"{label}.yaml"
            cfg.write_text(yaml.safe_dump(config))
            wall, out = har(env, "train", "-c", str(cfg))
            runs.append({"run": label, "wall_s": round(wall, 1), "cached_steps": cached_steps(out)})
            print(f"{label}: {wall:.1f} s, cached: {', '.join(runs[-1]['cached_steps']) or 'none'}")
    result = {
        "benchmark": "train-cache",
        "command": " ".join(["python -m benchmarks.train_cache", *sys.argv[1:]]),
        "config": str(args.config.relative_to(REPO_ROOT))
        if args.config.is_relative_to(REPO_ROOT)
        else str(args.config),
        "dataset": params["dataset"],
        "subjects": params.get("subjects") or "all",
        "model": params["model"]["name"],
        "epochs": params["trainer"]["epochs"],
        "runs": runs,
        "note": "wall time of `har train` per run, process start included; run 3 changes only trainer.seed",
        "environment": environment(),
    }
    print(f"-> {write_result('train-cache', result)}")


if __name__ == "__main__":
    main()
