"""Step: the benchmark's result from every training record (efficiency measured here)."""

from __future__ import annotations

from typing import Annotated, Any

from zenml import get_step_context, step

from components.benchmark.fanout import assemble_records
from components.benchmark.protocol import BenchmarkSettings
from components.benchmark.report import render_markdown
from components.data.window_set import WindowSet


# never cached: it times the models and stamps the run (created_unix, duration_s)
@step(enable_cache=False)
def aggregate_benchmark_step(
    windows: WindowSet, records: list[dict[str, Any]], settings: dict[str, Any], started_unix: float
) -> tuple[Annotated[dict[str, Any], "benchmark_result"], Annotated[str, "benchmark_markdown"]]:
    """Per-model means, efficiency, settings and provenance, as ``har benchmark`` writes them.

    Args:
        windows: the run's windows.
        records: every training step's record.
        settings: :meth:`BenchmarkSettings.to_dict`.
        started_unix: when the caller started the run (for ``duration_s``).

    Returns:
        The result dict (the JSON file's content) and its Markdown report.
    """
    run_name = get_step_context().pipeline_run.name
    result = assemble_records(BenchmarkSettings.from_dict(settings), windows, records, started_unix, run_name)
    return result, render_markdown(result)
