"""Training-time augmentation of standardised sensor windows: random sensor orientation and gain.

Wearable models fail across subjects mostly because every person straps the sensors on a
little differently (rotated units) and moves with a different intensity. Two label-
preserving transforms imitate that, per training window:

* **rotation** - every sensor unit (a body position: its acc, gyro and mag triads rotate
  together, as one rigid unit would) gets a random rotation about a uniformly random axis
  by an angle uniform in ``[-rotation_deg, rotation_deg]`` (Rodrigues' formula);
* **gain** - every triad is multiplied by ``1 + gain_std * N(0, 1)`` (direction kept).

Rotations only make sense in physical units, so the windows are un-standardised with the
training split's standardiser, transformed, and standardised again. Triads are found from
channel names ``[<unit>_]<sensor>_<x|y|z>``; channels outside a complete x/y/z triad are
left alone. Everything runs on the training device without host reads, so the trainer's
step stays capturable as a CUDA graph.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import torch

_AXIS = re.compile(r"^(?P<prefix>.+)_(?P<axis>[xyz])$")


@dataclass(frozen=True)
class Triads:
    """Channel indices of each x/y/z triad ``(n_triads, 3)`` and each triad's unit index."""

    channels: list[list[int]]
    unit_of: list[int]
    units: list[str]


def find_triads(channel_names: Sequence[str]) -> Triads:
    """Group ``<unit>_<sensor>_<axis>`` channel names into triads and units.

    ``right_arm_acc_x`` -> unit ``right_arm``, sensor ``acc``; ``acc_x`` -> one unnamed unit.
    """
    by_prefix: dict[str, dict[str, int]] = {}
    for i, name in enumerate(channel_names):
        m = _AXIS.match(name)
        if m:
            by_prefix.setdefault(m["prefix"], {})[m["axis"]] = i
    channels, unit_of, units = [], [], []
    for prefix, axes in by_prefix.items():
        if set(axes) != {"x", "y", "z"}:
            continue
        unit = prefix.rsplit("_", 1)[0] if "_" in prefix else ""
        if unit not in units:
            units.append(unit)
        channels.append([axes["x"], axes["y"], axes["z"]])
        unit_of.append(units.index(unit))
    return Triads(channels=channels, unit_of=unit_of, units=units)


def random_rotations(n: int, max_deg: float, device: torch.device) -> torch.Tensor:
    """``(n, 3, 3)`` rotations: uniform random axis, angle uniform in ``[-max_deg, max_deg]``."""
    axis = torch.randn(n, 3, device=device)
    axis = axis / axis.norm(dim=1, keepdim=True).clamp(min=1e-8)
    angle = (torch.rand(n, 1, 1, device=device) * 2 - 1) * math.radians(max_deg)
    zero = torch.zeros(n, device=device)
    ax, ay, az = axis.unbind(1)
    k = torch.stack([zero, -az, ay, az, zero, -ax, -ay, ax, zero], 1).reshape(n, 3, 3)
    eye = torch.eye(3, device=device).expand(n, 3, 3)
    return eye + torch.sin(angle) * k + (1 - torch.cos(angle)) * (k @ k)


class SensorAugment:
    """Random unit rotation and triad gain for standardised windows ``(B, C, T)``.

    Args:
        channel_names: the windows' channel names (axis 1).
        mean: per-channel mean of the standardiser the windows went through.
        std: per-channel std of that standardiser.
        rotation_deg: largest rotation angle (0 = no rotation).
        gain_std: std of the multiplicative triad gain (0 = no gain change).
        device: where the training windows live.
    """

    def __init__(
        self,
        channel_names: Sequence[str],
        mean: Sequence[float],
        std: Sequence[float],
        rotation_deg: float,
        gain_std: float,
        device: torch.device | str = "cpu",
    ):
        if len(mean) != len(channel_names) or len(std) != len(channel_names):
            raise ValueError(f"standardiser has {len(mean)} means / {len(std)} stds for {len(channel_names)} channels")
        if rotation_deg < 0 or gain_std < 0:
            raise ValueError(f"rotation_deg and gain_std must be >= 0, got {rotation_deg} and {gain_std}")
        triads = find_triads(channel_names)
        self.n_triads, self.n_units = len(triads.channels), len(triads.units)
        self.rotation_deg, self.gain_std = float(rotation_deg), float(gain_std)
        device = torch.device(device)
        self.idx = torch.tensor(triads.channels, dtype=torch.long, device=device).reshape(-1)  # (3 * n_triads,)
        self.unit_of = torch.tensor(triads.unit_of, dtype=torch.long, device=device)
        self.mean = torch.tensor(mean, dtype=torch.float32, device=device)[self.idx][:, None]  # (3n, 1)
        self.std = torch.tensor(std, dtype=torch.float32, device=device)[self.idx][:, None]

    @property
    def active(self) -> bool:
        return self.n_triads > 0 and (self.rotation_deg > 0 or self.gain_std > 0)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if not self.active:
            return x
        b, t = x.shape[0], x.shape[-1]
        tri = (x[:, self.idx] * self.std + self.mean).reshape(b, self.n_triads, 3, t)  # physical units
        if self.rotation_deg > 0:
            rot = random_rotations(b * self.n_units, self.rotation_deg, x.device).reshape(b, self.n_units, 3, 3)
            tri = rot[:, self.unit_of] @ tri  # (B, n_triads, 3, T)
        if self.gain_std > 0:
            tri = tri * (1 + self.gain_std * torch.randn(b, self.n_triads, 1, 1, device=x.device))
        return x.index_copy(1, self.idx, (tri.reshape(b, 3 * self.n_triads, t) - self.mean) / self.std)
