"""Cross-subject benchmark of CMD-HAR and the baselines (``har benchmark``).

* :mod:`components.benchmark.protocol` - the protocol's numbers (their one source);
* :mod:`components.benchmark.harness` - folds x seeds x models in parallel processes,
  aggregated JSON + Markdown results;
* :mod:`components.benchmark.efficiency` - parameters, MACs, ONNX size, batch-1 latency;
* :mod:`components.benchmark.command` - the typer command (also ``python -m
  components.benchmark.command``).

Only torch / numpy / onnx / onnxruntime and the project's data layer are imported: no
ZenML, MLflow, DVC or Great Expectations, so this runs on a bare GPU box.
"""

from components.benchmark.harness import PUBLISHED_REFERENCE, BenchmarkSettings, run_benchmark

__all__ = ["PUBLISHED_REFERENCE", "BenchmarkSettings", "run_benchmark"]
