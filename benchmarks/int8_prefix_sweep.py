"""How much int8 costs an exported model, per float-activation prefix, on validation and test.

The export (``components/export/onnx_export.py: quantize_int8_guarded``) keeps the first
``k`` graph-ordered Conv/MatMul/Gemm activations float and picks ``k`` on the validation
subject only. This script measures what every ``k`` would have given - validation and test
macro-F1 drop and the share of windows whose prediction changes - for one exported fp32
model, with the export's own calibration draw (1024 training windows, seed 0). A diagnostic:
nothing is chosen from its test columns.

    python -m benchmarks.int8_prefix_sweep --exported mlruns/1/<run>/artifacts/exported \\
        --data-dir data --out benchmarks/results/int8-prefix-sweep.json

Split: DSADS holdout (train 1-6, validation 7, test 8), as ``configs/train.yaml``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def main() -> None:
    from components.benchmark.protocol import HOLDOUT_DEFAULTS
    from components.data.windowing import WindowConfig, window_dataset
    from components.export.onnx_export import onnx_logits, quantizable_nodes, quantize_int8
    from components.export.pipeline import calibration_windows_of
    from components.metrics import classification_metrics

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--exported", required=True, help="folder with model.onnx (fp32, standardisation inside)")
    ap.add_argument("--data-dir", default=str(REPO / "data"))
    ap.add_argument("--prefixes", default="0,2,4,7,10,14,17,21,all")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "int8-prefix-sweep.json"))
    args = ap.parse_args()

    fp32 = Path(args.exported) / "model.onnx"
    ws = window_dataset(Path(args.data_dir) / "dsads", WindowConfig(length_s=3.0, overlap=0.5))
    test, val = HOLDOUT_DEFAULTS["dsads"]  # the holdout split of configs/train.yaml
    parts = {
        "train": ws.for_subjects([s for s in ws.subjects if s not in test + val]),
        "val": ws.for_subjects(list(val)),
        "test": ws.for_subjects(list(test)),
    }
    calib = calibration_windows_of(parts["train"].x, 1024)  # the export's own draw
    nodes = quantizable_nodes(fp32)
    n_classes = parts["test"].n_classes

    def predict(path: Path, part: str) -> np.ndarray:
        return onnx_logits(path, parts[part].x).argmax(1)

    def f1(part: str, pred: np.ndarray) -> float:
        return classification_metrics(parts[part].y, pred, n_classes)["macro_f1"]

    ref = {p: predict(fp32, p) for p in ("val", "test")}
    ref_f1 = {p: f1(p, ref[p]) for p in ref}
    rows = []
    for token in args.prefixes.split(","):
        k = len(nodes) if token == "all" else int(token)
        out = Path(args.out).with_suffix(f".k{k}.onnx")
        quantize_int8(fp32, calib, out, float_nodes=nodes[:k])
        row: dict = {"float_prefix": k, "int8_bytes": out.stat().st_size}
        for p in ("val", "test"):
            pred = predict(out, p)
            row[f"{p}_f1_drop"] = round(ref_f1[p] - f1(p, pred), 4)
            row[f"{p}_changed_share"] = round(float((pred != ref[p]).mean()), 4)
        out.unlink()
        rows.append(row)
        print(row, flush=True)
    result = {
        "what": "int8 cost per float-activation prefix (weights always int8); diagnostic, nothing chosen on test",
        "exported": str(args.exported),
        "fp32_macro_f1": {p: round(v, 4) for p, v in ref_f1.items()},
        "quantizable_nodes": len(nodes),
        "rows": rows,
    }
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
