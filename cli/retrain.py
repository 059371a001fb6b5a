"""``har data ingest``, ``har retrain`` and ``har schedule``: new recordings in, retrain when new.

    har data ingest PATH... [--dataset D] [--resample]   # new recordings -> data/<D>/, new data version
    har retrain [-c configs/train.yaml] [--force]         # train_pipeline only when the data is new
    har schedule install --cron "0 3 * * *" | --systemd   # run `har retrain` on a schedule
    har schedule show | remove

Registered on the main app by :func:`register` (cli/main.py). ZenML is imported
only when a pipeline actually runs.
"""

from __future__ import annotations

import _thread
import json
import re
import shlex
import signal
import threading
import time
from pathlib import Path

import typer
import yaml

from cli.common import console, fail, publish_data_version, run_pipeline
from cli.summary import print_train_run_summary
from components.config import REPO_ROOT, artifacts_dir, data_dir, load_run_config
from components.data.ingest import IngestError, change_lines, ingest
from components.data.validation import ValidationConfig
from components.data.versioning import VersioningError, data_version, default_remote, version_data
from components.io_utils import atomic_write_text
from components.retraining import retrain as retraining
from components.retraining.lock import LockBusy, data_lock
from components.retraining.schedule import (
    Crontab,
    ScheduleError,
    cron_entry,
    job,
    scheduled_run_config,
    systemd_units,
)

schedule_app = typer.Typer(
    help="Run `har retrain` on a schedule (user crontab or systemd timer).", no_args_is_help=True
)

EXIT_BUSY = 75  # EX_TEMPFAIL: another ingest/retrain holds the lock; try later


def _busy(e: Exception) -> None:
    fail(str(e), EXIT_BUSY)


# -- har data ingest --------------------------------------------------------------------
def ingest_cmd(
    paths: list[Path] = typer.Argument(..., help="recording files (.parquet, .csv) or folders holding them"),
    dataset: str | None = typer.Option(
        None, "--dataset", "-d", help="dataset under data/ (default: from each file's metadata, header or sidecar)"
    ),
    resample: bool = typer.Option(
        False, "--resample", help="resample recordings at another rate to the dataset's rate (else they are rejected)"
    ),
    version: bool = typer.Option(True, help="record the result as a data version (dvc add data)"),
    push: bool | None = typer.Option(None, "--push/--no-push", help="dvc push (default: when a remote is configured)"),
    wait: float = typer.Option(0.0, help="seconds to wait when a retrain or another ingest holds the lock"),
) -> None:
    """Add new recordings to an existing dataset: check, validate, de-duplicate, version.

    Each file must match its dataset's manifest (channels, sampling rate; see
    docs/data_format.md). Accepted recordings are validated with the dataset's Great
    Expectations suite: failures go to data/quarantine/<dataset>/ with reports, recordings
    identical to an existing one are skipped. Then `dvc add data` records the new data
    version. Exit code 0 when every file was added or skipped as a duplicate, 1 when some
    were rejected or quarantined (the good ones are still added), 75 when the lock is busy.
    """
    try:
        with data_lock("data ingest", wait_s=wait):
            before = data_version()
            try:
                report = ingest(paths, data_dir(), dataset, resample, ValidationConfig())
            except IngestError as e:
                fail(str(e))
            after = before
            if report.changed and version:
                pushing = push if push is not None else default_remote() is not None
                try:
                    after = version_data(push=pushing)
                except VersioningError as e:
                    fail(f"recordings were added but versioning failed: {e}")
                if pushing:
                    console.print(f"pushed to the DVC remote {default_remote()!r}")
                    publish_data_version(after)
    except LockBusy as e:
        _busy(e)
    _print_ingest(report)
    out = artifacts_dir() / "ingest" / f"{time.strftime('%Y%m%d-%H%M%S')}.json"
    atomic_write_text(out, json.dumps({**report.to_dict(), "old": before, "new": after}, indent=2))
    for line in change_lines(report):
        console.print(line)
    if before == after:
        console.print(f"data version unchanged: {after}" + ("" if version else " (--no-version)"))
    else:
        console.print(f"data version {before} -> [bold]{after}[/]")
        console.print("commit it: git add data.dvc && git commit -m 'data: new recordings' · then: har retrain")
    console.print(f"report: {out}")
    if report.by_status("rejected") or report.by_status("quarantined"):
        raise typer.Exit(1)


def _print_ingest(report) -> None:
    colours = {"added": "green", "duplicate": "yellow", "quarantined": "red", "rejected": "red"}
    for o in report.outcomes:
        what = f"{o.dataset}/{o.recording_id}" if o.recording_id else ""
        notes = f" [dim]({'; '.join(o.notes)})[/]" if o.notes else ""
        console.print(f"[{colours[o.status]}]{o.status:>11}[/] {o.source} {what}{notes}", soft_wrap=True)
        if o.message:
            console.print(f"            {o.message}", soft_wrap=True, markup=False)
    counts = {s: len(report.by_status(s)) for s in colours}
    console.print(", ".join(f"{n} {s}" for s, n in counts.items()))


# -- har retrain ------------------------------------------------------------------------
class _StopRequest:
    """SIGTERM/SIGINT handler of one `har retrain`: raises KeyboardInterrupt, and again every
    ``REPEAT_S`` seconds until the command has unwound.

    Python drops (prints "Exception ignored in ...") an exception raised while it runs a
    finalizer (``__del__``, a weakref callback); a signal handled there would be lost, and
    the retrain would finish and promote. ``signum`` is remembered because ZenML may turn the
    interrupt inside a step into a step failure (RuntimeError "Pipeline run has failed ..."):
    the command still reports it as a stop.
    """

    REPEAT_S = 30.0  # longer than ZenML takes to record a stopped step

    def __init__(self) -> None:
        self.signum: int | None = None
        self.unwound = threading.Event()

    def __call__(self, signum, frame) -> None:  # noqa: ARG002 - signal handler signature
        if self.unwound.is_set():
            return
        if self.signum is None:
            self.signum = signum
            threading.Thread(target=self._repeat, name="har-retrain-stop", daemon=True).start()
        raise KeyboardInterrupt(f"signal {signum}")

    def _repeat(self) -> None:
        while not self.unwound.wait(self.REPEAT_S):
            _thread.interrupt_main(self.signum)  # runs the handler installed now (ZenML's calls ours)


def retrain_cmd(
    config: Path = typer.Option(REPO_ROOT / "configs" / "train.yaml", "-c", "--config", help="train run config YAML"),
    force: bool = typer.Option(False, "--force", help="retrain even when the data version is unchanged"),
    dry_run: bool = typer.Option(False, "--dry-run", help="only say whether a retrain would run, and why"),
    wait: float = typer.Option(0.0, help="seconds to wait when another retrain or an ingest holds the lock"),
) -> None:
    """Retrain when the data changed: train_pipeline runs only if data.dvc differs from the champion's data.

    The champion's data version comes from MLflow lineage. Unchanged data: says so and
    exits 0. Otherwise runs train_pipeline; the promotion gates decide whether the new
    model replaces the champion. One retrain at a time (exit 75 when the lock is busy);
    an interrupted retrain leaves data, champion and served model as they were.
    """
    if not config.exists():
        fail(f"config {config} not found")
    console.print(f"har retrain {time.strftime('%Y-%m-%d %H:%M:%S')} · config {config}")
    stop = _StopRequest()
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:  # cron/systemd stop and Ctrl-C: unwind, exit 130
        with data_lock("retrain", wait_s=wait):
            plan = retraining.plan_retrain(config, force=force)
            for note in plan.notes:
                console.print(f"[yellow]{note}[/]")
            if not plan.run:
                console.print(f"[green]nothing to do:[/] {plan.reason}")
                return
            console.print(f"retraining: {plan.reason}")
            _print_changes(plan)
            if dry_run:
                console.print("--dry-run: not running train_pipeline")
                return
            run = _run_pipeline(config)
    except LockBusy as e:
        _busy(e)
    except KeyboardInterrupt:
        stop.unwound.set()
        _interrupted()
    except Exception:
        stop.unwound.set()
        if stop.signum is not None:
            _interrupted()
        raise
    finally:
        stop.unwound.set()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if stop.signum is not None:
        console.print(f"[yellow]signal {stop.signum} arrived as the run finished; its result stands[/]")
    print_train_run_summary(run)
    console.print("[bold]new data in this retrain[/] (vs the data the previous model was trained on):")
    _print_changes(plan)


def _interrupted() -> None:
    fail("retrain interrupted: data, champion and served model are unchanged; the next run starts afresh", 130)


def _print_changes(plan) -> None:
    if plan.changes is not None:
        for line in plan.changes.lines():
            console.print(f"  {line}", soft_wrap=True)


def _run_pipeline(config: Path):
    from pipelines.train_pipeline import train_pipeline  # lazy: ZenML + torch

    console.print("running train_pipeline ...")
    return run_pipeline(train_pipeline, config)


# -- har schedule -----------------------------------------------------------------------
_CRONTAB_OPT = typer.Option(None, "--crontab-file", help="edit this file instead of the user crontab (for tests)")


@schedule_app.command("install")
def schedule_install(
    cron: str = typer.Option("0 3 * * *", "--cron", help="cron expression (minute hour dom month dow)"),
    systemd: bool = typer.Option(False, "--systemd", help="print a systemd user timer + service instead"),
    on_calendar: str | None = typer.Option(None, help="systemd OnCalendar= (default: converted from --cron)"),
    config: str = typer.Option("configs/train.yaml", "-c", "--config", help="train config, relative to the checkout"),
    log: Path | None = typer.Option(None, help="log file (default: artifacts/logs/retrain.log)"),
    crontab_file: Path | None = _CRONTAB_OPT,
) -> None:
    """Run `har retrain` from this checkout on a schedule, logging to a file."""
    j = job(config, log=log)
    if not j.har.exists():
        fail(f"{j.har} not found: run `make setup` first")
    try:
        if systemd:
            units = systemd_units(cron, j, on_calendar)
        else:
            entry = cron_entry(cron, j)
            replaced = Crontab(crontab_file).install(entry, j.repo)
    except ScheduleError as e:
        fail(str(e))
    j.log.parent.mkdir(parents=True, exist_ok=True)
    if systemd:
        console.print("# save these as ~/.config/systemd/user/<name>, then:")
        console.print("#   systemctl --user daemon-reload && systemctl --user enable --now cmd-har-retrain.timer")
        console.print("#   systemctl --user list-timers cmd-har-retrain.timer   # next run")
        for name, text in units.items():
            console.print(f"\n# --- {name} ---\n{text}", markup=False, highlight=False, soft_wrap=True)
        return
    where = crontab_file or "the user crontab"
    console.print(f"{'replaced' if replaced else 'installed'} the retrain schedule in {where}:")
    console.print(entry, markup=False, highlight=False, soft_wrap=True)
    console.print(f"log: {j.log} · check: har schedule show · undo: har schedule remove")


@schedule_app.command("show")
def schedule_show(crontab_file: Path | None = _CRONTAB_OPT, log: Path | None = typer.Option(None)) -> None:
    """Show this checkout's schedule entry and the end of its log."""
    j = job(log=log)
    try:
        entry = Crontab(crontab_file).entry(j.repo)
    except ScheduleError as e:
        fail(str(e))
    if entry is None:
        console.print(f"no retrain schedule for {j.repo} (install one: har schedule install --cron '0 3 * * *')")
        return
    console.print(entry, markup=False, highlight=False, soft_wrap=True)
    logged = re.search(r">> (\S+) 2>&1$", entry)
    path = log or (Path(shlex.split(logged.group(1))[0]) if logged else j.log)
    if path.exists():
        console.print(f"last lines of {path}:")
        for line in path.read_text(errors="replace").splitlines()[-8:]:
            console.print(f"  {line}", markup=False, highlight=False, soft_wrap=True)
    else:
        console.print(f"no log yet at {path} (the job has not run)")


@schedule_app.command("remove")
def schedule_remove(crontab_file: Path | None = _CRONTAB_OPT) -> None:
    """Remove this checkout's entry from the crontab (other entries stay)."""
    try:
        removed = Crontab(crontab_file).remove(REPO_ROOT)
    except ScheduleError as e:
        fail(str(e))
    console.print("removed the retrain schedule" if removed else f"no retrain schedule for {REPO_ROOT}")


@schedule_app.command("deploy")
def schedule_deploy(
    config: Path = typer.Option(
        Path("configs/schedule.yaml"), "-c", "--config", help="run config with extra.cron_expression"
    ),
    orchestrator: str | None = typer.Option(
        None, help="orchestrator flavor to write the schedule for (default: the active stack's)"
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="write and print the run config, create nothing"),
) -> None:
    """Create the ZenML schedule of CONFIG on the active stack (Kubernetes CronJob, Kubeflow recurring run).

    The config's 5-field cron (UTC) is written the way the orchestrator reads it (Kubeflow:
    6 fields, seconds first), concurrent runs are forbidden where the orchestrator can
    (Kubernetes), and the resulting run config is kept under artifacts/schedules/.
    """

    if orchestrator is None:
        from zenml.client import Client

        orchestrator = Client().active_stack.orchestrator.flavor
    try:
        run_config = scheduled_run_config(load_run_config(config), orchestrator)
    except (FileNotFoundError, ScheduleError) as e:
        fail(str(e))
    out = artifacts_dir() / "schedules" / f"{config.stem}.{orchestrator}.yaml"
    atomic_write_text(out, yaml.safe_dump(run_config, sort_keys=False))
    cron = run_config["extra"]["cron_expression"]
    console.print(
        f"schedule {run_config['schedule']['name']!r}: '{cron}' (UTC) -> {orchestrator} reads "
        f"'{run_config['schedule']['cron_expression']}' · run config: {out}"
    )
    if dry_run:
        return
    from pipelines.train_pipeline import train_pipeline  # lazy: ZenML + torch

    run_pipeline(train_pipeline, out)
    console.print("created; list: zenml pipeline schedule list · stop: zenml pipeline schedule delete NAME")


def register(app: typer.Typer, data_app: typer.Typer) -> None:
    """Add ``data ingest``, ``retrain`` and ``schedule`` to the ``har`` app."""
    data_app.command("ingest")(ingest_cmd)
    app.command("retrain")(retrain_cmd)
    app.add_typer(schedule_app, name="schedule")
