"""What every ``har`` command module shares: one console, one way to fail, one way to run
a ZenML pipeline from its YAML config. Light imports only (``har edge`` stays torch-free)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console

console = Console()


def fail(message: str, code: int = 1, soft_wrap: bool = False) -> NoReturn:
    """Print ``error: message`` and exit with ``code``."""
    console.print(f"[bold red]error:[/] {message}", soft_wrap=soft_wrap)
    raise typer.Exit(code)


def run_pipeline(pipeline: Any, config: Path, no_cache: bool = False) -> Any:
    """Run a ZenML ``pipeline`` configured by ``config`` (YAML); a missing file is an error."""
    if not config.exists():
        fail(f"config {config} not found")
    options: dict[str, Any] = {"config_path": str(config)}
    if no_cache:
        options["enable_cache"] = False
    return pipeline.with_options(**options)()
