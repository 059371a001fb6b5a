"""benchmark_pipeline: windows -> one training step per (model, fold, seed) -> result.

The caller (``har benchmark --engine pipeline``, :mod:`cli.benchmark`) plans the run and
passes every training as an entry of ``tasks``
(:func:`components.benchmark.fanout.pipeline_tasks`): the fan-out is static, fixed when
the pipeline is defined, one step per entry with the id ``train_<model>_fold<k>_s<seed>``.
Each training step's cache key covers the windows, the task, the model's code fingerprint
and the step's source, so a rerun trains nothing and a run with one more model trains only
that model's steps. A failed training fails its step (never cached); the other trainings
still run (``CONTINUE_ON_FAILURE``), and the result step then does not.
"""

from __future__ import annotations

from typing import Any

from zenml import pipeline
from zenml.enums import ExecutionMode

from steps.aggregate_benchmark import aggregate_benchmark_step
from steps.prepare_benchmark_windows import prepare_benchmark_windows_step
from steps.train_benchmark_task import train_benchmark_task_step, train_resources

TRAIN_STEP_CPUS = 2  # cores each training step asks for (ResourceSettings; --step-cpus)


@pipeline(name="benchmark_pipeline", enable_cache=True, execution_mode=ExecutionMode.CONTINUE_ON_FAILURE)
def benchmark_pipeline(
    settings: dict[str, Any],
    tasks: list[dict[str, Any]],
    windows_sha256: str,
    started_unix: float,
    step_cpus: int = TRAIN_STEP_CPUS,
) -> None:
    """The cross-subject benchmark, one training per step.

    Args:
        settings: :meth:`components.benchmark.protocol.BenchmarkSettings.to_dict`.
        tasks: one ``{"step_id", "task", "code_sha256"}`` per training.
        windows_sha256: the planned windows' sha256.
        started_unix: when the caller started (the result's ``duration_s``).
        step_cpus: CPU cores each training step requests.
    """
    windows = prepare_benchmark_windows_step(
        dataset=settings["dataset"],
        subjects=settings["subjects"],
        data_dir=settings["data_dir"],
        windows_sha256=windows_sha256,
    )
    records = [
        train_benchmark_task_step.with_options(settings={"resources": train_resources(t["task"]["device"], step_cpus)})(
            windows, task=t["task"], windows_sha256=windows_sha256, code_sha256=t["code_sha256"], id=t["step_id"]
        )
        for t in tasks
    ]
    aggregate_benchmark_step(windows, records, settings=settings, started_unix=started_unix)
