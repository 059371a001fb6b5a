"""Local schedules for ``har retrain``: a user crontab entry or a systemd user timer.

The entry runs ``har retrain`` from this checkout with its virtual environment and the
environment it was installed from (ZenML/MLflow/BentoML state, telemetry off), and
appends everything to a log file. Each checkout owns at most one entry, found by its
marker comment, so ``install`` is idempotent and ``remove`` touches nothing else.
The crontab is read and written with ``crontab -l`` / ``crontab -``, or a plain file
(``--crontab-file``; what the tests use, never the real crontab).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from components.config import REPO_ROOT, TELEMETRY_OFF, artifacts_dir
from components.io_utils import atomic_write_text
from components.tracking import tracking_uri

MARKER = "# cmd-har retrain:"
MACROS = {"@hourly": "hourly", "@daily": "daily", "@midnight": "daily", "@weekly": "weekly",
          "@monthly": "monthly", "@yearly": "yearly", "@annually": "yearly"}  # fmt: skip
FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7))
NAMES = {
    3: ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"],
    4: ["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
}
SYSTEMD_DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
# Where this checkout's state lives (as the Makefile sets it); the installing environment wins.
PASSED_ON = ("HAR_DATA_DIR", "HAR_ARTIFACTS_DIR", "ZENML_REPOSITORY_PATH", "MLFLOW_REGISTRY_URI", "HAR_DATASETS_DIR")


class ScheduleError(ValueError):
    """A bad cron expression, or the crontab cannot be read or written."""


# -- cron expressions -----------------------------------------------------------------
def parse_cron(expr: str) -> list[set[int] | None]:
    """Validate a 5-field cron expression (or @daily etc.); return each field's values (None = ``*``).

    Raises:
        ScheduleError: wrong number of fields, unknown names, values out of range.
    """
    expr = " ".join(expr.split())
    if expr in MACROS:
        return []
    parts = expr.split(" ")
    if len(parts) != 5:
        raise ScheduleError(
            f"cron expression {expr!r} has {len(parts)} fields; need 5: minute hour day-of-month month "
            f"day-of-week, e.g. '0 3 * * *' (03:00 every day), or one of {sorted(MACROS)}"
        )
    return [_field(p, i) for i, p in enumerate(parts)]


def _field(text: str, i: int) -> set[int] | None:
    name, lo, hi = FIELDS[i]
    if text == "*":
        return None
    values: set[int] = set()
    for item in text.split(","):
        m = re.fullmatch(r"(\*|[A-Za-z0-9]+)(?:-([A-Za-z0-9]+))?(?:/(\d+))?", item)
        if not m:
            raise ScheduleError(f"cron {name} field {text!r}: cannot read {item!r}")
        start, end, step = m.group(1), m.group(2), int(m.group(3) or 1)
        if step < 1:
            raise ScheduleError(f"cron {name} field {text!r}: step must be >= 1")
        a, b = (lo, hi) if start == "*" else (_value(start, i), _value(end or start, i))
        if m.group(3) and start != "*" and end is None:
            b = hi
        if not (lo <= a <= hi and lo <= b <= hi) or a > b:
            raise ScheduleError(f"cron {name} field {text!r}: {item!r} is outside {lo}-{hi}")
        values.update(range(a, b + 1, step))
    if i == 4 and 7 in values:  # 0 and 7 are both Sunday
        values = (values - {7}) | {0}
    return values


def _value(token: str, i: int) -> int:
    if token.isdigit():
        return int(token)
    names = NAMES.get(i)
    if names and token.lower() in names:
        return names.index(token.lower()) + (1 if i == 3 else 0)
    raise ScheduleError(f"cron {FIELDS[i][0]} field: unknown value {token!r}")


def on_calendar(expr: str) -> str:
    """The systemd ``OnCalendar=`` equivalent of a cron expression.

    Raises:
        ScheduleError: both day-of-month and day-of-week are restricted (cron means
            either, systemd would mean both), or the expression is invalid.
    """
    fields = parse_cron(expr)
    if not fields:
        return MACROS[" ".join(expr.split())]
    minute, hour, dom, month, dow = fields
    if dom is not None and dow is not None:
        raise ScheduleError(
            "cron restricts day-of-month OR day-of-week, systemd both: write the timer by hand (--on-calendar)"
        )

    def fmt(values: set[int] | None) -> str:
        return "*" if values is None else ",".join(f"{v:02d}" for v in sorted(values))

    days = "" if dow is None else ",".join(SYSTEMD_DAYS[d] for d in sorted(dow)) + " "
    return f"{days}*-{fmt(month)}-{fmt(dom)} {fmt(hour)}:{fmt(minute)}:00"


# -- ZenML schedules on a cluster orchestrator ---------------------------------------
# How each orchestrator reads ZenML's Schedule(cron_expression=...): Kubernetes CronJobs
# take the 5 standard fields; Kubeflow Pipelines' recurring runs take 6, seconds first
# ("0 3 * * *" there means minute 3 of every hour). The local orchestrators cannot schedule.
CRON_FIELDS = {"kubernetes": 5, "kubeflow": 6}


def orchestrator_cron(expr: str, flavor: str) -> str:
    """The 5-field cron ``expr`` as orchestrator ``flavor`` reads it (validated first).

    Raises:
        ScheduleError: ``expr`` is invalid, or ``flavor`` cannot schedule / is not one
            whose cron format is known here.
    """
    parse_cron(expr)
    expr = " ".join(expr.split())
    if expr in MACROS:
        expr = {"hourly": "0 * * * *", "daily": "0 0 * * *", "weekly": "0 0 * * 0", "monthly": "0 0 1 * *",
                "yearly": "0 0 1 1 *"}[MACROS[expr]]  # fmt: skip
    if flavor in ("local", "local_docker"):
        raise ScheduleError(
            f"the {flavor} orchestrator cannot schedule: on this machine use `har schedule install --cron "
            f"'{expr}'`; on a cluster activate its stack (deployment/stacks/) first"
        )
    if flavor not in CRON_FIELDS:
        raise ScheduleError(
            f"no cron translation for the {flavor!r} orchestrator (known: {sorted(CRON_FIELDS)}); "
            "create its schedule with ZenML directly (zenml pipeline run ... with a schedule: block)"
        )
    return expr if CRON_FIELDS[flavor] == 5 else f"0 {expr}"


def scheduled_run_config(config: dict, flavor: str) -> dict:
    """``config`` (configs/schedule.yaml: ``extra.cron_expression`` holds the 5-field cron)
    as ZenML runs it on orchestrator ``flavor``: a ``schedule:`` block with the translated
    cron, and concurrent runs forbidden where the orchestrator offers it (Kubernetes).

    Raises:
        ScheduleError: no ``extra.cron_expression``, or it cannot be translated.
    """
    extra = dict(config.get("extra") or {})
    cron = extra.get("cron_expression")
    if not cron:
        raise ScheduleError("the config has no extra.cron_expression (configs/schedule.yaml shows the form)")
    out = {**config, "extra": {**extra, "scheduled_for": flavor}}
    out["schedule"] = {"name": extra.get("schedule_name") or "cmd-har-retrain",
                       "cron_expression": orchestrator_cron(str(cron), flavor)}  # fmt: skip
    if flavor == "kubernetes":
        settings = dict(out.get("settings") or {})
        k8s = dict(settings.get("orchestrator.kubernetes") or {})
        k8s.setdefault("concurrency_policy", "Forbid")
        settings["orchestrator.kubernetes"] = k8s
        out["settings"] = settings
    return out


# -- what runs ------------------------------------------------------------------------
@dataclass
class Job:
    """The retrain job of one checkout."""

    repo: Path
    venv: Path
    config: str
    log: Path
    env: dict[str, str]

    @property
    def har(self) -> Path:
        return self.venv / "bin" / "har"

    def argv(self) -> list[str]:
        return [str(self.har), "retrain", "-c", self.config]


def job(config: str = "configs/train.yaml", venv: Path | None = None, log: Path | None = None) -> Job:
    """The job for this checkout, with the environment state paths of the current one."""
    venv = Path(venv or REPO_ROOT / ".venv").absolute()
    env = {
        "ZENML_CONFIG_PATH": os.environ.get("ZENML_CONFIG_PATH", str(REPO_ROOT / ".zenml")),
        "BENTOML_HOME": os.environ.get("BENTOML_HOME", str(REPO_ROOT / ".bentoml")),
        "HAR_CACHE_DIR": os.environ.get("HAR_CACHE_DIR", str(REPO_ROOT / ".cache")),
        "MLFLOW_TRACKING_URI": os.environ.get("MLFLOW_TRACKING_URI") or tracking_uri(),
        **{k: os.environ[k] for k in PASSED_ON if os.environ.get(k)},
        **TELEMETRY_OFF,
        "PATH": f"{venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
    }
    return Job(REPO_ROOT, venv, config, Path(log or artifacts_dir() / "logs" / "retrain.log").absolute(), env)


def marker(repo: Path) -> str:
    return f"{MARKER} {repo} (managed by `har schedule`; remove with `har schedule remove`)"


def cron_entry(expr: str, j: Job) -> str:
    """The marker comment and the crontab line (``%`` escaped, as cron requires)."""
    parse_cron(expr)
    env = " ".join(f"{k}={shlex.quote(v)}" for k, v in j.env.items())
    command = f"cd {shlex.quote(str(j.repo))} && env {env} {shlex.join(j.argv())} >> {shlex.quote(str(j.log))} 2>&1"
    return f"{marker(j.repo)}\n{' '.join(expr.split())} {command.replace('%', chr(92) + '%')}"


def systemd_units(expr: str, j: Job, calendar: str | None = None) -> dict[str, str]:
    """``cmd-har-retrain.service`` and ``.timer`` (user units) for this checkout."""
    calendar = calendar or on_calendar(expr)
    env = "\n".join(f'Environment="{k}={v}"' for k, v in j.env.items())
    service = (
        f"[Unit]\nDescription=cmd-har retrain ({j.repo})\n\n[Service]\nType=oneshot\n"
        f"WorkingDirectory={j.repo}\n{env}\nExecStart={shlex.join(j.argv())}\n"
        f"StandardOutput=append:{j.log}\nStandardError=append:{j.log}\n"
    )
    timer = (
        f"[Unit]\nDescription=cmd-har retrain schedule ({j.repo})\n\n[Timer]\nOnCalendar={calendar}\n"
        f"Persistent=true\nUnit=cmd-har-retrain.service\n\n[Install]\nWantedBy=timers.target\n"
    )
    return {"cmd-har-retrain.service": service, "cmd-har-retrain.timer": timer}


# -- the crontab ----------------------------------------------------------------------
class Crontab:
    """The user crontab (``crontab`` command) or a plain file standing in for it."""

    def __init__(self, file: Path | None = None):
        self.file = Path(file) if file else None

    def _crontab(self, args: list[str], text: str | None = None) -> subprocess.CompletedProcess:
        exe = shutil.which("crontab")
        if exe is None:
            raise ScheduleError("no `crontab` command here: install cron, or use `har schedule install --systemd`")
        return subprocess.run([exe, *args], input=text, capture_output=True, text=True)

    def read(self) -> str:
        if self.file:
            return self.file.read_text() if self.file.exists() else ""
        proc = self._crontab(["-l"])
        if proc.returncode != 0:
            if "no crontab" in proc.stderr.lower():
                return ""
            raise ScheduleError(f"crontab -l failed: {proc.stderr.strip()}")
        return proc.stdout

    def write(self, text: str) -> None:
        if self.file:
            atomic_write_text(self.file, text)
            return
        proc = self._crontab(["-"], text)
        if proc.returncode != 0:
            raise ScheduleError(f"crontab - failed: {proc.stderr.strip()}")

    def entry(self, repo: Path) -> str | None:
        """This checkout's entry (marker + line), or None."""
        lines = self.read().splitlines()
        for i, line in enumerate(lines):
            if line.startswith(f"{MARKER} {repo} ") and i + 1 < len(lines):
                return f"{line}\n{lines[i + 1]}"
        return None

    def remove(self, repo: Path) -> bool:
        """Drop this checkout's entry; True if there was one."""
        lines = self.read().splitlines()
        out, found, skip = [], False, False
        for line in lines:
            if skip:
                skip = False
                continue
            if line.startswith(f"{MARKER} {repo} "):
                found, skip = True, True
                continue
            out.append(line)
        if found:
            self.write("\n".join(out) + ("\n" if out else ""))
        return found

    def install(self, entry: str, repo: Path) -> bool:
        """Add (or replace) this checkout's entry; True if one was replaced."""
        replaced = self.remove(repo)
        text = self.read()
        if text and not text.endswith("\n"):
            text += "\n"
        self.write(text + entry + "\n")
        return replaced
