"""The ``har`` command line.

    har data import dsads            # raw public dataset -> data/dsads (checksums verified)
    har data validate [DATASET]      # GX suite; failures -> data/quarantine/
    har data version [--push]        # dvc add data (-> data.dvc)
    har data status                  # data version, datasets, dvc status
    har data pipeline [-c CONFIG]    # the ZenML data_pipeline end to end

ZenML, MLflow, torch and the pipelines are imported inside the commands that need them:
``har --help`` stays quick and ``har edge ...`` torch-free (the pipelines import torch).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer
from rich.table import Table

from cli import dataset, edge, retrain
from cli.benchmark import benchmark
from cli.common import LOCAL_ORCHESTRATORS, busy_cpu_hint, console, fail, publish_data_version, run_pipeline
from cli.summary import print_train_run_summary
from components import __version__
from components.config import REPO_ROOT, artifacts_dir, data_dir, load_run_config
from components.data.manifest import Manifest
from components.data.recordings import read_index
from components.data.sources import ChecksumError, SourceNotFoundError
from components.data.validation import ValidationConfig, ValidationFailed, markdown_report, validate_dataset
from components.data.versioning import VersioningError, data_version, status, version_data
from components.io_utils import atomic_write_text
from components.lineage import LineageError, ZenmlVersion, ZenmlView, chain, default_registered_model

app = typer.Typer(
    help="cmd-har: wearable activity recognition from raw recordings to the edge.",
    no_args_is_help=True,
    add_completion=False,
)
data_app = typer.Typer(help="Import, validate, version and prepare datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")


def _csv(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


@data_app.command("import")
def data_import(
    name: str = typer.Argument(..., help="dsads | usc-had | basicmotions"),
    source: Path | None = typer.Option(
        None,
        "--source",
        help="raw folder (default: $HAR_DATASETS_DIR, ../shared/datasets, else download from the official source)",
    ),
    subjects: str | None = typer.Option(None, help="comma-separated subject ids to keep (default all)"),
    labels: str | None = typer.Option(None, help="comma-separated activity labels to keep (default all)"),
    jobs: int = typer.Option(2, help="worker processes"),
    version: bool = typer.Option(True, help="record the result as a data version (dvc add data)"),
) -> None:
    """Convert a public dataset into the canonical format under data/<name>/.

    The output is byte-identical across runs and machines with the same lock file, so
    importing the default dataset on a fresh clone reproduces the committed data.dvc.
    """
    from components.data.importers import import_dataset  # lazy: pandas + scipy

    try:
        summary = import_dataset(name, data_dir(), source, _csv(subjects), _csv(labels), jobs=jobs)
    except (ChecksumError, SourceNotFoundError, ValueError) as e:
        fail(str(e))
    for line in summary.lines():
        console.print(line)
    if version:
        _record_version()
    console.print("next: [bold]har data validate[/] (GX suite, quarantine) · [bold]har data status[/]")


@data_app.command("validate")
def data_validate(
    dataset: str | None = typer.Argument(None, help="dataset folder under data/ (default: every dataset)"),
    quarantine: bool = typer.Option(True, help="move failing recordings to data/quarantine/"),
    max_quarantine_share: float = typer.Option(0.2, help="fail without moving if more than this share fails"),
    jobs: int = typer.Option(2, help="worker processes"),
) -> None:
    """Validate recordings with the manifest's Great Expectations suite."""
    names = [dataset] if dataset else sorted(p.parent.name for p in data_dir().glob("*/manifest.yaml"))
    if not names:
        fail(f"no datasets under {data_dir()}; run `har data import dsads` first")
    cfg = ValidationConfig(max_quarantine_share=max_quarantine_share, jobs=jobs)
    failed_any = False
    for name in names:
        try:
            report = validate_dataset(data_dir() / name, cfg, quarantine=quarantine)
        except (ValidationFailed, FileNotFoundError, ValueError) as e:
            fail(str(e))
        out = artifacts_dir() / "validation" / name
        atomic_write_text(out / "report.json", json.dumps(report.to_dict(), indent=2, sort_keys=True))
        atomic_write_text(out / "report.md", markdown_report(name, [r for r in report.reports if not r.ok]))
        colour = "green" if not report.quarantined else "yellow"
        console.print(f"[{colour}]{name}: {report.n_passed}/{report.n_recordings} recordings passed[/]")
        for r in report.reports:
            if not r.ok:
                failed_any = True
                console.print(f"  quarantined {r.recording_id}: " + "; ".join(r.messages()))
        console.print(f"  reports: {out}/report.json, report.md")
    if failed_any and quarantine:
        console.print(f"quarantined files and their reports are in {data_dir() / 'quarantine'}")


@data_app.command("version")
def data_version_cmd(push: bool = typer.Option(False, help="also dvc push to the default remote")) -> None:
    """Record the current data/ as a new data version (dvc add data)."""
    _record_version(push)


def _record_version(push: bool = False) -> None:
    before = data_version()
    try:
        after = version_data(push=push)
    except VersioningError as e:
        fail(str(e))
    if before == after:
        console.print(f"data version unchanged: {after}")
    else:
        console.print(f"data version {before} -> [bold]{after}[/]")
        console.print("commit it: git add data.dvc && git commit -m 'data: new version'")
    if push:
        publish_data_version(after)


@data_app.command("status")
def data_status() -> None:
    """Show the data version, imported datasets and whether data/ matches data.dvc."""
    console.print(f"data version (data.dvc md5): [bold]{data_version() or 'none'}[/]")
    table = Table("dataset", "recordings", "subjects", "hours", "rate (Hz)", "channels", "subject-wise")
    for manifest_file in sorted(data_dir().glob("*/manifest.yaml")):
        m = Manifest.load(manifest_file)
        rows = read_index(manifest_file.parent)
        hours = sum(r["n_samples"] for r in rows) / m.sampling_rate_hz / 3600
        table.add_row(
            m.name,
            str(len(rows)),
            str(len({r["subject"] for r in rows})),
            f"{hours:.2f}",
            f"{m.sampling_rate_hz:g}",
            str(len(m.channels)),
            "yes" if m.subject_wise else "no",
        )
    console.print(table)
    try:
        console.print(status())
    except VersioningError as e:
        console.print(f"[yellow]{e}[/]")


@data_app.command("pipeline")
def data_pipeline_cmd(
    config: Path = typer.Option(REPO_ROOT / "configs" / "data.yaml", "-c", "--config", help="run config YAML"),
    no_cache: bool = typer.Option(False, "--no-cache", help="re-run every step"),
) -> None:
    """Run the ZenML data_pipeline (import, validate, version, window, split) and summarise it."""
    from pipelines.data_pipeline import data_pipeline  # lazy: ZenML + torch

    run = run_pipeline(data_pipeline, config, no_cache)
    print_data_run_summary(run)


def print_data_run_summary(run) -> None:
    """Print what a data_pipeline run produced (from its artifacts and metadata)."""
    from zenml.client import Client

    run = Client().get_pipeline_run(run.id)
    steps = run.steps
    report = steps["validate_dataset_step"].outputs["validation_report"][0].load()
    version = steps["validate_dataset_step"].outputs["validated_data_version"][0].load()
    split_meta = steps["split_windows_step"].outputs["split"][0].run_metadata
    windows_meta = steps["window_dataset_step"].outputs["windows"][0].run_metadata
    table = Table(title=f"data_pipeline run {run.name} ({run.status.value})", show_header=False)
    table.add_row("dataset", dataset_line(report["dataset"]))
    table.add_row(
        "validation",
        f"{report['n_passed']}/{report['n_recordings']} passed, {len(report['quarantined'])} quarantined",
    )
    table.add_row("data version", f"{version} (data.dvc)")
    table.add_row("windows", f"{windows_meta.get('windows')} windows {windows_meta.get('shape')}")
    for part in ("train", "val", "test"):
        table.add_row(
            f"{part} split",
            f"subjects {split_meta.get(part + '_ids')}: {split_meta.get(part + '_windows')} windows",
        )
    cached = [name for name, s in steps.items() if s.status.value == "cached"]
    table.add_row("cached steps", ", ".join(cached) or "none")
    console.print(table)
    console.print(
        "next: [bold]har data status[/] · [bold]zenml login --local[/] (dashboard) · "
        "[bold]dvc push[/] (to the default remote in .cache/dvc-remote)"
    )


def dataset_line(dataset: str) -> str:
    """``dsads: 152 recordings, 8 subjects, 12.67 h`` from the dataset's index."""
    m = Manifest.load(data_dir() / dataset)
    rows = read_index(data_dir() / dataset)
    hours = sum(r["n_samples"] for r in rows) / m.sampling_rate_hz / 3600
    return f"{dataset}: {len(rows)} recordings, {len({r['subject'] for r in rows})} subjects, {hours:.2f} h"


@app.command("train")
def train_cmd(
    config: Path = typer.Option(REPO_ROOT / "configs" / "train.yaml", "-c", "--config", help="run config YAML"),
    no_cache: bool = typer.Option(False, "--no-cache", help="re-run every step"),
) -> None:
    """Run train_pipeline: data -> model -> evaluation -> export -> gated promotion -> BentoML model."""
    from components.train_config import ConfigError, check_run_config  # lazy: torch (model registry)
    from pipelines.train_pipeline import train_pipeline  # lazy: ZenML + torch

    if not config.exists():
        fail(f"config {config} not found")
    try:
        run_config = load_run_config(config)
        problems = check_run_config(run_config, data_dir())
        if problems:
            raise ConfigError(problems)
        _note_busy_cpu(run_config)
        run = run_pipeline(train_pipeline, config, no_cache)
    except ConfigError as e:
        fail(f"{config}: {e}", soft_wrap=True)
    print_train_run_summary(run)


def _note_busy_cpu(run_config: dict) -> None:
    """Say so before a training on this machine when other processes keep its CPU busy."""
    from zenml.client import Client

    from components.config import build
    from components.training.trainer import TrainConfig

    if Client().active_stack.orchestrator.flavor not in LOCAL_ORCHESTRATORS:
        return  # the steps train elsewhere
    trainer = build(TrainConfig, (run_config.get("parameters") or {}).get("trainer"))
    hint = busy_cpu_hint(trainer.time_budget_min, trainer.num_threads)
    if hint:
        console.print(f"[yellow]note:[/] {hint}")


@app.command("lineage")
def lineage_cmd(
    ref: str | None = typer.Argument(
        None,
        help="registered version number, alias (champion, challenger, ...) "
        "or BentoML model tag; default: the current champion",
    ),
    registered_model: str | None = typer.Option(
        None,
        "--model",
        "-m",
        help="MLflow registered model (default: the one a BentoML tag REF names, else the only one with a champion)",
    ),
) -> None:
    """Print the lineage chain: raw checksums -> data version -> runs -> metrics -> versions -> deployments,
    and whether ZenML's model stages agree with the MLflow aliases."""
    from rich.markup import escape

    try:
        registered_model = registered_model or default_registered_model(ref)
        links = chain(registered_model, ref, zenml=zenml_model_view)
    except LineageError as e:
        fail(str(e))
    console.print(f"[bold]lineage of {registered_model} {ref or 'champion'}[/] (raw bytes -> deployment)")
    for i, link in enumerate(links, 1):  # details may hold brackets (error messages): not markup
        console.print(f"{i}. [bold]{escape(link.stage)}[/]: {escape(link.detail)}", soft_wrap=True)
        console.print(f"   [dim]inspect:[/] {escape(link.inspect)}", soft_wrap=True)


def zenml_model_view(model: str, version: str | None):
    """What ZenML's model control plane says about ``model`` (its ``version``, and the versions
    in production and staging with the MLflow version their metadata names), for ``har lineage``."""
    try:
        from zenml.client import Client
        from zenml.enums import ModelStages

        client = Client()
        client.get_model(model)
    except KeyError:
        return ZenmlView(model, error=f"no ZenML model named {model!r} in this ZenML store")
    except Exception as e:  # noqa: BLE001 - no ZenML repository/server: lineage still prints
        return ZenmlView(model, error=f"ZenML could not be asked ({type(e).__name__}: {e})")

    def get(ref: str) -> ZenmlVersion | None:
        try:
            mv = client.get_model_version(model, ref)
        except KeyError:
            return None
        meta = mv.run_metadata
        return ZenmlVersion(
            str(mv.name),
            mv.stage,
            str(meta["registered_model"]) if "registered_model" in meta else None,
            str(meta["registered_version"]) if "registered_version" in meta else None,
        )

    return ZenmlView(
        model,
        get(version) if version else None,
        get(ModelStages.PRODUCTION.value),
        get(ModelStages.STAGING.value),
    )


app.command("benchmark")(benchmark)  # the cross-subject benchmark: process pool or ZenML pipeline
app.add_typer(edge.edge_app, name="edge")  # `har edge ...` (torch-free)
retrain.register(app, data_app)  # `har data ingest`, `har retrain`, `har schedule`
dataset.register(app, data_app)  # `har data new`, `har config new`


@app.command("version")
def version() -> None:
    """Print the cmd-har version and where local state lives."""
    console.print(f"cmd-har {__version__}")
    console.print(f"repo {REPO_ROOT} · data {data_dir()} · ZenML config {os.environ.get('ZENML_CONFIG_PATH', '~')}")
