"""The edge bundle: what a device needs to run a promoted model, with proof of what it is.

``<name>/`` (and ``<name>.tar.gz``) holds ``model.onnx`` (fp32), ``model.int8.onnx``,
``preprocessing.json`` (channels, modality groups, window, hop, rate, standardisation,
labels), ``labels.json``, ``parity.npz`` (a few real test windows with the logits both
models gave at export) and ``manifest.json`` (sha256 + size of every file, lineage ids,
metrics and latencies). :func:`verify_bundle` re-checks all of it with ONNX Runtime only.
"""

from __future__ import annotations

import io
import json
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from components.io_utils import atomic_write_bytes, sha256_file, swap_in
from har_runtime.runtime import FP32_FILE, INT8_FILE, MANIFEST_FILE, PARITY_FILE, PREPROCESSING_FILE, session

FORMAT = "cmd-har-edge-bundle/1"
LABELS_FILE = "labels.json"
FP32_ATOL = 1e-4  # same ONNX file, same runtime: only float reordering may differ
INT8_ATOL = 0.05  # int8 kernels differ slightly across CPU instruction sets; labels must not


class BundleError(RuntimeError):
    """A bundle is incomplete, tampered with, or does not reproduce its recorded outputs."""


@dataclass(frozen=True)
class EdgeBundle:
    """A bundle's files held in memory: what pipeline steps pass to each other (as a ZenML
    artifact), never a path. No files: nothing was promoted (``bool(bundle)`` is False)."""

    files: dict[str, bytes] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.files)

    @property
    def name(self) -> str:
        """The bundle's name (``<model>-v<version>``) from its manifest; ``""`` when empty."""
        if not self.files:
            return ""
        if MANIFEST_FILE not in self.files:
            raise BundleError(f"edge bundle without {MANIFEST_FILE} (files: {sorted(self.files)})")
        return str(json.loads(self.files[MANIFEST_FILE])["name"])

    @classmethod
    def load(cls, folder: Path | str) -> EdgeBundle:
        """Read every plain file of a bundle folder (an empty folder: the empty bundle)."""
        folder = Path(folder)
        extra = [p.name for p in folder.iterdir() if not p.is_file()]
        if extra:
            raise BundleError(f"{folder}: a bundle holds only plain files, found {sorted(extra)}")
        return cls({p.name: p.read_bytes() for p in sorted(folder.iterdir())})

    def save(self, folder: Path | str) -> Path:
        """Write the files into ``folder`` (created if needed); return it."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in self.files.items():
            if Path(name).name != name or name in (".", ".."):
                raise BundleError(f"bundle file name {name!r} is not a plain file name")
            atomic_write_bytes(folder / name, data)
        return folder

    @contextmanager
    def unpacked(self) -> Iterator[Path]:
        """The bundle as a folder named after it, for as long as the ``with`` block lasts."""
        if not self:
            raise BundleError("the edge bundle is empty: nothing was promoted")
        with tempfile.TemporaryDirectory(prefix="har-bundle-") as tmp:
            yield self.save(Path(tmp) / self.name)


def _logits(path: Path, x: np.ndarray) -> np.ndarray:
    return session(path).run(None, {"x": np.ascontiguousarray(x, np.float32)})[0]


def build_bundle(
    fp32: bytes,
    int8: bytes,
    preprocessing: dict[str, Any],
    parity_x: np.ndarray,
    lineage: dict[str, Any],
    metrics: dict[str, Any],
    out_dir: Path,
    name: str,
) -> Path:
    """Write ``out_dir/name/`` and ``out_dir/name.tar.gz`` atomically; return the folder.

    Args:
        fp32, int8: the ONNX files' bytes.
        preprocessing: see :func:`components.training.trained.preprocessing_from_split`.
        parity_x: a few real test windows (raw units) for the parity check.
        lineage: data.dvc md5, ZenML run, MLflow run, registered model/version, git commit, ...
        metrics: measured metrics and latencies (the export report).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=out_dir))
    try:
        (stage / FP32_FILE).write_bytes(fp32)
        (stage / INT8_FILE).write_bytes(int8)
        (stage / PREPROCESSING_FILE).write_text(json.dumps(preprocessing, indent=2, sort_keys=True))
        (stage / LABELS_FILE).write_text(json.dumps(list(preprocessing["label_names"]), indent=2))
        x = np.ascontiguousarray(parity_x, np.float32)
        buf = io.BytesIO()
        np.savez(buf, x=x, fp32=_logits(stage / FP32_FILE, x), int8=_logits(stage / INT8_FILE, x))
        (stage / PARITY_FILE).write_bytes(buf.getvalue())
        files = sorted(p.name for p in stage.iterdir())
        manifest = {
            "format": FORMAT,
            "name": name,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "files": {f: {"sha256": sha256_file(stage / f), "bytes": (stage / f).stat().st_size} for f in files},
            "lineage": lineage,
            "metrics": metrics,
            "parity": {"windows": len(x), "fp32_atol": FP32_ATOL, "int8_atol": INT8_ATOL},
        }
        (stage / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str))
        folder = out_dir / name
        swap_in(stage, folder)  # the previous bundle stays until the new one is in place
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    atomic_write_bytes(out_dir / f"{name}.tar.gz", _tar_bytes(folder))
    return folder


def _tar_bytes(folder: Path) -> bytes:
    """Deterministic tar.gz of ``folder`` (sorted names, no owners, fixed mtime)."""
    import gzip

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for p in sorted(folder.iterdir()):
            info = tarfile.TarInfo(f"{folder.name}/{p.name}")
            data = p.read_bytes()
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


def _extract_plain_members(tar: tarfile.TarFile, dest: str) -> None:
    """Extract only plain files and folders below ``dest``: no absolute paths, no ``..``,
    no links or devices. Python >= 3.11.4 / 3.12 has this as ``filter="data"``; older 3.11
    releases lack the argument, so the members are checked here on every version."""
    for member in tar.getmembers():
        parts = Path(member.name).parts
        if Path(member.name).is_absolute() or ".." in parts or not (member.isfile() or member.isdir()):
            raise BundleError(f"bundle member {member.name!r} is not a plain file or folder inside the bundle")
    if hasattr(tarfile, "data_filter"):
        tar.extractall(dest, filter="data")
    else:  # pragma: no cover - Python < 3.11.4 (checked above instead)
        tar.extractall(dest)  # noqa: S202 - every member was checked above


def open_bundle(path: Path | str) -> tuple[Path, tempfile.TemporaryDirectory | None]:
    """A bundle folder from a folder or a ``.tar.gz`` (extracted to a temp dir the caller keeps)."""
    path = Path(path)
    if path.is_dir():
        return path, None
    if not path.exists():
        raise BundleError(f"bundle {path} does not exist")
    if not path.name.endswith((".tar.gz", ".tgz")):
        raise BundleError(f"{path} is neither a bundle folder nor a .tar.gz")
    tmp = tempfile.TemporaryDirectory(prefix="har-bundle-")
    try:
        with tarfile.open(path, "r:gz") as tar:
            _extract_plain_members(tar, tmp.name)
    except BundleError:
        tmp.cleanup()
        raise
    except (tarfile.TarError, OSError, EOFError) as e:
        tmp.cleanup()
        raise BundleError(f"{path}: not a readable .tar.gz bundle ({e})") from e
    folders = [p for p in Path(tmp.name).iterdir() if p.is_dir()]
    if len(folders) != 1:
        tmp.cleanup()
        raise BundleError(f"{path}: expected one bundle folder inside, found {len(folders)}")
    return folders[0], tmp


def read_manifest(folder: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((Path(folder) / MANIFEST_FILE).read_text())
    except FileNotFoundError:
        raise BundleError(f"{folder}: no {MANIFEST_FILE}; not an edge bundle") from None
    except json.JSONDecodeError as e:
        raise BundleError(f"{folder}/{MANIFEST_FILE} is not valid JSON ({e})") from None
    if manifest.get("format") != FORMAT:
        raise BundleError(f"{folder}: unknown bundle format {manifest.get('format')!r} (expected {FORMAT})")
    return manifest


def verify_bundle(path: Path | str) -> dict[str, Any]:
    """Re-check every hash and run the parity check; return what was checked.

    Raises:
        BundleError: a missing, extra or modified file, or outputs that differ from the
            recorded ones beyond tolerance. The message names the file or the check.
    """
    folder, tmp = open_bundle(path)
    try:
        manifest = read_manifest(folder)
        listed = manifest["files"]
        present = {p.name for p in folder.iterdir() if p.is_file()} - {MANIFEST_FILE}
        missing, extra = sorted(set(listed) - present), sorted(present - set(listed))
        if missing:
            raise BundleError(f"{path}: missing file(s) {missing}")
        if extra:
            raise BundleError(f"{path}: file(s) not in the manifest {extra}")
        for name, entry in sorted(listed.items()):
            digest = sha256_file(folder / name)
            if digest != entry["sha256"]:
                raise BundleError(
                    f"{path}: {name} was modified: sha256 {digest[:16]}... != manifest {entry['sha256'][:16]}..."
                )
        with np.load(folder / PARITY_FILE, allow_pickle=False) as parity:
            x, want32, want8 = parity["x"], parity["fp32"], parity["int8"]
        got32, got8 = _logits(folder / FP32_FILE, x), _logits(folder / INT8_FILE, x)
        d32, d8 = float(np.abs(got32 - want32).max()), float(np.abs(got8 - want8).max())
        tol = manifest.get("parity", {})
        if d32 > tol.get("fp32_atol", FP32_ATOL):
            raise BundleError(f"{path}: fp32 parity failed: max |diff| {d32:.3g} > {tol.get('fp32_atol', FP32_ATOL)}")
        if d8 > tol.get("int8_atol", INT8_ATOL) or not np.array_equal(got8.argmax(1), want8.argmax(1)):
            raise BundleError(f"{path}: int8 parity failed: max |diff| {d8:.3g}, labels changed")
        return {
            "bundle": str(path),
            "files": len(listed),
            "parity_windows": int(len(x)),
            "fp32_max_abs_diff": d32,
            "int8_max_abs_diff": d8,
            "int8_agrees_with_fp32": float((got8.argmax(1) == got32.argmax(1)).mean()),
            "lineage": manifest.get("lineage", {}),
        }
    finally:
        if tmp is not None:
            tmp.cleanup()
