"""`make rehearsal`: train_pipeline, then a small benchmark_pipeline, with one container per step, on one machine.

The stack has the shape of deployment/stacks (a cluster): ZenML's ``local_docker``
orchestrator (each step its own container, host networking, everything on 127.0.0.1),
an S3 artifact store and a DVC S3 remote on a moto S3 server, an MLflow tracking server
over HTTP (sqlite backend, basic auth, artifacts served through it), credentials in ZenML
secrets. The step image is built by ZenML's image builder from a parent image made without
any container registry: a debootstrapped Debian rootfs, ``docker import``ed, plus a
wheelhouse that pip downloads on the host (the image installs with ``--no-index``).

What the run does, in a temporary folder (nothing in this checkout changes except
``benchmarks/results/rehearsal.json``):
  1. copies the code (tracked + untracked, not ignored files) into a fresh project;
  2. imports DSADS subjects 1, 2, 7, 8 there, versions them and pushes them to S3;
  3. builds the step image, runs train_pipeline (validation 7, test 8, a 1-minute training
     budget, open promotion gates: the rehearsal proves the plumbing, not the model);
  4. checks every step ran in its own container with nothing mounted but ZenML's local store
     folder, the champion in the remote MLflow registry and ``har lineage`` against it;
  5. pulls the champion's bundle from the artifact store (``har edge pull``), builds the Bento,
     serves it once and classifies real test windows with it;
  6. runs it again as the nightly schedule does (newest data version published in ZenML, stop
     when nothing new): its ingest container must take the version from ``har_data_version``
     and the run must stop in ``check_new_data_step``, before training;
  7. runs a small benchmark on the same stack, ``har benchmark --engine pipeline`` (DSADS LOSO
     on the imported subjects, folds 7 and 8, ``cnn``, 2 epochs, 1 seed, the same run config):
     every step that ran in its own container (``local_docker`` also starts one for a cached
     step, which exits without training), the recordings fetched from S3 by the pulled data
     version, each training a nested MLflow run on the tracking server, the result JSON with
     2 fold records; the same command again must train nothing (every training step cached).
     Two epochs, so each training step checkpoints its first epoch into the S3 artifact store
     and removes it when done (a step that cannot fails, and so does the rehearsal).

Needs Docker (a running daemon) and ``debootstrap`` unless the rootfs image exists already.
``--keep`` keeps the temporary folder and prints where it is.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import ExitStack
from datetime import datetime, timezone
from pathlib import Path

import yaml
from benchmark import rehearse_benchmark
from common import REPO, RehearsalError, say, sh, step_containers
from images import base_image, docker_ready, image_lock, rootfs_image, wheelhouse

from components.config import TELEMETRY_OFF, run_parameters
from components.evaluation.promotion import OPEN_GATES

RESULT = REPO / "benchmarks" / "results" / "rehearsal.json"
BUCKET = "har-rehearsal"
REGION = "us-east-1"
SUBJECTS, VAL, TEST = ["1", "2", "7", "8"], ["7"], ["8"]
TIME_BUDGET_MIN = 1.0
QUIET = {**TELEMETRY_OFF, "ZENML_ENABLE_RICH_TRACEBACK": "false", "NO_COLOR": "1", "COLUMNS": "200"}


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout.strip()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, what: str, proc: subprocess.Popen, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RehearsalError(f"{what} exited with {proc.returncode} before answering {url}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise RehearsalError(f"{what} did not answer {url} within {timeout_s:.0f} s")


# -- the project, the services, the stack ------------------------------------------------------


def copy_project(dest: Path) -> None:
    """The code as a clone would have it, uncommitted edits included (tracked + untracked files
    that git does not ignore)."""
    out = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout
    for rel in filter(None, out.decode().split("\0")):
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def start(cmd: list[str], log: Path, env: dict, stack: ExitStack) -> subprocess.Popen:
    print("+ " + " ".join(cmd), flush=True)
    handle = log.open("w")
    proc = subprocess.Popen(cmd, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)

    def stop() -> None:  # the whole process group: servers fork workers
        for sig, wait_s in ((signal.SIGTERM, 20), (signal.SIGKILL, 5)):
            try:
                os.killpg(proc.pid, sig)
                proc.wait(wait_s)
                break
            except ProcessLookupError:
                break
            except subprocess.TimeoutExpired:
                continue
        handle.close()

    stack.callback(stop)
    return proc


def start_services(root: Path, env: dict, stack: ExitStack) -> dict:
    """moto S3 server + MLflow tracking server (basic auth), both on 127.0.0.1."""
    svc = root / "services"
    svc.mkdir()
    s3_port, mlflow_port = free_port(), free_port()
    moto = start(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(s3_port)], svc / "s3.log", env, stack
    )
    wait_http(f"http://127.0.0.1:{s3_port}/moto-api/", "moto S3 server", moto)
    import boto3

    boto3.client("s3", endpoint_url=f"http://127.0.0.1:{s3_port}", region_name=REGION).create_bucket(Bucket=BUCKET)

    auth = svc / "basic_auth.ini"  # the admin password is read from this file, never from argv
    auth.write_text(
        "[mlflow]\ndefault_permission = READ\n"
        f"database_uri = sqlite:///{svc / 'auth.db'}\n"
        f"admin_username = {env['MLFLOW_TRACKING_USERNAME']}\nadmin_password = {env['MLFLOW_TRACKING_PASSWORD']}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    )
    auth.chmod(0o600)
    server_env = {k: v for k, v in env.items() if not k.startswith("MLFLOW_TRACKING_")}
    server_env["MLFLOW_AUTH_CONFIG_PATH"] = str(auth)
    server_env["MLFLOW_FLASK_SERVER_SECRET_KEY"] = secrets.token_urlsafe(32)  # CSRF key of the auth app
    mlflow = start(
        [sys.executable, "-m", "mlflow", "server", "--app-name", "basic-auth",
         "--backend-store-uri", f"sqlite:///{svc / 'mlflow.db'}", "--artifacts-destination", str(svc / "mlartifacts"),
         "--host", "127.0.0.1", "--port", str(mlflow_port), "--workers", "1"],
        svc / "mlflow.log", server_env, stack,
    )  # fmt: skip
    wait_http(f"http://127.0.0.1:{mlflow_port}/health", "MLflow server", mlflow)
    return {"s3": f"http://127.0.0.1:{s3_port}", "mlflow": f"http://127.0.0.1:{mlflow_port}"}


def register_stack(project: Path, env: dict, urls: dict) -> None:
    """The cluster-shaped ZenML stack; secrets go in through the Python client, never argv."""
    from zenml.client import Client

    zenml = [str(Path(sys.executable).parent / "zenml")]
    sh([*zenml, "init"], env=env, cwd=project, capture=True)
    client = Client()
    client.create_secret(
        "har_s3",
        values={"AWS_ACCESS_KEY_ID": env["AWS_ACCESS_KEY_ID"], "AWS_SECRET_ACCESS_KEY": env["AWS_SECRET_ACCESS_KEY"]},
    )
    client.create_secret(
        "har_mlflow",
        values={
            "MLFLOW_TRACKING_USERNAME": env["MLFLOW_TRACKING_USERNAME"],
            "MLFLOW_TRACKING_PASSWORD": env["MLFLOW_TRACKING_PASSWORD"],
        },
    )
    # the keys as references to the secret (the CLI's --secret flag means something else)
    client.create_stack_component(
        name="har_s3_store",
        flavor="s3",
        component_type="artifact_store",
        configuration={
            "path": f"s3://{BUCKET}/zenml",
            "key": "{{har_s3.AWS_ACCESS_KEY_ID}}",
            "secret": "{{har_s3.AWS_SECRET_ACCESS_KEY}}",
            "client_kwargs": {"endpoint_url": urls["s3"], "region_name": REGION},
        },
    )
    for cmd in (
        ["orchestrator", "register", "har_docker", "--flavor=local_docker", '--run_args={"network_mode": "host"}'],
        ["image-builder", "register", "har_builder", "--flavor=local"],
        ["experiment-tracker", "register", "mlflow_tracker", "--flavor=mlflow", f"--tracking_uri={urls['mlflow']}",
         "--tracking_username={{har_mlflow.MLFLOW_TRACKING_USERNAME}}",
         "--tracking_password={{har_mlflow.MLFLOW_TRACKING_PASSWORD}}"],
        # the secrets' keys become environment variables of every step: DVC reads AWS_*,
        # steps that talk to MLflow outside the tracker read MLFLOW_TRACKING_*
        ["stack", "register", "har_rehearsal", "-o", "har_docker", "-a", "har_s3_store", "-e", "mlflow_tracker",
         "-i", "har_builder", "--secret", "har_s3", "--secret", "har_mlflow",
         "--env", f"MLFLOW_TRACKING_URI={urls['mlflow']}", "--set"],
    ):  # fmt: skip
        sh([*zenml, *cmd], env=env, cwd=project, capture=True)


def push_data(project: Path, env: dict, urls: dict) -> str:
    """DSADS subjects SUBJECTS imported on the host, versioned and pushed to the S3 remote."""
    dvc = [sys.executable, "-m", "dvc"]
    sh([*dvc, "config", "--local", "core.no_scm", "true"], env=env, cwd=project)  # the copy has no .git
    sh([*dvc, "remote", "add", "--force", "--default", "s3", f"s3://{BUCKET}/dvc"], env=env, cwd=project)
    sh([*dvc, "remote", "modify", "s3", "endpointurl", urls["s3"]], env=env, cwd=project)
    sh([*dvc, "remote", "modify", "s3", "region", REGION], env=env, cwd=project)
    har = [sys.executable, "-m", "cli"]
    sh([*har, "data", "import", "dsads", "--subjects", ",".join(SUBJECTS), "--no-version"], env=env, cwd=project)
    sh([*har, "data", "version", "--push"], env=env, cwd=project)
    dvc_file = yaml.safe_load((project / "data.dvc").read_text())
    return dvc_file["outs"][0]["md5"]


def rehearsal_config(project: Path) -> dict:
    """configs/cluster.yaml with a subset of DSADS, a short budget, open gates and pip pointed at
    the parent image's wheelhouse (the parent image itself is set once it is built)."""
    config = yaml.safe_load((project / "configs" / "cluster.yaml").read_text())
    # the overlay's parameters written out in full (configs/train.yaml's, which it leaves out)
    params = config["parameters"] = run_parameters(config, project / "configs" / "train.yaml")
    params["subjects"] = SUBJECTS
    params["split"] = {"protocol": "holdout", "test_subjects": TEST, "val_subjects": VAL}
    params["trainer"]["time_budget_min"] = TIME_BUDGET_MIN
    params["promotion"].update(OPEN_GATES)
    params["edge"]["max_recordings"] = 3
    docker = config["settings"]["docker"]
    docker["python_package_installer_args"] = {}  # PIP_NO_INDEX + PIP_FIND_LINKS=/wheels in the parent
    docker["apt_packages"] = []  # no apt mirror needed: DVC runs without git (core.no_scm)
    # the image has no .git: the lineage's commit is named where the image is built
    docker["environment"]["HAR_GIT_COMMIT"] = git("rev-parse", "HEAD")
    docker["environment"]["HAR_GIT_DIRTY"] = "1" if git("status", "--porcelain", "--untracked-files=no") else "0"
    return config


def write_config(project: Path, config: dict) -> Path:
    path = project / "configs" / "rehearsal.yaml"
    path.write_text("# written by deployment/rehearsal/rehearse.py\n" + yaml.safe_dump(config, sort_keys=False))
    return path


# -- the run and what it left behind -----------------------------------------------------------


def serve_and_query(project: Path, env: dict, result: dict, stack: ExitStack) -> dict:
    """har edge pull -> bentoml build -> bentoml serve -> /classify with one real test window
    per activity (the run's own test split, loaded from the artifact store)."""
    import numpy as np
    from zenml.client import Client

    from har_runtime.runtime import encode_b64

    har = [sys.executable, "-m", "cli"]
    pulled = sh([*har, "edge", "pull", "-m", result["registered_model"]], env=env, cwd=project, capture=True)
    print(pulled.strip())
    model = re.search(r"BentoML model (\S+)", pulled).group(1)
    bentoml = str(Path(sys.executable).parent / "bentoml")
    out = sh([bentoml, "build", "--output", "tag"], env=env, cwd=project, capture=True)
    tag = re.findall(r"__tag__:(\S+)", out)
    if not tag:
        raise RehearsalError(f"bentoml build printed no tag:\n{out}")
    port = free_port()
    proc = start(
        [bentoml, "serve", tag[-1], "--host", "127.0.0.1", "--port", str(port)],
        project.parent / "services" / "bentoml.log", env, stack,
    )  # fmt: skip
    wait_http(f"http://127.0.0.1:{port}/readyz", "bentoml serve", proc, timeout_s=180)
    run = Client().get_pipeline_run(result["run"]["id"])
    test = run.steps["split_windows_step"].outputs["split"][0].load().test
    pick = [int(np.flatnonzero(test.y == c)[0]) for c in np.unique(test.y)]  # first window of each class
    body = {"windows": encode_b64(test.x[pick])}  # the runtime's own wire format
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/classify", json.dumps(body).encode(), {"content-type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=60) as resp:
        got = [r["label"] for r in json.loads(resp.read())]
    truth = [test.label_names[int(test.y[i])] for i in pick]
    right = sum(a == b for a, b in zip(got, truth, strict=True))
    say(f"bentoml serve {tag[-1]}: {len(got)} real test windows (one per activity), {right} classified right")
    return {"model": model, "bento": tag[-1], "windows": len(got), "correct": right}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (printed)")
    parser.add_argument("--out", type=Path, default=RESULT, help=f"result JSON (default {RESULT.relative_to(REPO)})")
    args = parser.parse_args()
    t0 = time.monotonic()
    docker_ready()
    root = Path(tempfile.mkdtemp(prefix="har-rehearsal-"))
    project = root / "project"
    project.mkdir()
    copy_project(project)
    datasets = os.environ.get("HAR_DATASETS_DIR") or str(REPO.parent / "shared" / "datasets")  # the raw files
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HAR_", "MLFLOW_", "ZENML_", "BENTOML_", "AWS_"))}
    env.update(QUIET)
    env.update(
        ZENML_CONFIG_PATH=str(root / "zenml"),
        BENTOML_HOME=str(root / "bentoml"),
        HAR_CACHE_DIR=str(root / "cache"),
        HAR_DATASETS_DIR=datasets,
        PYTHONPATH=str(project),  # this copy, not the checkout
        AWS_ACCESS_KEY_ID=secrets.token_hex(10),  # moto accepts any; they still travel as secrets
        AWS_SECRET_ACCESS_KEY=secrets.token_urlsafe(30),
        AWS_DEFAULT_REGION=REGION,
        MLFLOW_TRACKING_USERNAME="har-admin",
        MLFLOW_TRACKING_PASSWORD=secrets.token_urlsafe(24),
    )
    os.environ.clear()
    os.environ.update(env)
    os.chdir(project)
    cache = REPO / ".cache" / "rehearsal"
    cache.mkdir(parents=True, exist_ok=True)
    ok = False
    with ExitStack() as stack:
        try:
            say(f"project copy {project}")
            t = time.monotonic()
            urls = start_services(root, env, stack)
            env["MLFLOW_TRACKING_URI"] = os.environ["MLFLOW_TRACKING_URI"] = urls["mlflow"]
            register_stack(project, env, urls)
            services_s, t = time.monotonic() - t, time.monotonic()
            rootfs = rootfs_image()  # built once per machine, then reused
            rootfs_s, t = time.monotonic() - t, time.monotonic()
            config = rehearsal_config(project)
            wheels = wheelhouse(*image_lock(project), cache)  # the cluster lock's files
            config["settings"]["docker"]["parent_image"] = base_image(rootfs, wheels)  # once per lock file
            config_path = write_config(project, config)
            parent_s = time.monotonic() - t
            data_version = push_data(project, env, urls)
            shutil.rmtree(project / ".dvc" / "cache")  # the steps must fetch the version from S3
            zenml = str(Path(sys.executable).parent / "zenml")
            source = "pipelines.train_pipeline.train_pipeline"
            t = time.monotonic()
            say("zenml pipeline build (the step image)")
            sh([zenml, "pipeline", "build", source, "-c", str(config_path), "-o", str(root / "build.yaml")],
               env=env, cwd=project)  # fmt: skip
            build_s = time.monotonic() - t
            build_id = str(yaml.safe_load((root / "build.yaml").read_text())["id"])
            t = time.monotonic()
            say("zenml pipeline run (one container per step)")
            sh([zenml, "pipeline", "run", source, "-c", str(config_path), "--build", build_id],
               env={**env, "ZENML_LOGGING_VERBOSITY": "INFO"}, cwd=project)  # fmt: skip  # each step's log
            run_s = time.monotonic() - t
            result = collect(project, env, config, data_version, build_id)
            result["bentoml"] = serve_and_query(project, env, result, stack)
            result["lineage"] = lineage(project, env, result)
            t = time.monotonic()
            result["scheduled_run"] = scheduled_stop(project, env, config, build_id, data_version)
            scheduled_s = time.monotonic() - t
            bench_dir = root / "benchmark"
            result["benchmark"] = rehearse_benchmark(project, env, config_path, bench_dir, data_version, SUBJECTS)
            result["timing_s"] = {
                "services_and_stack": round(services_s, 1),
                "rootfs_image": round(rootfs_s, 1),
                "wheelhouse_and_parent_image": round(parent_s, 1),
                "image_build": round(build_s, 1),
                "pipeline_run": round(run_s, 1),
                "scheduled_run": round(scheduled_s, 1),
                "benchmark_first_run": result["benchmark"]["first_run"]["seconds"],
                "benchmark_second_run": result["benchmark"]["second_run"]["seconds"],
                "total": round(time.monotonic() - t0, 1),
            }
            write_result(result, args.out)
            ok = True
        finally:
            if ok and not args.keep:
                shutil.rmtree(root, ignore_errors=True)
            else:
                say(f"kept {root} (services/*.log hold the servers' logs)")
    say(f"passed in {time.monotonic() - t0:.0f} s; result {args.out}")


def collect(project: Path, env: dict, config: dict, data_version: str, build_id: str) -> dict:
    """The run as ZenML, Docker and MLflow saw it; raises when a check fails."""
    from mlflow.tracking import MlflowClient
    from zenml.client import Client

    client = Client()
    run = client.get_pipeline("train_pipeline").last_run
    containers = step_containers(run.orchestrator_run_id)
    steps = {}
    for name, step in run.steps.items():
        c = containers.get(name)
        steps[name] = {
            "status": str(step.status.value),
            "duration_s": round((step.end_time - step.start_time).total_seconds(), 1),
            **(c or {"container_id": None}),
        }
    problems = [f"{n}: {s['status']}" for n, s in steps.items() if s["status"] != "completed"]
    problems += [f"{n}: no container" for n, s in steps.items() if not s["container_id"]]
    ids = [s["container_id"] for s in steps.values() if s["container_id"]]
    if len(set(ids)) != len(ids):
        problems.append("steps shared a container")
    components = {str(t.value if hasattr(t, "value") else t): c[0] for t, c in run.stack.components.items()}
    store = str(components["artifact_store"].configuration["path"])
    flavor = components["orchestrator"].flavor_name
    if flavor != "local_docker" or not store.startswith("s3://"):
        problems.append(f"the run's stack is {flavor} + {store}, not local_docker + s3://")
    problems += [
        f"{n}: mounts {s['mounts']}"
        for n, s in steps.items()
        if any(not m.startswith(env["ZENML_CONFIG_PATH"]) for m in s.get("mounts", []))
    ]
    decision = run.steps["promote_model_step"].outputs["promotion_decision"][0].load()
    metrics = run.steps["evaluate_model_step"].outputs["test_metrics"][0].load()
    name = decision["registered_model"]
    mlflow = MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"], registry_uri=env["MLFLOW_TRACKING_URI"])
    champion = mlflow.get_model_version_by_alias(name, "champion")
    if not decision["promoted"]:
        problems.append(f"not promoted: {decision['reasons']}")
    if problems:
        raise RehearsalError("the run is not what a cluster run must be:\n  " + "\n  ".join(problems))
    say(f"{len(steps)} steps, {len(set(ids))} containers; {name} v{champion.version} is the champion")
    return {
        "what": "train_pipeline with one container per step on one machine (make rehearsal)",
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "git_commit": git("rev-parse", "HEAD"),
        "machine": {"cpus": os.cpu_count(), "platform": sys.platform, "docker": _docker_version()},
        "orchestrator_flavor": flavor,
        "artifact_store_scheme": store.split("://")[0],
        "tracking_uri_scheme": env["MLFLOW_TRACKING_URI"].split("://")[0],
        "dvc_remote_scheme": "s3",
        "image": {"build_id": build_id, "parent": config["settings"]["docker"]["parent_image"]},
        "data": {"dataset": "dsads", "subjects": SUBJECTS, "val_subjects": VAL, "test_subjects": TEST,
                 "data_version": data_version},
        "trainer": {"model": config["parameters"]["model"]["name"], "time_budget_min": TIME_BUDGET_MIN},
        "promotion_gates": "open: the rehearsal checks the plumbing (configs/train.yaml's gates: make test)",
        "run": {"id": str(run.id), "name": run.name, "status": str(run.status.value), "steps": steps},
        "decision": decision["outcome"],
        "test_macro_f1": round(float(metrics["macro_f1"]), 4),
        "registered_model": name,
        "champion_version": champion.version,
    }  # fmt: skip


def scheduled_stop(project: Path, env: dict, config: dict, build_id: str, data_version: str) -> dict:
    """The nightly run of configs/schedule.yaml on the data the champion was trained on: its
    ingest container must take the data version from ZenML's har_data_version (published by
    `har data version --push`), and the run must stop in check_new_data_step, before training."""
    from zenml.client import Client

    scheduled = json.loads(json.dumps(config))
    scheduled["parameters"]["stop_if_unchanged"] = True
    scheduled["steps"]["data_version_step"]["parameters"]["latest"] = True
    path = project / "configs" / "rehearsal-scheduled.yaml"
    path.write_text(yaml.safe_dump(scheduled, sort_keys=False))
    say("a scheduled run on unchanged data (must stop before training)")
    zenml = str(Path(sys.executable).parent / "zenml")
    cmd = [zenml, "pipeline", "run", "pipelines.train_pipeline.train_pipeline", "-c", str(path), "--build", build_id]
    print("+ " + " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, env=env, cwd=project, capture_output=True, text=True)
    out = " ".join((proc.stdout + proc.stderr).split())
    run = Client().get_pipeline("train_pipeline").last_run
    steps = {name: str(step.status.value) for name, step in run.steps.items()}
    ingest = run.steps.get("data_version_step")
    source = str(ingest.run_metadata.get("data_version_source")) if ingest else None
    pulled = ingest.outputs["data_version"][0].load() if ingest else None
    containers = step_containers(run.orchestrator_run_id)
    problems = []
    if proc.returncode == 0:
        problems.append("the run did not stop")
    if steps != {"data_version_step": "completed", "check_new_data_step": "failed"}:
        problems.append(f"steps {steps}, not ingest completed + check_new_data_step stopped")
    if not (source or "").startswith("har_data_version v") or pulled != data_version:
        problems.append(f"ingest took {pulled} from {source}, not {data_version} from har_data_version")
    if sorted(containers) != sorted(steps):
        problems.append(f"containers for {sorted(containers)}, steps {sorted(steps)}")
    check = run.steps.get("check_new_data_step")
    why = check.exception_info.traceback if check and check.exception_info else ""
    if "NothingNewError: nothing new" not in why:
        problems.append(f"check_new_data_step did not stop with NothingNewError: {why[-1000:]}")
    if problems:
        raise RehearsalError("the scheduled run is wrong:\n  " + "\n  ".join(problems) + f"\n{out[-3000:]}")
    say(f"scheduled run stopped before training: data version {pulled} from {source}")
    return {"run": run.name, "steps": steps, "data_version": pulled, "data_version_source": source,
            "stopped_because": why.strip().splitlines()[-1],
            "containers": {n: c["container_id"] for n, c in containers.items()}}  # fmt: skip


def lineage(project: Path, env: dict, result: dict) -> list[str]:
    """`har lineage` against the tracking server: it must show the whole chain of this run."""
    har = [sys.executable, "-m", "cli"]
    out = sh([*har, "lineage", "-m", result["registered_model"]], env=env, cwd=project, capture=True)
    needles = [result["data"]["data_version"].removesuffix(".dir"), result["run"]["id"], result["bentoml"]["model"]]
    missing = [n for n in needles if n not in out]
    if missing:
        raise RehearsalError(f"har lineage does not show {missing}:\n{out}")
    return [line for line in out.splitlines() if line.strip()]


def _docker_version() -> str:
    return subprocess.run(
        ["docker", "version", "--format", "{{.Server.Version}}"], capture_output=True, text=True
    ).stdout.strip()


def write_result(result: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2, default=str) + "\n")
    tmp.replace(path)


if __name__ == "__main__":
    try:
        main()
    except RehearsalError as e:
        print(f"\nrehearsal failed: {e}", file=sys.stderr)
        sys.exit(1)
