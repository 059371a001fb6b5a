"""The exported model: fp32 + int8 ONNX bytes, preprocessing and measurements."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from components.io_utils import atomic_write_bytes, atomic_write_text, sha256_bytes
from har_runtime.runtime import FP32_FILE, INT8_FILE, PREPROCESSING_FILE  # the names the runtime reads

LABELS_FILE, REPORT_FILE = "labels.json", "export_report.json"


@dataclass
class ExportedModel:
    """Both ONNX graphs (raw sensor windows in, logits out) and what travels with them."""

    fp32: bytes
    int8: bytes
    preprocessing: dict[str, Any]
    report: dict[str, Any] = field(default_factory=dict)

    def save(self, folder: Path) -> Path:
        folder = Path(folder)
        atomic_write_bytes(folder / FP32_FILE, self.fp32)
        atomic_write_bytes(folder / INT8_FILE, self.int8)
        atomic_write_text(folder / PREPROCESSING_FILE, json.dumps(self.preprocessing, indent=2, sort_keys=True))
        atomic_write_text(folder / LABELS_FILE, json.dumps(self.preprocessing["label_names"], indent=2))
        atomic_write_text(folder / REPORT_FILE, json.dumps(self.report, indent=2, sort_keys=True))
        return folder

    @classmethod
    def load(cls, folder: Path) -> ExportedModel:
        folder = Path(folder)
        return cls(
            fp32=(folder / FP32_FILE).read_bytes(),
            int8=(folder / INT8_FILE).read_bytes(),
            preprocessing=json.loads((folder / PREPROCESSING_FILE).read_text()),
            report=json.loads((folder / REPORT_FILE).read_text()),
        )

    def digests(self) -> dict[str, str]:
        return {FP32_FILE: sha256_bytes(self.fp32), INT8_FILE: sha256_bytes(self.int8)}
