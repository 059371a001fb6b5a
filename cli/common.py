"""What every ``har`` command module shares: one console, one way to fail, one way to run
a ZenML pipeline from its YAML config. Light imports only (``har edge`` stays torch-free)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console

from components.data.versioning import PUBLISHED_ARTIFACT, published_metadata

console = Console()


def fail(message: str, code: int = 1, soft_wrap: bool = False) -> NoReturn:
    """Print ``error: message`` and exit with ``code``."""
    console.print(f"[bold red]error:[/] {message}", soft_wrap=soft_wrap)
    raise typer.Exit(code)


LOCAL_ORCHESTRATORS = ("local", "local_docker")  # flavors that train on this machine's CPU


def busy_cpu_hint(
    time_budget_min: float | None, num_threads: int | None, load: float | None = None, cores: int | None = None
) -> str | None:
    """A note when other processes already keep this machine's CPU busy (1-minute load average
    at least half the cores, and at least 1): training will be slower and a time budget will
    fit fewer epochs. None on an idle machine or where the load cannot be read."""
    try:
        load = os.getloadavg()[0] if load is None else load
    except OSError:  # not available on this platform
        return None
    cores = cores or os.cpu_count() or 1
    if load < max(1.0, cores / 2):
        return None
    return (
        f"the CPU is already busy (load average {load:.1f} on {cores} cores): training will be slower"
        + (f", and its {time_budget_min:g}-minute time budget will fit fewer epochs" if time_budget_min else "")
        + ". Run it when the CPU is free"
        + ("" if num_threads else ", or set parameters.trainer.num_threads to the cores that are free")
        + "."
    )


def run_pipeline(pipeline: Any, config: Path, no_cache: bool = False) -> Any:
    """Run a ZenML ``pipeline`` configured by ``config`` (YAML); a missing file is an error."""
    if not config.exists():
        fail(f"config {config} not found")
    options: dict[str, Any] = {"config_path": str(config)}
    if no_cache:
        options["enable_cache"] = False
    return pipeline.with_options(**options)()


def publish_data_version(version: str) -> None:
    """Record the pushed data ``version`` as a new version of the ZenML artifact
    ``har_data_version`` in the active stack, where a scheduled run looks for the newest
    data (``data_version_step`` with ``latest: true``)."""
    from zenml import save_artifact
    from zenml.client import Client

    meta = published_metadata(version)
    try:
        newest = Client().get_artifact_version(PUBLISHED_ARTIFACT)
    except KeyError:
        newest = None
    if newest is not None and newest.run_metadata.get("md5") == version:
        console.print(f"{PUBLISHED_ARTIFACT} v{newest.version} already names data version {version}")
        return
    try:
        art = save_artifact(version, name=PUBLISHED_ARTIFACT, user_metadata=meta, include_visualizations=False)
    except Exception as e:  # noqa: BLE001 - the data is pushed; say what is missing and how to redo it
        fail(f"data version {version} was pushed but not published to ZenML ({e}); rerun `har data version --push`")
    console.print(f"published {PUBLISHED_ARTIFACT} v{art.version} = {version} (DVC remote {meta['dvc_remote_url']})")
