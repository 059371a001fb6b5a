"""Trainer and OGM-GE gradient modulation (small and fast)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

from components.data.window_set import WindowSet
from components.metrics import classification_metrics
from components.models.cmdhar import CMDHAR
from components.models.registry import build_model
from components.models.spec import InputSpec
from components.training import TrainConfig, evaluate, ogm_ge, predict, train_model
from components.training.augment import SensorAugment
from components.training.modulation import modality_scores, modulation_coefficients, modulation_ratios
from components.training.trainer import _class_weights
from tests.conftest import stop_training_in_epoch

torch.set_num_threads(2)


def _source_split(ws):
    """BasicMotions' own train/test split (it has no subject ids): by recording prefix."""
    return ws.select(np.char.startswith(ws.recording, "train_")), ws.select(np.char.startswith(ws.recording, "test_"))


def _standardise(train: WindowSet, *others: WindowSet) -> list[WindowSet]:
    mean = train.x.mean(axis=(0, 2), keepdims=True)
    std = train.x.std(axis=(0, 2), keepdims=True) + 1e-6
    out = []
    for ws in (train, *others):
        ws = ws.select(np.arange(len(ws)))
        ws.x = ((ws.x - mean) / std).astype(np.float32)
        out.append(ws)
    return out


@pytest.fixture(scope="module")
def dsads_split(dsads_small_windows):
    """Subject 1 (every 8th window) for training, subject 2 (every 10th) for validation."""
    return _subject_split(dsads_small_windows, train_every=8)


def _subject_split(ws: WindowSet, train_every: int) -> list[WindowSet]:
    """Subject 1 (every ``train_every``-th window) for training, subject 2 (every 10th) for validation."""
    tr, va = ws.for_subjects(["1"]), ws.for_subjects(["2"])
    return _standardise(tr.select(np.arange(0, len(tr), train_every)), va.select(np.arange(0, len(va), 10)))


# -- modulation ------------------------------------------------------------------------
def test_modulation_coefficients():
    scores = torch.tensor([30.0, 10.0, 10.0])
    rho = modulation_ratios(scores)
    assert torch.allclose(rho, torch.tensor([3.0, 0.5, 0.5]))
    k = modulation_coefficients(rho, alpha=0.5)
    assert torch.allclose(k[0], torch.tensor(1 - math.tanh(0.5 * 2.0)))
    assert k[1] == 1 and k[2] == 1
    k_official = modulation_coefficients(rho, alpha=0.5, offset=False)
    assert torch.allclose(k_official[0], torch.tensor(1 - math.tanh(0.5 * 3.0)))
    # balanced modalities are never damped; coefficients always in (0, 1]
    assert torch.equal(modulation_coefficients(modulation_ratios(torch.ones(4))), torch.ones(4))
    for _ in range(20):
        k = modulation_coefficients(modulation_ratios(torch.rand(3) * 50 + 1e-3), alpha=1.0)
        assert ((k > 0) & (k <= 1)).all()
    assert torch.equal(modulation_ratios(torch.tensor([5.0])), torch.ones(1))  # M = 1: no-op


def test_modality_scores():
    y = torch.tensor([0, 1])
    aux = torch.zeros(2, 2, 3)
    aux[0, 0, 0] = aux[0, 1, 1] = 20.0  # modality 0 confident and right
    s = modality_scores(aux, y)
    assert s[0] == pytest.approx(2.0, abs=1e-6) and s[1] == pytest.approx(2 / 3, abs=1e-6)


def _cmdhar_with_grads(ws: WindowSet):
    """A CMD-HAR on 8 BasicMotions windows after one backward pass touching every encoder."""
    spec = InputSpec.from_windows(ws)
    torch.manual_seed(0)
    model = CMDHAR(spec).train()
    y = torch.from_numpy(ws.y[:8])
    model.forward_train(torch.from_numpy(ws.x[:8])).logits.sum().backward()
    return spec, model, y


def test_ogm_ge_damps_dominant_modality_gradients(basicmotions_windows):
    spec, model, y = _cmdhar_with_grads(basicmotions_windows)
    params = model.encoder_parameters()
    before = {m: [p.grad.clone() for p in ps] for m, ps in params.items()}
    aux = torch.zeros(2, 8, spec.n_classes)
    aux[0, torch.arange(8), y] = 10.0  # "acc" dominates
    res = ogm_ge(params, aux, y, alpha=1.0, noise=False)
    assert res.coeffs["gyro"] == 1.0 and 0 < res.coeffs["acc"] < 1
    assert any(p.dim() == 3 for p in params["acc"])  # conv kernels included
    for p, g0 in zip(params["acc"], before["acc"], strict=False):
        torch.testing.assert_close(p.grad, g0 * res.coeffs["acc"])
    for p, g0 in zip(params["gyro"], before["gyro"], strict=False):
        torch.testing.assert_close(p.grad, g0)
    # with GE noise the damped grads differ from pure scaling, the others do not change
    for ps, gs in zip(params.values(), before.values(), strict=False):
        for p, g0 in zip(ps, gs, strict=False):
            p.grad = g0.clone()
    ogm_ge(params, aux, y, alpha=1.0, noise=True)
    assert not torch.allclose(params["acc"][0].grad, before["acc"][0] * res.coeffs["acc"])
    torch.testing.assert_close(params["gyro"][0].grad, before["gyro"][0])


# -- helpers ---------------------------------------------------------------------------
def test_class_weights_and_macro_f1():
    w = _class_weights(np.array([0, 0, 0, 1]), 3)
    assert w[2] == 0 and w[1] == pytest.approx(3 * w[0]) and float(w.sum()) == pytest.approx(2.0)
    # the trainer's validation macro-F1 is classification_metrics' (one implementation)
    y = np.array([0, 0, 1, 1])
    assert classification_metrics(y, y, 2)["macro_f1"] == 1.0
    assert classification_metrics(y, np.array([0, 0, 0, 0]), 2)["macro_f1"] == pytest.approx((2 * 2 / 6 + 0) / 2)


# -- training --------------------------------------------------------------------------
def _cfg(**kw) -> TrainConfig:
    base = dict(
        epochs=4,
        batch_size=32,
        patience=10,
        seed=0,
        device="cpu",
        progress=False,
        modality_dropout=0.2,
        num_threads=2,
        augment_rotation_deg=0.0,  # these tests train without the split's standardiser
        augment_gain_std=0.0,
        time_budget_min=None,  # the tests that want a budget pass one
    )
    base.update(kw)
    return TrainConfig(**base)


def test_train_cmdhar_on_dsads(dsads_small_windows):
    # every 4th window of subject 1 (147) in batches of 8: ~57 steps. dsads_split's 74 windows
    # in batches of 25 give 9 steps, after which the unseen subject can still be predicted as
    # one class, depending on the initialisation (seeds 2 and 3 of 0-3 at the default width).
    train, val = _subject_split(dsads_small_windows, train_every=4)
    spec = InputSpec.from_windows(train)
    torch.manual_seed(0)  # weight init happens outside train_model
    model = build_model("cmdhar-with-modulation", spec)  # cmdhar plus OGM-GE: every loss term and coefficient
    res = train_model(model, train, val, _cfg(epochs=3, batch_size=8))
    hist = res.history
    assert len(hist) == 3
    for rec in hist:
        for key in ("loss", "ce", "aux", "sim", "diff", "recon", "val_macro_f1", "val_accuracy", "lr"):
            assert math.isfinite(rec[key]), key
        assert set(rec["coeffs"]) == {"acc", "gyro", "mag"}
        assert all(0 < k <= 1 for k in rec["coeffs"].values())
        assert set(rec["scores"]) == {"acc", "gyro", "mag"}
    assert hist[-1]["loss"] < hist[0]["loss"]
    assert hist[-1]["ce"] < hist[0]["ce"]
    assert hist[1]["lr"] < hist[0]["lr"]  # cosine schedule
    assert res.best_val_f1 > 0.5  # 3 well-separated activities, unseen subject
    # evaluate / predict on the restored best weights
    metrics = evaluate(model, val)
    assert metrics["macro_f1"] == pytest.approx(res.best_val_f1, abs=1e-9)
    probs = predict(model, val.x[:5], batch_size=2, modality_mask=np.array([[1, 0, 1]] * 5))
    assert probs.shape == (5, 3) and np.allclose(probs.sum(1), 1, atol=1e-5)


def test_training_is_deterministic(basicmotions_windows):
    train, val = _standardise(*_source_split(basicmotions_windows))
    spec = InputSpec.from_windows(train)
    results, states = [], []
    for _ in range(2):
        torch.manual_seed(0)  # weight init happens outside train_model
        model = build_model("cmdhar-with-modulation", spec)  # the noisy (GE) path must be seeded too
        results.append(train_model(model, train, val, _cfg(epochs=3, batch_size=16, modality_dropout=0.3)))
        states.append(model.state_dict())
    strip = [[{k: v for k, v in r.items() if k != "seconds"} for r in res.history] for res in results]
    assert strip[0] == strip[1]  # identical history except wall-clock
    assert any(k < 1 for r in results[0].history for k in r["coeffs"].values())  # modulation was active
    for k in states[0]:
        assert torch.equal(states[0][k], states[1][k]), k


def test_train_baseline_and_default_cmdhar_without_modulation(basicmotions_windows):
    train, val = _standardise(*_source_split(basicmotions_windows))
    spec = InputSpec.from_windows(train)
    res = train_model(_Tiny(spec), train, val, _cfg(epochs=3, batch_size=16))  # no forward_train: plain CE
    assert res.epochs_run == 3 and all(r["coeffs"] == {} for r in res.history)
    assert all(r["aux"] == 0.0 for r in res.history)
    with pytest.raises(ValueError):
        predict(_Tiny(spec), val.x, modality_mask=np.ones((len(val), 2)))

    res = train_model(build_model("cmdhar", spec), train, val, _cfg(epochs=2, batch_size=16))  # no OGM-GE by default
    assert all(r["coeffs"] == {} for r in res.history)
    assert all(math.isfinite(r["loss"]) for r in res.history)


def test_early_stopping_restores_best(basicmotions_windows):
    train, val = _standardise(*_source_split(basicmotions_windows))
    model = build_model("cmdhar-no-attention", InputSpec.from_windows(train))
    res = train_model(model, train, val, _cfg(epochs=6, patience=2, lr=3e-3, batch_size=16))
    f1s = [r["val_macro_f1"] for r in res.history]
    assert res.best_epoch == int(np.argmax(f1s)) and res.best_val_f1 == max(f1s)
    assert res.epochs_run == 6 or res.epochs_run == res.best_epoch + 3  # stopped after 2 stale epochs
    assert evaluate(model, val)["macro_f1"] == pytest.approx(res.best_val_f1)


def test_sync_free_modulation_matches_host_branch(basicmotions_windows):
    """The branch-free form used on the GPU gives the same gradients as the CPU form."""
    spec, model, y = _cmdhar_with_grads(basicmotions_windows)
    params = model.encoder_parameters()
    before = [p.grad.clone() for ps in params.values() for p in ps]
    aux = torch.zeros(2, 8, spec.n_classes)
    aux[1, torch.arange(8), y] = 10.0  # "gyro" dominates
    results = []
    for sync_free in (False, True):
        for p, g0 in zip((p for ps in params.values() for p in ps), before, strict=True):
            p.grad = g0.clone()
        torch.manual_seed(1)
        res = ogm_ge(params, aux, y, alpha=1.0, noise=False, sync_free=sync_free)
        results.append((res.coeffs, [p.grad.clone() for ps in params.values() for p in ps]))
    assert results[0][0] == results[1][0] and results[0][0]["gyro"] < 1.0
    for a, b in zip(results[0][1], results[1][1], strict=True):
        torch.testing.assert_close(a, b)


class _HostSyncDetector(torch.utils._python_dispatch.TorchDispatchMode):
    """Fails on ops that make a CUDA step wait for the GPU (they break graph capture)."""

    SYNCING = {"_local_scalar_dense", "nonzero", "masked_select", "is_nonzero", "_unique2", "equal"}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        assert name not in self.SYNCING, f"host synchronisation inside the training step: aten::{name}"
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("name", ["cmdhar", "tinyhar", "cnn", "deepconvlstm"])
def test_training_step_never_reads_back_to_the_host(basicmotions_windows, name):
    """What CUDA-graph capture needs: the step (augmentation, forward, losses, backward, OGM-GE,
    clipping) runs without one host read. The optimizer is AdamW(capturable=True) on
    CUDA, PyTorch's own capturable path, so it is left out here (CPU AdamW reads its step)."""
    from components.training.trainer import _StepRunner

    spec = InputSpec.from_windows(basicmotions_windows)
    torch.manual_seed(0)
    model = build_model(name, spec).train()
    x = torch.from_numpy(basicmotions_windows.x[:16])
    y = torch.from_numpy(basicmotions_windows.y[:16]).long()

    class _NoStep:
        def zero_grad(self, set_to_none: bool = True) -> None:
            model.zero_grad(set_to_none=set_to_none)

        def step(self) -> None:
            pass

    cfg = TrainConfig(modality_dropout=0.2, progress=False)
    n_ch = len(basicmotions_windows.channel_names)
    augment = SensorAugment(basicmotions_windows.channel_names, [0.0] * n_ch, [1.0] * n_ch, 30.0, 0.1)
    assert augment.active  # wrist acc + gyro triads
    runner = _StepRunner(model, _NoStep(), cfg, x, y, torch.ones(spec.n_classes), use_graph=False, augment=augment)
    runner.sync_free = True
    with _HostSyncDetector():
        terms, scores, coeffs = runner._step(torch.arange(8), modulate=hasattr(model, "forward_train"))
    assert terms.shape == (6,) and torch.isfinite(terms).all()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


# -- time budget -----------------------------------------------------------------------
class _Tiny(nn.Module):
    """A model without forward_train (plain CE path), fast enough for many epochs."""

    def __init__(self, spec: InputSpec):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv1d(spec.n_channels, 8, 5),
            nn.ReLU(),
            nn.AdaptiveAvgPool1d(1),
            nn.Flatten(),
            nn.Linear(8, spec.n_classes),
        )

    def forward(self, x):
        return self.net(x)


def _train_tiny(train, val, monkeypatch, epoch_seconds: float | None = None, **kw):
    """Train ``_Tiny`` with the budget's clock advancing ``epoch_seconds`` per epoch (None: real clock)."""
    from components.training import trainer

    if epoch_seconds is not None:
        now = [1000.0]
        real_evaluate = trainer.evaluate

        def evaluate(*args, **kwargs):  # called once per epoch, after its steps
            now[0] += epoch_seconds
            return real_evaluate(*args, **kwargs)

        monkeypatch.setattr(trainer, "_clock", lambda: now[0])
        monkeypatch.setattr(trainer, "evaluate", evaluate)
    torch.manual_seed(0)
    model = _Tiny(InputSpec.from_windows(train))
    return train_model(model, train, val, _cfg(batch_size=16, patience=1000, **kw))


def test_time_budget_ends_training(basicmotions_windows, monkeypatch):
    train, val = _standardise(*_source_split(basicmotions_windows))
    # 15 s epochs in a 1 min budget: 4 epochs of the 100 allowed (the 4th reaches the budget)
    res = _train_tiny(train, val, monkeypatch, epoch_seconds=15.0, epochs=100, time_budget_min=1.0)
    assert res.epochs_run == 4 and res.stopped_by == "time_budget"
    # epochs that turn slower than the first (a machine that got busy) stop it at 1.25x the budget
    from components.training import trainer

    slow = [15.0, 30.0, 30.0, 30.0]
    now = [0.0]
    real_evaluate = trainer.evaluate

    def evaluate(*args, **kwargs):
        now[0] += slow.pop(0)
        return real_evaluate(*args, **kwargs)

    monkeypatch.setattr(trainer, "_clock", lambda: now[0])
    monkeypatch.setattr(trainer, "evaluate", evaluate)
    res = train_model(_Tiny(InputSpec.from_windows(train)), train, val, _cfg(epochs=100, time_budget_min=1.0))
    assert res.planned_epochs == 4 and res.epochs_run == 3 and res.stopped_by == "time_budget"  # 75 s >= 1.25 min
    # the real clock: any epoch outlasts a 1e-6 min budget
    monkeypatch.undo()
    res = _train_tiny(train, val, monkeypatch, epochs=5, time_budget_min=1e-6)
    assert res.epochs_run == 1 and res.stopped_by == "time_budget"
    assert res.config["time_budget_min"] == 1e-6


def test_time_budget_run_equals_a_run_over_the_epochs_that_fit(basicmotions_windows, monkeypatch):
    """A budget that fits 4 epochs (15 s each, 1 min) of a 100-epoch cap: the cosine schedule
    spans those 4, and the run is bit for bit the run with ``epochs=4`` and no budget."""
    train, val = _standardise(*_source_split(basicmotions_windows))
    budget = _train_tiny(train, val, monkeypatch, epoch_seconds=15.0, epochs=100, time_budget_min=1.0, lr=1e-2)
    plain = _train_tiny(train, val, monkeypatch, epoch_seconds=15.0, epochs=4, lr=1e-2)
    assert budget.stopped_by == "time_budget" and plain.stopped_by == "epochs"
    assert budget.planned_epochs == plain.planned_epochs == 4
    lrs = [r["lr"] for r in budget.history]
    assert lrs == pytest.approx([1e-2 * (1 + math.cos(math.pi * k / 4)) / 2 for k in range(4)], rel=1e-9)
    for key in ("lr", "loss", "val_macro_f1"):
        assert [r[key] for r in budget.history] == [r[key] for r in plain.history], key
    # the epoch cap bounds the schedule when it comes first: 4 epochs of a long budget
    short = _train_tiny(train, val, monkeypatch, epoch_seconds=15.0, epochs=4, time_budget_min=60.0, lr=1e-2)
    assert short.stopped_by == "epochs" and short.planned_epochs == 4 and [r["lr"] for r in short.history] == lrs


def test_no_time_budget_keeps_the_epoch_schedule(basicmotions_windows, monkeypatch):
    """time_budget_min None: CosineAnnealingLR over ``epochs``, bit for bit, whatever the clock says."""
    train, val = _standardise(*_source_split(basicmotions_windows))
    res = _train_tiny(train, val, monkeypatch, epoch_seconds=3600.0, epochs=5, lr=1e-2)
    assert res.epochs_run == 5 and res.stopped_by == "epochs" and res.planned_epochs == 5
    opt = torch.optim.AdamW([nn.Parameter(torch.zeros(1))], lr=1e-2)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=5)
    expected = []
    for _ in range(5):
        expected.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert [r["lr"] for r in res.history] == expected


def test_plateau_schedule_decays_after_epochs_without_a_better_validation_f1(basicmotions_windows, monkeypatch):
    """lr_schedule plateau: the LR is multiplied by lr_decay_factor once lr_decay_patience epochs
    in a row bring no better validation macro-F1 (strictly better, as early stopping counts)."""
    from components.training import trainer

    train, val = _standardise(*_source_split(basicmotions_windows))
    scripted = iter([0.5, 0.6, 0.6, 0.6, 0.6, 0.6, 0.7, 0.7])
    monkeypatch.setattr(trainer, "evaluate", lambda *a, **k: {"macro_f1": next(scripted), "accuracy": 0.0})
    cfg = _cfg(epochs=8, lr=1.0, lr_schedule="plateau", lr_decay_patience=2, lr_decay_factor=0.5, patience=100)
    res = train_model(_Tiny(InputSpec.from_windows(train)), train, val, cfg)
    # epochs 2-3 and 4-5 bring nothing better: halved after each pair; epoch 6 improves
    assert [r["lr"] for r in res.history] == [1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
    assert res.epochs_run == 8 and res.best_epoch == 6


@pytest.mark.parametrize(
    "kw",
    [
        {"lr_schedule": "step"},
        {"lr_schedule": "plateau", "lr_decay_factor": 1.0},
        {"lr_schedule": "plateau", "lr_decay_patience": 0},
    ],
)
def test_bad_lr_schedule_is_refused(kw):
    with pytest.raises(ValueError, match="lr_schedule"):
        TrainConfig(**kw)


def test_stopped_by_patience(basicmotions_windows, monkeypatch):
    train, val = _standardise(*_source_split(basicmotions_windows))
    torch.manual_seed(0)
    res = train_model(_Tiny(InputSpec.from_windows(train)), train, val, _cfg(epochs=50, patience=1, lr=0.0))
    # lr 0: the weights never change, so no epoch beats the first
    assert res.epochs_run == 2 and res.stopped_by == "patience" and res.best_epoch == 0


@pytest.mark.parametrize("bad", [-1.0, 0, 0.0, float("nan"), float("inf"), True, "5"])
def test_time_budget_rejects_bad_values(bad):
    from components.config import build

    with pytest.raises(ValueError, match="time_budget_min"):
        TrainConfig(time_budget_min=bad)
    with pytest.raises(ValueError, match="time_budget_min"):
        build(TrainConfig, {"time_budget_min": bad})
    assert TrainConfig(time_budget_min=2).time_budget_min == 2


def test_train_run_summary_per_class_table():
    """The run summary's per-class table: lowest recall first, absent classes left out."""
    from rich.console import Console

    from cli.summary import per_class_table

    metrics = classification_metrics(
        np.array([0, 0, 0, 0, 1, 1, 2, 2, 2, 2]),
        np.array([0, 0, 0, 0, 1, 0, 2, 2, 2, 0]),
        4,
        ["walk", "rare", "sit", "absent"],
    )
    console = Console(width=120, record=True)
    console.print(per_class_table(metrics, worst=1))
    text = console.export_text()
    lines = [
        ln.split() for ln in text.splitlines() if ln.split() and ln.split()[0] in ("walk", "rare", "sit", "absent")
    ]
    assert [ln[0] for ln in lines] == ["rare", "sit", "walk"]
    assert lines[0][1:] == ["0.500", "1.000", "0.667", "2"]  # recall, precision, F1, support
    assert lines[2][1:3] == ["1.000", "0.667"]
    assert "1 classes absent" in text


def test_train_run_summary_hints_at_a_longer_budget_only_when_it_cut_an_improving_run():
    from cli.summary import budget_hint

    cut = {"stopped_by": "time_budget", "epochs_run": 12, "best_epoch": 11}
    assert "time_budget_min" in budget_hint(cut) and "after 12 epochs" in budget_hint(cut)
    assert budget_hint({**cut, "best_epoch": 9}) is None  # it had stopped improving
    assert budget_hint({**cut, "stopped_by": "patience"}) is None
    assert budget_hint({}) is None  # a summary without training details


# -- resumable trainings ---------------------------------------------------------------
class _Stopped(Exception):
    """Stands in for a killed process: raised from inside the epoch loop."""


def _cmdhar_run(train, val, spec, cfg, checkpoint=None):
    torch.manual_seed(0)
    model = build_model("cmdhar-with-modulation", spec)  # GE noise and modality dropout draw random numbers
    return model, train_model(model, train, val, cfg, checkpoint=checkpoint)


@pytest.mark.parametrize("schedule", ["cosine", "plateau"])
def test_stopped_training_resumes_from_its_checkpoint_as_if_never_stopped(
    basicmotions_windows, tmp_path, monkeypatch, schedule
):
    """Killed in epoch 3 of 5, then started again: the same history and weights, bit for bit,
    as the training that ran through (schedule, optimizer, RNG and best-weights state restored)."""
    from components.training.checkpoint import TrainingCheckpoint

    train, val = _standardise(*_source_split(basicmotions_windows))
    spec = InputSpec.from_windows(train)
    # plateau: decay after every epoch without a better val F1, so the 5 epochs see it act
    cfg = _cfg(epochs=5, batch_size=16, modality_dropout=0.3, lr=3e-3, lr_schedule=schedule, lr_decay_patience=1)
    ref_model, ref = _cmdhar_run(train, val, spec, cfg)

    ckpt = TrainingCheckpoint(tmp_path / "ck" / "t.pt", key={"fold": "a"})
    stop_training_in_epoch(monkeypatch, 3, _Stopped())
    with pytest.raises(_Stopped):
        _cmdhar_run(train, val, spec, cfg, ckpt)
    monkeypatch.undo()
    assert ckpt.progress()["epochs_done"] == 3 and ckpt.progress()["planned_epochs"] == 5

    model, res = _cmdhar_run(train, val, spec, cfg, ckpt)
    assert res.resumed_from_epoch == 3 and ref.resumed_from_epoch is None
    strip = [[{k: v for k, v in r.items() if k != "seconds"} for r in x.history] for x in (ref, res)]
    assert strip[0] == strip[1] and len(strip[1]) == 5
    if schedule == "plateau":  # the restored scheduler state decides these
        assert len({r["lr"] for r in res.history}) > 1
    assert (res.best_epoch, res.best_val_f1, res.stopped_by) == (ref.best_epoch, ref.best_val_f1, ref.stopped_by)
    for k, v in ref_model.state_dict().items():
        assert torch.equal(v, model.state_dict()[k]), k
    # the finished training wrote no checkpoint after its last epoch; the caller clears the file
    assert ckpt.progress()["epochs_done"] == 4
    ckpt.clear()
    assert not ckpt.exists() and ckpt.progress() is None


def test_checkpoint_of_another_training_is_refused(basicmotions_windows, tmp_path, monkeypatch):
    from components.training.checkpoint import TrainingCheckpoint

    train, val = _standardise(*_source_split(basicmotions_windows))
    spec = InputSpec.from_windows(train)
    ckpt = TrainingCheckpoint(tmp_path / "t.pt", key={"fold": "a"})
    stop_training_in_epoch(monkeypatch, 1, _Stopped())
    with pytest.raises(_Stopped):
        _cmdhar_run(train, val, spec, _cfg(epochs=3, batch_size=16), ckpt)
    monkeypatch.undo()
    with pytest.raises(ValueError, match=r"another training \(differs in: config\)"):
        _cmdhar_run(train, val, spec, _cfg(epochs=3, batch_size=16, lr=5e-3), ckpt)
    with pytest.raises(ValueError, match=r"differs in: key"):
        _cmdhar_run(train, val, spec, _cfg(epochs=3, batch_size=16), TrainingCheckpoint(ckpt.path, key={"fold": "b"}))
    with pytest.raises(ValueError, match=r"differs in: train_sha256"):
        _cmdhar_run(train.select(np.arange(30)), val, spec, _cfg(epochs=3, batch_size=16), ckpt)
    Path(ckpt.path).write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="unreadable"):
        _cmdhar_run(train, val, spec, _cfg(epochs=3, batch_size=16), ckpt)


def test_deadline_cut_keeps_a_checkpoint_that_a_later_run_continues(basicmotions_windows, tmp_path):
    from components.training.checkpoint import TrainingCheckpoint

    train, val = _standardise(*_source_split(basicmotions_windows))
    spec = InputSpec.from_windows(train)
    ckpt = TrainingCheckpoint(tmp_path / "t.pt")
    _, cut = _cmdhar_run(train, val, spec, _cfg(epochs=4, batch_size=16, deadline=0.0), ckpt)  # long past
    assert cut.stopped_by == "deadline" and cut.epochs_run == 1 and ckpt.progress()["epochs_done"] == 1
    _, rest = _cmdhar_run(train, val, spec, _cfg(epochs=4, batch_size=16), ckpt)  # deadline is not identity
    assert rest.resumed_from_epoch == 1 and rest.epochs_run == 4 and rest.stopped_by == "epochs"
