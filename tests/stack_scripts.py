"""The cluster stack scripts (deployment/stacks/) as the tests drive them: which scripts, the
environment a dry run needs, the ZenML flavor config classes their options must fit, and how to
read the commands a script traces (``+ zenml ...`` lines)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT

FLAVOR_CONFIGS = {
    ("orchestrator", "kubernetes"): "zenml.integrations.kubernetes.flavors.kubernetes_orchestrator_flavor:"
    "KubernetesOrchestratorConfig",
    ("orchestrator", "kubeflow"): "zenml.integrations.kubeflow.flavors.kubeflow_orchestrator_flavor:"
    "KubeflowOrchestratorConfig",
    ("artifact-store", "s3"): "zenml.integrations.s3.flavors.s3_artifact_store_flavor:S3ArtifactStoreConfig",
    ("experiment-tracker", "mlflow"): "zenml.integrations.mlflow.flavors.mlflow_experiment_tracker_flavor:"
    "MLFlowExperimentTrackerConfig",
    ("container-registry", "aws"): "zenml.integrations.aws.flavors.aws_container_registry_flavor:"
    "AWSContainerRegistryConfig",
    ("image-builder", "local"): "zenml.image_builders.local_image_builder:LocalImageBuilderConfig",
    ("image-builder", "kaniko"): "zenml.integrations.kaniko.flavors.kaniko_image_builder_flavor:"
    "KanikoImageBuilderConfig",
}

SCRIPTS = ["register_kubernetes_stack.sh", "register_kubeflow_stack.sh"]
STACK_ENV = {
    "HAR_S3_URI": "s3://bucket/cmd-har/",
    "HAR_REGISTRY_URI": "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
    "HAR_MLFLOW_URI": "https://mlflow.example.org",
    "HAR_MLFLOW_USERNAME": "ci",  # ZenML's MLflow tracker needs credentials for a remote server
    "HAR_MLFLOW_PASSWORD": "pw-ci",
    "HAR_KUBE_CONTEXT": "prod",
}


def stack_script(script: str, root: Path = REPO_ROOT) -> list[str]:
    return ["bash", str(root / "deployment" / "stacks" / script)]


def traced_commands(stdout: str) -> list[list[str]]:
    return [shlex.split(line[2:]) for line in stdout.splitlines() if line.startswith("+ ")]


# A `zenml` in front of the real one records every argv and skips `zenml integration install` (which
# would pip-install into the venv); `.venv/bin/pip` is a no-op, `.venv/bin/dvc` the real DVC.
ZENML_WRAPPER = """#!/bin/sh
printf '%s\\n' "$*" >> "$ARGV_LOG"
if [ "$1 $2" = "integration install" ]; then exit 0; fi
exec {zenml} "$@"
"""


def fake_tools(tmp_path: Path, root: Path) -> tuple[Path, Path]:
    """(folder to put first on PATH, scratch TMPDIR) for running a stack script in ``root``:
    `zenml` is the real one behind ZENML_WRAPPER (argv logged, `integration install` a no-op),
    `.venv/bin/pip` a no-op and `.venv/bin/dvc` the real DVC."""
    bin_dir, venv_bin, scratch = tmp_path / "bin", root / ".venv" / "bin", tmp_path / "tmp"
    for folder in (bin_dir, venv_bin, scratch):
        folder.mkdir(parents=True)
    fakes = {
        bin_dir / "zenml": ZENML_WRAPPER.format(zenml=shlex.quote(str(Path(sys.executable).parent / "zenml"))),
        venv_bin / "pip": "#!/bin/sh\nexit 0\n",
        venv_bin / "dvc": f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m dvc "$@"\n',
    }
    for path, text in fakes.items():
        path.write_text(text)
        path.chmod(0o755)
    return bin_dir, scratch
