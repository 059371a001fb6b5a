"""The AWS side of the cluster stack scripts: the service connector har_aws and what it links.

- every option the scripts pass to `zenml ...` is an option of that ZenML 0.98 command, or (the
  free `--key=value` arguments of register/update) a field of the flavor's config class, or of the
  config class of the connector's auth method; required fields are all there;
- the connector's keys (HAR_AWS_AUTH=iam-role) reach ZenML through files: in no output and no argv;
- a wrong AWS setting stops a script before it runs anything, naming what to fix.

The scripts run for real against a ZenML store in test_stack_scripts_store.py.
"""

from __future__ import annotations

import importlib
import os
import subprocess

import click
import pytest

from tests.stack_scripts import FLAVOR_CONFIGS, SCRIPTS, STACK_ENV, stack_script, traced_commands

ROLE = "arn:aws:iam::123456789012:role/cmd-har-zenml"
# what a shell or a JSON writer must escape; recognisable in any output
KEY_ID = "AKIAFAKE7Q2W3E4R5T6Y"
SECRET_KEY = """sk-Zq9"quoted" back\\slash $HOME it's/+="""
IAM_ROLE = {"HAR_AWS_AUTH": "iam-role", "HAR_AWS_ROLE_ARN": ROLE, "HAR_AWS_ACCESS_KEY_ID": KEY_ID,
            "HAR_AWS_SECRET_ACCESS_KEY": SECRET_KEY}  # fmt: skip
AUTH_CASES = [
    {},  # the default: implicit
    {"HAR_AWS_AUTH": "implicit", "HAR_AWS_ROLE_ARN": ROLE, "HAR_EKS_CLUSTER": "har-eks"},
    {**IAM_ROLE, "HAR_AWS_VERIFY": "0"},
    {"HAR_AWS_AUTH": "none"},
]


def _env(**extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("HAR_")}
    return {**base, "DRY_RUN": "1", **STACK_ENV, **extra}


def _dry_run(script: str, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(stack_script(script), env=_env(**extra), capture_output=True, text=True)


def _click_command(path: list[str]) -> tuple[click.Command, list[str]]:
    """The ZenML click command of `zenml PATH...` and the arguments after it."""
    from zenml.cli.cli import cli

    command: click.Command = cli
    rest = list(path)
    while isinstance(command, click.Group) and rest:
        sub = command.get_command(click.Context(command), rest[0])
        assert sub is not None, f"no `zenml ... {rest[0]}` in ZenML: {path}"
        command, rest = sub, rest[1:]
    return command, rest


def _config_class(cmd: list[str], flavors: dict[str, str]):
    """The pydantic class that the free `--key=value` arguments of a register/update command fill."""
    kind, verb, name = cmd[1], cmd[2], cmd[3]
    opts = dict(a[2:].split("=", 1) for a in cmd[4:] if a.startswith("--") and "=" in a)
    if kind == "service-connector":
        from zenml.integrations.aws.service_connectors.aws_service_connector import (
            AWS_SERVICE_CONNECTOR_TYPE_SPEC as SPEC,
        )

        return SPEC.auth_method_dict[opts["auth-method"]].config_class
    flavor = opts["flavor"] if verb == "register" else flavors[name]
    module, cls = FLAVOR_CONFIGS[(kind, flavor)].split(":")
    return getattr(importlib.import_module(module), cls)


@pytest.mark.parametrize("extra", AUTH_CASES, ids=["default", "implicit", "iam-role", "none"])
@pytest.mark.parametrize("script", SCRIPTS)
def test_every_option_exists_in_zenml(script, extra, tmp_path):
    proc = _dry_run(script, TMPDIR=str(tmp_path), **extra)
    assert proc.returncode == 0, proc.stderr
    commands = [c for c in traced_commands(proc.stdout) if c[0] == "zenml" and c[1:3] != ["integration", "install"]]
    flavors: dict[str, str] = {}
    for cmd in commands:
        command, rest = _click_command(cmd[1:])
        declared = {opt for p in command.params if isinstance(p, click.Option) for opt in p.opts}
        free = any(isinstance(p, click.Argument) and p.nargs == -1 for p in command.params)
        values: dict[str, str] = {}
        for arg in (a for a in rest if a.startswith("-")):
            flag, _, value = arg.partition("=")
            if flag in declared:
                continue
            assert free and flag.startswith("--"), f"{flag} is not an option of `zenml {' '.join(cmd[1:3])}`"
            values[flag[2:]] = value
        if cmd[2] == "register" and cmd[1] != "stack":
            flavors[cmd[3]] = next((a.split("=", 1)[1] for a in rest if a.startswith("--flavor=")), "")
        if values:
            config = _config_class(cmd, flavors)
            assert set(values) <= set(config.model_fields), (cmd[:4], sorted(set(values) - set(config.model_fields)))
            if cmd[2] == "register":
                required = {k for k, f in config.model_fields.items() if f.is_required()}
                assert required <= set(values), (cmd[:4], sorted(required - set(values)))
                if cmd[1] in ("service-connector", "container-registry"):  # the AWS side's own checks
                    config.model_validate(values)  # e.g. the aws registry's uri: no `/`

    auth = extra.get("HAR_AWS_AUTH", "implicit")
    connector = [c for c in commands if c[1] == "service-connector"]
    links = [c for c in commands if c[2] == "connect"]
    registry = next(c for c in commands if c[1:3] == ["container-registry", "register"])
    assert registry[4:] == ["--flavor=aws", f"--uri={STACK_ENV['HAR_REGISTRY_URI']}"]
    if auth == "none":
        assert not connector and not links
        return
    (register,) = connector
    assert register[2:6] == ["register", "har_aws", "--type=aws", f"--auth-method={auth}"]
    assert "--region=eu-west-1" in register  # from the registry's URI
    assert ("--no-verify" in register) == (extra.get("HAR_AWS_VERIFY") == "0")
    assert (f"--role_arn={ROLE}" in register) == ("HAR_AWS_ROLE_ARN" in extra)
    stack = script.split("_")[1].replace("kubernetes", "har_k8s").replace("kubeflow", "har_kfp")
    expected = [["artifact-store", "connect", f"{stack}_s3"], ["container-registry", "connect", f"{stack}_registry"]]
    if "HAR_EKS_CLUSTER" in extra:
        expected.append(["orchestrator", "connect", f"{stack}_orchestrator"])
    assert [c[1:4] for c in links] == expected
    for link in links:
        assert "--connector=har_aws" in link
    if "HAR_EKS_CLUSTER" in extra:
        assert "--resource-id=har-eks" in links[-1]
    # the link comes after the component exists, and before the stack names it
    order = [c[1:4] for c in commands]
    for kind, _, name in expected:
        assert order.index([kind, "register", name]) < order.index([kind, "connect", name])
    assert order.index(expected[-1]) < next(i for i, c in enumerate(order) if c[:2] == ["stack", "register"])


def test_the_step_service_account_goes_to_the_step_pods_only():
    proc = _dry_run("register_kubernetes_stack.sh", HAR_STEP_SERVICE_ACCOUNT="cmd-har-steps")
    assert proc.returncode == 0, proc.stderr
    (orch,) = [c for c in traced_commands(proc.stdout) if c[1:3] == ["orchestrator", "register"]]
    assert "--step_pod_service_account_name=cmd-har-steps" in orch
    assert not any(a.startswith("--service_account_name") for a in orch)  # ZenML's own for the orchestrator pod
    proc = _dry_run("register_kubernetes_stack.sh")
    (orch,) = [c for c in traced_commands(proc.stdout) if c[1:3] == ["orchestrator", "register"]]
    assert not any("service_account" in a for a in orch)


@pytest.mark.parametrize("script", SCRIPTS)
def test_the_aws_keys_go_through_files(script, tmp_path):
    proc = _dry_run(script, TMPDIR=str(tmp_path), **IAM_ROLE)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout + proc.stderr
    assert KEY_ID not in out and "sk-Zq9" not in out
    (register,) = [c for c in traced_commands(proc.stdout) if c[1] == "service-connector"]
    files = {a.split("=", 1)[0]: a.split("=", 1)[1] for a in register if a.startswith("--aws_")}
    assert set(files) == {"--aws_access_key_id", "--aws_secret_access_key"}
    for value in files.values():
        assert value.startswith(f"@{tmp_path}/har_secret.")
    assert "--show-secrets" not in register and "-x" not in register
    assert not any(tmp_path.iterdir())  # removed


_FAILS = [
    ({"HAR_AWS_AUTH": "sso"}, "HAR_AWS_AUTH must be implicit, iam-role or none, not 'sso'"),
    ({"HAR_AWS_AUTH": "iam-role"}, "HAR_AWS_AUTH=iam-role: set HAR_AWS_ROLE_ARN"),
    ({"HAR_AWS_AUTH": "iam-role", "HAR_AWS_ROLE_ARN": ROLE, "HAR_AWS_ACCESS_KEY_ID": KEY_ID},
     "HAR_AWS_AUTH=iam-role: set HAR_AWS_ACCESS_KEY_ID and HAR_AWS_SECRET_ACCESS_KEY"),
    ({"HAR_AWS_SECRET_ACCESS_KEY": SECRET_KEY}, "only read with HAR_AWS_AUTH=iam-role"),
    ({"HAR_AWS_AUTH": "none", "HAR_EKS_CLUSTER": "har-eks"}, "HAR_AWS_AUTH=none registers no connector"),
    ({"HAR_AWS_ROLE_ARN": "cmd-har-zenml"}, "HAR_AWS_ROLE_ARN must be an IAM role ARN"),
    ({"HAR_REGISTRY_URI": "ghcr.io/me"}, "HAR_REGISTRY_URI must be an ECR registry"),
    ({"HAR_REGISTRY_URI": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/cmd-har"}, "must be an ECR registry"),
    ({"HAR_AWS_REGION": "us-east-1"}, "HAR_AWS_REGION=us-east-1 but HAR_REGISTRY_URI is in eu-west-1"),
    ({"HAR_AWS_VERIFY": "no"}, "HAR_AWS_VERIFY must be 1"),
]  # fmt: skip


@pytest.mark.parametrize(("extra", "message"), _FAILS)
@pytest.mark.parametrize("script", SCRIPTS)
def test_a_wrong_aws_setting_stops_before_anything_runs(script, extra, message):
    proc = _dry_run(script, **extra)
    assert proc.returncode != 0 and message in proc.stderr, proc.stderr
    assert not traced_commands(proc.stdout)
    assert "sk-Zq9" not in proc.stdout + proc.stderr


def test_kubeflow_refuses_a_step_service_account_it_cannot_set():
    proc = _dry_run("register_kubeflow_stack.sh", HAR_STEP_SERVICE_ACCOUNT="cmd-har-steps")
    assert proc.returncode != 0 and "default-editor" in proc.stderr and "pipeline-runner" in proc.stderr
    assert not traced_commands(proc.stdout)
