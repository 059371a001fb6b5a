"""``har benchmark``: the cross-subject benchmark, in a process pool or as a ZenML pipeline.

``--engine processes`` (the default) is :func:`components.benchmark.harness.run_benchmark`;
``--engine pipeline`` runs ``pipelines/benchmark_pipeline.py`` on the active ZenML stack and
writes the same ``<out>/<dataset>-<protocol>[-smoke].json/.md`` from its result step.

Why ``processes`` stays the default: ZenML 0.98's local orchestrator runs a static pipeline's
steps one after another (``LocalOrchestrator.submit_pipeline`` loops over the steps; its
docstring: "does not allow for concurrent execution of steps"), so on a laptop the pipeline
trains one task at a time where ``--jobs 2`` trains two. The pipeline engine is for a
cluster stack (one pod per training, ``ResourceSettings`` per step) and for ZenML's cache
as the ledger.
"""

from __future__ import annotations

import inspect
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from components.benchmark.command import PROCESSES, Engine, make_benchmark
from components.benchmark.protocol import BenchmarkSettings
from components.config import REPO_ROOT, load_run_config

TRAIN_STEP = "train_benchmark_task_step"
RESULT_STEP = "aggregate_benchmark_step"
CLUSTER_CONFIG = REPO_ROOT / "configs" / "cluster.yaml"


def _plan(settings: BenchmarkSettings, log: Callable[[str], None]) -> tuple[Any, list[dict[str, Any]]]:
    """The run's plan and its training steps (``pipeline_tasks``)."""
    from components.benchmark.fanout import check_pipeline_settings, pipeline_tasks
    from components.benchmark.plan import plan_run

    check_pipeline_settings(settings)
    plan = plan_run(settings, log=lambda s: None)
    return plan, pipeline_tasks(plan)


def run_pipeline_engine(
    settings: BenchmarkSettings, progress: bool, log: Callable[[str], None]
) -> tuple[dict[str, Any], Path]:
    """Run benchmark_pipeline on the active stack; write its result as run_benchmark does."""
    from zenml.client import Client

    from components.benchmark.report import write_result
    from pipelines.benchmark_pipeline import benchmark_pipeline

    t0 = time.time()
    if settings.jobs != 1:
        log(f"--jobs {settings.jobs} is ignored by the pipeline engine (the orchestrator schedules the steps)")
    plan, tasks = _plan(settings, log)
    log(
        f"benchmark_pipeline: {len(tasks)} training steps ({len(plan.names)} models x {len(plan.folds)} folds x "
        f"{settings.seeds} seeds), device {plan.device}, on the active ZenML stack"
    )
    pipe = benchmark_pipeline
    if not Client().active_stack.orchestrator.config.is_local:
        # step pods run the image configs/cluster.yaml describes (the train pipeline's)
        docker = load_run_config(CLUSTER_CONFIG).get("settings", {}).get("docker")
        pipe = benchmark_pipeline.with_options(settings={"docker": docker})
        log(f"remote orchestrator: step image settings from {CLUSTER_CONFIG.relative_to(REPO_ROOT)} (settings.docker)")
    try:
        run = pipe(settings=settings.to_dict(), tasks=tasks, windows_sha256=plan.windows_sha256, started_unix=t0)
    except RuntimeError as exc:  # the local orchestrator raises when a step failed
        raise ValueError(f"benchmark_pipeline failed ({exc}); {_rerun_hint()}") from exc
    run = Client().get_pipeline_run(run.id)
    if run.status.value != "completed" or RESULT_STEP not in run.steps:
        failed = sorted(n for n, s in run.steps.items() if s.status.value == "failed")
        raise ValueError(
            f"benchmark_pipeline run {run.name} is {run.status.value}"
            + (f"; failed steps: {', '.join(failed)}" if failed else "")
            + f"; {_rerun_hint()}"
        )
    trains = {n: s.status.value for n, s in run.steps.items() if n.startswith("train_")}
    cached = sum(v == "cached" for v in trains.values())
    log(f"run {run.name}: {len(trains) - cached} trainings ran, {cached} cached")
    result = run.steps[RESULT_STEP].outputs["benchmark_result"][0].load()
    result["command"] = " ".join(sys.argv)
    return result, write_result(result, plan.out_dir)


def _rerun_hint() -> str:
    return "finished trainings are cached steps: the same command again trains only the failed or missing ones"


def cached_trainings(tasks: list[dict[str, Any]]) -> dict[str, str | None]:
    """Step id -> name of a benchmark_pipeline run whose step of that id succeeded with the
    same parameters (task, windows sha256, code fingerprint) and the same step source as
    this checkout's, in the active ZenML store; None where there is none.

    These are the inputs of the step's cache key that the caller decides. Not checked: the
    artifact store (ZenML caches per artifact store, so a run on another stack does not
    count there) and cache settings changed by hand; a step counted here that ZenML does not
    reuse is trained again, never reported wrong in the result.
    """
    from zenml.client import Client

    from steps.train_benchmark_task import train_benchmark_task_step

    client = Client()
    source = inspect.getsource(train_benchmark_task_step.entrypoint)
    pipeline_of: dict[Any, str] = {}
    out: dict[str, str | None] = {}
    for t in tasks:
        want = {"task": t["task"], "windows_sha256": t["windows_sha256"], "code_sha256": t["code_sha256"]}
        out[t["step_id"]] = None
        for status in ("completed", "cached"):
            for s in client.list_run_steps(name=t["step_id"], status=status, hydrate=True, size=50):
                if s.pipeline_run_id not in pipeline_of:
                    r = client.get_pipeline_run(s.pipeline_run_id)
                    pipeline_of[s.pipeline_run_id] = r.pipeline.name if r.pipeline else ""
                    pipeline_of[(s.pipeline_run_id, "name")] = r.name
                same = {k: s.config.parameters.get(k) for k in want} == want and s.source_code == source
                if same and pipeline_of[s.pipeline_run_id] == "benchmark_pipeline":
                    out[t["step_id"]] = pipeline_of[(s.pipeline_run_id, "name")]
                    break
            if out[t["step_id"]]:
                break
    return out


def print_pipeline_status(settings: BenchmarkSettings, log: Callable[[str], None]) -> None:
    """``har benchmark --engine pipeline --status``: per planned training, cached or missing."""
    plan, tasks = _plan(settings, log)
    tasks = [{**t, "windows_sha256": plan.windows_sha256} for t in tasks]
    found = cached_trainings(tasks)
    log(f"benchmark_pipeline {settings.dataset}/{settings.protocol}, windows sha256 {plan.windows_sha256[:12]}:")
    for t in tasks:
        run = found[t["step_id"]]
        log(f"  {t['step_id']:40s} " + (f"cached (run {run})" if run else "missing"))
    n = sum(v is not None for v in found.values())
    log(f"{n} of {len(tasks)} trainings cached; a run now trains {len(tasks) - n}")


PIPELINE = Engine(
    run=run_pipeline_engine,
    status=print_pipeline_status,
    help="benchmark_pipeline on the active ZenML stack, one step per (model, fold, seed), ZenML's cache as the "
    "ledger; the local orchestrator runs its steps one at a time (use processes with --jobs on a laptop)",
)

benchmark = make_benchmark({"processes": PROCESSES, "pipeline": PIPELINE}, default="processes")
