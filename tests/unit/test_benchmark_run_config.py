"""``har benchmark --engine pipeline --run-config``: what the benchmark takes from a run config."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.benchmark import CLUSTER_CONFIG, data_version_parameters
from components.benchmark.command import _run_processes
from components.benchmark.protocol import BenchmarkSettings
from components.config import load_run_config


def test_cluster_config_pulls_the_committed_data_version():
    assert data_version_parameters(load_run_config(CLUSTER_CONFIG)) == {"pull": True}
    assert data_version_parameters({}) == {}
    assert data_version_parameters(
        {"steps": {"data_version_step": {"parameters": {"pull": True, "latest": True}}}}
    ) == {
        "pull": True,
        "latest": True,
    }


def test_a_run_config_cannot_change_what_the_benchmark_imports():
    config = {"steps": {"data_version_step": {"parameters": {"pull": False, "subjects": ["1"], "reimport": True}}}}
    with pytest.raises(ValueError, match=r"data_version_step parameters \['reimport', 'subjects'\]"):
        data_version_parameters(config)


def test_run_config_travels_with_the_settings_and_only_the_pipeline_takes_it():
    settings = BenchmarkSettings(run_config=Path("configs/cluster.yaml"), data_dir=Path("/tmp/d"))
    assert BenchmarkSettings.from_dict(settings.to_dict()) == settings
    with pytest.raises(ValueError, match="--run-config is a ZenML run config: it works with --engine pipeline only"):
        _run_processes(settings, progress=False, log=print)
