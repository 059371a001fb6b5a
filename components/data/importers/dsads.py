"""DSADS (Daily and Sports Activities, UCI; Altun & Barshan 2010) importer.

Raw layout: ``aNN.tar.xz`` archives (or the unpacked UCI ``data/`` folder) holding
``data/aNN/pM/sKK.txt``: 60 contiguous 5-s segments x 125 rows x 45 columns per
(subject M, activity NN), 25 Hz. Each (subject, activity) becomes one 5-minute
recording ``s0M_aNN`` with 45 channels ``<position>_<sensor>_<axis>``.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd

from components.data.importers.base import Converted
from components.data.manifest import Channel, Manifest
from components.data.recordings import RecordingMeta
from components.data.sources import ChecksumError, SourceSpec, read_sums

RATE_HZ = 25.0
SEGMENTS = 60
ROWS_PER_SEGMENT = 125
POSITIONS = ["torso", "right_arm", "left_arm", "right_leg", "left_leg"]
SENSORS = [("acc", "m/s^2"), ("gyro", "rad/s"), ("mag", "a.u.")]
ACTIVITIES = {
    "a01": "sitting",
    "a02": "standing",
    "a03": "lying_on_back",
    "a04": "lying_on_right_side",
    "a05": "ascending_stairs",
    "a06": "descending_stairs",
    "a07": "standing_in_elevator",
    "a08": "moving_in_elevator",
    "a09": "walking_parking_lot",
    "a10": "walking_treadmill_flat",
    "a11": "walking_treadmill_inclined",
    "a12": "running_treadmill",
    "a13": "exercising_stepper",
    "a14": "exercising_cross_trainer",
    "a15": "cycling_horizontal",
    "a16": "cycling_vertical",
    "a17": "rowing",
    "a18": "jumping",
    "a19": "playing_basketball",
}
SUBJECTS = [str(i) for i in range(1, 9)]


def build_manifest(spec: SourceSpec, sums: dict[str, str]) -> Manifest:
    channels = [
        Channel(name=f"{pos}_{sensor}_{axis}", modality=sensor, position=pos, unit=unit, axis=axis)
        for pos in POSITIONS
        for sensor, unit in SENSORS
        for axis in "xyz"
    ]
    return Manifest(
        name="dsads",
        sampling_rate_hz=RATE_HZ,
        channels=channels,
        labels=list(ACTIVITIES.values()),
        subject_wise=True,
        description=(
            "Daily and Sports Activities: 8 subjects x 19 activities x 5 min, 5 Xsens MTx units "
            "(torso, arms, legs), acc (m/s^2) + gyro (rad/s) + mag (normalised, a.u.), 25 Hz."
        ),
        source={
            "dataset": "DSADS (UCI Daily and Sports Activities)",
            "citation": "K. Altun, B. Barshan, O. Tuncel, Pattern Recognition 43(10):3605-3620, 2010",
            "url": spec.url,
            "sha256sums_sha256": spec.sums_sha256,
            "tree_digest": spec.tree_digest,
            "files_verified": len(sums),
        },
    )


def plan_tasks(raw_dir: Path, sums: dict[str, str], subjects=None, labels=None) -> list[tuple]:
    """One task per activity: (raw_dir, activity code, subjects, expected member sums)."""
    wanted_subjects = tuple(subjects or SUBJECTS)
    bad = sorted(set(wanted_subjects) - set(SUBJECTS))
    if bad:
        raise ValueError(f"dsads: unknown subjects {bad}; subjects are {SUBJECTS}")
    members = read_sums(raw_dir / "MEMBERS.sha256") if (raw_dir / "MEMBERS.sha256").exists() else {}
    tasks = []
    for code, label in ACTIVITIES.items():
        if labels and label not in labels:
            continue
        expected = {k: v for k, v in members.items() if k.startswith(f"data/{code}/")}
        tasks.append((str(raw_dir), code, wanted_subjects, expected))
    return tasks


def _read_segments(raw_dir: Path, code: str, subjects: tuple[str, ...], expected: dict) -> dict:
    """{(subject, segment): bytes} for one activity, checking member sha256 when known."""
    wanted = {f"data/{code}/p{s}/s{k:02d}.txt": (s, k) for s in subjects for k in range(1, SEGMENTS + 1)}
    found: dict[tuple[str, int], bytes] = {}
    archive = raw_dir / f"{code}.tar.xz"
    if archive.exists():
        with tarfile.open(archive) as tar:
            for m in tar:
                if m.isfile() and m.name in wanted:
                    found[wanted[m.name]] = tar.extractfile(m).read()
    else:
        for rel, key in wanted.items():
            if (raw_dir / rel).exists():
                found[key] = (raw_dir / rel).read_bytes()
    for rel, key in wanted.items():
        if key not in found:
            raise ChecksumError(f"dsads: {rel} is missing from {raw_dir}")
        if expected and hashlib.sha256(found[key]).hexdigest() != expected.get(rel):
            raise ChecksumError(f"dsads: {rel} does not match MEMBERS.sha256; nothing was written")
    return found


def convert_task(task: tuple) -> list[Converted]:
    """Convert one activity's recordings (one per subject)."""
    raw_dir, code, subjects, expected = task
    segments = _read_segments(Path(raw_dir), code, subjects, expected)
    out = []
    for s in subjects:
        parts = [segments[(s, k)] for k in range(1, SEGMENTS + 1)]
        text = b"".join(p if p.endswith(b"\n") else p + b"\n" for p in parts)
        values = pd.read_csv(io.BytesIO(text), header=None, dtype=np.float64, engine="c").to_numpy()
        if values.shape != (SEGMENTS * ROWS_PER_SEGMENT, 45):
            raise ChecksumError(f"dsads: {code}/p{s} has shape {values.shape}, expected (7500, 45)")
        n = len(values)
        meta = RecordingMeta(
            recording_id=f"s{int(s):02d}_{code}",
            subject=s,
            session=code,
            source_files=[f"data/{code}/p{s}/s{k:02d}.txt" for k in range(1, SEGMENTS + 1)],
        )
        t = np.arange(n, dtype=np.float64) / RATE_HZ
        out.append((meta, t, values.astype(np.float32), [ACTIVITIES[code]] * n))
    return out
