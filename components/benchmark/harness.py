"""Cross-subject benchmark harness: folds x seeds x models -> JSON + Markdown results.

The protocol (the WHAR Arena one: windows, subject-wise splits, trainer, epochs, patience,
seeds, validation subjects) is :mod:`components.benchmark.protocol`, its single source.

:func:`run_benchmark` is four steps, one module each:

1. plan (:mod:`components.benchmark.plan`) - check the settings, cut the windows, resolve
   folds, device and executor, and list the tasks the ledger does not already hold;
2. execute (:mod:`components.benchmark.execute`) - train and test every task in ``jobs``
   processes (threads on CUDA); ``time_budget_s`` stops starting tasks once it is spent (and
   cuts running trainings at 1.25x of it); tasks not run are listed under ``skipped`` and make
   the run incomplete. A failing task is recorded (``failures`` in the JSON, printed, non-zero
   exit of the command), never dropped silently. Efficiency (parameters, MACs, ONNX size,
   batch-1 ONNX Runtime and torch latency) is measured in the main process after training, so
   the timings are not disturbed by the training workers;
3. assemble (:mod:`components.benchmark.assemble`) - per-model means, settings, provenance,
   targets;
4. write (:mod:`components.benchmark.report`) - ``<out>/<dataset>-<protocol>.json`` and
   ``.md`` (atomic writes). Runs that deviate from the full protocol (fewer epochs, other
   patience, a subset of subjects or folds, overridden test/validation subjects) are marked
   ``"complete_protocol": false`` and written to ``<dataset>-<protocol>-smoke.json`` / ``.md``.

Nothing here imports ZenML, MLflow, DVC or Great Expectations.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from components.benchmark.assemble import assemble
from components.benchmark.execute import execute, measure_efficiency
from components.benchmark.plan import plan_run
from components.benchmark.protocol import BenchmarkSettings
from components.benchmark.report import write_result


def run_benchmark(
    settings: BenchmarkSettings,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> tuple[dict[str, Any], Path]:
    """Run the benchmark; returns ``(result dict, path of the JSON written)``."""
    t_start = time.time()
    plan = plan_run(settings, log)
    outcome = execute(plan, settings, progress=progress, log=log)
    effs = measure_efficiency(plan, settings)
    result = assemble(settings, plan, outcome, effs, t_start)
    return result, write_result(result, plan.out_dir)
