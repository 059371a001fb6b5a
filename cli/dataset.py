"""``har data new`` and ``har config new``: a team's own dataset from CSV files to a train config.

    har data new NAME --from-csv DIR --units acc=g,gyro=deg/s [--rate HZ] [--position hip]
    har data new NAME --manifest manifest.yaml
    har data export NAME OUT_DIR [--subjects 1,2]  # a dataset as plain CSV files
    har config new NAME                          # configs/NAME.yaml from configs/train.yaml

Registered on the main app by :func:`register` (cli/main.py).
"""

from __future__ import annotations

from pathlib import Path

import typer
import yaml
from rich.markup import escape

from cli.common import console, fail
from components.config import REPO_ROOT, data_dir, load_run_config
from components.data.manifest import Manifest, ManifestError
from components.data.new_dataset import NewDatasetError, create_dataset, export_csv, manifest_from_csv, parse_units
from components.io_utils import atomic_write_text

config_app = typer.Typer(help="Run configs that follow a dataset.", no_args_is_help=True)
TEMPLATE = REPO_ROOT / "configs" / "train.yaml"


def new_dataset_cmd(
    name: str = typer.Argument(..., help="dataset name: the folder data/NAME and the model cmd-har-NAME"),
    from_csv: list[Path] = typer.Option(
        None, "--from-csv", help="CSV file(s) or folder(s) to derive the manifest from (every .csv below a folder)"
    ),
    manifest: Path | None = typer.Option(None, "--manifest", help="a manifest.yaml you wrote (docs/data_format.md)"),
    units: str | None = typer.Option(None, "--units", help="unit per modality: acc=g,gyro=deg/s"),
    rate: float | None = typer.Option(None, "--rate", help="Hz (default: from t / # sampling_rate_hz)"),
    position: str | None = typer.Option(None, "--position", help="body position for columns that name none"),
    labels: str | None = typer.Option(None, "--labels", help="vocabulary a,b,c (default: labels in the files)"),
    subject_wise: bool = typer.Option(True, help="recordings carry real subject ids (needed for subject-wise splits)"),
    description: str = typer.Option("", help="free text kept in the manifest"),
) -> None:
    """Create data/NAME/manifest.yaml for your own recordings, then say what to run next."""
    if bool(from_csv) == bool(manifest):
        fail("give exactly one of --from-csv PATH (derive the manifest) or --manifest FILE (your own)")
    notes: list[str] = []
    try:
        if manifest:
            m = Manifest.load(manifest)
            if m.name != name:
                fail(f"{manifest} names dataset {m.name!r}, not {name!r}; the name must match the folder")
        else:
            label_list = [x.strip() for x in labels.split(",") if x.strip()] if labels else None
            m, notes = manifest_from_csv(
                name, from_csv, parse_units(units), rate, position, label_list, subject_wise, description
            )
        path = create_dataset(data_dir(), m)
    except (NewDatasetError, ManifestError) as e:
        fail(str(e))
    console.print(
        f"[green]created {path}[/]: {len(m.channels)} channels at {m.sampling_rate_hz:g} Hz, {len(m.labels)} labels"
    )
    groups = m.modality_groups()
    console.print("  modality groups: " + ", ".join(f"{g} ({len(ix)} ch)" for g, ix in groups.items()))
    chans = ", ".join(f"{c.name} ({c.modality}, {c.unit})" for c in m.channels)
    console.print("  channels: " + escape(chans), soft_wrap=True)
    console.print("  labels: " + escape(", ".join(m.labels)), soft_wrap=True)
    for note in notes:
        console.print(f"  {escape(note)}")
    src = " ".join(map(str, from_csv)) if from_csv else "PATH"
    console.print(
        f"next: [bold]har data ingest {src} --dataset {name}[/] · [bold]har config new {name}[/] · "
        f"[bold]har train -c configs/{name}.yaml[/] (docs/own-data.md)",
        soft_wrap=True,
    )


def new_config_cmd(
    name: str = typer.Argument(..., help="dataset under data/ (create it with `har data new`)"),
    out: Path | None = typer.Option(None, "--out", "-o", help="where to write (default configs/NAME.yaml)"),
    template: Path = typer.Option(TEMPLATE, "--template", help="config whose settings to start from"),
    force: bool = typer.Option(False, "--force", help="overwrite an existing file"),
) -> None:
    """Write a train config for dataset NAME: its model name, a subject-wise split of its subjects,
    no other dataset's settings; then check it as `har train` will."""
    from components.train_config import (  # lazy: torch (model registry)
        ConfigError,
        DatasetFacts,
        check_run_config,
        derive_config,
    )

    out = out or REPO_ROOT / "configs" / f"{name}.yaml"
    if out.exists() and not force:
        fail(f"{out} exists; pass --force to overwrite it")
    try:
        facts = DatasetFacts.load(data_dir() / name)
        cfg, notes = derive_config(load_run_config(template), name, facts)
    except ManifestError as e:
        fail(f"{e} (`har data new {name} ...` creates it)")
    except (ConfigError, FileNotFoundError) as e:
        fail(str(e))
    problems = check_run_config(cfg, data_dir())
    header = (
        f"# Run configuration of pipelines.train_pipeline for dataset {name}, derived from {template.name}\n"
        f"# by `har config new {name}`. Edit freely; `har train -c {out.name}` checks it before any step.\n"
    )
    atomic_write_text(out, header + yaml.safe_dump(cfg, sort_keys=False, width=100))
    console.print(f"[green]wrote {out}[/]")
    for note in notes:
        console.print(f"  {note}", soft_wrap=True)
    for p in problems:
        console.print(f"  [red]problem:[/] {p}", soft_wrap=True)
    if problems:
        raise typer.Exit(1)
    console.print(f"next: [bold]har train -c {out}[/]", soft_wrap=True)


def export_cmd(
    name: str = typer.Argument(..., help="dataset under data/"),
    out: Path = typer.Argument(..., help="folder for the CSV files (one per recording)"),
    subjects: str | None = typer.Option(None, help="comma-separated subject ids (default all)"),
) -> None:
    """Write a dataset's recordings as plain CSV files (t, channels, label; # subject header),
    e.g. to rehearse the own-data path with a public dataset (docs/own-data.md)."""
    keep = [s.strip() for s in subjects.split(",") if s.strip()] if subjects else None
    try:
        files = export_csv(data_dir() / name, out, keep)
    except (ManifestError, NewDatasetError) as e:
        fail(str(e))
    console.print(f"wrote {len(files)} CSV files to {out}")


def register(app: typer.Typer, data_app: typer.Typer) -> None:
    """Add ``data new`` and ``config new`` to the ``har`` app."""
    data_app.command("new")(new_dataset_cmd)
    data_app.command("export")(export_cmd)
    config_app.command("new")(new_config_cmd)
    app.add_typer(config_app, name="config")
