"""How hard each subject moves, per activity: the check behind "a subject who moves differently".

For every recording of an imported dataset and every activity in it, the norm of each x/y/z
triad (``<position>_<sensor>_<x|y|z>`` channels, e.g. ``right_hip_acc``) gives two numbers:
the std of |triad| over the activity's samples (how violently it varies) and the mean of
|triad| (for a gyroscope: how fast the unit turns). Those are averaged over a subject's trials,
and a subject is flagged where its value lies outside the range of all the other subjects by a
factor of at least ``--min-ratio`` (default 1.25; the lowest and the highest subject of a measure
are always just outside the others' range, so a plain range test would flag two per measure).

This is a diagnostic to read *after* a benchmark, never an input to model choices: the
subjects it flags are test subjects of some LOSO fold. Writes
``benchmarks/results/subject-intensity-<dataset>.json``::

    .venv/bin/python -m benchmarks.subject_intensity --dataset usc-had [--data-dir DIR]
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import environment, write_result
from components.data.manifest import Manifest
from components.data.recordings import read_index, read_recording
from components.training.augment import find_triads


def triad_measures(values: np.ndarray, channels: list[str]) -> dict[str, float]:
    """``{"<triad> std": ..., "<triad> mean": ...}`` of the norm of every x/y/z triad in ``values`` (n, C)."""
    out = {}
    for idx in find_triads(channels).channels:
        name = channels[idx[0]].rsplit("_", 1)[0]  # right_hip_acc_x -> right_hip_acc
        norm = np.linalg.norm(values[:, idx].astype(np.float64), axis=1)
        out[f"{name} std"], out[f"{name} mean"] = float(norm.std()), float(norm.mean())
    return out


def subject_means(dataset_dir: Path) -> dict[str, dict[str, dict[str, float]]]:
    """activity -> measure -> subject -> mean over that subject's trials of the activity."""
    manifest = Manifest.load(dataset_dir)
    values: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    for row in read_index(dataset_dir):
        rec = read_recording(dataset_dir / row["file"], manifest)
        for activity in dict.fromkeys(label for label in rec.labels if label is not None):
            part = rec.values[rec.labels == activity]
            for measure, value in triad_measures(part, manifest.channel_names).items():
                values[(activity, measure, str(row["subject"]))].append(value)
    table: dict[str, dict[str, dict[str, float]]] = defaultdict(lambda: defaultdict(dict))
    for (activity, measure, subject), vals in sorted(values.items()):
        table[activity][measure][subject] = float(np.mean(vals))
    return table


def outliers(table: dict[str, dict[str, dict[str, float]]], min_ratio: float = 1.25) -> list[dict[str, Any]]:
    """Every (activity, measure, subject) at least ``min_ratio`` times below or above all other subjects."""
    found = []
    for activity, measures in table.items():
        for measure, by_subject in measures.items():
            for subject, value in by_subject.items():
                others = [v for s, v in by_subject.items() if s != subject]
                if others and not min(others) / min_ratio < value < max(others) * min_ratio:
                    found.append(
                        {
                            "activity": activity,
                            "measure": measure,
                            "subject": subject,
                            "value": round(value, 3),
                            "others_min": round(min(others), 3),
                            "others_max": round(max(others), 3),
                            "ratio_to_nearest": round(value / (min(others) if value < min(others) else max(others)), 3),
                        }
                    )
    return sorted(found, key=lambda o: abs(np.log(o["ratio_to_nearest"])), reverse=True)


def main(argv: list[str] | None = None) -> int:
    from components.config import data_dir

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="usc-had")
    parser.add_argument("--data-dir", type=Path, default=None, help="default: $HAR_DATA_DIR or data/")
    parser.add_argument("--min-ratio", type=float, default=1.25, help="how far outside the others' range")
    parser.add_argument("--top", type=int, default=15, help="outliers printed (all are written)")
    args = parser.parse_args(argv)
    dataset_dir = (args.data_dir or data_dir()) / args.dataset
    if not (dataset_dir / "manifest.yaml").exists():
        parser.error(f"{dataset_dir} holds no imported dataset: run `har data import {args.dataset}` first")
    table = subject_means(dataset_dir)
    found = outliers(table, args.min_ratio)
    result = {"dataset": args.dataset, "min_ratio": args.min_ratio, "subject_means": table, "outliers": found}
    result["environment"] = environment()
    path = write_result(f"subject-intensity-{args.dataset}", result)
    print("| activity | measure | subject | value | other subjects | ratio to nearest |\n|---|---|---:|---:|---|---:|")
    for o in found[: args.top]:
        others = f"{o['others_min']:.2f}-{o['others_max']:.2f}"
        cells = [o["activity"], o["measure"], o["subject"], f"{o['value']:.2f}", others, str(o["ratio_to_nearest"])]
        print("| " + " | ".join(cells) + " |")
    print(f"{len(found)} outliers; wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
