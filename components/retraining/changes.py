"""What changed in ``data/`` between two data versions (``data.dvc`` md5s).

A data version is a DVC directory object: a JSON list of ``{relpath, md5}`` kept in
the DVC cache. Comparing two of them names the recordings added and removed without
any extra bookkeeping; the added recordings' subjects and labelled hours are read
from their Parquet files (in ``data/`` or, for removed ones, the cache).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

from components.data.ingest import DatasetStats, label_samples
from components.data.manifest import Manifest, ManifestError
from components.data.recordings import META_KEY, RECORDINGS_DIR
from components.data.versioning import cache_dir


@dataclass
class DataChanges:
    """Recordings added / removed between two data versions, per dataset."""

    old: str | None
    new: str | None
    added: dict[str, list[str]] = field(default_factory=dict)  # dataset -> recording ids
    removed: dict[str, list[str]] = field(default_factory=dict)
    added_stats: dict[str, DatasetStats] = field(default_factory=dict)
    other_files: int = 0  # manifests, indexes, quarantine reports
    known: bool = True  # False: a version's listing is not in the local DVC cache
    note: str = ""

    def lines(self) -> list[str]:
        if not self.known:
            return [self.note]
        if not self.added and not self.removed:
            return [f"no recordings added or removed ({self.other_files} other files changed)"]
        out = []
        for ds in sorted(set(self.added) | set(self.removed)):
            added, removed = self.added.get(ds, []), self.removed.get(ds, [])
            stats = self.added_stats.get(ds, DatasetStats())
            line = f"{ds}: +{len(added)} recordings"
            if added:
                line += f" (subjects {', '.join(sorted(stats.subjects))}: {', '.join(added[:6])}"
                line += ", ...)" if len(added) > 6 else ")"
            if removed:
                line += f", -{len(removed)} recordings ({', '.join(removed[:6])}{', ...' if len(removed) > 6 else ''})"
            out.append(line)
            if stats.hours:
                out.append("  new hours: " + ", ".join(f"{k} {v:.3f} h" for k, v in sorted(stats.hours.items())))
        return out


def dir_listing(version: str, repo: Path | None = None) -> dict[str, str] | None:
    """``{relpath: md5}`` of a data version from the DVC cache (None if it is not there)."""
    md5 = version.removesuffix(".dir")
    obj = cache_dir(repo) / "files" / "md5" / md5[:2] / f"{md5[2:]}.dir"
    if not obj.exists():
        return None
    return {e["relpath"]: e["md5"] for e in json.loads(obj.read_text())}


def _recording(relpath: str) -> tuple[str, str] | None:
    parts = Path(relpath).parts
    if len(parts) == 3 and parts[1] == RECORDINGS_DIR and parts[2].endswith(".parquet"):
        return parts[0], Path(parts[2]).stem
    return None


def changes_between(old: str | None, new: str | None, data_dir: Path, repo: Path | None = None) -> DataChanges:
    """Recordings added and removed going from data version ``old`` to ``new``."""
    result = DataChanges(old, new)
    if not old or not new:
        result.known, result.note = False, "no earlier data version to compare with"
        return result
    before, after = dir_listing(old, repo), dir_listing(new, repo)
    if before is None or after is None:
        missing = old if before is None else new
        result.known = False
        result.note = f"data version {missing} is not in the local DVC cache (dvc fetch); cannot list what changed"
        return result
    for relpath in sorted(set(before) | set(after)):
        rec = _recording(relpath)
        if rec is None:
            result.other_files += before.get(relpath) != after.get(relpath)
        elif relpath not in before:
            result.added.setdefault(rec[0], []).append(rec[1])
            _count(result, rec[0], Path(data_dir) / relpath)
        elif relpath not in after:
            result.removed.setdefault(rec[0], []).append(rec[1])
    return result


def _count(result: DataChanges, dataset: str, path: Path) -> None:
    """Add one new recording's subject and labelled hours to ``result.added_stats``."""
    if not path.exists():
        return
    try:
        rate = Manifest.load(path.parent.parent).sampling_rate_hz
    except ManifestError:
        return
    subject = json.loads((pq.read_schema(path).metadata or {}).get(META_KEY, b"{}")).get("subject", "?")
    labels = pq.read_table(path, columns=["label"])["label"].to_pylist()
    result.added_stats.setdefault(dataset, DatasetStats()).add(str(subject), label_samples(labels), rate)
