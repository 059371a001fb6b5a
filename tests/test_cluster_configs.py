"""The cluster configs and stack scripts: ZenML parses and compiles them; nothing is deployed.

- configs/cluster.yaml and configs/schedule.yaml compile with ZenML's own compiler
  (the same path as `zenml pipeline run`) against train_pipeline; the schedule is a
  valid cron; model, parameters and gates equal configs/train.yaml's;
- settings.docker lists every dependency of pyproject.toml at its requirements.lock pin;
- the stack scripts (dry run) only use flags that the flavors' config classes accept,
  register every component the stack names, and their DVC commands work.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import shlex
import subprocess
import sys

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from components.retraining.schedule import parse_cron
from tests.conftest import QUIET_ENV, REPO_ROOT, dvc_project, isolated_env

CONFIGS = ["cluster.yaml", "schedule.yaml"]


def _load(name: str) -> dict:
    return yaml.safe_load((REPO_ROOT / "configs" / name).read_text())


def _lock() -> dict[str, str]:
    pins = {}
    for line in (REPO_ROOT / "requirements.lock").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version.strip()
    torch = re.search(r"TORCH_SPEC \?= torch==(\S+)", (REPO_ROOT / "Makefile").read_text())
    pins["torch"] = torch.group(1)  # installed first, outside the lock
    return pins


@pytest.mark.parametrize("name", CONFIGS)
def test_same_model_parameters_and_gates_as_train_yaml(name):
    train, cfg = _load("train.yaml"), _load(name)
    assert cfg["parameters"] == train["parameters"]
    assert cfg["model"] == train["model"]
    for step, options in train["steps"].items():
        assert cfg["steps"][step] == options
    assert cfg["steps"]["ingest_data_step"] == {"parameters": {"pull": True}}


@pytest.mark.parametrize("name", CONFIGS)
def test_docker_settings_list_every_requirement_at_its_lock_pin(name):
    from zenml.config import DockerSettings

    docker = DockerSettings.model_validate(_load(name)["settings"]["docker"])
    listed = {canonicalize_name(Requirement(r).name): Requirement(r) for r in docker.requirements}
    pins = _lock()
    deps = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for dep in map(Requirement, deps):
        key = canonicalize_name(dep.name)
        assert key in listed, f"{dep.name} missing from settings.docker.requirements in {name}"
        assert str(listed[key].specifier) == f"=={pins[key]}", (dep.name, listed[key].specifier, pins[key])
        assert dep.extras <= listed[key].extras, (dep.name, dep.extras)
    assert "dvc-s3" in listed  # the S3 remote the ingest step pulls from
    assert docker.install_stack_requirements and docker.disable_automatic_requirements_detection


_COMPILE = """
import json, sys
from zenml.client import Client
from zenml.enums import StackComponentType as T
from pipelines.train_pipeline import train_pipeline

client = Client()
client.create_stack_component("mlflow_tracker", "mlflow", T.EXPERIMENT_TRACKER, {"tracking_uri": sys.argv[1]})
client.create_stack("compile", {T.ORCHESTRATOR: "default", T.ARTIFACT_STORE: "default",
                                T.EXPERIMENT_TRACKER: "mlflow_tracker"})
client.activate_stack("compile")
out = {}
for path in sys.argv[2:]:
    pipeline = train_pipeline.with_options(config_path=path)
    pipeline.prepare()
    snapshot, schedule, _ = pipeline._compile(config_path=path)  # what `zenml pipeline run` does
    steps = snapshot.step_configurations
    out[path] = {
        "requirements": snapshot.pipeline_configuration.docker_settings.requirements,
        "pull": steps["ingest_data_step"].config.parameters.get("pull"),
        "tracker": steps["train_model_step"].config.experiment_tracker,
        "cron": schedule.cron_expression if schedule else None,
    }
print("RESULT" + json.dumps(out))
"""


def test_zenml_compiles_both_configs_and_reads_the_schedule(tmp_path):
    env = isolated_env(tmp_path)
    paths = [str(REPO_ROOT / "configs" / name) for name in CONFIGS]
    proc = subprocess.run([sys.executable, "-c", _COMPILE, env["MLFLOW_TRACKING_URI"], *paths], cwd=REPO_ROOT,
                          env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.split("RESULT", 1)[1])
    for name, path in zip(CONFIGS, paths, strict=True):
        got = result[path]
        assert got["requirements"] == _load(name)["settings"]["docker"]["requirements"]
        assert got["pull"] is True and got["tracker"] == "mlflow_tracker"
    assert result[paths[0]]["cron"] is None
    assert result[paths[1]]["cron"] == "0 3 * * *"
    parse_cron(result[paths[1]]["cron"])


FLAVOR_CONFIGS = {
    ("orchestrator", "kubernetes"): "zenml.integrations.kubernetes.flavors.kubernetes_orchestrator_flavor:"
    "KubernetesOrchestratorConfig",
    ("orchestrator", "kubeflow"): "zenml.integrations.kubeflow.flavors.kubeflow_orchestrator_flavor:"
    "KubeflowOrchestratorConfig",
    ("artifact-store", "s3"): "zenml.integrations.s3.flavors.s3_artifact_store_flavor:S3ArtifactStoreConfig",
    ("experiment-tracker", "mlflow"): "zenml.integrations.mlflow.flavors.mlflow_experiment_tracker_flavor:"
    "MLFlowExperimentTrackerConfig",
    ("container-registry", "default"): "zenml.container_registries.base_container_registry:BaseContainerRegistryConfig",
    ("image-builder", "local"): "zenml.image_builders.local_image_builder:LocalImageBuilderConfig",
}
STACK_FLAGS = {"-o": "orchestrator", "-a": "artifact-store", "-c": "container-registry", "-i": "image-builder",
               "-e": "experiment-tracker"}  # fmt: skip


def _dry_run(script: str, **extra) -> list[list[str]]:
    env = {
        **os.environ,
        "DRY_RUN": "1",
        "HAR_S3_URI": "s3://bucket/cmd-har/",
        "HAR_REGISTRY_URI": "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
        "HAR_MLFLOW_URI": "https://mlflow.example.org",
        "HAR_KUBE_CONTEXT": "prod",
        **extra,
    }
    proc = subprocess.run(["bash", str(REPO_ROOT / "deployment" / "stacks" / script)], env=env, capture_output=True,
                          text=True, check=True)  # fmt: skip
    return [shlex.split(line[2:]) for line in proc.stdout.splitlines() if line.startswith("+ ")]


@pytest.mark.parametrize(
    ("script", "orchestrator", "extra"),
    [
        ("register_kubernetes_stack.sh", "kubernetes", {}),
        ("register_kubeflow_stack.sh", "kubeflow", {"HAR_MLFLOW_USERNAME": "ci", "HAR_KUBEFLOW_HOST": "https://k"}),
    ],
)
def test_stack_scripts_use_real_flavor_options(script, orchestrator, extra, tmp_path):
    commands = _dry_run(script, **extra)
    registered: dict[str, str] = {}
    for cmd in commands:
        if cmd[:1] == ["zenml"] and len(cmd) > 3 and cmd[2] == "register" and cmd[1] != "stack":
            kind, name = cmd[1], cmd[3]
            opts = dict(a[2:].split("=", 1) for a in cmd[4:])
            module, cls = FLAVOR_CONFIGS[(kind, opts.pop("flavor"))].split(":")
            fields = set(getattr(importlib.import_module(module), cls).model_fields)
            assert set(opts) <= fields, (kind, sorted(set(opts) - fields))
            registered[name] = kind
    stack = next(c for c in commands if c[:3] == ["zenml", "stack", "register"])
    named = {flag: stack[i + 1] for i, flag in enumerate(stack) if flag in STACK_FLAGS}
    assert {registered[n] for n in named.values()} == set(STACK_FLAGS.values()) and "--set" in stack
    assert any(f"--flavor={orchestrator}" in c for c in commands)
    assert [
        "zenml",
        "artifact-store",
        "register",
        named["-a"],
        "--flavor=s3",
        "--path=s3://bucket/cmd-har/zenml",
    ] in commands
    # the DVC remote commands, run for real in a scratch DVC project
    project = dvc_project(tmp_path / "proj")
    for cmd in (c for c in commands if c[0].endswith("bin/dvc")):
        subprocess.run(
            [sys.executable, "-m", "dvc", *cmd[1:]], cwd=project, check=True, env={**os.environ, **QUIET_ENV}
        )
    config = (project / ".dvc" / "config").read_text()
    assert "remote = s3" in config and "url = s3://bucket/cmd-har/dvc" in config


def test_stack_scripts_name_what_is_missing():
    proc = subprocess.run(
        ["bash", str(REPO_ROOT / "deployment" / "stacks" / "register_kubernetes_stack.sh")],
        env={k: v for k, v in os.environ.items() if not k.startswith("HAR_")} | {"DRY_RUN": "1"},
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0 and "set HAR_S3_URI" in proc.stderr
