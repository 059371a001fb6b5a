"""Cross-subject benchmark of CMD-HAR and the baselines (``har benchmark``).

* :mod:`components.benchmark.protocol` - the protocol's numbers (their one source);
* :mod:`components.benchmark.harness` - folds x seeds x models in parallel processes,
  aggregated JSON + Markdown results: :mod:`~components.benchmark.protocol` (settings),
  :mod:`~components.benchmark.plan`, :mod:`~components.benchmark.execute`,
  :mod:`~components.benchmark.assemble`, :mod:`~components.benchmark.report`;
* :mod:`components.benchmark.efficiency` - parameters, MACs, ONNX size, batch-1 latency;
* :mod:`components.benchmark.command` - the typer command (also ``python -m
  components.benchmark.command``).

Only torch / numpy / onnx / onnxruntime and the project's data layer are imported: no
ZenML, MLflow, DVC or Great Expectations, so this runs on a bare GPU box.
"""

from components.benchmark.harness import run_benchmark
from components.benchmark.protocol import PUBLISHED_REFERENCE, BenchmarkSettings

__all__ = ["PUBLISHED_REFERENCE", "BenchmarkSettings", "run_benchmark"]
