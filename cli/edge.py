"""``har edge``: verify edge bundles and run the wearable deployment simulation.

har edge verify BUNDLE                         # hashes + parity (folder or .tar.gz)
har edge simulate [--bundle B] [--profile P]   # replay held-out recordings on an edge profile
har edge profiles                              # the profiles in configs/edge/
har edge pull [-m MODEL] [--run RUN]           # the champion's bundle from the artifact store -> BentoML
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from cli.common import console, fail
from components import lineage, tracking
from components.config import artifacts_dir, data_dir
from components.edge import store
from components.edge.bundle import BundleError, open_bundle, read_manifest, verify_bundle
from components.edge.simulate import list_profiles, load_profile, load_streams, plot_timeline, simulate
from components.edge.store import NoChampionError, champion_bundle, champion_labels, save_to_bentoml
from components.io_utils import atomic_write_text

edge_app = typer.Typer(help="Edge bundles and the wearable deployment simulation.", no_args_is_help=True)


def _fail(message: str) -> None:
    fail(message, soft_wrap=True)  # bundle paths and hashes stay on one line


@edge_app.command("verify")
def verify(bundle: Path = typer.Argument(..., help="bundle folder or .tar.gz")) -> None:
    """Re-check every file's sha256 against the manifest and run the fp32/int8 parity check."""
    try:
        checked = verify_bundle(bundle)
    except BundleError as e:
        _fail(str(e))
    console.print(f"[green]ok[/] {bundle}: {checked['files']} files match their sha256")
    console.print(
        f"parity on {checked['parity_windows']} real test windows: fp32 max |diff| "
        f"{checked['fp32_max_abs_diff']:.2g}, int8 max |diff| {checked['int8_max_abs_diff']:.2g}"
    )
    lin = checked["lineage"]
    console.print(
        f"lineage: {lin.get('registered_model')} v{lin.get('registered_version')} · data {lin.get('data_version')} · "
        f"MLflow run {lin.get('mlflow_run_id')} · ZenML run {lin.get('zenml_run_id')} · git {lin.get('git_commit')}",
        soft_wrap=True,
    )


@edge_app.command("profiles")
def profiles() -> None:
    """List the edge profiles (configs/edge/*.yaml)."""
    table = Table("profile", "threads", "arena", "slowdown", "RAM budget", "flash budget", "smoothing", "description")
    for name in list_profiles():
        p = load_profile(name)
        table.add_row(
            name,
            str(p.threads),
            str(p.memory_arena),
            f"{p.slowdown:g}x",
            f"{p.ram_budget_bytes:,}",
            f"{p.flash_budget_bytes:,}",
            str(p.smoothing),
            p.description,
        )
    console.print(table)


@edge_app.command("simulate")
def simulate_cmd(
    bundle: Path | None = typer.Option(None, help="bundle folder or .tar.gz (default: the champion's)"),
    profile: str = typer.Option("phone", help="configs/edge/<name>.yaml or a path"),
    model: str | None = typer.Option(
        None,
        "--model",
        "-m",
        help="registered model whose champion to use (default: the only one with champions in the BentoML store)",
    ),
    recordings: int | None = typer.Option(None, help="replay only the first N test-subject recordings"),
    max_seconds: float | None = typer.Option(None, help="cut each recording to this many seconds"),
    speed: float | None = typer.Option(None, help="1 = real time, 10 = 10x, 0 = as fast as possible (profile)"),
    subjects: str | None = typer.Option(None, help="subjects to replay (default: the bundle's test subjects)"),
    out: Path | None = typer.Option(None, help="report folder (default artifacts/edge/simulations/...)"),
) -> None:
    """Replay held-out recordings as a live sensor stream through the int8 model on an edge profile."""
    from dataclasses import replace

    try:
        prof = load_profile(profile)
        if speed is not None:
            prof = replace(prof, speed=speed)
        folder, tmp = (
            open_bundle(bundle) if bundle else (champion_bundle(model or store.default_registered_model()), None)
        )
        lineage = read_manifest(folder)["lineage"]
        who = subjects.split(",") if subjects else [str(s) for s in lineage.get("test_subjects", [])]
        if not who:
            _fail("the bundle names no test subjects; pass --subjects")
        streams = load_streams(data_dir() / str(lineage.get("dataset")), who, recordings, max_seconds)
    except (NoChampionError, BundleError, FileNotFoundError, ValueError) as e:
        _fail(str(e))
    console.print(
        f"replaying {len(streams)} recording(s) of subject(s) {', '.join(who)} on profile {prof.name} "
        f"({'as fast as possible' if prof.speed <= 0 else f'{prof.speed:g}x real time'})"
    )
    result = simulate(folder, streams, prof)
    r = result.report
    out = out or artifacts_dir() / "edge" / "simulations" / f"{folder.name}-{prof.name}"
    atomic_write_text(out / "report.json", json.dumps(r, indent=2, default=str))
    plot_timeline(result, out / "timeline.png")
    if tmp is not None:
        tmp.cleanup()
    table = Table(title=f"{r['model_version']} on {prof.name}", show_header=False)
    table.add_row(
        "stream", f"{r['stream_seconds']:.0f} s, {r['windows']} windows (replayed in {r['replay_wall_seconds']:.1f} s)"
    )
    table.add_row(
        f"latency (x{prof.slowdown:g})",
        f"p50 {r['latency_ms_p50']:.2f} ms · p95 {r['latency_ms_p95']:.2f} ms · p99 {r['latency_ms_p99']:.2f} ms",
    )
    table.add_row("deadline misses", f"{r['deadline_misses']} (inference > hop {r['deadline_ms']:.0f} ms)")
    table.add_row(
        "flash",
        f"{r['model_bytes']:,} / {r['flash_budget_bytes']:,} bytes ({'fits' if r['fits_flash'] else 'OVER BUDGET'})",
    )
    table.add_row(
        "RAM",
        f"{r['ram_estimate_bytes']:,} / {r['ram_budget_bytes']:,} bytes estimated "
        f"({'fits' if r['fits_ram'] else 'OVER BUDGET'}); ORT RSS growth here {r['peak_rss_delta_bytes']:,}",
    )
    table.add_row(
        "streaming",
        f"macro-F1 {r['streaming_macro_f1']:.3f}, accuracy {r['streaming_accuracy']:.3f} "
        f"(unsmoothed {r['streaming_macro_f1_unsmoothed']:.3f})",
    )
    console.print(table)
    console.print(f"report: {out / 'report.json'} · timeline: {out / 'timeline.png'}")


@edge_app.command("pull")
def pull_cmd(
    model: str | None = typer.Option(
        None, "--model", "-m", help="registered model whose champion to pull (default: the only one with a champion)"
    ),
    run: str | None = typer.Option(
        None, help="ZenML run id or name whose edge bundle to pull (default: the run that promoted the champion)"
    ),
) -> None:
    """Save the champion's edge bundle from the stack's artifact store into this machine's BentoML store.

    For runs whose steps ran somewhere else (one container or pod per step): the champion is
    read from the MLflow registry (alias ``champion``), its bundle from the ZenML run that
    promoted it. Afterwards ``bentoml serve`` / ``bentoml build`` / ``har edge simulate`` use it.
    """
    from zenml.client import Client

    try:
        name = model or lineage.default_registered_model()
    except lineage.LineageError as e:
        _fail(str(e))
    champion = tracking.alias_version(name, tracking.CHAMPION)
    if champion is None:
        _fail(f"{name} has no champion in MLflow ({tracking.tracking_uri()}): nothing to pull.")
    run_ref = run or champion.tags.get("promoting_zenml_run_id")
    if not run_ref:
        _fail(f"{name} v{champion.version} names no promoting ZenML run; pass --run.")
    try:
        zenml_run = Client().get_pipeline_run(run_ref)
        step = zenml_run.steps["build_edge_bundle_step"]
        bundle = step.outputs["edge_bundle"][0].load()
    except KeyError:
        _fail(f"ZenML run {run_ref} has no edge_bundle output of build_edge_bundle_step.")
    except Exception as e:  # zenml: unknown run, artifact store unreachable
        _fail(f"could not load the edge bundle of ZenML run {run_ref}: {e}")
    if not bundle:
        _fail(f"ZenML run {zenml_run.name} promoted nothing: its edge bundle is empty.")
    try:
        with bundle.unpacked() as folder:
            verify_bundle(folder)
            labels = champion_labels(folder)
            if str(labels["registered_version"]) != str(champion.version) and run is None:
                _fail(
                    f"run {zenml_run.name} built v{labels['registered_version']}, the champion is v{champion.version}"
                )
            tag = save_to_bentoml(folder, name, labels)
    except BundleError as e:
        _fail(str(e))
    console.print(
        f"[green]ok[/] {name} v{labels['registered_version']} (ZenML run {zenml_run.name}) -> BentoML model {tag}"
    )
