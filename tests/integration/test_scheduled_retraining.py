"""Scheduled retraining on a cluster: cron per orchestrator, the newest pushed data version,
the "nothing new" rule, a promotion rule that cannot walk the champion down, and the
failure hook's summary.

The pipeline-level stop (a scheduled run on data the champion was trained on stops after
ingest, before training) runs end to end in tests/e2e/test_retrain_e2e.py.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from components.evaluation.promotion import PromotionConfig, decide
from components.retraining.retrain import ModelRef, NothingNewError, nothing_new
from components.retraining.schedule import ScheduleError, orchestrator_cron, parse_cron, scheduled_run_config
from tests.conftest import REPO_ROOT, isolated_env

SCHEDULE = yaml.safe_load((REPO_ROOT / "configs" / "schedule.yaml").read_text())


# -- cron per orchestrator -------------------------------------------------------------
@pytest.mark.parametrize(
    ("expr", "kubernetes", "kubeflow"),
    [
        ("0 3 * * *", "0 3 * * *", "0 0 3 * * *"),
        ("30 4 * * 1-5", "30 4 * * 1-5", "0 30 4 * * 1-5"),
        ("*/15  * * * *", "*/15 * * * *", "0 */15 * * * *"),
        ("@daily", "0 0 * * *", "0 0 0 * * *"),
    ],
)
def test_one_cron_means_the_same_time_on_each_orchestrator(expr, kubernetes, kubeflow):
    assert orchestrator_cron(expr, "kubernetes") == kubernetes
    k = orchestrator_cron(expr, "kubeflow")
    assert k == kubeflow
    seconds, rest = k.split(" ", 1)
    # KFP reads seconds first: the remaining 5 fields are the same schedule as Kubernetes'
    assert seconds == "0" and parse_cron(rest) == parse_cron(kubernetes)


def test_cron_errors_name_the_problem():
    with pytest.raises(ScheduleError, match="need 5"):
        orchestrator_cron("0 0 3 * * *", "kubeflow")  # already 6 fields: not taken as 5
    with pytest.raises(ScheduleError, match="har schedule install"):
        orchestrator_cron("0 3 * * *", "local")
    with pytest.raises(ScheduleError, match="no cron translation for the 'airflow'"):
        orchestrator_cron("0 3 * * *", "airflow")


def test_schedule_yaml_becomes_a_zenml_schedule_per_orchestrator():
    from zenml.integrations.kubernetes.flavors.kubernetes_orchestrator_flavor import KubernetesOrchestratorSettings

    cron = SCHEDULE["extra"]["cron_expression"]
    assert "schedule" not in SCHEDULE  # no orchestrator reads a cron it was not written for
    k8s = scheduled_run_config(SCHEDULE, "kubernetes")
    assert k8s["schedule"] == {"name": "cmd-har-nightly-retrain", "cron_expression": cron}
    settings = KubernetesOrchestratorSettings.model_validate(k8s["settings"]["orchestrator.kubernetes"])
    assert settings.concurrency_policy == "Forbid"
    kfp = scheduled_run_config(SCHEDULE, "kubeflow")
    assert kfp["schedule"]["cron_expression"] == f"0 {cron}"
    assert "orchestrator.kubernetes" not in kfp["settings"]
    assert k8s["extra"]["scheduled_for"] == "kubernetes" and "scheduled_for" not in SCHEDULE["extra"]
    # the scheduled run pulls the newest pushed data and stops when it is nothing new
    assert SCHEDULE["steps"]["data_version_step"]["parameters"] == {"pull": True, "latest": True}
    assert SCHEDULE["parameters"]["stop_if_unchanged"] is True
    with pytest.raises(ScheduleError, match="extra.cron_expression"):
        scheduled_run_config({"parameters": {}}, "kubernetes")


def test_har_schedule_deploy_dry_run_writes_the_translated_config(tmp_path):
    from typer.testing import CliRunner

    from cli.main import app

    env = {"HAR_ARTIFACTS_DIR": str(tmp_path)}
    res = CliRunner().invoke(app, ["schedule", "deploy", "--orchestrator", "kubeflow", "--dry-run"], env=env)
    assert res.exit_code == 0, res.output
    written = yaml.safe_load((tmp_path / "schedules" / "schedule.kubeflow.yaml").read_text())
    assert written["schedule"]["cron_expression"] == "0 0 3 * * *"
    assert "kubeflow reads '0 0 3 * * *'" in " ".join(res.output.split())
    res = CliRunner().invoke(app, ["schedule", "deploy", "--orchestrator", "local", "--dry-run"], env=env)
    assert res.exit_code == 1 and "cannot schedule" in res.output


# -- nothing new -------------------------------------------------------------------------
def test_nothing_new_when_the_champion_or_the_newest_version_saw_this_data():
    champion = ModelRef("3", "md5-a", "champion")
    assert "champion m v3 was trained on this data version (md5-a)" in nothing_new("m", "md5-a", champion, champion)
    loser = ModelRef("4", "md5-b", "challenger")
    assert "m v4 was already trained on this data version (md5-b)" in nothing_new("m", "md5-b", champion, loser)
    assert nothing_new("m", "md5-c", champion, loser) is None
    assert nothing_new("m", "md5-c", None, None) is None


# -- promotion cannot walk the champion down -------------------------------------------
CFG = PromotionConfig(**{**json.loads(json.dumps(PromotionConfig().__dict__)), "tolerance": 0.005,
                         "min_macro_f1": 0.5, "min_int8_size_ratio": 1.0, "min_class_recall": 0.0})  # fmt: skip


def _candidate(f1: float) -> dict:
    return {"macro_f1": f1, "int8_macro_f1": f1, "per_class_recall": [0.9, 0.9], "latency_ms_p50": 1.0,
            "model_bytes": 1000, "int8_size_ratio": 2.0, "support": [5, 5]}  # fmt: skip


class Registry:
    """The registry as promote_model_step sees it, for one test split: the champion's score,
    whether it was trained on the run's data, and the best score any champion recorded."""

    def __init__(self, f1: float, data: str):
        self.champion, self.champion_data, self.history = 1, data, [(1, f1, data)]
        self.versions = 1

    def night(self, f1: float, data: str) -> str:
        champ_f1 = next(s for v, s, _ in self.history if v == self.champion)
        best = max(s for _, s, d in self.history if d == data) if any(d == data for *_, d in self.history) else None
        d = decide(_candidate(f1), champ_f1, CFG, best_macro_f1=best, same_data=self.champion_data == data)
        self.versions += 1
        if d.promoted:
            self.champion, self.champion_data = self.versions, data
            self.history.append((self.versions, f1, data))
        return d.outcome


def test_ten_identical_nightly_runs_leave_the_champion_where_it_was():
    reg = Registry(0.90, "md5-a")
    outcomes = [reg.night(0.90, "md5-a") for _ in range(10)]
    assert outcomes == ["challenger"] * 10 and reg.champion == 1


def test_in_tolerance_promotions_cannot_add_up():
    # each night's model is 0.004 below the last: within tolerance (0.005) of its predecessor
    reg = Registry(0.90, "md5-a")
    scores = [round(0.90 - 0.004 * (i + 1), 4) for i in range(10)]
    outcomes = [reg.night(f1, "md5-b") for f1 in scores]
    # only the first is within 0.005 of the best champion on this split (0.900 is not on md5-b:
    # the first new-data model sets the reference there); the rest lose to it
    champ_f1 = next(s for v, s, _ in reg.history if v == reg.champion)
    assert outcomes[0] == "champion" and set(outcomes[1:]) == {"challenger"}
    assert champ_f1 >= scores[0] - CFG.tolerance
    # without the fixed reference, the old rule would have walked it down to 0.86
    assert decide(_candidate(scores[1]), scores[0], CFG).outcome == "champion"


def test_a_better_model_still_wins_and_new_data_keeps_the_tolerance():
    reg = Registry(0.90, "md5-a")
    assert reg.night(0.91, "md5-a") == "champion"  # better on the same data
    assert reg.night(0.906, "md5-c") == "champion"  # new data: within tolerance of the champion
    assert reg.night(0.89, "md5-d") == "challenger"


# -- the newest pushed data version ------------------------------------------------------
_PULL = """
import json
from zenml import save_artifact
from components.data.versioning import PUBLISHED_ARTIFACT
from steps.data_version import pulled_version

before = pulled_version("dsads", latest=True)  # nothing published: data.dvc's version
for md5 in ["aaaa", "bbbb"]:
    save_artifact(md5, name=PUBLISHED_ARTIFACT, user_metadata={"md5": md5}, include_visualizations=False)
print("RESULT" + json.dumps({"before": before, "latest": pulled_version("dsads", latest=True),
                             "pinned": pulled_version("dsads", latest=False)}))
"""


def test_a_scheduled_run_pulls_the_newest_published_version_not_the_frozen_data_dvc(tmp_path):
    env = isolated_env(tmp_path)
    proj = tmp_path / "proj"
    (proj / "data.dvc").write_text(yaml.safe_dump({"outs": [{"md5": "frozen.dir", "path": "data"}]}))
    proc = subprocess.run([sys.executable, "-c", _PULL], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.split("RESULT", 1)[1])
    assert got["before"] == ["frozen.dir", "data.dvc"]
    assert got["latest"] == ["bbbb", "har_data_version v2"]
    assert got["pinned"] == ["frozen.dir", "data.dvc"]


# -- the failure hook ------------------------------------------------------------------------
def test_failure_summary_names_step_run_and_cause():
    from steps.failure_hook import MAX_MESSAGE, failure_summary

    s = failure_summary("train_model_step", "train_pipeline-1", RuntimeError("out of memory\n  at layer 3"))
    assert s.startswith("cmd-har run train_pipeline-1 FAILED in step train_model_step: RuntimeError: out of memory at")
    assert "zenml pipeline runs logs train_pipeline-1" in s
    long = failure_summary("s", "r", ValueError("x" * 5000))
    assert len(long) < MAX_MESSAGE + 300
    stop = failure_summary("check_new_data_step", "r", NothingNewError("nothing new, stopping before training"))
    assert stop == "cmd-har run r stopped at check_new_data_step: nothing new, stopping before training"
