"""Raw-source resolution and checksum verification (no internet: file:// downloads)."""

from __future__ import annotations

import dataclasses
import shutil
import zipfile
from pathlib import Path

import pytest

from components.data import sources
from components.data.sources import (
    ChecksumError,
    SourceNotFoundError,
    download_and_verify,
    get_source,
    resolve_raw_dir,
    verify_raw_dir,
)
from tests.conftest import DATASETS_DIR

BM_RAW = DATASETS_DIR / "uea_basicmotions" / "raw"


def _zip_of(files: list[Path], dest: Path, inner: str = "BasicMotions") -> Path:
    with zipfile.ZipFile(dest, "w") as z:
        for f in files:
            z.write(f, f"{inner}/{f.name}")
    return dest


def test_shared_raw_folders_verify():
    for name in ("basicmotions", "usc-had"):
        spec = get_source(name)
        sums = verify_raw_dir(DATASETS_DIR / spec.folder / "raw", spec)
        assert len(sums) >= 2


def test_tampered_sums_file_is_rejected(tmp_path):
    raw = tmp_path / "raw"
    shutil.copytree(BM_RAW, raw)
    (raw / "SHA256SUMS").write_text((raw / "SHA256SUMS").read_text().replace("8dc4", "0000"))
    with pytest.raises(ChecksumError, match="differs from the pinned"):
        verify_raw_dir(raw, get_source("basicmotions"))


def test_modified_data_file_is_rejected(tmp_path):
    raw = tmp_path / "raw"
    shutil.copytree(BM_RAW, raw)
    with open(raw / "BasicMotions_TEST.ts", "a") as f:
        f.write("\n")
    with pytest.raises(ChecksumError, match="BasicMotions_TEST.ts.*does not match"):
        verify_raw_dir(raw, get_source("basicmotions"))


def test_download_verifies_tree_digest(tmp_path):
    archive = _zip_of(sorted(BM_RAW.glob("BasicMotions_*.ts")), tmp_path / "bm.zip")
    dest = tmp_path / "cache" / "raw"
    out = download_and_verify(get_source("basicmotions"), dest, url=archive.as_uri())
    assert out == dest
    assert sorted(p.name for p in dest.glob("*.ts")) == ["BasicMotions_TEST.ts", "BasicMotions_TRAIN.ts"]
    assert verify_raw_dir(dest, get_source("basicmotions")) == {"tree_digest": get_source("basicmotions").tree_digest}


def test_download_with_bad_checksum_writes_nothing(tmp_path):
    spec = dataclasses.replace(get_source("basicmotions"), tree_digest="0" * 64)
    archive = _zip_of(sorted(BM_RAW.glob("BasicMotions_*.ts")), tmp_path / "bm.zip")
    dest = tmp_path / "cache" / "raw"
    with pytest.raises(ChecksumError, match="nothing was written"):
        download_and_verify(spec, dest, url=archive.as_uri())
    assert not dest.exists()
    assert list((tmp_path / "cache").iterdir()) == []  # no half-downloaded leftovers


def test_resolution_order(tmp_path, monkeypatch):
    # --source wins, accepting the folder itself or a datasets dir above it
    assert resolve_raw_dir("basicmotions", BM_RAW) == BM_RAW
    assert resolve_raw_dir("basicmotions", DATASETS_DIR) == BM_RAW
    # HAR_DATASETS_DIR next
    monkeypatch.setenv("HAR_DATASETS_DIR", str(DATASETS_DIR))
    assert resolve_raw_dir("usc-had") == DATASETS_DIR / "usc_had" / "raw"
    with pytest.raises(SourceNotFoundError):
        resolve_raw_dir("basicmotions", tmp_path)


def test_no_local_copy_and_no_download_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HAR_DATASETS_DIR", str(tmp_path / "nowhere"))
    monkeypatch.setattr(sources, "REPO_ROOT", tmp_path / "repo")
    monkeypatch.setattr(sources, "CACHE_DIR", tmp_path / "cache")
    with pytest.raises(SourceNotFoundError, match="HAR_DATASETS_DIR"):
        resolve_raw_dir("dsads", allow_download=False)


def test_unknown_dataset():
    with pytest.raises(ValueError, match="unknown dataset 'nope'"):
        get_source("nope")


def test_failed_download_is_a_clear_error(tmp_path):
    missing = (tmp_path / "not-there.zip").as_uri()
    with pytest.raises(SourceNotFoundError, match="download from .* failed"):
        download_and_verify(get_source("basicmotions"), tmp_path / "raw", url=missing)
    assert not (tmp_path / "raw").exists()
