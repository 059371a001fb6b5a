"""UEA BasicMotions importer (smartwatch acc + gyro, 10 Hz, 80 cases of 10 s).

The source gives no subject ids, so every recording gets subject ``unknown`` and the
manifest says ``subject_wise: false``: subject-wise splits refuse it; use the
archive's own train/test split (kept as ``extra.split``) via the ``predefined``
protocol. Units are not stated by the source (acceleration has gravity removed).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from components.data.importers.base import Converted
from components.data.manifest import Channel, Manifest
from components.data.recordings import RecordingMeta
from components.data.sources import SourceSpec

RATE_HZ = 10.0
LABELS = {"Standing": "standing", "Running": "running", "Walking": "walking", "Badminton": "badminton"}


def build_manifest(spec: SourceSpec, sums: dict[str, str]) -> Manifest:
    channels = [Channel(f"wrist_acc_{a}", "acc", "wrist", "a.u.", a) for a in "xyz"]
    channels += [Channel(f"wrist_gyro_{a}", "gyro", "wrist", "a.u.", a) for a in "xyz"]
    return Manifest(
        name="basicmotions",
        sampling_rate_hz=RATE_HZ,
        channels=channels,
        labels=list(LABELS.values()),
        subject_wise=False,
        description="UEA BasicMotions: 4 students x 4 activities x 5 cases of 10 s, smartwatch, 10 Hz. "
        "No subject ids: not usable for subject-wise evaluation.",
        source={
            "dataset": "UEA BasicMotions",
            "citation": "A. Bagnall et al., The UEA multivariate time series classification archive, 2018",
            "url": spec.url,
            "sha256sums_sha256": spec.sums_sha256,
            "tree_digest": spec.tree_digest,
            "files_verified": len(sums),
        },
    )


def plan_tasks(raw_dir: Path, sums: dict[str, str], subjects=None, labels=None) -> list[tuple]:
    if subjects and subjects != ["unknown"]:
        raise ValueError("basicmotions has no subject ids; --subjects cannot be used with it")
    return [(str(raw_dir), part, tuple(labels or ())) for part in ("TRAIN", "TEST")]


def parse_ts(text: str) -> list[tuple[np.ndarray, str]]:
    """Parse an aeon/sktime ``.ts`` file into ``[(values (dims, length), label)]``."""
    if "@data" not in text:
        raise ValueError("not a .ts file: no @data section")
    cases = []
    for line in text.split("@data", 1)[1].splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        *dims, label = line.split(":")
        cases.append((np.array([[float(v) for v in d.split(",")] for d in dims]), label.strip()))
    return cases


def convert_task(task: tuple) -> list[Converted]:
    raw_dir, part, wanted_labels = task
    rel = f"BasicMotions_{part}.ts"
    out = []
    for i, (values, source_label) in enumerate(parse_ts((Path(raw_dir) / rel).read_text())):
        label = LABELS[source_label]
        if wanted_labels and label not in wanted_labels:
            continue
        n = values.shape[1]
        meta = RecordingMeta(
            recording_id=f"{part.lower()}_{i:03d}",
            subject="unknown",
            session=f"{part.lower()}_{i:03d}",
            source_files=[rel],
            extra={"split": part.lower(), "case": i},
        )
        t = np.arange(n, dtype=np.float64) / RATE_HZ
        out.append((meta, t, values.T.astype(np.float32), [label] * n))
    return out
