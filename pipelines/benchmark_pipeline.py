"""benchmark_pipeline: data version -> windows -> one training step per (model, fold, seed) -> result.

The caller (``har benchmark --engine pipeline``, :mod:`cli.benchmark`) plans the run and
passes every training as an entry of ``tasks``
(:func:`components.benchmark.fanout.pipeline_tasks`): the fan-out is static, fixed when
the pipeline is defined, one step per entry with the id ``train_<model>_fold<k>_s<seed>``.
Each training step's cache key covers the windows, the task, the model's code fingerprint
and the step's source, so a rerun trains nothing and a run with one more model trains only
that model's steps. A failed training fails its step (never cached); the other trainings
still run (``CONTINUE_ON_FAILURE``), and the result step then does not.

The recordings come as train_pipeline's do: ``data_version_step`` records the data version
(on a laptop it imports and versions ``data/`` as in train_pipeline; with ``pull`` it takes
the code's ``data.dvc`` version as it is, which is what a pod must do) and the windows step
fetches the recordings by that version, so a step needs nothing but the code.
"""

from __future__ import annotations

from typing import Any

from zenml import pipeline
from zenml.enums import ExecutionMode

from steps.aggregate_benchmark import aggregate_benchmark_step
from steps.data_version import data_version_step
from steps.prepare_benchmark_windows import prepare_benchmark_windows_step
from steps.train_benchmark_task import train_benchmark_task_step, train_resources


@pipeline(name="benchmark_pipeline", enable_cache=True, execution_mode=ExecutionMode.CONTINUE_ON_FAILURE)
def benchmark_pipeline(
    settings: dict[str, Any],
    tasks: list[dict[str, Any]],
    windows_sha256: str,
    started_unix: float,
    data_version_parameters: dict[str, Any] | None = None,
    experiment_tracker: str | None = None,
) -> None:
    """The cross-subject benchmark, one training per step.

    Args:
        settings: :meth:`components.benchmark.protocol.BenchmarkSettings.to_dict`.
        tasks: one ``{"step_id", "task", "code_sha256"}`` per training; a step requests the
            task's ``threads`` CPU cores.
        windows_sha256: the planned windows' sha256.
        started_unix: when the caller started (the result's ``duration_s``).
        data_version_parameters: ``data_version_step``'s parameters other than the dataset
            (``pull``, ``latest``: a run config's ``steps.data_version_step.parameters``).
        experiment_tracker: the stack's MLflow experiment tracker: each training step then logs
            to its own MLflow run, nested under one run per pipeline run (None: no tracking).
    """
    data_version = data_version_step(dataset=settings["dataset"], **(data_version_parameters or {}))
    windows = prepare_benchmark_windows_step(
        dataset=settings["dataset"],
        subjects=settings["subjects"],
        data_version=data_version,
        windows_sha256=windows_sha256,
    )
    tracker = {"experiment_tracker": experiment_tracker} if experiment_tracker else {}
    nested = {"experiment_tracker.mlflow": {"nested": True}} if experiment_tracker else {}
    records = [
        train_benchmark_task_step.with_options(
            settings={"resources": train_resources(t["task"]["device"], t["task"]["threads"]), **nested}, **tracker
        )(windows, task=t["task"], windows_sha256=windows_sha256, code_sha256=t["code_sha256"], id=t["step_id"])
        for t in tasks
    ]
    aggregate_benchmark_step(windows, records, settings=settings, started_unix=started_unix)
