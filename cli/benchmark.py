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

The recordings: on a stack whose orchestrator runs steps in containers (``local_docker``,
Kubernetes, Kubeflow) a step has no ``data/``, so the run config (``--run-config``, default
``configs/cluster.yaml``) decides ``data_version_step``'s parameters (``pull: true``: the
code's ``data.dvc`` version) and its step image; this command plans from that same version,
fetched by :func:`~components.data.versioning.materialize`. On a local stack the steps run
here and ``data_version_step`` imports and versions ``data/`` as train_pipeline does.
"""

from __future__ import annotations

import inspect
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from components.benchmark.command import PROCESSES, Engine, make_benchmark
from components.benchmark.protocol import STEP_CPUS, BenchmarkSettings
from components.config import REPO_ROOT, load_run_config

PIPELINE_NAME = "benchmark_pipeline"  # also the MLflow experiment of its runs (ZenML's tracker default)
TRAIN_STEP = "train_benchmark_task_step"
RESULT_STEP = "aggregate_benchmark_step"
CLUSTER_CONFIG = REPO_ROOT / "configs" / "cluster.yaml"


# the parameters of data_version_step a run config may set for the benchmark (the dataset is
# the benchmark's; importing other subjects or re-importing would change the planned windows)
DATA_VERSION_PARAMETERS = ("pull", "latest")


@dataclass(frozen=True)
class StackUse:
    """How the run uses the active stack.

    Attributes:
        containerized: the orchestrator runs each step in a container (no ``data/`` there).
        run_config: the run config the step image and data_version_step parameters come from.
        docker: its ``settings.docker`` (applied when ``containerized``).
        data_version_parameters: data_version_step's ``pull`` / ``latest`` from it.
        experiment_tracker: the stack's MLflow experiment tracker (None: none, or not MLflow).
    """

    containerized: bool
    run_config: Path | None
    docker: dict[str, Any] | None
    data_version_parameters: dict[str, Any]
    experiment_tracker: str | None


def data_version_parameters(config: dict[str, Any]) -> dict[str, Any]:
    """``steps.data_version_step.parameters`` of a run config, restricted to
    :data:`DATA_VERSION_PARAMETERS` (refusing the others)."""
    params = (((config.get("steps") or {}).get("data_version_step") or {}).get("parameters")) or {}
    other = sorted(set(params) - set(DATA_VERSION_PARAMETERS))
    if other:
        raise ValueError(
            f"the run config sets data_version_step parameters {other}: the benchmark takes only "
            f"{', '.join(DATA_VERSION_PARAMETERS)} from it (the dataset and subjects are its options)"
        )
    return dict(params)


def stack_use(settings: BenchmarkSettings, log: Callable[[str], None]) -> StackUse:
    """Read the active stack and the run config; point ``$HAR_DATA_DIR`` at ``--data-dir``
    (a local stack runs the steps in this process)."""
    from zenml.client import Client
    from zenml.orchestrators import ContainerizedOrchestrator

    stack = Client().active_stack
    containerized = isinstance(stack.orchestrator, ContainerizedOrchestrator)
    if containerized and settings.data_dir:
        raise ValueError(
            f"--data-dir names a folder on this machine, but {stack.orchestrator.flavor} runs the steps in "
            "containers, which read the data version of the code's data.dvc: drop --data-dir"
        )
    if settings.data_dir:
        os.environ["HAR_DATA_DIR"] = str(Path(settings.data_dir).resolve())
    path = settings.run_config or (CLUSTER_CONFIG if containerized else None)
    config = load_run_config(path) if path else {}
    docker = (config.get("settings") or {}).get("docker")
    if containerized:
        full = Path(path).resolve()
        where = full.relative_to(REPO_ROOT) if full.is_relative_to(REPO_ROOT) else full
        log(f"{stack.orchestrator.flavor} runs each step in a container: step image from {where} (settings.docker)")
    tracker = stack.experiment_tracker
    name = None
    if tracker is not None and tracker.flavor != "mlflow":
        log(f"experiment tracker {tracker.name} is {tracker.flavor}, not mlflow: the trainings are not tracked")
    elif tracker is not None:
        name = tracker.name
    return StackUse(containerized, path, docker, data_version_parameters(config), name)


def _plan(settings: BenchmarkSettings, use: StackUse, log: Callable[[str], None]) -> tuple[Any, list[dict[str, Any]]]:
    """The run's plan and its training steps (``pipeline_tasks``), from the data the steps
    will read: the pulled data version, or ``data/`` as it is (which data_version_step versions)."""
    from components.benchmark.fanout import check_pipeline_settings, pipeline_tasks
    from components.benchmark.plan import plan_run
    from components.data.versioning import dvc_repo, materialize
    from steps.data_version import pulled_version

    check_pipeline_settings(settings)
    params = use.data_version_parameters
    if params.get("pull"):
        version, source = pulled_version(settings.dataset, bool(params.get("latest")))
        log(f"data version {version} ({source}); the steps fetch it by version")
        with materialize(version, settings.dataset) as folder:
            plan = plan_run(replace(settings, data_dir=folder.parent), log=lambda s: None)
    else:
        if not (dvc_repo() / ".dvc").is_dir():
            raise ValueError(
                f"benchmark_pipeline reads its recordings by data version (data_version_step runs `dvc add data` "
                f"in {dvc_repo()}), and {dvc_repo()} is not a DVC project: `dvc init` there "
                "(`dvc init --no-scm` outside Git), or use --engine processes"
            )
        plan = plan_run(settings, log=lambda s: None)
    return plan, pipeline_tasks(plan, threads=settings.step_cpus or STEP_CPUS)


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
    use = stack_use(settings, log)
    plan, tasks = _plan(settings, use, log)
    log(
        f"benchmark_pipeline: {len(tasks)} training steps ({len(plan.names)} models x {len(plan.folds)} folds x "
        f"{settings.seeds} seeds), device {plan.device}, on the active ZenML stack"
    )
    pipe = benchmark_pipeline
    if use.containerized:
        pipe = pipe.with_options(settings={"docker": use.docker} if use.docker else {})
    if use.experiment_tracker:
        run_name = f"{PIPELINE_NAME}-{datetime.now(timezone.utc):%Y_%m_%d-%H_%M_%S_%f}"
        open_tracking_run(run_name, settings, plan, len(tasks))
        pipe = pipe.with_options(run_name=run_name)
        log(
            f"each training logs to MLflow ({use.experiment_tracker}): experiment {PIPELINE_NAME}, one run per "
            f"training step nested under run {run_name}"
        )
    try:
        run = pipe(
            settings=settings.to_dict(),
            tasks=tasks,
            windows_sha256=plan.windows_sha256,
            started_unix=t0,
            data_version_parameters=use.data_version_parameters,
            experiment_tracker=use.experiment_tracker,
        )
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


def open_tracking_run(run_name: str, settings: BenchmarkSettings, plan: Any, n_tasks: int) -> str:
    """Make the MLflow run that the training steps' runs nest under (the pipeline run's, named
    after it) in the stack's tracker, with the run's settings as params; returns its id.

    ZenML's MLflow tracker looks that run up by name when a step starts and creates it when
    missing, so training pods that start at the same moment would each create one; made here
    first, every step finds it.
    """
    import mlflow
    import zenml
    from zenml.client import Client
    from zenml.integrations.mlflow.mlflow_utils import ZENML_TAG_KEY

    Client().active_stack.experiment_tracker.configure_mlflow()
    mlflow.set_experiment(PIPELINE_NAME)
    with mlflow.start_run(run_name=run_name, tags={ZENML_TAG_KEY: zenml.__version__}) as run:
        mlflow.log_params(
            {
                "dataset": settings.dataset,
                "protocol": settings.protocol,
                "models": ",".join(plan.names),
                "folds": ",".join(f.name for f in plan.folds),
                "seeds": settings.seeds,
                "epochs": settings.epochs,
                "patience": settings.patience,
                "device": plan.device,
                "windows_sha256": plan.windows_sha256,
                "trainings": n_tasks,
            }
        )
    return run.info.run_id


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
    runs: dict[Any, tuple[str, str]] = {}  # pipeline run id -> (pipeline name, run name)
    out: dict[str, str | None] = {}
    for t in tasks:
        want = {"task": t["task"], "windows_sha256": t["windows_sha256"], "code_sha256": t["code_sha256"]}
        out[t["step_id"]] = None
        for status in ("completed", "cached"):
            for s in client.list_run_steps(name=t["step_id"], status=status, hydrate=True, size=50):
                if s.pipeline_run_id not in runs:
                    r = client.get_pipeline_run(s.pipeline_run_id)
                    runs[s.pipeline_run_id] = (r.pipeline.name if r.pipeline else "", r.name)
                pipeline, run_name = runs[s.pipeline_run_id]
                same = {k: s.config.parameters.get(k) for k in want} == want and s.source_code == source
                if same and pipeline == PIPELINE_NAME:
                    out[t["step_id"]] = run_name
                    break
            if out[t["step_id"]]:
                break
    return out


def partial_trainings(tasks: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Step id -> the progress of its training's checkpoint in the active artifact store, for
    the trainings that were stopped part way (the next run goes on from there)."""
    from zenml.client import Client

    from components.benchmark.fanout import checkpoint_path
    from components.training.checkpoint import TrainingCheckpoint

    store = Client().active_stack.artifact_store
    out = {}
    for t in tasks:
        path = checkpoint_path(store.path, t["task"], t["windows_sha256"], t["code_sha256"])
        progress = TrainingCheckpoint(path, fs=store).progress()
        if progress is not None:
            out[t["step_id"]] = progress
    return out


def print_pipeline_status(settings: BenchmarkSettings, log: Callable[[str], None]) -> None:
    """``har benchmark --engine pipeline --status``: per planned training, cached, part-trained
    (a checkpoint in the artifact store: epochs done) or missing."""
    plan, tasks = _plan(settings, stack_use(settings, log), log)
    tasks = [{**t, "windows_sha256": plan.windows_sha256} for t in tasks]
    found = cached_trainings(tasks)
    partial = partial_trainings([t for t in tasks if not found[t["step_id"]]])
    log(f"benchmark_pipeline {settings.dataset}/{settings.protocol}, windows sha256 {plan.windows_sha256[:12]}:")
    for t in tasks:
        run, part = found[t["step_id"]], partial.get(t["step_id"])
        if run:
            state = f"cached (run {run})"
        elif part:
            state = f"part-trained: {part['epochs_done']} of {part['planned_epochs']} epochs (goes on from there)"
        else:
            state = "missing"
        log(f"  {t['step_id']:40s} {state}")
    n = sum(v is not None for v in found.values())
    log(f"{n} of {len(tasks)} trainings cached ({len(partial)} part-trained); a run now trains {len(tasks) - n}")


PIPELINE = Engine(
    run=run_pipeline_engine,
    status=print_pipeline_status,
    help="benchmark_pipeline on the active ZenML stack, one step per (model, fold, seed), ZenML's cache as the "
    "ledger; the local orchestrator runs its steps one at a time (use processes with --jobs on a laptop)",
)

benchmark = make_benchmark({"processes": PROCESSES, "pipeline": PIPELINE}, default="processes")
