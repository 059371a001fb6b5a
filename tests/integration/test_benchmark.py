"""Benchmark harness end to end (tiny settings) and the efficiency helpers."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import typer
from typer.testing import CliRunner

from components.benchmark import assemble, execute, plan, protocol
from components.benchmark.command import benchmark
from components.benchmark.efficiency import (
    count_params,
    efficiency_report,
    efficiency_reports,
    export_onnx,
    interleaved_times,
    latency_ort,
    latency_torch,
    macs_per_window,
    onnx_parity,
)
from components.benchmark.harness import run_benchmark
from components.benchmark.ledger import Ledger, code_fingerprint, ledger_status
from components.benchmark.protocol import BenchmarkSettings
from components.data.importers import import_dataset
from components.models.registry import build_model
from components.models.spec import InputSpec
from tests.conftest import REPO_ROOT, stop_training_in_epoch

LABELS = ["sitting", "walking_parking_lot", "running_treadmill"]
SPEC = InputSpec(n_channels=6, window_len=50, n_classes=4, modality_groups={"acc": [0, 1, 2], "gyro": [3, 4, 5]})


@pytest.fixture(scope="module")
def dsads3(tmp_path_factory) -> Path:
    """A data folder with DSADS subjects 1-3 x 3 activities (so a fold has train, val and test)."""
    data = tmp_path_factory.mktemp("bench") / "data"
    import_dataset("dsads", data, subjects=["1", "2", "3"], labels=LABELS)
    return data


def _check_result(result: dict, names: list[str]) -> None:
    assert result["complete_protocol"] is False and result["deviations"]
    assert set(result["models"]) == set(names)
    for key in ("protocol", "settings", "git", "data", "environment", "published_reference"):
        assert key in result, key
    assert {"commit", "dirty"} <= set(result["git"])
    assert result["data"]["dataset"] == "dsads" and len(result["data"]["windows_sha256"]) == 64
    assert result["published_reference"]["datasets"]["dsads"]["TinyHAR"] == 0.868
    assert result["failures"] == []
    for name, m in result["models"].items():
        for key in (
            "macro_f1_mean",
            "macro_f1_std",
            "accuracy_mean",
            "balanced_accuracy_mean",
            "gmean_mean",
            "params",
            "macs_per_window",
            "onnx_size_bytes",
            "latency_ms_p50",
            "latency_ms_p50_torch",
            "train_seconds_mean",
            "per_fold",
        ):
            assert key in m, (name, key)
        assert m["per_fold"], name
        for rec in m["per_fold"]:
            test = set(rec["test_subjects"])
            assert test and not test & set(rec["train_subjects"]) and not test & set(rec["val_subjects"])
            assert rec["val_subjects"] and rec["train_subjects"]
            for key in ("macro_f1", "accuracy", "balanced_accuracy", "gmean"):
                assert 0.0 <= rec["metrics"][key] <= 1.0
            assert all(0.0 <= v <= 1.0 for v in rec["metrics"]["per_class_f1"])
            assert rec["epochs_run"] >= 1 and rec["best_epoch"] >= 0 and rec["train_seconds"] > 0
        for key in ("macro_f1_mean", "accuracy_mean", "balanced_accuracy_mean", "gmean_mean"):
            assert 0.0 <= m[key] <= 1.0


def test_cli_holdout_jobs1(dsads3, tmp_path):
    app = typer.Typer()
    app.command()(benchmark)
    out = tmp_path / "results"
    args = ["--dataset", "dsads", "--protocol", "holdout", "--models", "cnn,cmdhar", "--epochs", "1"]
    args += ["--test-subjects", "3", "--val-subjects", "2", "--jobs", "1", "--latency-runs", "10"]
    args += ["--data-dir", str(dsads3), "--out", str(out), "--no-progress"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert not (out / "dsads-holdout.json").exists()  # a smoke run never takes the full name
    result = json.loads((out / "dsads-holdout-smoke.json").read_text())
    _check_result(result, ["cnn", "cmdhar"])
    (rec,) = result["models"]["cmdhar"]["per_fold"]
    assert rec["test_subjects"] == ["3"] and rec["val_subjects"] == ["2"] and rec["train_subjects"] == ["1"]
    assert set(rec["missing_modality_macro_f1"]) == {"acc", "gyro", "mag"}
    assert all(0 <= v <= 1 for v in rec["missing_modality_macro_f1"].values())
    assert "missing_modality_macro_f1" not in result["models"]["cnn"]["per_fold"][0]
    for m in result["models"].values():
        assert m["params"] > 0 and m["macs_per_window"] > 0 and m["onnx_size_bytes"] > 0
        assert m["latency_ms_p50"] > 0 and m["latency_ms_p50_torch"] > 0
    md = (out / "dsads-holdout-smoke.md").read_text()
    assert "SMOKE" in md and "| cmdhar |" in md and "TinyHAR" in md


def _cnn_loso(data_dir: Path, out: Path, **over) -> BenchmarkSettings:
    """1-epoch CNN LOSO on the 3-subject DSADS subset, 2 parallel tasks, no efficiency."""
    base = {"models": ["cnn"], "jobs": 2, "epochs": 1, "data_dir": data_dir, "out": out, "efficiency": False}
    return BenchmarkSettings(dataset="dsads", protocol="loso", **{**base, **over})


def test_loso_parallel_jobs2(dsads3, tmp_path):
    settings = _cnn_loso(dsads3, tmp_path, seeds=2)
    result, path = run_benchmark(settings, progress=False, log=lambda s: None)
    assert path == tmp_path / "dsads-loso-smoke.json" and path.with_suffix(".md").exists()
    assert json.loads(path.read_text())["complete_protocol"] is False
    runs = result["models"]["cnn"]["per_fold"]
    assert sorted((r["fold"], r["seed"]) for r in runs) == [
        (f"loso-{s}", seed) for s in ("1", "2", "3") for seed in (0, 1)
    ]
    assert result["settings"]["threads_per_job"] >= 1
    assert result["models"]["cnn"]["macro_f1_std"] is not None
    for r in runs:
        assert r["test_subjects"] == [r["fold"].split("-")[1]]
        assert not set(r["test_subjects"]) & (set(r["train_subjects"]) | set(r["val_subjects"]))

    # the report: per-class F1 averaged over the runs, a per-fold table and the summary figure
    per_class = result["models"]["cnn"]["per_class_f1_mean"]
    assert sorted(per_class) == sorted(LABELS)  # classes absent from the test subjects are left out
    first = runs[0]["metrics"]["label_names"][0]
    assert per_class[first] == pytest.approx(np.mean([r["metrics"]["per_class_f1"][0] for r in runs]))
    recall = result["models"]["cnn"]["per_class_recall_mean"]
    assert recall[first] == pytest.approx(np.mean([r["metrics"]["per_class_recall"][0] for r in runs]))
    assert sorted(result["models"]["cnn"]["per_class_precision_mean"]) == sorted(LABELS)
    md = path.with_suffix(".md").read_text()
    assert "| model | 1/s0 | 1/s1 | 2/s0 | 2/s1 | 3/s0 | 3/s1 |" in md and f"| {first} | " in md
    assert "Per-class precision / recall, mean over folds:" in md
    png = path.with_suffix(".png")
    assert result["plot"] == png.name and png.read_bytes()[:4] == b"\x89PNG" and f"]({png.name})" in md
    # the targets: a smoke run judges none of them, and says why
    assert result["targets"] and {t["status"] for t in result["targets"]} == {"not measured"}
    assert "| cmdhar mean macro-F1 >= 0.91 | - | not measured | cmdhar is not in this result |" in md


def test_selection_row_takes_the_candidate_with_the_best_validation_score_per_fold(dsads3, tmp_path):
    """--select: the candidates are trained as models, and the selection's per-fold record is
    the candidate with the higher best-epoch validation macro-F1 (test scores never read)."""
    settings = _cnn_loso(dsads3, tmp_path, select={"chosen": ["cnn", "tinyhar"]})
    assert settings.model_names() == ["cnn", "tinyhar"]
    result, path = run_benchmark(settings, progress=False, log=lambda s: None)
    models = result["models"]
    assert list(models) == ["cnn", "tinyhar", "chosen"] and models["chosen"]["n_runs"] == 3
    by_model = {n: {r["fold"]: r for r in models[n]["per_fold"]} for n in ("cnn", "tinyhar")}
    for rec, choice in zip(models["chosen"]["per_fold"], models["chosen"]["selection"]["per_fold"], strict=True):
        vals = {n: by_model[n][rec["fold"]]["best_val_macro_f1"] for n in by_model}
        best = "cnn" if vals["cnn"] >= vals["tinyhar"] else "tinyhar"
        assert rec["selected_model"] == choice["chosen"] == best and choice["val_macro_f1"] == vals
        assert rec["metrics"] == by_model[best][rec["fold"]]["metrics"]
    assert result["settings"]["select"] == {"chosen": ["cnn", "tinyhar"]}
    md = path.with_suffix(".md").read_text()
    assert "Selection `chosen`: per fold and seed" in md and "| loso-1 | 0 |" in md


def test_a_training_variant_trains_its_base_model_with_its_own_settings(dsads3, tmp_path, monkeypatch):
    """A VARIANTS name builds its registry model, trains with its trainer overrides, and keeps
    its records in a ledger folder of its own."""
    from components.benchmark import protocol as proto
    from components.training import trainer

    monkeypatch.setitem(proto.VARIANTS, "cnn-unweighted", ("cnn", {"class_weighting": "none"}))
    seen: list[tuple[str, str]] = []
    real = trainer.train_model

    def spy(model, train, val, cfg, *args, **kwargs):
        seen.append((type(model).__name__, cfg.class_weighting))
        return real(model, train, val, cfg, *args, **kwargs)

    monkeypatch.setattr(trainer, "train_model", spy)
    ledger = tmp_path / "ledger"
    models = ["cnn", "cnn-unweighted"]
    settings = _cnn_loso(dsads3, tmp_path / "o", models=models, jobs=1, folds=["1"], executor="threads", ledger=ledger)
    result, _ = run_benchmark(settings, progress=False, log=lambda s: None)
    assert sorted(seen) == [("CNN", "inverse"), ("CNN", "none")]
    assert result["models"]["cnn-unweighted"]["n_runs"] == 1
    fingerprints = [json.loads(p.read_text()) for p in ledger.glob("*/fingerprint.json")]
    folders = {fp.get("trainer_overrides", {}).get("class_weighting") for fp in fingerprints}
    assert folders == {None, "none"}
    with pytest.raises(ValueError, match="training variants"):
        run_benchmark(_cnn_loso(dsads3, tmp_path / "x", models=["cnn-typo"]), False, str)


def test_loss_weight_variants_scale_the_trainer_defaults():
    """The loss-weight candidates are half and twice TrainConfig's disentanglement weights,
    whatever those defaults become."""
    from components.benchmark.protocol import VARIANTS
    from components.training.trainer import TrainConfig

    default = TrainConfig()
    for name, factor in (("cmdhar-losses-half", 0.5), ("cmdhar-losses-double", 2.0)):
        base, overrides = VARIANTS[name]
        assert base == "cmdhar"
        assert overrides == pytest.approx({k: factor * getattr(default, k) for k in ("w_sim", "w_diff", "w_recon")})


def test_selection_names_must_not_shadow_a_model(dsads3, tmp_path):
    with pytest.raises(ValueError, match="--select names"):
        run_benchmark(_cnn_loso(dsads3, tmp_path, select={"cnn": ["cnn", "tinyhar"]}), False, str)


def test_thread_executor_and_time_budget(dsads3, tmp_path):
    """The executor used on a GPU (tasks as threads of one process) gives the same
    records as processes; a spent time budget skips the remaining tasks, says so, and
    leaves them out of the means instead of guessing."""
    settings = _cnn_loso(dsads3, tmp_path, executor="threads")
    result, _ = run_benchmark(settings, progress=False, log=lambda s: None)
    assert result["settings"]["executor"] == "threads" and result["skipped"] == []
    assert sorted(r["fold"] for r in result["models"]["cnn"]["per_fold"]) == ["loso-1", "loso-2", "loso-3"]

    settings.time_budget_s = 1e-9  # spent before the first task starts
    result, path = run_benchmark(settings, progress=False, log=lambda s: None)
    assert len(result["skipped"]) == 3 and result["models"]["cnn"]["n_skipped"] == 3
    assert result["models"]["cnn"]["per_fold"] == [] and result["models"]["cnn"]["macro_f1_mean"] is None
    assert any("3 of 3 tasks not run" in d for d in result["deviations"])
    assert "not run: cnn / loso-1" in path.with_suffix(".md").read_text()


def test_failing_task_is_reported(dsads3, tmp_path, monkeypatch):
    from components.models import registry

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(registry, "build_model", broken)
    settings = BenchmarkSettings(
        dataset="dsads",
        protocol="holdout",
        models=["cnn"],
        epochs=1,
        folds=["3"],
        data_dir=dsads3,
        out=tmp_path,
        efficiency=False,
    )
    result, _ = run_benchmark(settings, progress=False, log=lambda s: None)
    assert len(result["failures"]) == 1 and "boom" in result["failures"][0]["error"]
    assert result["models"]["cnn"]["n_failed"] == 1 and result["models"]["cnn"]["macro_f1_mean"] is None
    assert "Failed tasks" in (tmp_path / "dsads-holdout-smoke.md").read_text()


def test_settings_deviations():
    assert BenchmarkSettings().deviations() == []
    assert BenchmarkSettings(epochs=5).deviations()
    assert BenchmarkSettings(subjects=["1"]).deviations()
    assert BenchmarkSettings(folds=["loso-1"]).deviations()
    assert BenchmarkSettings(modality_dropout=0.0).deviations()
    assert BenchmarkSettings(ablations=True).model_names()[-4:] == list(protocol.ABLATIONS)


def test_efficiency_helpers(tmp_path):
    torch.manual_seed(0)
    model = build_model("cmdhar", SPEC).eval()
    assert count_params(model) == sum(p.numel() for p in model.parameters()) > 0
    assert macs_per_window(model, SPEC) > 0
    assert latency_torch(model, SPEC, runs=5, warmup=1)["p50"] > 0
    cnn = build_model("cnn", SPEC).eval()
    path = export_onnx(cnn, SPEC, tmp_path / "m.onnx")
    assert path.stat().st_size > 0
    assert onnx_parity(cnn, path, SPEC) <= 1e-4
    assert latency_ort(path, SPEC, runs=5, warmup=1)["p50"] > 0
    # an LSTM is not counted by FlopCounterMode on CPU: the hook-based count adds it
    lstm = build_model("deepconvlstm", SPEC).eval()
    assert macs_per_window(lstm, SPEC) > 4 * 128 * 128  # at least one LSTM step
    # a model that cannot be exported still gets params and torch latency
    rep = efficiency_report(_NoExport(), SPEC, runs=3, warmup=1)
    assert rep["params"] > 0 and rep["latency_ms_p50_torch"] > 0
    assert rep["latency_ms_p50"] is None and rep["onnx_size_bytes"] is None and rep["onnx_error"]


def test_interleaved_latency_times_every_model_in_each_round():
    order: list[str] = []
    calls = {name: (lambda name=name: order.append(name)) for name in ("a", "b", "c")}
    times = interleaved_times(calls, runs=6, warmup=3, rounds=3)
    assert {n: len(t) for n, t in times.items()} == {"a": 6, "b": 6, "c": 6}
    timed = order[9:]  # after the 3 warm-up calls of each model
    blocks = [timed[i][0] for i in range(0, len(timed), 3)]  # 1 warm-up + 2 timed calls per block
    assert blocks == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]  # the first place rotates


def test_efficiency_reports_measure_models_side_by_side():
    torch.manual_seed(0)
    models = {"cnn": build_model("cnn", SPEC), "noexport": _NoExport()}
    reps = efficiency_reports(models, SPEC, runs=4, warmup=1, rounds=2)
    assert reps["cnn"]["latency_ms_p50"] > 0 and reps["cnn"]["onnx_max_abs_diff"] <= 1e-4
    assert reps["cnn"]["latency_rounds"] == 2 and reps["cnn"]["latency_runs"] == 4
    assert reps["noexport"]["latency_ms_p50"] is None and reps["noexport"]["latency_ms_p50_torch"] > 0


class _NoExport(torch.nn.Module):
    """Data-dependent Python control flow: torch.export refuses it."""

    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(SPEC.window_len, SPEC.n_classes)

    def forward(self, x):
        if float(x.sum()) > 0:
            return self.lin(x).mean(1)
        return -self.lin(x).mean(1)


def test_provenance_helpers(tmp_path):
    (tmp_path / "data.dvc").write_text("outs:\n- md5: abc123.dir\n  path: data\n")
    assert assemble.data_dvc_md5(tmp_path) == "abc123.dir"
    assert assemble.data_dvc_md5(tmp_path / "nowhere") is None
    ws = type("W", (), {})()
    ws.x, ws.y = np.zeros((2, 1, 3), np.float32), np.array([0, 1])
    ws.subject, ws.recording = np.array(["1", "2"]), np.array(["a", "b"])
    h1 = plan.windows_hash(ws)
    ws.y = np.array([1, 1])
    assert plan.windows_hash(ws) != h1


def test_no_mlops_imports():
    code = (
        "import sys; import components.benchmark.command; "
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "{'zenml','mlflow','dvc','great_expectations','bentoml'}]; assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, check=True)


def test_aggregate_keeps_cut_short_trainings_out_of_the_means():
    def rec(fold, f1, **extra):
        metrics = {"macro_f1": f1, "accuracy": f1, "balanced_accuracy": f1, "gmean": f1}
        return {"fold": fold, "seed": 0, "metrics": metrics, "train_seconds": 1.0, "epochs_run": 3, **extra}

    records = [
        rec("loso-1", 0.8),
        rec("loso-2", 0.2, truncated="stopped by the time budget after 3 epochs"),
        {"fold": "loso-3", "seed": 0, "skipped": "time budget spent before the task started"},
    ]
    out = assemble.aggregate("cnn", records, None)
    assert (out["n_runs"], out["n_truncated"], out["n_skipped"], out["n_failed"]) == (1, 1, 1, 0)
    assert out["macro_f1_mean"] == 0.8 and [r["fold"] for r in out["per_fold"]] == ["loso-1"]
    (cut,) = out["per_fold_cut_short"]
    assert cut["fold"] == "loso-2" and cut["metrics"]["macro_f1"] == 0.2 and "time budget" in cut["truncated"]


def test_ledger_resumes_a_partial_run_and_never_mixes_settings(dsads3, tmp_path, monkeypatch):
    """A long protocol spread over sessions: finished trainings are kept, a later run trains
    only what is missing, and records made under other settings are never reused."""
    ledger = tmp_path / "ledger"
    ran: list[str] = []
    real_run_task = execute.run_task
    monkeypatch.setattr(execute, "run_task", lambda task: ran.append(task["fold"]["name"]) or real_run_task(task))

    first, _ = run_benchmark(_cnn_loso(dsads3, tmp_path / "a", jobs=1, folds=["1", "2"], ledger=ledger), False, str)
    (folder,) = [p for p in ledger.iterdir() if p.is_dir()]
    assert sorted(p.name for p in folder.glob("cnn__*")) == ["cnn__loso-1__seed0.json", "cnn__loso-2__seed0.json"]
    assert json.loads((folder / "fingerprint.json").read_text())["code_sha256"] == code_fingerprint(model="cnn")
    assert ran == ["loso-1", "loso-2"] and first["ledger"]["reused"] == 0

    ran.clear()
    second, path = run_benchmark(_cnn_loso(dsads3, tmp_path / "b", jobs=1, ledger=ledger), False, str)
    assert ran == ["loso-3"]  # loso-1 and loso-2 came from the ledger
    assert second["ledger"]["reused"] == 2 and second["ledger"]["ran"] == 1
    runs = {r["fold"]: r for r in second["models"]["cnn"]["per_fold"]}
    assert sorted(runs) == ["loso-1", "loso-2", "loso-3"] and runs["loso-1"]["from_ledger"]
    before = {r["fold"]: r["metrics"]["macro_f1"] for r in first["models"]["cnn"]["per_fold"]}
    assert runs["loso-1"]["metrics"]["macro_f1"] == before["loso-1"]
    assert "resumed from the ledger" in path.with_suffix(".md").read_text()

    ran.clear()  # another trainer setting is another fingerprint: everything trains again
    third, _ = run_benchmark(_cnn_loso(dsads3, tmp_path / "c", jobs=1, lr=2e-3, ledger=ledger), False, str)
    assert sorted(ran) == ["loso-1", "loso-2", "loso-3"] and third["ledger"]["reused"] == 0
    assert len([p for p in ledger.iterdir() if p.is_dir()]) == 2


def test_stopped_training_goes_on_from_its_ledger_checkpoint(dsads3, tmp_path, monkeypatch):
    """A training stopped in its third epoch keeps its checkpoint in the ledger (listed by
    ``--status``); the next run goes on from there and scores what an unbroken run scores."""
    from components.benchmark.ledger import render_status

    settings = {"epochs": 4, "jobs": 1, "folds": ["1"], "models": ["cnn"]}
    plain, _ = run_benchmark(_cnn_loso(dsads3, tmp_path / "plain", **settings), False, str)

    ledger = tmp_path / "ledger"
    stop_training_in_epoch(monkeypatch, 2, RuntimeError("stopped"))  # its third epoch
    cut, _ = run_benchmark(_cnn_loso(dsads3, tmp_path / "a", ledger=ledger, **settings), False, str)
    monkeypatch.undo()
    assert [f["fold"] for f in cut["failures"]] == ["loso-1"]
    (row,) = ledger_status(ledger)
    assert row["n_records"] == 0 and row["partial"] == [("loso-1", 0, 2, 4)]
    assert "| 1/s0: 2 of 4 |" in render_status([row])

    resumed, _ = run_benchmark(_cnn_loso(dsads3, tmp_path / "b", ledger=ledger, **settings), False, str)
    (rec,) = resumed["models"]["cnn"]["per_fold"]
    (ref,) = plain["models"]["cnn"]["per_fold"]
    assert rec["resumed_from_epoch"] == 2 and "resumed_from_epoch" not in ref
    assert (rec["metrics"], rec["best_epoch"], rec["epochs_run"]) == (ref["metrics"], ref["best_epoch"], 4)
    (row,) = ledger_status(ledger)
    assert row["n_records"] == 1 and row["partial"] == []  # kept as a record, checkpoint removed
    assert not list(ledger.rglob("*.pt*"))


def test_ledger_keeps_only_finished_trainings_and_tracks_the_code(tmp_path):
    led = Ledger(tmp_path, "dsads", "loso", {"x": 1})
    rec = {"model": "cnn", "fold": "loso-1", "seed": 0, "metrics": {"macro_f1": 0.5}}
    for bad in ({"truncated": "budget"}, {"error": "boom"}, {"skipped": "budget"}):
        assert not led.save({**rec, **bad}, {})
    assert led.load() == {}
    assert led.save(rec, {"git": {"commit": "abc"}})
    assert led.load()[("cnn", "loso-1", 0)]["ledger"]["git"] == {"commit": "abc"}
    (led.dir / "cnn__loso-2__seed0.json").write_text("{not json")
    with pytest.raises(ValueError, match="cnn__loso-2__seed0.json is unreadable"):
        led.load()

    repo = tmp_path / "repo"
    models = repo / "components" / "models"
    models.mkdir(parents=True)
    for name in ("cmdhar", "tinyhar", "cnn", "deepconvlstm", "spec"):
        (models / f"{name}.py").write_text("x = 1\n")
    names = ("cmdhar", "cmdhar-no-attention", "tinyhar", "cnn", None)
    before = {n: code_fingerprint(repo, model=n) for n in names}
    assert before["cmdhar"] == before["cmdhar-no-attention"] != before["tinyhar"]  # ablations share cmdhar.py

    (models / "tinyhar.py").write_text("x = 2\n")  # one model's own module: only that model re-runs
    after = {n: code_fingerprint(repo, model=n) for n in names}
    assert [n for n in names if after[n] != before[n]] == ["tinyhar", None]
    (models / "spec.py").write_text("x = 2\n")  # shared code: everything re-runs
    assert all(code_fingerprint(repo, model=n) != after[n] for n in names)
    with pytest.raises(KeyError, match="unknown model 'resnet'"):
        code_fingerprint(repo, model="resnet")


def test_ledger_keeps_a_model_s_records_when_another_model_s_code_changes(dsads3, tmp_path, monkeypatch):
    """Editing TinyHAR's module must not throw away finished CNN trainings, editing CNN's must."""
    import components.benchmark.ledger as ledger_module

    repo = tmp_path / "repo"
    for rel in ledger_module.CODE_PATHS:  # a copy of the scored code that this test may edit
        src, dest = REPO_ROOT / rel, repo / rel
        if src.is_dir():
            shutil.copytree(src, dest, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest)
    monkeypatch.setattr(ledger_module, "REPO_ROOT", repo)
    ran: list[str] = []
    real_run_task = execute.run_task
    monkeypatch.setattr(execute, "run_task", lambda task: ran.append(task["model"]) or real_run_task(task))
    settings = {"folds": ["1"], "jobs": 1, "ledger": tmp_path / "ledger"}

    run_benchmark(_cnn_loso(dsads3, tmp_path / "a", **settings), False, str)
    with (repo / "components" / "models" / "tinyhar.py").open("a") as f:
        f.write("# an edit\n")
    second, _ = run_benchmark(_cnn_loso(dsads3, tmp_path / "b", **settings), False, str)
    assert ran == ["cnn"] and second["ledger"]["reused"] == 1
    with (repo / "components" / "models" / "cnn.py").open("a") as f:
        f.write("# an edit\n")
    third, _ = run_benchmark(_cnn_loso(dsads3, tmp_path / "c", **settings), False, str)
    assert ran == ["cnn", "cnn"] and third["ledger"]["reused"] == 0

    # `har benchmark --status`: the folder from before the CNN edit is stale, the new one current
    rows = ledger_status(settings["ledger"])
    assert sorted((r["model"], r["current"], r["n_records"], r["n_subjects"]) for r in rows) == [
        ("cnn", False, 1, 3),
        ("cnn", True, 1, 3),
    ]
    app = typer.Typer()
    app.command()(benchmark)
    res = CliRunner().invoke(app, ["--status", "--ledger", str(settings["ledger"])])
    assert res.exit_code == 0, res.output
    table = [line for line in res.output.splitlines() if line.startswith("| dsads | loso | cnn |")]
    assert sorted(line.split(" | ")[4] for line in table) == ["current", "stale"]
    assert all("| 1 of 3 |" in line for line in table)


def test_parse_hparams_reads_model_key_value_items():
    assert protocol.parse_hparams(None) == {} and protocol.parse_hparams(" ") == {}
    parsed = protocol.parse_hparams("cmdhar.d_model=24, cmdhar.disentangle=false,cnn.name=wide")
    assert parsed == {"cmdhar": {"d_model": 24, "disentangle": False}, "cnn": {"name": "wide"}}
    for bad in ("cmdhar.d_model", "d_model=24", "cmdhar.=24", "cmdhar.d_model="):
        with pytest.raises(ValueError, match="MODEL.KEY=VALUE"):
            protocol.parse_hparams(bad)


def test_hparams_build_the_model_they_name_and_get_their_own_ledger(dsads3, tmp_path, monkeypatch):
    """``--hparams`` changes what is trained and measured, is written into the result, and
    gives that model its own ledger fingerprint (records made at the defaults keep theirs)."""
    built: list[tuple[str, dict]] = []

    def spy(name, spec, **hp):
        built.append((name, hp))
        return build_model(name, spec, **hp)

    monkeypatch.setattr("components.models.registry.build_model", spy)
    ledger = tmp_path / "ledger"
    run_benchmark(_cnn_loso(dsads3, tmp_path / "a", jobs=1, folds=["1"], ledger=ledger, executor="threads"), 0, str)
    narrow = {"cnn": {"channels": [8, 8, 8]}}
    settings = _cnn_loso(dsads3, tmp_path / "b", jobs=1, folds=["1"], ledger=ledger, executor="threads", hparams=narrow)
    settings.efficiency, settings.latency_runs = True, 5
    result, path = run_benchmark(settings, False, str)
    assert ("cnn", narrow["cnn"]) in built and ("cnn", {}) in built
    assert result["models"]["cnn"]["hparams"] == narrow["cnn"]
    d = result["data"]
    spec = InputSpec(d["n_channels"], d["window_len"], d["n_classes"], d["modality_groups"])
    expected = sum(p.numel() for p in build_model("cnn", spec, **narrow["cnn"]).parameters())
    assert result["models"]["cnn"]["params"] == expected < sum(p.numel() for p in build_model("cnn", spec).parameters())
    assert "| cnn (channels=[8, 8, 8]) |" in path.with_suffix(".md").read_text()
    folders = sorted(p for p in ledger.iterdir() if p.is_dir())
    assert len(folders) == 2 and result["ledger"]["reused"] == 0  # the defaults' record is not reused
    fps = [json.loads((f / "fingerprint.json").read_text()) for f in folders]
    assert sorted("hparams" in fp for fp in fps) == [False, True]

    with pytest.raises(ValueError, match="does not train"):
        run_benchmark(_cnn_loso(dsads3, tmp_path / "c", hparams={"tinyhar": {"x": 1}}), False, str)
    with pytest.raises(ValueError, match="--hparams for cnn"):
        run_benchmark(_cnn_loso(dsads3, tmp_path / "d", hparams={"cnn": {"chanels": [8]}}), False, str)
