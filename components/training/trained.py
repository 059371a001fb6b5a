"""A trained model plus everything needed to use it: the unit that flows between steps.

Stored as a folder: ``weights.pt`` (state dict only) + ``config.json`` (architecture,
see :mod:`components.models.registry`) + ``preprocessing.json`` (channels, window,
labels, training-split standardisation) + ``history.json``. Loading uses
``torch.load(weights_only=True)``; nothing is pickled.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch.nn as nn

from components.data.splitting import SplitWindows
from components.io_utils import atomic_write_text
from components.models.registry import load_model, save_model

PREPROCESSING_FILE = "preprocessing.json"
HISTORY_FILE = "history.json"


def preprocessing_from_split(split: SplitWindows) -> dict[str, Any]:
    """What serving and the edge need to feed the model raw sensor data correctly."""
    ws = split.train
    return {
        "dataset": ws.provenance.get("dataset"),
        "data_version": ws.provenance.get("data_version"),
        "channel_names": list(ws.channel_names),
        "modality_groups": {k: list(v) for k, v in ws.modality_groups.items()},
        "label_names": list(ws.label_names),
        "sampling_rate_hz": ws.sampling_rate_hz,
        "window_len": int(ws.provenance.get("window_length", ws.window_len)),
        "hop": int(ws.provenance.get("hop", ws.window_len)),
        "mean": list(split.standardizer.mean),
        "std": list(split.standardizer.std),
        "input": "raw sensor units, (batch, channels, time) in channel_names order",
        # the manifest's physical range per channel (as validated), when the windows' provenance has it
        **({"channel_ranges": ws.provenance["channel_ranges"]} if "channel_ranges" in ws.provenance else {}),
    }


@dataclass
class TrainedModel:
    """A trained network with its preprocessing and training history."""

    model: nn.Module
    preprocessing: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)  # best epoch, seconds, ...

    @property
    def name(self) -> str:
        return self.model.registry_config["name"]

    def standardize(self, x: np.ndarray) -> np.ndarray:
        mean = np.asarray(self.preprocessing["mean"], np.float32)[None, :, None]
        std = np.asarray(self.preprocessing["std"], np.float32)[None, :, None]
        return ((x - mean) / std).astype(np.float32)

    def save(self, folder: Path) -> Path:
        folder = Path(folder)
        save_model(self.model, folder)
        atomic_write_text(folder / PREPROCESSING_FILE, json.dumps(self.preprocessing, indent=2, sort_keys=True))
        atomic_write_text(
            folder / HISTORY_FILE, json.dumps({"history": self.history, "summary": self.summary}, indent=2)
        )
        return folder

    @classmethod
    def load(cls, folder: Path) -> TrainedModel:
        folder = Path(folder)
        extra = json.loads((folder / HISTORY_FILE).read_text())
        return cls(
            model=load_model(folder),
            preprocessing=json.loads((folder / PREPROCESSING_FILE).read_text()),
            history=extra["history"],
            summary=extra["summary"],
        )
