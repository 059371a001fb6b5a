"""The cluster configs and stack scripts: ZenML parses and compiles them; nothing is deployed.

- configs/cluster.yaml and configs/schedule.yaml compile with ZenML's own compiler
  (the same path as `zenml pipeline run`) against train_pipeline; the schedule is a
  valid cron; they are overlays of configs/train.yaml: no parameters of their own (the schedule's
  stop_if_unchanged aside), so the compiled run has train.yaml's parameters (train_pipeline's
  defaults), a parameter written in the overlay still replaces its default, and model and
  steps equal train.yaml's;
- settings.docker installs requirements-cluster.lock (tests/unit/test_cluster_lock.py checks the lock)
  with pip and no stack requirements on top: ZenML's image builder writes the lock as the only
  requirements file and one `pip install` of it;
- the stack scripts (dry run) only use flags that the flavors' config classes accept,
  register every component the stack names, and their DVC commands work;
- the MLflow password reaches ZenML through a file: never in a command's argv or the output.

The scripts run for real against a ZenML store in test_stack_scripts_store.py.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys

import pytest
import yaml

from components.retraining.schedule import parse_cron
from deployment.cluster_lock import CLUSTER_LOCK, read_lock
from tests.conftest import QUIET_ENV, REPO_ROOT, dvc_project, isolated_env
from tests.stack_scripts import FLAVOR_CONFIGS, SCRIPTS, STACK_ENV, stack_script, traced_commands

CONFIGS = ["cluster.yaml", "schedule.yaml"]


def _load(name: str) -> dict:
    return yaml.safe_load((REPO_ROOT / "configs" / name).read_text())


@pytest.mark.parametrize("name", CONFIGS)
def test_an_overlay_of_train_yaml_same_model_parameters_and_gates(name):
    from components.config import run_parameters

    train, cfg = _load("train.yaml"), _load(name)
    scheduled = name == "schedule.yaml"  # + newest pushed data, stop when nothing new
    # parameters come from train.yaml (train_pipeline's defaults): the overlay writes none of its own
    assert cfg.get("parameters", {}) == ({"stop_if_unchanged": True} if scheduled else {})
    assert run_parameters(cfg) == {**train["parameters"], **({"stop_if_unchanged": True} if scheduled else {})}
    assert cfg["model"] == train["model"]
    for step, options in train["steps"].items():
        assert cfg["steps"][step] == options
    pulled = {"pull": True, **({"latest": True} if scheduled else {})}
    assert cfg["steps"]["data_version_step"] == {"parameters": pulled}


@pytest.mark.parametrize("name", CONFIGS)
def test_docker_settings_install_the_cluster_lock_and_nothing_else(name):
    """The image gets requirements-cluster.lock (tests/unit/test_cluster_lock.py: hashed, and it covers
    pyproject.toml, dvc-s3 and the stack integrations) with pip in hash-checking mode."""
    from zenml.config import DockerSettings
    from zenml.config.docker_settings import PythonPackageInstaller

    docker = DockerSettings.model_validate(_load(name)["settings"]["docker"])
    assert docker.requirements == CLUSTER_LOCK.name and CLUSTER_LOCK.is_file()
    assert not docker.install_stack_requirements and docker.disable_automatic_requirements_detection
    assert not docker.required_integrations and not docker.replicate_local_python_environment
    # pip, not ZenML's default uv: uv asks only the first index that has a package (the PyTorch
    # index holds numpy, pillow ... too); pip takes the pinned, hashed file wherever it is
    assert docker.python_package_installer == PythonPackageInstaller.PIP
    assert docker.python_package_installer_args == {"extra-index-url": "https://download.pytorch.org/whl/cpu"}
    assert read_lock(CLUSTER_LOCK)["torch"].version.endswith("+cpu")


_COMPILE = """
import json, sys
from zenml.client import Client
from zenml.enums import StackComponentType as T
from zenml.utils.pipeline_docker_image_builder import PipelineDockerImageBuilder as B
from pipelines.train_pipeline import train_pipeline

client = Client()
client.create_stack_component("mlflow_tracker", "mlflow", T.EXPERIMENT_TRACKER, {"tracking_uri": sys.argv[1]})
client.create_stack("compile", {T.ORCHESTRATOR: "default", T.ARTIFACT_STORE: "default",
                                T.EXPERIMENT_TRACKER: "mlflow_tracker"})
client.activate_stack("compile")
out = {}
for path in sys.argv[2:]:
    pipeline = train_pipeline.with_options(config_path=path)
    try:
        pipeline.prepare()
    except ValueError as e:  # the pipeline refuses a schedule config that was not translated
        out[path] = {"refused": str(e)}
        continue
    snapshot, schedule, _ = pipeline._compile(config_path=path)  # what `zenml pipeline run` does
    steps = snapshot.step_configurations
    docker = snapshot.pipeline_configuration.docker_settings
    files = B.gather_requirements_files(docker_settings=docker, stack=client.active_stack, log=False)
    out[path] = {
        "requirements": docker.requirements,
        "files": [[name, text] for name, text, _ in files],  # what the image builder installs
        "dockerfile": B._generate_zenml_pipeline_dockerfile("parent:1", docker, files).splitlines(),
        "pull": steps["data_version_step"].config.parameters.get("pull"),
        "latest": steps["data_version_step"].config.parameters.get("latest"),
        "tracker": steps["train_model_step"].config.experiment_tracker,
        "cron": schedule.cron_expression if schedule else None,
        "steps": sorted(steps),
        "parameters": snapshot.pipeline_spec.parameters,  # what the pipeline function is called with
        "trainer": steps["train_model_step"].config.parameters.get("trainer"),
        "promotion": steps["promote_model_step"].config.parameters.get("promotion"),
    }
print("RESULT" + json.dumps(out))
"""


def test_zenml_compiles_both_configs_and_reads_the_schedule(tmp_path):
    from components.retraining.schedule import scheduled_run_config

    env = isolated_env(tmp_path)
    paths = [str(REPO_ROOT / "configs" / name) for name in CONFIGS]
    override = tmp_path / "cluster-override.yaml"  # a parameter in the overlay replaces train.yaml's
    override.write_text(yaml.safe_dump({**_load("cluster.yaml"), "parameters": {"trainer": {"epochs": 2}}}))
    paths.append(str(override))
    for flavor in ("kubernetes", "kubeflow"):  # what `har schedule deploy` writes for each
        out = tmp_path / f"schedule.{flavor}.yaml"
        out.write_text(yaml.safe_dump(scheduled_run_config(_load("schedule.yaml"), flavor)))
        paths.append(str(out))
    proc = subprocess.run([sys.executable, "-c", _COMPILE, env["MLFLOW_TRACKING_URI"], *paths], cwd=REPO_ROOT,
                          env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.split("RESULT", 1)[1])
    cluster, raw_schedule, overridden, k8s, kfp = (result[p] for p in paths)
    train = _load("train.yaml")["parameters"]
    for got in (cluster, k8s, kfp):  # no parameters: block, yet train.yaml's model, trainer and gates
        assert {k: v for k, v in got["parameters"].items() if k != "stop_if_unchanged"} == train
        assert got["trainer"] == train["trainer"] and got["promotion"] == train["promotion"]
    assert cluster["parameters"]["stop_if_unchanged"] is False and k8s["parameters"]["stop_if_unchanged"] is True
    assert overridden["trainer"] == {"epochs": 2} and overridden["parameters"]["trainer"] == {"epochs": 2}
    assert overridden["promotion"] == train["promotion"]
    assert "har schedule deploy" in raw_schedule["refused"]  # `zenml pipeline run -c configs/schedule.yaml`
    for got in (cluster, k8s, kfp):
        assert got["requirements"] == _load("cluster.yaml")["settings"]["docker"]["requirements"]
        # the image builder's only requirements file is the lock, installed by pip (hash mode) from
        # PyPI + the CPU torch index
        assert got["files"] == [[".zenml_user_requirements", CLUSTER_LOCK.read_text()]]
        install = [line for line in got["dockerfile"] if "install" in line and "-r " in line]
        assert install == [
            "RUN pip install --no-cache-dir --default-timeout=60 "
            "--extra-index-url=https://download.pytorch.org/whl/cpu -r .zenml_user_requirements"
        ], got["dockerfile"]
        assert got["pull"] is True and got["tracker"] == "mlflow_tracker"
    assert cluster["cron"] is None and not cluster["latest"] and "check_new_data_step" not in cluster["steps"]
    cron = _load("schedule.yaml")["extra"]["cron_expression"]
    assert k8s["cron"] == cron and kfp["cron"] == f"0 {cron}"
    parse_cron(k8s["cron"])
    for got in (k8s, kfp):
        assert got["latest"] is True and "check_new_data_step" in got["steps"]


STACK_FLAGS = {"-o": "orchestrator", "-a": "artifact-store", "-c": "container-registry", "-i": "image-builder",
               "-e": "experiment-tracker"}  # fmt: skip


# quotes, backslash, $ and braces: what a JSON or shell writer must escape
PASSWORD = """pw-9f3Zq "quoted" back\\slash $HOME {{x}} it's"""


def _dry_run_proc(script: str, **extra) -> subprocess.CompletedProcess:
    env = {**os.environ, "DRY_RUN": "1", **STACK_ENV, **extra}
    return subprocess.run(stack_script(script), env=env, capture_output=True, text=True, check=True)


def _dry_run(script: str, **extra) -> list[list[str]]:
    return traced_commands(_dry_run_proc(script, **extra).stdout)


@pytest.mark.parametrize(
    ("script", "orchestrator", "extra"),
    [
        ("register_kubernetes_stack.sh", "kubernetes", {}),
        ("register_kubernetes_stack.sh", "kubernetes", {"HAR_IMAGE_BUILDER": "kaniko"}),
        ("register_kubeflow_stack.sh", "kubeflow", {"HAR_MLFLOW_USERNAME": "ci", "HAR_KUBEFLOW_HOST": "https://k"}),
        ("register_kubeflow_stack.sh", "kubeflow", {"HAR_IMAGE_BUILDER": "kaniko"}),
    ],
)
def test_stack_scripts_use_real_flavor_options(script, orchestrator, extra, tmp_path):
    commands = _dry_run(script, **extra)
    registered: dict[str, str] = {}
    for cmd in commands:
        if (
            cmd[:1] == ["zenml"]
            and len(cmd) > 3
            and cmd[2] == "register"
            and cmd[1] not in ("stack", "service-connector")
        ):
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
    builder = next(c for c in commands if c[1:4] == ["image-builder", "register", named["-i"]])
    if extra.get("HAR_IMAGE_BUILDER") == "kaniko":  # kubernetes_context is a required field of kaniko's config
        assert builder[4:] == ["--flavor=kaniko", "--kubernetes_context=prod"]
    else:
        assert builder[4:] == ["--flavor=local"]
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


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_remote_mlflow_server_needs_credentials_before_anything_runs(script):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HAR_")} | STACK_ENV | {"DRY_RUN": "1"}
    env.pop("HAR_MLFLOW_PASSWORD")
    proc = subprocess.run(stack_script(script), env=env | {"HAR_KUBEFLOW_HOST": "https://k"}, capture_output=True,
                          text=True)  # fmt: skip
    assert proc.returncode != 0 and "set HAR_MLFLOW_USERNAME and HAR_MLFLOW_PASSWORD" in proc.stderr
    assert not proc.stdout.count("+ zenml")  # stopped before the first command


def test_kaniko_needs_a_kube_context_before_anything_runs():
    env = {k: v for k, v in os.environ.items() if not k.startswith("HAR_")} | STACK_ENV | {"DRY_RUN": "1"}
    env |= {"HAR_IMAGE_BUILDER": "kaniko"}
    del env["HAR_KUBE_CONTEXT"]
    for script in SCRIPTS:
        proc = subprocess.run(stack_script(script), env=env, capture_output=True, text=True)
        assert proc.returncode != 0 and "HAR_IMAGE_BUILDER=kaniko: set HAR_KUBE_CONTEXT" in proc.stderr
        assert not traced_commands(proc.stdout)


@pytest.mark.parametrize("script", SCRIPTS)
def test_the_mlflow_password_goes_through_a_file_not_the_command_line(script, tmp_path):
    proc = _dry_run_proc(script, HAR_MLFLOW_USERNAME="ci-user-7q", HAR_MLFLOW_PASSWORD=PASSWORD, TMPDIR=str(tmp_path))
    assert "pw-9f3Zq" not in proc.stdout + proc.stderr
    assert "--password" not in proc.stdout and "--username" not in proc.stdout
    (secret,) = [c for c in traced_commands(proc.stdout) if c[:2] == ["zenml", "secret"]]
    assert secret[2:4] == ["create", "har_mlflow"] and len(secret) == 5
    assert secret[4].startswith(f"--values=@{tmp_path}/")
    assert not any(tmp_path.iterdir())  # the file is gone
    register = ["experiment-tracker", "register", "mlflow_tracker"]
    tracker = next(c for c in traced_commands(proc.stdout) if c[1:4] == register)
    assert "--tracking_password={{har_mlflow.password}}" in tracker
