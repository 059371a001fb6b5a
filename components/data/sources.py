"""Where raw public datasets come from, and proof that they are the right bytes.

Resolution order for a dataset's raw folder:
1. ``--source DIR`` given by the user;
2. ``$HAR_DATASETS_DIR/<folder>/raw``;
3. ``../shared/datasets/<folder>/raw`` next to the checkout, when it exists;
4. a download from the official URL into ``.cache/datasets/<folder>/raw``.

Every path ends in a checksum check before a single byte is converted: a local folder
must match its ``SHA256SUMS`` (whose own hash is pinned here); a download must
reproduce the pinned *tree digest* of the dataset's files.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.request
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from components.config import REPO_ROOT
from components.io_utils import sha256_file

CACHE_DIR = Path(os.environ.get("HAR_CACHE_DIR", REPO_ROOT / ".cache"))


class ChecksumError(RuntimeError):
    """Raw data does not match its pinned checksums; nothing was converted."""


class SourceNotFoundError(FileNotFoundError):
    """No raw folder was found and no download was allowed or possible."""


@dataclass(frozen=True)
class SourceSpec:
    """Pinned facts about one public dataset's raw files.

    Attributes:
        name: CLI / dataset name (``dsads``, ``usc-had``, ``basicmotions``).
        folder: folder name under a datasets directory (``../shared/datasets/<folder>/raw``).
        url: official download location (a zip archive).
        sums_sha256: sha256 of the raw folder's ``SHA256SUMS`` file.
        tree_glob: the data files (relative glob) covered by ``tree_digest``.
        tree_digest: :func:`tree_digest` of those files, to verify a download.
    """

    name: str
    folder: str
    url: str
    sums_sha256: str
    tree_glob: str
    tree_digest: str


SOURCES: dict[str, SourceSpec] = {
    "dsads": SourceSpec(
        name="dsads",
        folder="dsads",
        url="https://archive.ics.uci.edu/static/public/256/daily+and+sports+activities.zip",
        sums_sha256="10f4ddaf2fa060a6e108175e6af7a8c9817e5447119e411f4f5a1c375f86e372",
        tree_glob="data/a*/p*/s*.txt",
        # equals the sha256 of the raw folder's MEMBERS.sha256 (same line format)
        tree_digest="a9f1eb13400dfa34eed99d8dd02c61ceae1dc72d2a052c97a9e5f70b4304ee3f",
    ),
    "usc-had": SourceSpec(
        name="usc-had",
        folder="usc_had",
        url="https://sipi.usc.edu/had/USC-HAD.zip",
        sums_sha256="5ca1c91698ab50e1d5fa2a4723c6bdf41a50a6b074a03b8c0efe8881f44cff3f",
        tree_glob="Subject*/a*t*.mat",
        tree_digest="b723f2b3db14f24e3167f92612bfd10dbfa8b31aad539a6838c5ea100719daaf",
    ),
    "basicmotions": SourceSpec(
        name="basicmotions",
        folder="uea_basicmotions",
        url="https://www.timeseriesclassification.com/aeon-toolkit/BasicMotions.zip",
        sums_sha256="9b18975a8e4a7ad6404dd1a7174edceb09f36b7dfa0e5ef937b7b0299d725c0f",
        tree_glob="BasicMotions_*.ts",
        tree_digest="9646e6a2657c1d770c20bb48363790a95a7610c94019072edd3299f95ce54b19",
    ),
}


def get_source(name: str) -> SourceSpec:
    try:
        return SOURCES[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; choose one of {sorted(SOURCES)}") from None


def datasets_dir_candidates() -> list[Path]:
    """Folders that may hold ``<folder>/raw`` for the public datasets, in priority order."""
    out = []
    if os.environ.get("HAR_DATASETS_DIR"):
        out.append(Path(os.environ["HAR_DATASETS_DIR"]))
    out.append(REPO_ROOT.parent / "shared" / "datasets")
    return out


def read_sums(path: Path) -> dict[str, str]:
    """Parse a ``sha256sum`` file into ``{relative path: sha256}`` (``./`` stripped)."""
    sums: dict[str, str] = {}
    for line in Path(path).read_text().splitlines():
        if not line.strip():
            continue
        digest, name = line.split(maxsplit=1)
        sums[name.lstrip("*").removeprefix("./")] = digest.lower()
    return sums


def verify_sums(raw_dir: Path, spec: SourceSpec) -> dict[str, str]:
    """Check ``raw_dir/SHA256SUMS`` against its pinned hash and every file against it.

    Returns:
        ``{relative path: sha256}`` of the verified files (provenance for the manifest).

    Raises:
        ChecksumError: naming the first file that is missing or differs.
    """
    sums_file = raw_dir / "SHA256SUMS"
    if not sums_file.exists():
        raise ChecksumError(f"{raw_dir}: no SHA256SUMS file; cannot verify the raw data")
    got = sha256_file(sums_file)
    if spec.sums_sha256 and got != spec.sums_sha256:
        raise ChecksumError(
            f"{sums_file}: sha256 {got} differs from the pinned {spec.sums_sha256}; "
            "the raw folder is not the released dataset"
        )
    sums = read_sums(sums_file)
    for rel, expected in tqdm(sorted(sums.items()), desc=f"verify {spec.name}", unit="file", leave=False):
        path = raw_dir / rel
        if not path.exists():
            raise ChecksumError(f"{path}: listed in SHA256SUMS but missing")
        actual = sha256_file(path)
        if actual != expected:
            raise ChecksumError(f"{path}: sha256 {actual} does not match SHA256SUMS ({expected})")
    return sums


def tree_digest(root: Path, files: Iterable[Path]) -> str:
    """sha256 over sorted lines ``"<sha256>  <relative path>"`` of ``files`` under ``root``."""
    rels = sorted((f.relative_to(root).as_posix(), f) for f in files)
    return digest_of_sums({rel: sha256_file(f) for rel, f in rels})


def digest_of_sums(sums: dict[str, str]) -> str:
    """sha256 over ``"<sha256>  <path>"`` lines sorted by path (the tree digest format)."""
    lines = [f"{sums[rel]}  {rel}\n" for rel in sorted(sums)]
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def download(url: str, dest: Path) -> Path:
    """Stream ``url`` to ``dest`` atomically with a progress bar."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    try:
        with urllib.request.urlopen(url, timeout=60) as resp, os.fdopen(fd, "wb") as out:
            total = int(resp.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=f"download {dest.name}") as bar:
                for chunk in iter(lambda: resp.read(1 << 20), b""):
                    out.write(chunk)
                    bar.update(len(chunk))
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dest


def _find_root(extracted: Path, glob: str) -> Path:
    """The folder inside an extracted archive under which ``glob`` matches."""
    for candidate in [extracted, *sorted(p for p in extracted.rglob("*") if p.is_dir())]:
        if any(candidate.glob(glob)):
            return candidate
    raise ChecksumError(f"downloaded archive holds no files matching {glob!r}")


def download_and_verify(spec: SourceSpec, dest_raw: Path, url: str | None = None) -> Path:
    """Download the official archive, verify its tree digest, then move it into place.

    Nothing appears at ``dest_raw`` unless the digest matches.

    Raises:
        ChecksumError: the downloaded files differ from the pinned digest.
    """
    url = url or spec.url
    dest_raw = Path(dest_raw)
    dest_raw.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{spec.folder}-", dir=dest_raw.parent) as tmp:
        try:
            archive = download(url, Path(tmp) / "archive.zip")
        except OSError as e:  # URLError, timeouts, refused connections
            raise SourceNotFoundError(
                f"no local copy of {spec.name} and the download from {url} failed ({e}); "
                "pass --source DIR or set HAR_DATASETS_DIR to a folder holding the raw files"
            ) from e
        extracted = Path(tmp) / "x"
        with zipfile.ZipFile(archive) as z:
            z.extractall(extracted)
        root = _find_root(extracted, spec.tree_glob)
        digest = tree_digest(root, sorted(root.glob(spec.tree_glob)))
        if digest != spec.tree_digest:
            raise ChecksumError(
                f"{url}: tree digest {digest} of {spec.tree_glob!r} differs from the pinned "
                f"{spec.tree_digest}; nothing was written"
            )
        if dest_raw.exists():
            shutil.rmtree(dest_raw)
        os.replace(root, dest_raw)
    return dest_raw


def resolve_raw_dir(name: str, source: Path | None = None, allow_download: bool = True) -> Path:
    """Find (or download) the raw folder of dataset ``name``; see the module docstring."""
    spec = get_source(name)
    if source is not None:
        source = Path(source)
        for cand in (source, source / "raw", source / spec.folder / "raw"):
            if (cand / "SHA256SUMS").exists() or any(cand.glob(spec.tree_glob)):
                return cand
        raise SourceNotFoundError(f"--source {source}: no {name} raw files (SHA256SUMS or {spec.tree_glob})")
    for base in datasets_dir_candidates():
        cand = base / spec.folder / "raw"
        if cand.exists():
            return cand
    cached = CACHE_DIR / "datasets" / spec.folder / "raw"
    if cached.exists():
        return cached
    if not allow_download:
        raise SourceNotFoundError(
            f"no raw {name} data found (looked in {[str(p) for p in datasets_dir_candidates()]}); "
            "pass --source DIR or set HAR_DATASETS_DIR"
        )
    return download_and_verify(spec, cached)


def verify_raw_dir(raw_dir: Path, spec: SourceSpec) -> dict[str, str]:
    """Verify a raw folder: via ``SHA256SUMS`` when present, else via the tree digest.

    Returns:
        ``{relative path: sha256}`` for SHA256SUMS folders, or ``{"tree_digest": ...}``.
    """
    if (raw_dir / "SHA256SUMS").exists():
        return verify_sums(raw_dir, spec)
    digest = tree_digest(raw_dir, sorted(raw_dir.glob(spec.tree_glob)))
    if digest != spec.tree_digest:
        raise ChecksumError(f"{raw_dir}: tree digest {digest} differs from the pinned {spec.tree_digest}")
    return {"tree_digest": digest}
