"""Choose the training augmentation on validation subjects only (DSADS test subject 8 never loaded).

For each variant and each inner split (validation subject 7 = the holdout split's own
validation subject, or 6), CMD-HAR is trained on the other DSADS subjects 1-7 with the
protocol trainer (capped at ``--epochs`` with its cosine schedule, patience 10, seed 0,
modality dropout 0.1, one CPU thread per run) and its best validation macro-F1 is recorded.

    python -m benchmarks.augment_selection --variants none,rot30,rot60 --splits 7,6 --jobs 2
    -> benchmarks/results/augment-selection.json (one record per run under .../augment-selection/)

A run whose record already exists is not repeated, so the script can be resumed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

VARIANTS = {
    "none": {"augment_rotation_deg": 0.0, "augment_gain_std": 0.0},
    "rot30": {"augment_rotation_deg": 30.0, "augment_gain_std": 0.1},
    "rot60": {"augment_rotation_deg": 60.0, "augment_gain_std": 0.1},
}
TEST_SUBJECT = "8"  # the holdout test subject: excluded before anything else happens


def run_one(variant: str, val_subject: str, epochs: int, data_dir: str) -> dict:
    """Train CMD-HAR on DSADS subjects 1-7 minus ``val_subject``; best validation macro-F1."""
    import torch

    from components.data.splitting import Fold, apply_fold
    from components.data.windowing import WindowConfig, window_dataset
    from components.models.registry import build_model
    from components.models.spec import InputSpec
    from components.training.trainer import TrainConfig, seed_everything, train_model

    torch.set_num_threads(1)
    ws = window_dataset(Path(data_dir) / "dsads", WindowConfig(length_s=3.0, overlap=0.5))
    ws = ws.for_subjects([s for s in ws.subjects if s != TEST_SUBJECT])
    train = tuple(s for s in ws.subjects if s != val_subject)
    split = apply_fold(ws, Fold(name=f"inner-{val_subject}", train=train, val=(val_subject,), test=(val_subject,)))
    tr, va, _ = split.standardized()
    seed_everything(0)
    model = build_model("cmdhar", InputSpec.from_windows(tr))
    cfg = TrainConfig(epochs=epochs, patience=10, modality_dropout=0.1, progress=False, **VARIANTS[variant])
    t0 = time.time()
    res = train_model(model, tr, va, cfg, split.standardizer)
    return {
        "variant": variant,
        "augmentation": VARIANTS[variant],
        "train_subjects": list(train),
        "val_subject": val_subject,
        "best_val_macro_f1": res.best_val_f1,
        "best_epoch": res.best_epoch,
        "epochs_run": res.epochs_run,
        "seconds": round(time.time() - t0, 1),
        "val_macro_f1_per_epoch": [round(h["val_macro_f1"], 4) for h in res.history],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", default="none,rot30,rot60")
    ap.add_argument("--splits", default="7,6", help="validation subjects, one run each")
    ap.add_argument("--epochs", type=int, default=25)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--data-dir", default=str(REPO / "data"))
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "augment-selection.json"))
    args = ap.parse_args()
    runs_dir = Path(args.out).with_suffix("")
    runs_dir.mkdir(parents=True, exist_ok=True)
    todo = [
        (v, s)
        for v in args.variants.split(",")
        for s in args.splits.split(",")
        if not (runs_dir / f"{v}-val{s}.json").exists()
    ]
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futures = {pool.submit(run_one, v, s, args.epochs, args.data_dir): (v, s) for v, s in todo}
        for fut, (v, s) in futures.items():
            rec = fut.result()
            (runs_dir / f"{v}-val{s}.json").write_text(json.dumps(rec, indent=1))
            print(f"{v} val {s}: best val macro-F1 {rec['best_val_macro_f1']:.4f} (epoch {rec['best_epoch']})")
    records = [json.loads(p.read_text()) for p in sorted(runs_dir.glob("*-val*.json"))]
    summary: dict[str, dict] = {}
    for rec in records:
        entry = summary.setdefault(rec["variant"], {"augmentation": rec["augmentation"], "best_val_macro_f1": {}})
        entry["best_val_macro_f1"][rec["val_subject"]] = round(rec["best_val_macro_f1"], 4)
    for entry in summary.values():
        vals = list(entry["best_val_macro_f1"].values())
        entry["mean"] = round(sum(vals) / len(vals), 4)
    out = {
        "what": "CMD-HAR best validation macro-F1 per augmentation variant; DSADS, test subject 8 never loaded",
        "settings": {"epochs": args.epochs, "patience": 10, "seed": 0, "threads_per_run": 1},
        "summary": summary,
        "runs": records,
    }
    Path(args.out).write_text(json.dumps(out, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
