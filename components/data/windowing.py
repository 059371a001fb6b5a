"""Sliding windows over canonical recordings.

Windows never cross recording boundaries. Each window gets the majority label of
its samples; unlabeled samples (null label) count as their own "label" so a window
that is mostly unlabeled is dropped, and windows whose majority share is below
``min_majority`` are dropped too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from tqdm.auto import tqdm

from components.data.manifest import Manifest
from components.data.recordings import Recording, list_recordings, read_recording
from components.data.window_set import WindowSet


@dataclass(frozen=True)
class WindowConfig:
    """How windows are cut (``configs/*.yaml`` -> ``window:``).

    Attributes:
        length_s: window length in seconds (at the native rate).
        overlap: share of a window shared with the next one, in [0, 1).
        min_majority: drop windows whose majority label covers less than this share.
        group_by: modality groups for the model: ``modality`` or ``position``.
    """

    length_s: float = 3.0
    overlap: float = 0.5
    min_majority: float = 0.0
    group_by: str = "modality"

    def samples(self, rate_hz: float) -> tuple[int, int]:
        """(window length, hop) in samples at ``rate_hz``."""
        if not 0 <= self.overlap < 1:
            raise ValueError(f"overlap must be in [0, 1), got {self.overlap}")
        length = int(round(self.length_s * rate_hz))
        if length < 2:
            raise ValueError(f"window of {self.length_s} s at {rate_hz} Hz is under 2 samples")
        hop = max(1, int(round(length * (1 - self.overlap))))
        return length, hop


def window_recording(
    rec: Recording, length: int, hop: int, label_index: dict[str, int], min_majority: float = 0.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cut one recording into windows.

    Returns:
        x ``(n, channels, length)`` float32, y ``(n,)`` int64, start index ``(n,)``.
    """
    n = rec.n_samples
    if n < length:
        empty = np.zeros((0, rec.values.shape[1], length), np.float32)
        return empty, np.zeros(0, np.int64), np.zeros(0, np.int64)
    # label codes: 0 = unlabeled, k + 1 = label k
    codes = np.array([0 if lab is None else label_index[lab] + 1 for lab in rec.labels], dtype=np.int64)
    starts = np.arange(0, n - length + 1, hop)
    code_windows = sliding_window_view(codes, length)[starts]  # (n_win, length)
    counts = np.stack([np.bincount(w, minlength=len(label_index) + 1) for w in code_windows])
    majority = counts.argmax(axis=1)
    share = counts.max(axis=1) / length
    keep = (majority > 0) & (share >= min_majority)
    x = sliding_window_view(rec.values, length, axis=0)[starts[keep]]  # (n_win, channels, length)
    return np.ascontiguousarray(x, dtype=np.float32), majority[keep] - 1, starts[keep]


def window_dataset(
    dataset_dir: Path, cfg: WindowConfig = WindowConfig(), provenance: dict[str, Any] | None = None
) -> WindowSet:
    """Window every recording of ``data/<dataset>/`` (sorted by recording id)."""
    dataset_dir = Path(dataset_dir)
    manifest = Manifest.load(dataset_dir)
    length, hop = cfg.samples(manifest.sampling_rate_hz)
    label_index = {name: i for i, name in enumerate(manifest.labels)}
    xs, ys, subjects, recordings, starts = [], [], [], [], []
    files = list_recordings(dataset_dir)
    if not files:
        raise FileNotFoundError(f"{dataset_dir}: no recordings; import the dataset first")
    for path in tqdm(files, desc=f"window {manifest.name}", unit="rec"):
        rec = read_recording(path, manifest)
        x, y, start = window_recording(rec, length, hop, label_index, cfg.min_majority)
        xs.append(x)
        ys.append(y)
        subjects += [rec.meta.subject] * len(y)
        recordings += [rec.meta.recording_id] * len(y)
        starts.append(rec.t[start] - rec.t[0] if len(start) else np.zeros(0))
    return WindowSet(
        x=np.concatenate(xs),
        y=np.concatenate(ys).astype(np.int64),
        subject=np.array(subjects, dtype=str),
        recording=np.array(recordings, dtype=str),
        start_s=np.concatenate(starts).astype(np.float64),
        label_names=list(manifest.labels),
        channel_names=manifest.channel_names,
        modality_groups=manifest.modality_groups(cfg.group_by),
        sampling_rate_hz=manifest.sampling_rate_hz,
        provenance={
            "dataset": manifest.name,
            "window_length": length,
            "hop": hop,
            "window": {"length_s": cfg.length_s, "overlap": cfg.overlap, "min_majority": cfg.min_majority},
            "subject_wise": manifest.subject_wise,
            "channel_ranges": manifest.channel_ranges(),  # serving rejects values outside them
            **(provenance or {}),
        },
    )
