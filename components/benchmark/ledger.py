"""Resumable benchmarks: every finished training is kept, so a long protocol can span sessions.

A full LOSO run (DSADS: 64 trainings, USC-HAD: 56) does not fit one 15-minute GPU session
or one sitting on a laptop. With a ledger folder, ``run_benchmark`` writes each finished
(model, fold, seed) record there the moment it completes, and a later run with the same
fingerprint only trains what is missing; the result file is built from all records and is
named as a full-protocol result only once nothing is missing.

The fingerprint is everything that decides a record's numbers: dataset windows (content
hash), trainer settings, and the source of the code that trains and scores (``CODE_PATHS``)
less the other models' own modules, so an edit to ``tinyhar.py`` re-runs TinyHAR only while
an edit to the trainer re-runs everything (the CMD-HAR ablations share ``cmdhar.py``, hence
one fingerprint). A record is reused only for a fold with the same train/validation/test
subjects. Records made under another fingerprint live in another subfolder and are never
mixed in.
Trainings cut short by a time budget, skipped or failed are not kept as records. A training
in progress saves its state after every epoch under ``partial/`` (model, optimizer,
scheduler, RNG and best weights: :mod:`components.training.checkpoint`), so one that was
stopped (a killed run, a restart, a time budget) goes on from its last epoch in the next
run; its checkpoint is removed once its record is kept.

Layout (one folder per fingerprint; a run over several models uses one per model family)::

    <ledger>/<dataset>-<protocol>-<fingerprint[:12]>/fingerprint.json
    <ledger>/<dataset>-<protocol>-<fingerprint[:12]>/<model>__<fold>__seed<k>.json
    <ledger>/<dataset>-<protocol>-<fingerprint[:12]>/partial/<model>__<fold>__seed<k>.pt(.json)
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from components.io_utils import atomic_write_text

REPO_ROOT = Path(__file__).resolve().parents[2]
# the code whose changes change a record's numbers (docs, reports and the CLI do not)
CODE_PATHS = (
    "components/models",
    "components/training",
    "components/data/windowing.py",
    "components/data/splitting.py",
    "components/data/window_set.py",
    "components/metrics.py",
)


def model_module_paths() -> dict[str, str]:
    """Registry name (and training-variant name) -> repo-relative path of the module that
    defines that model."""
    # lazy: the registry imports torch, and the CLI imports this module (`har benchmark --status`)
    from components.benchmark.protocol import VARIANTS
    from components.models.registry import _REGISTRY  # name -> (module, class, switches, modulation)

    paths = {name: entry[0].replace(".", "/") + ".py" for name, entry in _REGISTRY.items()}
    return {**paths, **{name: paths[base] for name, (base, _) in VARIANTS.items()}}


def code_scope(model: str) -> list[str]:
    """The other models' own modules, left out of ``model``'s code fingerprint."""
    own = model_module_paths()
    if model not in own:
        raise KeyError(f"unknown model {model!r}; known: {', '.join(own)}")
    return sorted(set(own.values()) - {own[model]})


def code_fingerprint(repo: Path | None = None, model: str | None = None) -> str:
    """sha256 over the relative paths and bytes of every ``.py`` file under ``CODE_PATHS``.

    With ``model``, the other registered models' modules (:func:`code_scope`) are left out.
    """
    repo = REPO_ROOT if repo is None else repo  # looked up per call: tests point it at a copy
    skip = set(code_scope(model)) if model else set()
    h = hashlib.sha256()
    for rel in CODE_PATHS:
        root = repo / rel
        files = sorted(root.rglob("*.py")) if root.is_dir() else [root] if root.exists() else []
        for f in files:
            if f.relative_to(repo).as_posix() in skip:
                continue
            h.update(str(f.relative_to(repo)).encode())
            h.update(b"\0")
            h.update(f.read_bytes())
            h.update(b"\0")
    return h.hexdigest()


def usable(rec: dict[str, Any]) -> bool:
    """A finished training's record: metrics, not cut short, skipped or failed."""
    return "metrics" in rec and not ({"truncated", "skipped", "error"} & set(rec))


class Ledger:
    """Finished task records of one benchmark fingerprint, one JSON file per task.

    Args:
        root: the ledger folder (shared by every dataset, protocol and fingerprint).
        dataset / protocol: name the subfolder, with the fingerprint's first 12 hex digits.
        fingerprint: JSON-able description of everything that decides the numbers.
    """

    def __init__(self, root: Path, dataset: str, protocol: str, fingerprint: dict[str, Any]):
        self.fingerprint = fingerprint
        self.digest = hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()
        self.dir = Path(root) / f"{dataset}-{protocol}-{self.digest[:12]}"

    @staticmethod
    def _name(model: str, fold: str, seed: int) -> str:
        return f"{model}__{fold}__seed{seed}.json"

    def load(self, folds: Iterable[Any] | None = None) -> dict[tuple[str, str, int], dict[str, Any]]:
        """``(model, fold, seed) -> record`` for every usable record already in the ledger.

        With ``folds`` (:class:`components.data.splitting.Fold`), only records of a fold with
        the same name *and* the same train/val/test subjects: runs restricted to some folds
        (``--folds``) add to the same ledger as the full run, and a fold name never stands in
        for other subjects.
        """
        subjects = None if folds is None else {f.name: [list(f.train), list(f.val), list(f.test)] for f in folds}
        out: dict[tuple[str, str, int], dict[str, Any]] = {}
        if not self.dir.is_dir():
            return out
        for path in sorted(self.dir.glob("*__*__seed*.json")):
            try:
                rec = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise ValueError(f"ledger record {path} is unreadable ({exc}); delete it to re-run that task") from exc
            if not usable(rec) or path.name != self._name(rec["model"], rec["fold"], rec["seed"]):
                continue
            if subjects is None or subjects.get(rec["fold"]) == [
                rec["train_subjects"],
                rec["val_subjects"],
                rec["test_subjects"],
            ]:
                out[(rec["model"], rec["fold"], rec["seed"])] = rec
        return out

    def checkpoint_path(self, model: str, fold: str, seed: int) -> Path:
        """Where the training of (model, fold, seed) keeps its per-epoch checkpoint (the folder
        and its ``fingerprint.json`` are made here, so ``--status`` finds trainings in progress)."""
        self._open()
        return self.dir / "partial" / self._name(model, fold, seed).replace(".json", ".pt")

    def _open(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        fp = self.dir / "fingerprint.json"
        if not fp.exists():
            atomic_write_text(fp, json.dumps({"sha256": self.digest, **self.fingerprint}, indent=1, sort_keys=True))

    def other_fingerprints(self) -> list[str]:
        """Sibling subfolders of the same dataset and protocol (older code or settings)."""
        stem = self.dir.name.rsplit("-", 1)[0]
        return sorted(p.name for p in self.dir.parent.glob(f"{stem}-*") if p.is_dir() and p != self.dir)

    def save(self, rec: dict[str, Any], provenance: dict[str, Any]) -> bool:
        """Keep ``rec`` (atomically) if it is a finished training; returns whether it was kept."""
        if not usable(rec):
            return False
        self._open()
        kept = {**rec, "ledger": {**provenance, "saved_unix": time.time()}}
        atomic_write_text(self.dir / self._name(rec["model"], rec["fold"], rec["seed"]), json.dumps(kept, indent=1))
        # the record now stands for the training's checkpoint (lazy: components.training imports torch)
        from components.training.checkpoint import TrainingCheckpoint

        TrainingCheckpoint(self.checkpoint_path(rec["model"], rec["fold"], rec["seed"])).clear()
        return True


def ledger_status(root: Path) -> list[dict[str, Any]]:
    """What a ledger holds: one row per (folder, model) with its finished folds.

    ``current`` says whether the folder's fingerprint still matches this checkout's code for
    that model (a run with the same data and settings would reuse the records); ``runs`` lists
    the ``(fold, seed)`` of each record; ``n_subjects`` is the number of subjects the records
    cover (the number of folds a full LOSO needs); ``partial`` the trainings stopped part way,
    as ``(fold, seed, epochs done, planned epochs)``, which the next run continues.
    """
    rows: list[dict[str, Any]] = []
    folders = sorted(p for p in root.iterdir() if (p / "fingerprint.json").is_file()) if root.is_dir() else []
    known = model_module_paths()
    for folder in folders:
        fp = json.loads((folder / "fingerprint.json").read_text())
        by_model: dict[str, list[dict[str, Any]]] = {}
        for path in sorted(folder.glob("*__*__seed*.json")):
            rec = json.loads(path.read_text())
            if usable(rec):
                by_model.setdefault(rec["model"], []).append(rec)
        partial: dict[str, list[tuple[str, int, int, int]]] = {}
        for path in sorted((folder / "partial").glob("*__*__seed*.pt.json")):
            try:
                prog = json.loads(path.read_text())
                key = prog["key"]
                partial.setdefault(key["model"], []).append(
                    (key["fold"]["name"], key["seed"], prog["epochs_done"], prog["planned_epochs"])
                )
            except (OSError, ValueError, KeyError, TypeError):
                continue  # being written, or not one of ours: the run that uses it says more
        for model in sorted(set(partial) - set(by_model)):
            by_model[model] = []
        for model, recs in by_model.items():
            current = (
                model in known
                and fp.get("code_excludes") == code_scope(model)
                and fp.get("code_sha256") == code_fingerprint(model=model)
            )
            subjects = {s for r in recs for key in ("train_subjects", "val_subjects", "test_subjects") for s in r[key]}
            f1 = {f"{r['fold']}/seed{r['seed']}": r["metrics"]["macro_f1"] for r in recs}
            mean = sum(f1.values()) / len(f1) if f1 else None
            rows.append(
                {
                    "folder": folder.name,
                    "dataset": fp.get("dataset"),
                    "protocol": fp.get("protocol"),
                    "model": model,
                    "current": bool(current),
                    "n_records": len(recs),
                    "runs": sorted((r["fold"], r["seed"]) for r in recs),
                    "n_subjects": len(subjects),
                    "macro_f1_mean": mean,
                    "macro_f1": dict(sorted(f1.items(), key=lambda kv: fold_order(kv[0]))),
                    "partial": sorted(partial.get(model, []), key=lambda p: fold_order(p[0])),
                }
            )
    return rows


def fold_order(key: str) -> tuple[int, str]:
    """Sort key for fold labels (``loso-10/seed0``, ``10/s0``, ``holdout``): by test subject number."""
    fold = key.split("/")[0]
    tail = fold.rsplit("-", 1)[-1]
    return (int(tail), key) if tail.isdigit() else (0, key)


def render_status(rows: list[dict[str, Any]]) -> str:
    """Markdown table of :func:`ledger_status` rows."""
    lines = [
        "| dataset | protocol | model | folder | code | records | mean macro-F1 (these folds) | per fold | "
        "part-trained (epochs done) |",
        "|---|---|---|---|---|---:|---:|---|---|",
    ]
    for r in rows:
        folds = ", ".join(f"{k.split('/')[0].removeprefix('loso-')}: {v:.3f}" for k, v in r["macro_f1"].items())
        of = f" of {r['n_subjects']}" if r["protocol"] == "loso" and r["n_subjects"] else ""
        mean = "-" if r["macro_f1_mean"] is None else f"{r['macro_f1_mean']:.3f}"
        part = ", ".join(f"{f.removeprefix('loso-')}/s{s}: {d} of {p}" for f, s, d, p in r["partial"])
        lines.append(
            f"| {r['dataset']} | {r['protocol']} | {r['model']} | `{r['folder']}` | "
            f"{'current' if r['current'] else 'stale'} | {r['n_records']}{of} | {mean} | {folds} | {part} |"
        )
    return "\n".join(lines) + "\n"
