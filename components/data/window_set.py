"""Window sets: the arrays every model, trainer and benchmark consumes.

A :class:`WindowSet` is a stack of fixed-length windows cut from canonical
recordings, with one label and one subject per window. It is stored as a
compressed ``.npz`` (no pickle) so artifacts stay portable and safe to load.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from components.io_utils import atomic_write_bytes


@dataclass
class WindowSet:
    """Fixed-length labelled windows.

    Attributes:
        x: ``(n_windows, n_channels, window_len)`` float32 sensor values.
        y: ``(n_windows,)`` int64 index into ``label_names``.
        subject: ``(n_windows,)`` subject id of each window (str).
        recording: ``(n_windows,)`` recording id each window was cut from (str).
        start_s: ``(n_windows,)`` window start time in seconds within its recording.
        label_names: the label vocabulary; ``y`` indexes into it.
        channel_names: channel names in the order of axis 1 of ``x``.
        modality_groups: group name -> channel indices (from the manifest).
        sampling_rate_hz: the native sampling rate of the windows.
        provenance: free-form lineage (dataset, data.dvc md5, protocol, fold, ...).
    """

    x: np.ndarray
    y: np.ndarray
    subject: np.ndarray
    recording: np.ndarray
    start_s: np.ndarray
    label_names: list[str]
    channel_names: list[str]
    modality_groups: dict[str, list[int]]
    sampling_rate_hz: float
    provenance: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.x)
        if self.x.ndim != 3:
            raise ValueError(f"x must be (windows, channels, time), got shape {self.x.shape}")
        for name in ("y", "subject", "recording", "start_s"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name} has {len(getattr(self, name))} entries for {n} windows")
        if self.x.shape[1] != len(self.channel_names):
            raise ValueError(f"x has {self.x.shape[1]} channels but {len(self.channel_names)} channel names")

    def __len__(self) -> int:
        return len(self.x)

    @property
    def n_channels(self) -> int:
        return int(self.x.shape[1])

    @property
    def window_len(self) -> int:
        return int(self.x.shape[2])

    @property
    def n_classes(self) -> int:
        return len(self.label_names)

    @property
    def subjects(self) -> list[str]:
        """Sorted distinct subject ids."""
        return sorted(set(self.subject.tolist()))

    def select(self, mask: np.ndarray) -> WindowSet:
        """Return the windows where ``mask`` is true (a boolean or index array)."""
        return WindowSet(
            x=self.x[mask],
            y=self.y[mask],
            subject=self.subject[mask],
            recording=self.recording[mask],
            start_s=self.start_s[mask],
            label_names=list(self.label_names),
            channel_names=list(self.channel_names),
            modality_groups={k: list(v) for k, v in self.modality_groups.items()},
            sampling_rate_hz=self.sampling_rate_hz,
            provenance=dict(self.provenance),
        )

    def for_subjects(self, subjects: list[str] | set[str]) -> WindowSet:
        """Return the windows of the given subjects."""
        return self.select(np.isin(self.subject, list(subjects)))

    def class_counts(self) -> np.ndarray:
        """Windows per class, ``(n_classes,)``."""
        return np.bincount(self.y, minlength=self.n_classes)

    # -- storage ---------------------------------------------------------------------
    def to_npz_bytes(self) -> bytes:
        """Serialise to compressed npz bytes (metadata as a JSON string, no pickle)."""
        import io

        meta = {
            "label_names": self.label_names,
            "channel_names": self.channel_names,
            "modality_groups": self.modality_groups,
            "sampling_rate_hz": self.sampling_rate_hz,
            "provenance": self.provenance,
        }
        buf = io.BytesIO()
        np.savez_compressed(
            buf,
            x=self.x.astype(np.float32, copy=False),
            y=self.y.astype(np.int64, copy=False),
            subject=self.subject.astype(str),
            recording=self.recording.astype(str),
            start_s=self.start_s.astype(np.float64, copy=False),
            meta=np.array(json.dumps(meta, sort_keys=True)),
        )
        return buf.getvalue()

    def save(self, path: str | Path) -> Path:
        """Write atomically to ``path`` (``.npz``)."""
        return atomic_write_bytes(Path(path), self.to_npz_bytes())

    @classmethod
    def load(cls, path: str | Path) -> WindowSet:
        """Load a window set written by :meth:`save` (``allow_pickle=False``)."""
        with np.load(Path(path), allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            return cls(
                x=z["x"],
                y=z["y"],
                subject=z["subject"],
                recording=z["recording"],
                start_s=z["start_s"],
                label_names=meta["label_names"],
                channel_names=meta["channel_names"],
                modality_groups={k: list(v) for k, v in meta["modality_groups"].items()},
                sampling_rate_hz=float(meta["sampling_rate_hz"]),
                provenance=meta.get("provenance", {}),
            )
