"""USC-HAD (Zhang & Sawchuk 2012) importer.

Raw layout: ``SubjectN/aMtK.mat`` (subject N, activity M, trial K), each with
``sensor_readings`` (n x 6: acc x/y/z in g, gyro x/y/z in deg/s) from one MotionNode
at the front right hip, 100 Hz. One recording per (subject, activity, trial).

Units: acc is converted from g to m/s^2 (x 9.80665) and gyro from deg/s to rad/s,
so every imported dataset uses the same SI units (DSADS is already in m/s^2, rad/s).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import scipy.io

from components.data.importers.base import Converted
from components.data.manifest import Channel, G, Manifest
from components.data.recordings import RecordingMeta
from components.data.sources import SourceSpec

RATE_HZ = 100.0
POSITION = "right_hip"
ACTIVITIES = {
    1: "walking_forward",
    2: "walking_left",
    3: "walking_right",
    4: "walking_upstairs",
    5: "walking_downstairs",
    6: "running_forward",
    7: "jumping_up",
    8: "sitting",
    9: "standing",
    10: "sleeping",
    11: "elevator_up",
    12: "elevator_down",
}
FILE_RE = re.compile(r"Subject(\d+)/a(\d+)t(\d+)\.mat$")


def build_manifest(spec: SourceSpec, sums: dict[str, str]) -> Manifest:
    channels = [Channel(f"{POSITION}_acc_{a}", "acc", POSITION, "m/s^2", a) for a in "xyz"]
    channels += [Channel(f"{POSITION}_gyro_{a}", "gyro", POSITION, "rad/s", a) for a in "xyz"]
    return Manifest(
        name="usc-had",
        sampling_rate_hz=RATE_HZ,
        channels=channels,
        labels=list(ACTIVITIES.values()),
        subject_wise=True,
        description=(
            "USC-HAD: 14 subjects x 12 activities x 5 trials, one MotionNode at the front right hip, "
            "100 Hz. Converted from g to m/s^2 and from deg/s to rad/s."
        ),
        source={
            "dataset": "USC-HAD",
            "citation": "M. Zhang, A. A. Sawchuk, UbiComp SAGAware workshop, 2012",
            "url": spec.url,
            "sha256sums_sha256": spec.sums_sha256,
            "tree_digest": spec.tree_digest,
            "files_verified": len(sums),
            "unit_conversion": {"acc": "g -> m/s^2 (x 9.80665)", "gyro": "deg/s -> rad/s (x pi/180)"},
        },
    )


def plan_tasks(raw_dir: Path, sums: dict[str, str], subjects=None, labels=None) -> list[tuple]:
    """One task per subject: (raw_dir, subject, [relative .mat paths])."""
    by_subject: dict[str, list[tuple[int, int, str]]] = {}
    for f in sorted(raw_dir.glob("Subject*/a*t*.mat")):
        rel = f.relative_to(raw_dir).as_posix()
        m = FILE_RE.search(rel)
        if not m:
            continue
        subject, activity, trial = m.group(1), int(m.group(2)), int(m.group(3))
        if subjects and subject not in subjects:
            continue
        if labels and ACTIVITIES[activity] not in labels:
            continue
        by_subject.setdefault(subject, []).append((activity, trial, rel))
    if subjects:
        missing = sorted(set(subjects) - set(by_subject))
        if missing:
            raise ValueError(f"usc-had: no recordings for subjects {missing}")
    return [(str(raw_dir), s, sorted(v)) for s, v in sorted(by_subject.items(), key=lambda kv: int(kv[0]))]


def convert_task(task: tuple) -> list[Converted]:
    raw_dir, subject, files = task
    out = []
    for activity, trial, rel in files:
        mat = scipy.io.loadmat(Path(raw_dir) / rel)
        readings = np.asarray(mat["sensor_readings"], dtype=np.float64)
        if readings.ndim != 2 or readings.shape[1] != 6:
            raise ValueError(f"usc-had: {rel} sensor_readings has shape {readings.shape}, expected (n, 6)")
        values = np.concatenate([readings[:, :3] * G, np.deg2rad(readings[:, 3:])], axis=1)
        n = len(values)
        meta = RecordingMeta(
            recording_id=f"s{int(subject):02d}_a{activity:02d}_t{trial}",
            subject=subject,
            session=f"a{activity:02d}t{trial}",
            source_files=[rel],
        )
        t = np.arange(n, dtype=np.float64) / RATE_HZ
        out.append((meta, t, values.astype(np.float32), [ACTIVITIES[activity]] * n))
    return out
