"""MLflow store configuration."""

from __future__ import annotations

import os

from components import tracking


def test_registry_follows_tracking_store(tmp_path, monkeypatch):
    import mlflow

    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    for name in ("a", "b"):
        uri = f"sqlite:///{tmp_path / name / 'mlflow.db'}"
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        tracking.configure()
        assert mlflow.get_registry_uri() == uri
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", "sqlite:///chosen.db")
    tracking.configure()
    assert os.environ["MLFLOW_REGISTRY_URI"] == "sqlite:///chosen.db"
