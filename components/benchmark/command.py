"""``har benchmark``: the cross-subject benchmark from the command line.

The lead registers :func:`benchmark` with ``app.command("benchmark")(benchmark)``;
without the ``har`` entry point (e.g. on a bare GPU box) run::

    python -m components.benchmark.command --dataset dsads --protocol loso --ablations
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from components.benchmark import protocol as proto
from components.benchmark.harness import run_benchmark
from components.benchmark.ledger import ledger_status, render_status
from components.benchmark.protocol import BASELINES, BenchmarkSettings, parse_hparams
from components.benchmark.selection import parse_select

DEFAULT_LEDGER = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "ledger"


def _csv(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


@dataclass(frozen=True)
class Engine:
    """How ``har benchmark`` trains: ``run(settings, progress, log) -> (result, JSON path)``;
    ``status(settings, log)`` for ``--status`` (None: print the ledger's contents)."""

    run: Callable[[BenchmarkSettings, bool, Callable[[str], None]], tuple[dict[str, Any], Path]]
    help: str
    status: Callable[[BenchmarkSettings, Callable[[str], None]], None] | None = None


def _run_processes(settings: BenchmarkSettings, progress: bool, log: Callable[[str], None]):
    if settings.run_config:
        raise ValueError("--run-config is a ZenML run config: it works with --engine pipeline only")
    if settings.step_cpus is not None:
        raise ValueError("--step-cpus sets the pipeline's training steps: with --engine processes use --jobs")
    return run_benchmark(settings, progress=progress, log=log)


PROCESSES = Engine(
    run=_run_processes,
    help="every training in a pool of --jobs processes (threads on CUDA), resumable with --ledger",
)


def make_benchmark(engines: dict[str, Engine], default: str = "processes") -> Callable[..., None]:
    """The ``har benchmark`` command with these engines (``--engine``, ``default`` when not given).

    This module's :data:`benchmark` has the process pool only; ``cli.benchmark`` adds the
    ZenML pipeline (components do not import pipelines).
    """
    engine_help = "; ".join(f"{name}{' (default)' if name == default else ''}: {e.help}" for name, e in engines.items())

    def benchmark(
        dataset: str = typer.Option(
            "dsads", "--dataset", "-d", help="dataset under the data folder (imported if missing)"
        ),
        protocol: str = typer.Option("loso", "--protocol", "-p", help="holdout | loso (subject-wise)"),
        models: str = typer.Option(",".join(BASELINES), "--models", "-m", help="comma-separated registry names"),
        ablations: bool = typer.Option(
            False,
            "--ablations",
            help="also run cmdhar-no-disentangle/-no-attention/-no-decomposition and cmdhar-with-modulation",
        ),
        seeds: int = typer.Option(proto.SEEDS, "--seeds", help="seeds per fold and model (0..N-1)"),
        device: str = typer.Option("auto", "--device", help="auto | cpu | cuda | cuda:N (training device)"),
        jobs: int = typer.Option(1, "--jobs", "-j", help="parallel tasks (processes on CPU, threads on CUDA)"),
        epochs: int = typer.Option(
            proto.EPOCHS, "--epochs", help=f"epoch cap (protocol: {proto.EPOCHS}; fewer = smoke run)"
        ),
        patience: int = typer.Option(
            proto.PATIENCE, "--patience", help=f"early-stopping patience (protocol: {proto.PATIENCE})"
        ),
        subjects: str | None = typer.Option(None, "--subjects", help="restrict to these subject ids (smoke run)"),
        folds: str | None = typer.Option(
            None, "--folds", help="run only these folds: fold names (loso-3) or test-subject ids (3)"
        ),
        test_subjects: str | None = typer.Option(None, "--test-subjects", help=proto.holdout_help("test")),
        val_subjects: str | None = typer.Option(None, "--val-subjects", help=proto.holdout_help("val")),
        data_dir: Path | None = typer.Option(None, "--data-dir", help="data folder (default: $HAR_DATA_DIR or data/)"),
        out: Path | None = typer.Option(None, "--out", help="results folder (default: benchmarks/results)"),
        modality_dropout: float = typer.Option(
            proto.TRAINER["modality_dropout"],
            "--modality-dropout",
            help=f"CMD-HAR fusion modality dropout (protocol: {proto.TRAINER['modality_dropout']:g})",
        ),
        lr_schedule: str = typer.Option(
            proto.TRAINER["lr_schedule"],
            "--lr-schedule",
            help=f"learning-rate schedule, plateau or cosine (protocol: {proto.TRAINER['lr_schedule']})",
        ),
        augment_rotation: float = typer.Option(
            proto.TRAINER["augment_rotation_deg"],
            "--augment-rotation",
            help="training augmentation: random sensor-unit rotation up to this many degrees (every model)",
        ),
        augment_gain: float = typer.Option(
            proto.TRAINER["augment_gain_std"],
            "--augment-gain",
            help="training augmentation: std of the random gain of each x/y/z triad (every model)",
        ),
        select: str | None = typer.Option(
            None,
            "--select",
            help="a result row chosen per fold on validation subjects only: NAME=A+B[,NAME2=C+D] (e.g. "
            "cmdhar-chosen=cmdhar+cmdhar-with-modulation); candidates not in --models are trained too",
        ),
        hparams: str | None = typer.Option(
            None,
            "--hparams",
            help="model constructor arguments, MODEL.KEY=VALUE,... (e.g. cmdhar.d_model=32); recorded in the "
            "results and the model's ledger fingerprint",
        ),
        latency_runs: int = typer.Option(200, "--latency-runs", help="timed batch-1 calls per latency p50"),
        progress: bool = typer.Option(True, "--progress/--no-progress", help="show a progress bar over tasks"),
        executor: str = typer.Option("auto", "--executor", help="auto | threads | processes (auto: threads on CUDA)"),
        ledger: Path | None = typer.Option(
            None,
            "--ledger",
            help="keep every finished training in this folder, and each training in progress as a per-epoch "
            "checkpoint; a re-run with the same code, data and settings trains only what is missing, going on "
            "from those checkpoints (a full LOSO across several sessions)",
        ),
        time_budget: float | None = typer.Option(
            None,
            "--time-budget",
            help="seconds: start no task after this and cut running ones at 1.25x (tasks not run or cut make the run "
            "partial; with --ledger a cut training goes on from its last epoch in the next run)",
        ),
        status: bool = typer.Option(
            False,
            "--status",
            help="print what the ledger (default benchmarks/results/ledger) holds - per model the finished folds, "
            "their macro-F1, whether the code is still current and the part-trained ones - and exit without "
            "training (with --engine pipeline: which trainings of the run these options plan are cached in ZenML "
            "or part-trained)",
        ),
        engine: str = typer.Option(default, "--engine", help=engine_help),
        run_config: Path | None = typer.Option(
            None,
            "--run-config",
            help="--engine pipeline: ZenML run config whose settings.docker (the step image) and "
            "steps.data_version_step.parameters (pull, latest) the run uses (default: configs/cluster.yaml when "
            "the orchestrator runs steps in containers)",
        ),
        step_cpus: int | None = typer.Option(
            None,
            "--step-cpus",
            min=1,
            help="--engine pipeline: CPU cores each training step requests and its torch threads (default 2); "
            "part of each training's cache key",
        ),
    ) -> None:
        """Benchmark models cross-subject and write <out>/<dataset>-<protocol>.json and .md.

        Every (model, fold, seed) is trained with the protocol's trainer (components/benchmark/protocol.py:
        AdamW, cosine, class-weighted CE, early stopping on validation macro-F1) and tested on
        the fold's held-out subjects. Efficiency (parameters, MACs per window, ONNX size,
        batch-1 ONNX Runtime and torch latency on one CPU thread) is measured in the same
        run. Runs with capped epochs, other patience, or a subset of subjects/folds are
        flagged ``complete_protocol: false`` and written as ``<dataset>-<protocol>-smoke.*``.
        \f
        Args:
            dataset: dataset folder name under the data folder.
            protocol: ``holdout`` or ``loso``.
            models: comma-separated model names from the registry.
            ablations: add cmdhar-no-disentangle/-no-attention/-no-decomposition and cmdhar-with-modulation.
            seeds: number of training seeds per fold and model.
            device: training device.
            jobs: parallel tasks: worker processes on the CPU (each with cpu_count // jobs torch
                threads), threads of this process on CUDA (each with its own stream and graph).
            epochs: maximum epochs per run.
            patience: early-stopping patience in epochs.
            subjects: comma-separated subject ids to keep.
            folds: comma-separated fold names or test-subject ids to run.
            test_subjects: comma-separated holdout test subjects.
            val_subjects: comma-separated holdout validation subjects.
            data_dir: data folder.
            out: results folder.
            modality_dropout: per-sample fusion modality dropout for CMD-HAR models.
            augment_rotation: largest random rotation of each sensor unit during training.
            augment_gain: std of the random gain of each sensor triad during training.
            hparams: per-model constructor arguments (:func:`~components.benchmark.protocol.parse_hparams`).
            select: per-fold selections (:func:`~components.benchmark.selection.parse_select`).
            lr_schedule: learning-rate schedule (``TrainConfig.lr_schedule``).
            latency_runs: number of timed calls for the latency percentiles.
            progress: show a progress bar.
            executor: how tasks run in parallel (see ``jobs``).
            time_budget: seconds after which no task starts (running ones are cut at 1.25x).
            ledger: folder of finished trainings to resume from and add to.
            status: only print the ledger's contents (:func:`~components.benchmark.ledger.ledger_status`),
                or with another engine what that engine's ``status`` says about the planned run.
            engine: which :class:`Engine` runs the trainings (``engines``' keys).
            run_config: the pipeline engine's ZenML run config (``BenchmarkSettings.run_config``).
            step_cpus: the pipeline engine's cores and torch threads per training step.

        Raises:
            typer.Exit: code 1 if the configuration is invalid or any task failed (the
                results, with the failures listed, are still written).
        """
        from rich.console import Console
        from rich.markup import escape

        console = Console(stderr=True)
        if engine not in engines:
            console.print(f"[bold red]error:[/] --engine {engine!r}: this command knows {', '.join(engines)}")
            raise typer.Exit(1)
        chosen = engines[engine]
        if status and chosen.status is None:
            _print_status(ledger or DEFAULT_LEDGER)
            return
        try:
            model_hparams = parse_hparams(hparams)
            selections = parse_select(select)
        except ValueError as exc:
            console.print(f"[bold red]error:[/] {exc}")
            raise typer.Exit(1) from exc
        settings = BenchmarkSettings(
            dataset=dataset,
            protocol=protocol,
            models=_csv(models) or [],
            ablations=ablations,
            seeds=seeds,
            device=device,
            jobs=jobs,
            epochs=epochs,
            patience=patience,
            subjects=_csv(subjects),
            folds=_csv(folds),
            test_subjects=_csv(test_subjects),
            val_subjects=_csv(val_subjects),
            data_dir=data_dir,
            out=out,
            modality_dropout=modality_dropout,
            lr_schedule=lr_schedule,
            augment_rotation_deg=augment_rotation,
            augment_gain_std=augment_gain,
            latency_runs=latency_runs,
            executor=executor,
            time_budget_s=time_budget,
            ledger=ledger,
            hparams=model_hparams,
            select=selections,
            run_config=run_config,
            step_cpus=step_cpus,
        )
        try:
            if status:
                chosen.status(settings, lambda s: console.print(s))
                return
            result, path = chosen.run(settings, progress, lambda s: console.print(s))
        except (ValueError, FileNotFoundError) as exc:
            console.print(f"[bold red]error:[/] {exc}")
            raise typer.Exit(1) from exc
        console.print(f"wrote {path} and {path.with_suffix('.md')}")
        if not result["complete_protocol"]:
            console.print("[yellow]smoke/partial run:[/] " + "; ".join(result["deviations"]))
        for name, m in result["models"].items():

            def r(v, d):
                return "-" if v is None else round(v, d)

            console.print(
                f"  {name:26s} macro-F1 {r(m['macro_f1_mean'], 4)}  params {m.get('params')}  "
                f"ORT p50 {r(m.get('latency_ms_p50'), 3)} ms  torch p50 {r(m.get('latency_ms_p50_torch'), 3)} ms"
            )
        colour = {"met": "green", "missed": "bold red", "not measured": "dim"}
        for t in result.get("targets", []):
            what, note = escape(f"{t['target']}: {t['value']}"), escape(t["note"])
            console.print(f"  target: {what} [{colour[t['status']]}]{t['status']}[/] {note}")
        if result["failures"]:
            console.print(f"[bold red]{len(result['failures'])} task(s) failed[/] (listed in the results)")
            raise typer.Exit(1)

    return benchmark


benchmark = make_benchmark({"processes": PROCESSES})


def _print_status(root: Path) -> None:
    rows = ledger_status(root)
    if not rows:
        typer.echo(f"no finished trainings under {root}")
        return
    typer.echo(f"ledger {root} ('stale': recorded under other code; a run now would train those again)\n")
    typer.echo(render_status(rows))


def main() -> None:
    """Entry point of ``python -m components.benchmark.command``."""
    app = typer.Typer(add_completion=False)
    app.command()(benchmark)
    app()


if __name__ == "__main__":
    main()
