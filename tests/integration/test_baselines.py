"""Baselines (TinyHAR, DeepConvLSTM, CNN): shapes, sizes, a short training run, ONNX parity."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from components.data.window_set import WindowSet
from components.metrics import classification_metrics
from components.models.cnn import CNN
from components.models.deepconvlstm import DeepConvLSTM
from components.models.spec import InputSpec
from components.models.tinyhar import TinyHAR

BASELINES = {"tinyhar": TinyHAR, "deepconvlstm": DeepConvLSTM, "cnn": CNN}
# The 2-core CI/dev CPUs make the paper-size DeepConvLSTM (1.7M parameters, LSTM input 64 x 45)
# take seconds per step; the training test uses a narrower one (same architecture).
TRAIN_HPARAMS = {"deepconvlstm": {"n_filters": 16, "lstm_hidden": 32}}
TRAIN_PER_CLASS, TEST_PER_CLASS = 8, 10
EPOCHS, BATCH = 3, 8

DSADS_FULL = InputSpec(
    n_channels=45,
    window_len=75,
    n_classes=19,
    modality_groups={m: [i for i in range(45) if (i // 3) % 3 == k] for k, m in enumerate(("acc", "gyro", "mag"))},
)


def _n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _standardise(train: WindowSet, *others: WindowSet) -> list[np.ndarray]:
    """Per-channel z-score with the training windows' statistics (fixtures are never mutated)."""
    mean = train.x.mean(axis=(0, 2), keepdims=True)
    std = train.x.std(axis=(0, 2), keepdims=True) + 1e-6
    return [((w.x - mean) / std).astype(np.float32) for w in (train, *others)]


def _per_class_subset(ws: WindowSet, per_class: int, seed: int) -> WindowSet:
    """``per_class`` random windows of every class (keeps the CPU tests short)."""
    rng = np.random.default_rng(seed)
    idx = np.concatenate([rng.choice(np.flatnonzero(ws.y == c), per_class, replace=False) for c in np.unique(ws.y)])
    return ws.select(np.sort(idx))


@pytest.fixture(scope="module")
def dsads_split(dsads_small_windows):
    """Cross-subject split: train on subject 1, test on subject 2 (class-balanced subsets, standardised)."""
    train = _per_class_subset(dsads_small_windows.for_subjects(["1"]), TRAIN_PER_CLASS, seed=0)
    test = _per_class_subset(dsads_small_windows.for_subjects(["2"]), TEST_PER_CLASS, seed=1)
    x_train, x_test = _standardise(train, test)
    return x_train, train.y, x_test, test.y, InputSpec.from_windows(dsads_small_windows)


def test_param_counts_on_dsads_full_spec():
    counts = {name: _n_params(cls(DSADS_FULL)) for name, cls in BASELINES.items()}
    print("\nparameters on InputSpec(45, 75, 19):", counts)
    # the TinyHAR paper's DSADS configuration is ~60k parameters
    assert 30_000 <= counts["tinyhar"] <= 120_000
    assert counts["cnn"] < counts["deepconvlstm"]


@pytest.mark.parametrize("name", list(BASELINES))
def test_output_shapes(name, basicmotions_windows, dsads_small_windows):
    torch.manual_seed(0)
    for ws in (basicmotions_windows, dsads_small_windows):
        spec = InputSpec.from_windows(ws)
        model = BASELINES[name](spec).eval()
        x = torch.from_numpy(ws.x[:3])
        with torch.no_grad():
            out = model(x)
        assert out.shape == (3, spec.n_classes)
        assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", list(BASELINES))
def test_short_training_reduces_loss(name, dsads_split):
    """A few epochs of AdamW on subject 1: the mean training loss drops; evaluated on subject 2."""
    x_train, y_train, x_test, y_test, spec = dsads_split
    torch.manual_seed(0)
    model = BASELINES[name](spec, **TRAIN_HPARAMS.get(name, {}))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-2)
    xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train)
    gen = torch.Generator().manual_seed(0)
    epoch_losses = []
    for _ in range(EPOCHS):
        model.train()
        perm = torch.randperm(len(xt), generator=gen)
        losses = []
        for i in range(0, len(xt), BATCH):
            idx = perm[i : i + BATCH]
            loss = torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        epoch_losses.append(float(np.mean(losses)))
    model.eval()
    with torch.no_grad():
        pred = model(torch.from_numpy(x_test)).argmax(dim=1).numpy()
    m = classification_metrics(y_test, pred, spec.n_classes)
    losses_str = np.round(epoch_losses, 3).tolist()
    print(f"\n{name}: epoch losses {losses_str}, subject-2 macro-F1 {m['macro_f1']:.3f}")
    assert all(np.isfinite(epoch_losses))
    assert epoch_losses[-1] < epoch_losses[0]
    assert m["n"] == len(y_test)


@pytest.mark.parametrize("name", list(BASELINES))
def test_onnx_export_parity(name, dsads_split, tmp_path):
    """Dynamo export at opset 17 with a dynamic batch axis; onnxruntime matches torch at batch 1 and 5."""
    x_train, _, x_test, _, spec = dsads_split
    torch.manual_seed(0)
    model = BASELINES[name](spec)
    if any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        with torch.no_grad():  # give BatchNorm non-trivial running statistics
            model.train()
            model(torch.from_numpy(x_train[::2]))
    model.eval()
    path = tmp_path / f"{name}.onnx"
    torch.onnx.export(
        model,
        (torch.from_numpy(x_test[:2]),),
        str(path),
        dynamo=True,
        opset_version=17,
        input_names=["x"],
        output_names=["logits"],
        dynamic_shapes={"x": {0: torch.export.Dim("batch")}},
        external_data=False,
    )
    proto = onnx.load(str(path))
    assert {o.domain: o.version for o in proto.opset_import}.get("", None) == 17
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param  # symbolic batch axis
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch in (1, 5):
        x = x_test[3 : 3 + batch]
        with torch.no_grad():
            ref = model(torch.from_numpy(x)).numpy()
        (out,) = session.run(None, {"x": x})
        assert out.shape == (batch, spec.n_classes)
        np.testing.assert_allclose(out, ref, atol=1e-4, rtol=0)
