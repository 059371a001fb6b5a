"""A new dataset of a team's own recordings (``har data new NAME``).

The manifest is written from a manifest file the user wrote, or derived from CSV files
as a logger writes them: one recording per file, a header row whose channel columns are
named ``<position>_<modality>_<axis>`` (``wrist_acc_x``) or ``<modality>_<axis>``
(``acc_x``, with ``--position``), an optional ``t`` column in seconds and an optional
``label`` column (empty cell = unlabelled sample), and optional ``# key: value`` lines
above the header (docs/data_format.md). Units are never guessed: each modality's unit
is given once (``--units acc=g,gyro=deg/s``) because validation checks physical ranges
in that unit. Nothing is written until the whole manifest is valid.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from components.data.ingest import IngestError, _csv_header, expand_paths
from components.data.manifest import MANIFEST_FILE, PHYSICAL_LIMITS, Channel, Manifest, ManifestError
from components.data.recordings import list_recordings, read_recording
from components.io_utils import atomic_write_text

MODALITY_ALIASES = {
    "acc": "acc",
    "accel": "acc",
    "accelerometer": "acc",
    "gyro": "gyro",
    "gyr": "gyro",
    "gyroscope": "gyro",
    "mag": "mag",
    "magnetometer": "mag",
}
AXES = ("x", "y", "z")
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


class NewDatasetError(ValueError):
    """The dataset cannot be created as asked; nothing was written."""


def parse_units(text: str | None) -> dict[str, str]:
    """``acc=g,gyro=deg/s`` -> ``{"acc": "g", "gyro": "deg/s"}``."""
    out: dict[str, str] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        if "=" not in part:
            raise NewDatasetError(f"--units: {part.strip()!r} is not MODALITY=UNIT (e.g. acc=g,gyro=deg/s)")
        modality, unit = (s.strip() for s in part.split("=", 1))
        out[MODALITY_ALIASES.get(modality.lower(), modality.lower())] = unit
    return out


def channel_from_column(column: str, units: dict[str, str], position: str | None) -> Channel:
    """A manifest channel from a CSV column name (see the module docstring)."""
    tokens = [t.lower() for t in re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+", column)]  # snake, camel, dots
    found = [i for i, tok in enumerate(tokens) if tok in MODALITY_ALIASES]
    if not found:
        raise NewDatasetError(
            f"column {column!r}: no modality in its name; name channels <position>_<modality>_<axis> "
            f"with modality one of {sorted(set(MODALITY_ALIASES.values()))} (aliases "
            f"{sorted(MODALITY_ALIASES)}), e.g. wrist_acc_x; the other columns may only be 't' (seconds) "
            f"and 'label' (the activity); or write the manifest yourself (--manifest)"
        )
    i = found[-1]
    modality = MODALITY_ALIASES[tokens[i]]
    rest = tokens[:i] + tokens[i + 1 :]
    axis = rest.pop() if rest and rest[-1] in AXES else ""
    pos = "_".join(rest) or position
    if not pos:
        raise NewDatasetError(f"column {column!r} names no body position; pass --position (e.g. --position wrist)")
    if modality not in units:
        raise NewDatasetError(
            f"column {column!r}: no unit for modality {modality!r}; pass --units {modality}=UNIT "
            f"(known: {', '.join(f'{m} {u}' for m, u in sorted(PHYSICAL_LIMITS))})"
        )
    return Channel(name=column, modality=modality, position=pos, unit=units[modality], axis=axis)


def _scan_csv(path: Path) -> tuple[list[str], dict, set[str], float | None]:
    """Header columns, ``# key: value`` metadata, labels used, and the rate from ``t``."""
    import pandas as pd

    header, skip = _csv_header(path)
    try:
        df = pd.read_csv(path, skiprows=skip, dtype={"label": "string"})
    except (ValueError, pd.errors.ParserError) as e:
        raise NewDatasetError(f"{path.name}: not a readable CSV file ({e})") from e
    columns = [str(c).strip() for c in df.columns]
    labels = {str(v) for v in df["label"].dropna()} if "label" in df else set()
    if header.get("label") is not None:
        labels.add(str(header["label"]))
    rate = None
    if "t" in df and len(df) > 1:
        dt = np.diff(df["t"].to_numpy(dtype=np.float64))
        if np.median(dt) > 0:
            rate = float(1.0 / np.median(dt))
    return columns, header, labels, rate


def manifest_from_csv(
    name: str,
    paths: list[Path],
    units: dict[str, str],
    rate_hz: float | None = None,
    position: str | None = None,
    labels: list[str] | None = None,
    subject_wise: bool = True,
    description: str = "",
) -> tuple[Manifest, list[str]]:
    """A manifest derived from CSV files, and notes on what was derived from where.

    Every file must have the same channel columns (in any order); the first file's order
    becomes the manifest's. The rate is ``rate_hz``, else ``sampling_rate_hz`` in the
    files' headers, else the spacing of ``t``; the files must agree within 2 %. Labels are
    ``labels``, else every label found in the files (label columns and ``# label:`` lines).
    """
    files = [f for f in expand_paths(paths) if f.suffix.lower() == ".csv"]
    if not files:
        raise NewDatasetError(f"no .csv files in {', '.join(map(str, paths))}")
    notes: list[str] = []
    first_cols: list[str] | None = None
    found_labels: set[str] = set()
    rates: dict[str, float] = {}
    try:
        for f in files:
            columns, header, used, t_rate = _scan_csv(f)
            chans = [c for c in columns if c not in ("t", "label")]
            if first_cols is None:
                first_cols = chans
            elif sorted(chans) != sorted(first_cols):
                raise NewDatasetError(
                    f"{f.name}: channels differ from {files[0].name}: missing "
                    f"{sorted(set(first_cols) - set(chans))}, unexpected {sorted(set(chans) - set(first_cols))}"
                )
            found_labels |= used
            declared = header.get("sampling_rate_hz")
            if declared is not None or t_rate is not None:
                rates[f.name] = float(declared if declared is not None else t_rate)
    except IngestError as e:
        raise NewDatasetError(str(e)) from e
    if not first_cols:
        raise NewDatasetError(f"{files[0].name}: no channel columns (only t/label)")
    if rate_hz is None:
        if not rates:
            raise NewDatasetError(
                "no sampling rate: pass --rate HZ, or give the files a t column or a # sampling_rate_hz line"
            )
        rate_hz = float(f"{np.median(list(rates.values())):.4g}")  # t in float seconds: 100.0000000002
        notes.append(f"rate {rate_hz:g} Hz from {len(rates)} file(s) (t spacing or # sampling_rate_hz)")
    off = sorted(n for n, r in rates.items() if abs(r - rate_hz) > 0.02 * rate_hz)
    if off:
        raise NewDatasetError(
            f"{len(off)} file(s) are not sampled at {rate_hz:g} Hz (e.g. {off[0]}: {rates[off[0]]:.4g} Hz); "
            f"resample them, or ingest them later with --resample"
        )
    channels = [channel_from_column(c, units, position) for c in first_cols]
    vocab = list(labels) if labels else sorted(found_labels)
    if not vocab:
        raise NewDatasetError("no activity labels found in the files; pass --labels a,b,c")
    unused = sorted(set(found_labels) - set(vocab))
    if unused:
        raise NewDatasetError(f"the files use labels that --labels does not list: {unused}")
    if not labels:
        notes.append(f"{len(vocab)} labels found in {len(files)} file(s)")
    try:
        manifest = Manifest(name, rate_hz, channels, vocab, subject_wise=subject_wise, description=description)
    except ManifestError as e:
        raise NewDatasetError(str(e)) from e
    return manifest, notes


def create_dataset(data_dir: Path, manifest: Manifest) -> Path:
    """Write ``data/<name>/manifest.yaml`` for a new dataset (refuses an existing one)."""
    if not NAME.match(manifest.name):
        raise NewDatasetError(
            f"dataset name {manifest.name!r}: use lower-case letters, digits, '-' and '_' (it names "
            f"the folder, the config and the registered model cmd-har-{manifest.name})"
        )
    folder = Path(data_dir) / manifest.name
    if (folder / MANIFEST_FILE).exists():
        raise NewDatasetError(f"{folder} already exists; add recordings with `har data ingest PATH --dataset NAME`")
    folder.mkdir(parents=True, exist_ok=True)
    return manifest.save(folder)


def export_csv(dataset_dir: Path, out_dir: Path, subjects: list[str] | None = None) -> list[Path]:
    """Write each recording of a dataset as a CSV file the way a team's logger would: a
    ``# subject`` / ``# session`` header, then ``t``, one column per channel and ``label``
    (empty cell = unlabelled). Returns the files written (``<out_dir>/<recording_id>.csv``)."""
    import pandas as pd

    manifest = Manifest.load(dataset_dir)
    written = []
    for path in list_recordings(dataset_dir):
        rec = read_recording(path, manifest)
        if subjects and rec.meta.subject not in subjects:
            continue
        frame = pd.DataFrame(rec.values, columns=manifest.channel_names)
        frame.insert(0, "t", rec.t - rec.t[0])
        frame["label"] = rec.labels
        head = f"# subject: '{rec.meta.subject}'\n# session: '{rec.meta.session}'\n"
        out = Path(out_dir) / f"{rec.meta.recording_id}.csv"
        written.append(atomic_write_text(out, head + frame.to_csv(index=False, float_format="%.6g")))
    if not written:
        raise NewDatasetError(f"no recordings of subjects {subjects} in {dataset_dir}")
    return written
