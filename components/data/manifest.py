"""Dataset manifests: the contract between recordings and everything downstream.

``data/<dataset>/manifest.yaml`` names the sampling rate, every channel (name,
modality, position, unit), the label vocabulary and where the data came from. The
model's modality groups, the validation suite's physical ranges and the serving
preprocessing are all derived from it, never from which public dataset produced it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from components.io_utils import atomic_write_text

MANIFEST_FILE = "manifest.yaml"
RECORDINGS_INDEX = "recordings.parquet"

# Physical limits per (modality, unit): |value| must stay below these. They are the
# full-scale ranges of common wearable IMUs (acc 16 g, gyro 2000 dps, mag 4900 uT),
# generous enough for real data and tight enough to catch unit mix-ups and garbage.
G = 9.80665
PHYSICAL_LIMITS: dict[tuple[str, str], float] = {
    ("acc", "m/s^2"): 16 * G,
    ("acc", "g"): 16.0,
    ("gyro", "rad/s"): 2000 * 3.141592653589793 / 180,
    ("gyro", "deg/s"): 2000.0,
    ("mag", "uT"): 4900.0,
    ("mag", "gauss"): 49.0,
    ("mag", "a.u."): 10.0,
}
DEFAULT_LIMIT = 1e4  # unknown modality/unit: only catches absurd values


class ManifestError(ValueError):
    """A manifest is missing, malformed or inconsistent with the data."""


@dataclass(frozen=True)
class Channel:
    """One sensor channel.

    Attributes:
        name: column name in the recording files, e.g. ``torso_acc_x``.
        modality: sensor modality, e.g. ``acc``, ``gyro``, ``mag``.
        position: body position, e.g. ``torso``, ``wrist``.
        unit: physical unit, e.g. ``m/s^2``, ``rad/s``.
        axis: axis name (``x``/``y``/``z``), optional.
    """

    name: str
    modality: str
    position: str
    unit: str
    axis: str = ""

    @property
    def limit(self) -> float:
        """Largest plausible |value| for this channel's sensor and unit."""
        return PHYSICAL_LIMITS.get((self.modality, self.unit), DEFAULT_LIMIT)

    @property
    def physical_range(self) -> dict[str, Any]:
        """``{unit, min, max}``: the values validation accepts, written into the model's
        ``preprocessing.json`` so serving checks the same range (``har_runtime``)."""
        return {"unit": self.unit, "min": -self.limit, "max": self.limit}


@dataclass
class Manifest:
    """A dataset's manifest (``data/<dataset>/manifest.yaml``).

    Attributes:
        name: dataset name (also its folder name under ``data/``).
        sampling_rate_hz: native sampling rate of every recording.
        channels: the sensor channels, in column order.
        labels: activity label vocabulary.
        subject_wise: whether recordings carry real subject ids, so subject-wise
            splits are meaningful (false for BasicMotions).
        source: provenance: dataset citation, URL, source checksums.
        description: free text.
    """

    name: str
    sampling_rate_hz: float
    channels: list[Channel]
    labels: list[str]
    subject_wise: bool = True
    source: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    def __post_init__(self) -> None:
        names = [c.name for c in self.channels]
        if len(set(names)) != len(names):
            raise ManifestError(f"manifest {self.name!r}: duplicate channel names")
        if len(set(self.labels)) != len(self.labels):
            raise ManifestError(f"manifest {self.name!r}: duplicate labels")
        if self.sampling_rate_hz <= 0:
            raise ManifestError(f"manifest {self.name!r}: sampling_rate_hz must be > 0")
        reserved = {"t", "label"} & set(names)
        if reserved:
            raise ManifestError(f"manifest {self.name!r}: channel names {reserved} are reserved")

    @property
    def channel_names(self) -> list[str]:
        return [c.name for c in self.channels]

    @property
    def columns(self) -> list[str]:
        """Column order of every recording file."""
        return ["t", *self.channel_names, "label"]

    def channel_ranges(self) -> dict[str, dict[str, Any]]:
        """Channel name -> :attr:`Channel.physical_range`."""
        return {c.name: c.physical_range for c in self.channels}

    def modality_groups(self, by: str = "modality") -> dict[str, list[int]]:
        """Channel indices grouped by ``modality`` (default) or ``position``.

        Groups keep first-appearance order so the result is stable.
        """
        if by not in ("modality", "position"):
            raise ValueError(f"group by 'modality' or 'position', not {by!r}")
        groups: dict[str, list[int]] = {}
        for i, ch in enumerate(self.channels):
            groups.setdefault(getattr(ch, by), []).append(i)
        return groups

    # -- io --------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["channels"] = [asdict(c) for c in self.channels]
        return d

    def save(self, folder: Path) -> Path:
        """Write ``manifest.yaml`` atomically into ``folder``."""
        text = yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True, width=100)
        return atomic_write_text(Path(folder) / MANIFEST_FILE, text)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Manifest:
        try:
            return cls(
                name=str(d["name"]),
                sampling_rate_hz=float(d["sampling_rate_hz"]),
                channels=[Channel(**c) for c in d["channels"]],
                labels=[str(label) for label in d["labels"]],
                subject_wise=bool(d.get("subject_wise", True)),
                source=dict(d.get("source") or {}),
                description=str(d.get("description", "")),
            )
        except (KeyError, TypeError) as e:
            raise ManifestError(f"manifest is missing or has a malformed field: {e}") from e

    @classmethod
    def load(cls, folder_or_file: Path) -> Manifest:
        """Load ``manifest.yaml`` from a dataset folder (or the file itself)."""
        p = Path(folder_or_file)
        if p.is_dir():
            p = p / MANIFEST_FILE
        if not p.exists():
            raise ManifestError(f"no manifest at {p}: import or create the dataset first")
        return cls.from_dict(yaml.safe_load(p.read_text()))
