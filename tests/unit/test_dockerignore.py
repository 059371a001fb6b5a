"""The step image's build context (ZenML's own BuildContext over the checkout with our
.dockerignore): the code and the data *version* go in, no local state or data does."""

from __future__ import annotations

import shutil

import pytest

from tests.conftest import REPO_ROOT

LOCAL_STATE = [
    "data/dsads/recordings/s1.parquet",
    ".venv/bin/python",
    ".git/HEAD",
    "artifacts/edge/bundle.tar.gz",
    ".zenml/config.yaml",  # credentials after `zenml login`
    ".mlflow/mlflow.db",
    "mlartifacts/1/model.onnx",
    ".bentoml/models/m/latest",
    ".dvc/cache/files/md5/ab/cdef",
    ".dvc/config.local",  # DVC remote credentials live here
    ".cache/rehearsal/wheelhouse-x/torch.whl",
    "runs/old/summary.json",
    "benchmarks/results/big.json",
    "cli/__pycache__/main.cpython-311.pyc",
]
CODE = [
    "cli/main.py",
    "steps/train_model.py",
    "pipelines/train_pipeline.py",
    "har_runtime/runtime.py",
    "pyproject.toml",
    "requirements.lock",
    "requirements-cluster.lock",  # the step image installs it
    "data.dvc",  # the data version the steps fetch
    ".dvc/config",  # where they fetch it from
    "configs/train.yaml",
]


@pytest.fixture
def checkout(tmp_path):
    root = tmp_path / "checkout"
    for rel in CODE + [".dockerignore"]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        src = REPO_ROOT / rel
        if src.exists():
            shutil.copy(src, root / rel)
        else:  # data.dvc before the first `har data version`
            (root / rel).write_text("outs: []\n")
    for rel in LOCAL_STATE:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("local state\n")
    return root


def test_build_context_holds_the_code_and_no_local_state(checkout):
    from zenml.image_builders.build_context import BuildContext

    files = set(BuildContext(root=str(checkout)).get_files())
    assert set(CODE) <= files, sorted(set(CODE) - files)
    leaked = sorted(f for f in files if f in LOCAL_STATE)
    assert not leaked, f"these would be baked into the step image: {leaked}"
