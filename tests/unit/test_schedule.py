"""`har schedule` (crontab file / a stand-in `crontab` command, systemd units) and the data lock.

Never touches the real crontab: every test uses a temporary file, or a fake `crontab`
executable first on PATH that reads and writes a temporary file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time

import pytest
from typer.testing import CliRunner

from cli.main import app
from components.config import REPO_ROOT
from components.retraining.lock import LockBusy, data_lock
from components.retraining.schedule import Crontab, ScheduleError, cron_entry, job, on_calendar, parse_cron

runner = CliRunner()
ENV = {"COLUMNS": "400"}


@pytest.mark.parametrize(
    ("expr", "fields"),
    [
        ("0 3 * * *", [{0}, {3}, None, None, None]),
        ("*/15 8-18 * * mon-fri", [{0, 15, 30, 45}, set(range(8, 19)), None, None, {1, 2, 3, 4, 5}]),
        ("30 2 1,15 * *", [{30}, {2}, {1, 15}, None, None]),
        ("0 0 * * 7", [{0}, {0}, None, None, {0}]),
    ],
)
def test_parse_cron(expr, fields):
    assert parse_cron(expr) == fields


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("0 3 * *", "has 4 fields; need 5"),
        ("61 3 * * *", "outside 0-59"),
        ("0 24 * * *", "outside 0-23"),
        ("0 3 * * funday", "unknown value 'funday'"),
        ("0 3 5-1 * *", "outside 1-31"),
    ],
)
def test_bad_cron_expressions_are_refused(expr, message):
    with pytest.raises(ScheduleError, match=message):
        parse_cron(expr)


@pytest.mark.parametrize(
    ("expr", "calendar"),
    [
        ("0 3 * * *", "*-*-* 03:00:00"),
        ("*/20 * * * mon-fri", "Mon,Tue,Wed,Thu,Fri *-*-* *:00,20,40:00"),
        ("15 4 1 */3 *", "*-01,04,07,10-01 04:15:00"),
        ("@weekly", "weekly"),
    ],
)
def test_systemd_calendar_matches_cron(expr, calendar):
    assert on_calendar(expr) == calendar
    exe = shutil.which("systemd-analyze")
    if exe:  # systemd itself agrees that the expression is valid
        proc = subprocess.run([exe, "calendar", calendar], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr


def test_systemd_refuses_day_of_month_and_week_together():
    with pytest.raises(ScheduleError, match="day-of-month OR day-of-week"):
        on_calendar("0 3 1 * mon")


def test_cron_entry_runs_har_retrain_from_the_checkout_with_its_venv(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:////srv/mlflow%20x.db")
    j = job("configs/train.yaml", log=tmp_path / "retrain.log")
    marker, line = cron_entry("0 3 * * *", j).splitlines()
    assert marker.startswith(f"# cmd-har retrain: {REPO_ROOT} ")
    assert line.startswith(f"0 3 * * * cd {REPO_ROOT} && env ")
    assert f"{REPO_ROOT}/.venv/bin/har retrain -c configs/train.yaml >> {tmp_path}/retrain.log 2>&1" in line
    assert "MLFLOW_TRACKING_URI=sqlite:////srv/mlflow\\%20x.db " in line  # % escaped for cron
    assert f"ZENML_CONFIG_PATH={os.environ.get('ZENML_CONFIG_PATH', REPO_ROOT / '.zenml')}" in line
    assert "ZENML_ANALYTICS_OPT_IN=false" in line and f"PATH={REPO_ROOT}/.venv/bin:" in line


def test_install_show_remove_with_a_crontab_file(tmp_path):
    tab = tmp_path / "crontab"
    tab.write_text("MAILTO=me@example.org\n# my backup\n0 1 * * * /usr/local/bin/backup\n")
    args = ["--crontab-file", str(tab)]
    res = runner.invoke(app, ["schedule", "show", *args], env=ENV)
    assert res.exit_code == 0 and "no retrain schedule" in res.output
    res = runner.invoke(
        app, ["schedule", "install", "--cron", "0 3 * * *", *args, "--log", str(tmp_path / "r.log")], env=ENV
    )
    assert res.exit_code == 0 and "installed the retrain schedule" in res.output, res.output
    text = tab.read_text()
    assert text.startswith("MAILTO=me@example.org\n# my backup\n0 1 * * * /usr/local/bin/backup\n# cmd-har retrain:")
    # installing again replaces this checkout's entry instead of adding a second one
    res = runner.invoke(app, ["schedule", "install", "--cron", "30 4 * * 1", *args], env=ENV)
    assert res.exit_code == 0 and "replaced" in res.output
    text = tab.read_text()
    assert text.count("# cmd-har retrain:") == 1 and "\n30 4 * * 1 cd " in text and "\n0 3 * * * " not in text
    (tmp_path / "r.log").write_text("har retrain 2026-11-27 03:00:01\nnothing to do: ...\n")
    res = runner.invoke(app, ["schedule", "show", *args], env=ENV)
    assert "30 4 * * 1 cd" in res.output and "har retrain" in res.output
    assert "no log yet" in res.output  # the re-install went back to the default log file
    res = runner.invoke(app, ["schedule", "install", "--cron", "30 4 * * 1", *args, "--log", str(tmp_path / "r.log")])
    res = runner.invoke(app, ["schedule", "show", *args], env=ENV)
    assert f"last lines of {tmp_path / 'r.log'}" in res.output and "nothing to do: ..." in res.output
    text = tab.read_text()
    res = runner.invoke(app, ["schedule", "install", "--cron", "every day", *args], env=ENV)
    assert res.exit_code == 1 and "has 2 fields" in res.output and tab.read_text() == text
    res = runner.invoke(app, ["schedule", "remove", *args], env=ENV)
    assert res.exit_code == 0 and "removed" in res.output
    assert tab.read_text() == "MAILTO=me@example.org\n# my backup\n0 1 * * * /usr/local/bin/backup\n"


def test_the_crontab_command_path_with_a_stand_in_crontab(tmp_path, monkeypatch):
    store = tmp_path / "spool"
    fake = tmp_path / "bin" / "crontab"
    fake.parent.mkdir()
    fake.write_text(
        textwrap.dedent(f"""\
        #!/bin/sh
        if [ "$1" = "-l" ]; then
          [ -f {store} ] || {{ echo "no crontab for tester" >&2; exit 1; }}
          cat {store}
        elif [ "$1" = "-" ]; then cat > {store}
        else exit 2; fi
        """)
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:{os.environ['PATH']}")
    tab = Crontab()
    assert tab.read() == "" and tab.entry(REPO_ROOT) is None
    assert tab.install(cron_entry("0 3 * * *", job()), REPO_ROOT) is False
    assert "har retrain" in tab.entry(REPO_ROOT) and store.read_text().count("\n") == 2
    assert tab.remove(REPO_ROOT) and store.read_text() == ""


def test_systemd_units_are_printed_not_installed(tmp_path):
    res = runner.invoke(app, ["schedule", "install", "--systemd", "--cron", "0 3 * * *"], env=ENV)
    assert res.exit_code == 0, res.output
    assert "OnCalendar=*-*-* 03:00:00" in res.output and "Type=oneshot" in res.output
    assert f"ExecStart={REPO_ROOT}/.venv/bin/har retrain -c configs/train.yaml" in res.output
    assert (
        "StandardOutput=append:" in res.output and "systemctl --user enable --now cmd-har-retrain.timer" in res.output
    )


_HOLD = """
import sys, time
from pathlib import Path
from components.retraining.lock import data_lock
with data_lock("retrain", repo=Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(60)
"""


def test_the_lock_excludes_a_second_holder_and_dies_with_its_holder(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(tmp_path)], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(LockBusy, match=rf"retrain \(pid {proc.pid} on .*\) holds the data lock"):
            with data_lock("data ingest", repo=tmp_path):
                pass
        with pytest.raises(LockBusy):  # waiting does not help while it is held
            with data_lock("data ingest", repo=tmp_path, wait_s=0.3):
                pass
    finally:
        proc.kill()  # SIGKILL: no cleanup code runs, the kernel releases the lock
        proc.wait()
    with data_lock("retrain", repo=tmp_path) as path:
        assert path.exists()


def test_retrain_refuses_to_run_while_the_lock_is_held(tmp_path, monkeypatch):
    project = tmp_path / "proj"
    monkeypatch.setenv("HAR_DATA_DIR", str(project / "data"))
    with data_lock("data ingest", repo=project):
        res = runner.invoke(app, ["retrain", "-c", str(REPO_ROOT / "configs" / "train.yaml")], env=ENV)
    assert res.exit_code == 75, res.output
    assert "data ingest (pid" in res.output and "holds the data lock" in res.output


def test_a_stop_signal_inside_a_pipeline_step_still_reports_an_interrupted_retrain(tmp_path, monkeypatch):
    """ZenML turns an interrupt inside a step into a step failure; `har retrain` still says stopped."""
    import signal as sig

    from cli import retrain as cli_retrain
    from components.retraining.retrain import RetrainPlan

    def pipeline_with_a_step(config):
        try:
            os.kill(os.getpid(), sig.SIGTERM)  # what cron / systemctl stop sends, mid-step
            time.sleep(5)
        except BaseException as e:  # as ZenML's step runner does
            raise RuntimeError("Pipeline run has failed due to failure in step(s): train_model_step") from e

    monkeypatch.setenv("HAR_DATA_DIR", str(tmp_path / "proj" / "data"))
    monkeypatch.setattr(
        "components.retraining.retrain.plan_retrain", lambda c, force: RetrainPlan(True, "new", "m", None)
    )
    monkeypatch.setattr(cli_retrain, "_run_pipeline", pipeline_with_a_step)
    before = sig.getsignal(sig.SIGTERM)
    res = runner.invoke(app, ["retrain", "-c", str(REPO_ROOT / "configs" / "train.yaml")], env=ENV)
    assert res.exit_code == 130 and "retrain interrupted" in res.output, res.output
    assert sig.getsignal(sig.SIGTERM) == before  # handlers restored
    with data_lock("retrain", repo=tmp_path / "proj"):  # and the lock is free again
        pass


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_stop_lost_inside_a_finalizer_is_delivered_again(tmp_path, monkeypatch):
    """Python drops an exception raised while it runs a `__del__`; the stop still lands."""
    import signal as sig

    from cli import retrain as cli_retrain
    from components.retraining.retrain import RetrainPlan

    class StopInFinalizer:
        def __del__(self):
            os.kill(os.getpid(), sig.SIGTERM)  # handled inside this finalizer: its KeyboardInterrupt is dropped

    finished = []

    def pipeline(config):
        StopInFinalizer()  # collected at once
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # a training that would otherwise finish and promote
            time.sleep(0.01)
        finished.append(True)

    monkeypatch.setenv("HAR_DATA_DIR", str(tmp_path / "proj" / "data"))
    monkeypatch.setattr(
        "components.retraining.retrain.plan_retrain", lambda c, force: RetrainPlan(True, "new", "m", None)
    )
    monkeypatch.setattr(cli_retrain, "_run_pipeline", pipeline)
    monkeypatch.setattr(cli_retrain, "print_train_run_summary", lambda run: None)
    monkeypatch.setattr(cli_retrain._StopRequest, "REPEAT_S", 0.2)
    res = runner.invoke(app, ["retrain", "-c", str(REPO_ROOT / "configs" / "train.yaml")], env=ENV)
    assert not finished and res.exit_code == 130 and "retrain interrupted" in res.output, res.output
