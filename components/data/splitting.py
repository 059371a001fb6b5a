"""Subject-wise splits and the standardisation fitted on the training split.

Protocols:
- ``holdout``: named test and validation subjects, the rest train.
- ``loso``: every subject once as the test subject; validation = ``val_share`` of the
  remaining subjects (chosen with a fixed seed).
- ``kfold``: subjects shuffled (fixed seed) into ``n_folds`` groups, each group once
  the test set; validation as in ``loso``.
- ``predefined``: the source's own train/test split (for datasets without subject ids,
  e.g. BasicMotions); validation = ``val_share`` of the training recordings.

No subject ever appears in two parts of a fold (asserted in :func:`make_folds`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from components.data.window_set import WindowSet
from components.io_utils import atomic_write_text

PROTOCOLS = ("holdout", "loso", "kfold", "predefined")


class SplitError(ValueError):
    """A split configuration is impossible for this data."""


@dataclass(frozen=True)
class SplitConfig:
    """How to split (``configs/*.yaml`` -> ``split:``)."""

    protocol: str = "holdout"
    test_subjects: tuple[str, ...] = ()
    val_subjects: tuple[str, ...] = ()
    val_share: float = 0.2
    n_folds: int = 5
    seed: int = 0


@dataclass(frozen=True)
class Fold:
    """One train/val/test partition. For subject-wise protocols the sets are subject ids;
    for ``predefined`` they are recording ids."""

    name: str
    train: tuple[str, ...]
    val: tuple[str, ...]
    test: tuple[str, ...]
    by: str = "subject"


def _sorted_ids(ids) -> list[str]:
    """Sort ids numerically when they all are numbers ("2" before "10")."""
    ids = list(ids)
    return sorted(ids, key=lambda s: (0, int(s), "") if s.isdigit() else (1, 0, s))


def _pick_val(candidates: list[str], share: float, rng: np.random.Generator) -> list[str]:
    n_val = max(1, int(round(share * len(candidates)))) if share > 0 and len(candidates) > 1 else 0
    return _sorted_ids(rng.choice(candidates, size=n_val, replace=False).tolist()) if n_val else []


def make_folds(subjects: list[str], cfg: SplitConfig) -> list[Fold]:
    """Subject-wise folds for ``holdout``, ``loso`` or ``kfold``."""
    subjects = _sorted_ids(set(subjects))
    rng = np.random.default_rng(cfg.seed)
    if cfg.protocol == "holdout":
        unknown = sorted((set(cfg.test_subjects) | set(cfg.val_subjects)) - set(subjects))
        if unknown:
            raise SplitError(f"holdout names subjects {unknown} that are not in the data ({subjects})")
        if not cfg.test_subjects:
            raise SplitError("holdout needs test_subjects")
        test = list(cfg.test_subjects)
        rest = [s for s in subjects if s not in test]
        val = list(cfg.val_subjects) or _pick_val(rest, cfg.val_share, rng)
        folds = [Fold("holdout", tuple(s for s in rest if s not in val), tuple(val), tuple(test))]
    elif cfg.protocol == "loso":
        folds = []
        for s in subjects:
            rest = [o for o in subjects if o != s]
            val = _pick_val(rest, cfg.val_share, rng)
            folds.append(Fold(f"loso-{s}", tuple(o for o in rest if o not in val), tuple(val), (s,)))
    elif cfg.protocol == "kfold":
        if not 2 <= cfg.n_folds <= len(subjects):
            raise SplitError(f"kfold needs 2 <= n_folds <= {len(subjects)} subjects, got {cfg.n_folds}")
        order = rng.permutation(subjects).tolist()
        groups = [_sorted_ids(order[i :: cfg.n_folds]) for i in range(cfg.n_folds)]
        folds = []
        for i, test in enumerate(groups):
            rest = [s for s in subjects if s not in test]
            val = _pick_val(rest, cfg.val_share, rng)
            folds.append(Fold(f"kfold-{i}", tuple(s for s in rest if s not in val), tuple(val), tuple(test)))
    else:
        raise SplitError(f"unknown subject-wise protocol {cfg.protocol!r}; choose from {PROTOCOLS}")
    for f in folds:
        if set(f.train) & set(f.val) or set(f.train) & set(f.test) or set(f.val) & set(f.test):
            raise AssertionError(f"fold {f.name} shares subjects between parts")  # never expected
        if not f.train:
            raise SplitError(f"fold {f.name} has no training subjects")
    return folds


@dataclass
class Standardizer:
    """Per-channel z-scoring fitted on training windows only; travels with the model."""

    mean: list[float]
    std: list[float]

    @classmethod
    def fit(cls, windows: WindowSet) -> Standardizer:
        x = windows.x.astype(np.float64)
        mean = x.mean(axis=(0, 2))
        std = x.std(axis=(0, 2))
        return cls(mean=mean.tolist(), std=np.where(std < 1e-8, 1.0, std).tolist())

    def transform(self, x: np.ndarray) -> np.ndarray:
        mean = np.asarray(self.mean, np.float32)[None, :, None]
        std = np.asarray(self.std, np.float32)[None, :, None]
        return ((x - mean) / std).astype(np.float32)


@dataclass
class SplitWindows:
    """A fold's train/val/test windows (raw units) plus the fitted standardiser."""

    train: WindowSet
    val: WindowSet
    test: WindowSet
    fold: Fold
    standardizer: Standardizer
    provenance: dict[str, Any] = field(default_factory=dict)

    def standardized(self) -> tuple[WindowSet, WindowSet, WindowSet]:
        """Copies of (train, val, test) with the training-split standardisation applied."""
        out = []
        for ws in (self.train, self.val, self.test):
            s = ws.select(np.arange(len(ws)))
            s.x = self.standardizer.transform(ws.x)
            out.append(s)
        return tuple(out)

    def summary(self) -> dict[str, Any]:
        return {
            "fold": self.fold.name,
            "by": self.fold.by,
            "train": {"ids": list(self.fold.train), "windows": len(self.train)},
            "val": {"ids": list(self.fold.val), "windows": len(self.val)},
            "test": {"ids": list(self.fold.test), "windows": len(self.test)},
        }

    def save(self, folder: Path) -> Path:
        folder = Path(folder)
        for part in ("train", "val", "test"):
            getattr(self, part).save(folder / f"{part}.npz")
        meta = {
            "fold": asdict(self.fold),
            "standardizer": asdict(self.standardizer),
            "provenance": self.provenance,
        }
        atomic_write_text(folder / "split.json", json.dumps(meta, indent=2, sort_keys=True))
        return folder

    @classmethod
    def load(cls, folder: Path) -> SplitWindows:
        folder = Path(folder)
        meta = json.loads((folder / "split.json").read_text())
        fold = meta["fold"]
        return cls(
            train=WindowSet.load(folder / "train.npz"),
            val=WindowSet.load(folder / "val.npz"),
            test=WindowSet.load(folder / "test.npz"),
            fold=Fold(fold["name"], tuple(fold["train"]), tuple(fold["val"]), tuple(fold["test"]), fold["by"]),
            standardizer=Standardizer(**meta["standardizer"]),
            provenance=meta["provenance"],
        )


def apply_fold(windows: WindowSet, fold: Fold) -> SplitWindows:
    """Cut ``windows`` into the fold's parts and fit the standardiser on train only."""
    key = windows.subject if fold.by == "subject" else windows.recording
    parts = {p: windows.select(np.isin(key, list(getattr(fold, p)))) for p in ("train", "val", "test")}
    for p, ws in parts.items():
        if len(ws) == 0 and getattr(fold, p):
            raise SplitError(f"fold {fold.name}: the {p} part ({list(getattr(fold, p))}) has no windows")
    provenance = {**windows.provenance, "fold": fold.name, "protocol": fold.name.split("-")[0]}
    for ws in parts.values():
        ws.provenance = {**provenance}
    return SplitWindows(
        train=parts["train"],
        val=parts["val"],
        test=parts["test"],
        fold=fold,
        standardizer=Standardizer.fit(parts["train"]),
        provenance=provenance,
    )


def predefined_fold(recording_splits: dict[str, str], val_share: float, seed: int) -> Fold:
    """A fold from the source's own train/test split of recordings (no subject ids)."""
    train = _sorted_ids(r for r, s in recording_splits.items() if s == "train")
    test = _sorted_ids(r for r, s in recording_splits.items() if s == "test")
    if not train or not test:
        raise SplitError("predefined protocol needs recordings marked train and test (extra.split)")
    val = _pick_val(train, val_share, np.random.default_rng(seed))
    return Fold("predefined", tuple(r for r in train if r not in val), tuple(val), tuple(test), by="recording")


def split_windows(
    windows: WindowSet, cfg: SplitConfig, recording_splits: dict[str, str] | None = None
) -> list[SplitWindows]:
    """All folds of ``cfg.protocol`` over ``windows``.

    Raises:
        SplitError: a subject-wise protocol on data without subject ids, unknown
            subjects, or an empty part.
    """
    if cfg.protocol not in PROTOCOLS:
        raise SplitError(f"unknown protocol {cfg.protocol!r}; choose from {PROTOCOLS}")
    if cfg.protocol == "predefined":
        if not recording_splits:
            raise SplitError("the predefined protocol needs the source's train/test split of recordings")
        folds = [predefined_fold(recording_splits, cfg.val_share, cfg.seed)]
    else:
        if not windows.provenance.get("subject_wise", True):
            raise SplitError(
                f"dataset {windows.provenance.get('dataset')!r} has no subject ids: subject-wise "
                f"protocol {cfg.protocol!r} would be meaningless; use protocol 'predefined'"
            )
        folds = make_folds(windows.subjects, cfg)
    return [apply_fold(windows, f) for f in folds]
