"""Step: train and test one (model, fold, seed) of the cross-subject benchmark."""

from __future__ import annotations

from typing import Annotated, Any

from zenml import get_step_context, step
from zenml.client import Client
from zenml.config import CachePolicy, ResourceSettings

from components.benchmark.fanout import checkpoint_path, track_record, train_task
from components.data.window_set import WindowSet
from components.training.checkpoint import TrainingCheckpoint


def train_resources(device: str, cpus: int) -> ResourceSettings:
    """What one training step asks the orchestrator for: ``cpus`` cores, and one GPU when the
    run's device is CUDA (the local orchestrator ignores both, with a warning)."""
    return ResourceSettings(cpu_count=cpus, gpu_count=1 if device.startswith("cuda") else None)


# The cache key is the benchmark ledger's: the windows (the artifact's content hash, which
# is their sha256, not the artifact id, so re-cut identical windows still hit), the task
# (model, hparams, fold subjects, seed, epochs, patience, trainer settings, device), the
# ledger's code fingerprint for this model, and this step's own source.
@step(cache_policy=CachePolicy(include_artifact_ids=False))
def train_benchmark_task_step(
    windows: WindowSet, task: dict[str, Any], windows_sha256: str, code_sha256: str
) -> Annotated[dict[str, Any], "benchmark_record"]:
    """One training of the benchmark; its record (JSON) as in the benchmark ledger.

    Args:
        windows: the run's windows (``prepare_benchmark_windows_step``).
        task: :func:`components.benchmark.fanout.pipeline_tasks`' ``task``.
        windows_sha256: the planned windows' sha256 (checked against the artifact).
        code_sha256: the planned code fingerprint (checked against the code that runs here).

    With an experiment tracker attached (``har benchmark`` attaches the stack's MLflow tracker,
    ``nested``), the record's metrics and the task's model, fold and seed go to this step's
    MLflow run, nested under the pipeline run's.

    The training checkpoints every epoch into the artifact store
    (``<artifact store>/benchmark-checkpoints/``), so when its pod or process is stopped, the
    same step in the next run (the rest of the run is cached) goes on from its last epoch;
    the checkpoint is removed once the training is done.

    Raises:
        RuntimeError: when the training failed: a failed step is never cached, so a rerun
            trains it again.
    """
    context = get_step_context()
    store = Client().active_stack.artifact_store
    where = checkpoint_path(store.path, task, windows_sha256, code_sha256)
    record = train_task(task, windows, windows_sha256, code_sha256, context.pipeline_run.name, (where, store))
    if "error" in record:
        raise RuntimeError(
            f"{task['model']} / {task['fold']['name']} / seed {task['seed']}: {record['error']}\n"
            f"{record.get('traceback', '')}"
        )
    if context.step_run.config.experiment_tracker:  # the stack's MLflow tracker opened this step's run
        track_record(record, task, windows_sha256)
    TrainingCheckpoint(where, fs=store).clear()
    return record
