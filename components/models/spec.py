"""What a model needs to know about its input, taken from the data (never hard-coded)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class InputSpec:
    """Shape and structure of the windows a model consumes.

    Attributes:
        n_channels: channels per window (axis 1 of ``(batch, channels, time)``).
        window_len: samples per window (axis 2).
        n_classes: number of activity classes.
        modality_groups: group name -> channel indices, from the dataset manifest
            (default grouping: by sensor modality, e.g. DSADS acc/gyro/mag).
    """

    n_channels: int
    window_len: int
    n_classes: int
    modality_groups: dict[str, list[int]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> InputSpec:
        return cls(
            n_channels=int(d["n_channels"]),
            window_len=int(d["window_len"]),
            n_classes=int(d["n_classes"]),
            modality_groups={k: [int(i) for i in v] for k, v in d.get("modality_groups", {}).items()},
        )

    @classmethod
    def from_windows(cls, windows: Any) -> InputSpec:
        """Build from a :class:`components.data.window_set.WindowSet`."""
        return cls(
            n_channels=windows.n_channels,
            window_len=windows.window_len,
            n_classes=windows.n_classes,
            modality_groups={k: list(v) for k, v in windows.modality_groups.items()},
        )
