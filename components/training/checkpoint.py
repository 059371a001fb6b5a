"""Per-epoch training checkpoints: a training that is stopped resumes where it was.

``train_model(..., checkpoint=TrainingCheckpoint(path))`` writes, after every epoch that
does not end the training (and after one that a deadline cut), everything the next epoch
depends on: model, optimizer and scheduler state, the epochs the schedule spans, the RNG
states (Python, NumPy, torch CPU and CUDA, the data-order generator), the best weights with
their epoch and validation macro-F1, the patience count, the history and the loop's elapsed
time. A later ``train_model`` with the same checkpoint starts after the last saved epoch;
on the same device and thread count it ends with the same weights and history as a
training never stopped (``tests/integration/test_trainer.py``).

A checkpoint belongs to one training: its identity (the trainer settings that decide the
numbers, the model's parameter names and shapes, the sha256 of the training and validation
windows, and the caller's ``key``) must match, or loading raises. It is written atomically
(temp file, then rename) with ``torch.save`` from tensors, numbers, strings, lists and dicts
only, and read with ``weights_only=True``. Beside it, ``<path>.json`` says how far the
training got (epoch, planned epochs, best validation macro-F1, when), for status displays
that do not import torch.

``path`` is a local path, or with ``fs`` (an object with ``open``, ``exists``, ``rename``,
``remove`` and ``makedirs`` as :mod:`zenml.io.fileio` has them) a path in that store, such
as a ZenML artifact store.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import time
from typing import Any

import numpy as np
import torch

# trainer settings that do not change a training's numbers (so a resume may change them)
_NOT_IDENTITY = ("progress", "num_threads", "deadline")


class LocalFiles:
    """The local file system with :mod:`zenml.io.fileio`'s function names."""

    open = staticmethod(open)
    exists = staticmethod(os.path.exists)

    @staticmethod
    def rename(src: str, dst: str, overwrite: bool = False) -> None:
        if not overwrite and os.path.exists(dst):
            raise FileExistsError(dst)
        os.replace(src, dst)

    @staticmethod
    def remove(path: str) -> None:
        os.remove(path)

    @staticmethod
    def makedirs(path: str) -> None:
        os.makedirs(path, exist_ok=True)


def _sha256(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype}{a.shape}".encode())
        h.update(memoryview(a).cast("B"))
    return h.hexdigest()


def training_identity(model: torch.nn.Module, train: Any, val: Any, cfg: dict[str, Any]) -> dict[str, Any]:
    """What a checkpoint must have been written by: settings, model shapes, window hashes."""
    return {
        "config": {k: v for k, v in cfg.items() if k not in _NOT_IDENTITY},
        "model": type(model).__name__,
        "parameters": [[name, list(t.shape)] for name, t in model.state_dict().items()],
        "train_sha256": _sha256(train.x, train.y),
        "val_sha256": _sha256(val.x, val.y),
    }


def rng_states(device: torch.device) -> dict[str, Any]:
    """Python, NumPy and torch RNG states (CUDA's on a CUDA ``device``), as plain values."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": [name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
    }


def set_rng_states(states: dict[str, Any], device: torch.device) -> None:
    """Restore :func:`rng_states`."""
    random.setstate(states["python"])
    name, keys, pos, has_gauss, gauss = states["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(states["torch"])
    if device.type == "cuda" and states["cuda"] is not None:
        torch.cuda.set_rng_state(states["cuda"], device)


class TrainingCheckpoint:
    """One training's checkpoint file (see the module docstring).

    Args:
        path: where the checkpoint lives (``<path>.json`` holds its progress summary).
        key: JSON-able description of the training added to its identity (a benchmark task:
            model, fold subjects, seed, hyper-parameters).
        fs: the file system ``path`` is on (default: local).
    """

    def __init__(self, path: str | os.PathLike[str], key: Any = None, fs: Any = None):
        self.path = os.fspath(path)
        self.key = key
        self.fs = fs or LocalFiles

    @property
    def progress_path(self) -> str:
        return self.path + ".json"

    def exists(self) -> bool:
        return bool(self.fs.exists(self.path))

    def load(self, identity: dict[str, Any]) -> dict[str, Any] | None:
        """The saved state (None: no checkpoint yet); raises if another training wrote it."""
        if not self.fs.exists(self.path):
            return None
        with self.fs.open(self.path, "rb") as f:
            blob = f.read()
        try:
            state = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - named with the file and what to do
            raise ValueError(f"training checkpoint {self.path} is unreadable ({exc}); delete it to start over") from exc
        want = json.loads(json.dumps({**identity, "key": self.key}))
        got = state.get("identity")
        if got != want:
            differ = sorted(k for k in set(want) | set(got or {}) if (got or {}).get(k) != want.get(k))
            raise ValueError(
                f"training checkpoint {self.path} was written by another training (differs in: "
                f"{', '.join(differ)}); delete it, or give this training its own checkpoint path"
            )
        return state

    def save(self, state: dict[str, Any], identity: dict[str, Any]) -> None:
        """Write ``state`` (with ``identity``) atomically, then its progress summary."""
        buf = io.BytesIO()
        torch.save({**state, "identity": json.loads(json.dumps({**identity, "key": self.key}))}, buf)
        progress = {
            "epochs_done": state["epoch"] + 1,
            "planned_epochs": state["planned"],
            "best_val_macro_f1": state["best_f1"],
            "best_epoch": state["best_epoch"],
            "key": self.key,
            "saved_unix": time.time(),
        }
        parent = os.path.dirname(self.path)
        if parent:
            self.fs.makedirs(parent)
        for path, data in ((self.path, buf.getvalue()), (self.progress_path, json.dumps(progress).encode())):
            tmp = f"{path}.{os.getpid()}.tmp"
            with self.fs.open(tmp, "wb") as f:
                f.write(data)
            self.fs.rename(tmp, path, overwrite=True)

    def progress(self) -> dict[str, Any] | None:
        """The progress summary of the last save (None: none yet)."""
        if not self.fs.exists(self.progress_path):
            return None
        with self.fs.open(self.progress_path, "rb") as f:
            return json.loads(f.read())

    def clear(self) -> None:
        """Remove the checkpoint and its summary (the training's result is kept elsewhere)."""
        for path in (self.path, self.progress_path):
            if self.fs.exists(path):
                self.fs.remove(path)
