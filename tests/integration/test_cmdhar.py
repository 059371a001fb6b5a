"""CMD-HAR model, losses, registry and ONNX export (small and fast)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from components.models import losses
from components.models.cmdhar import (
    CMDHAR,
    CMDHAROutput,
    ParamSlice,
    _depthwise_conv,
    count_parameters,
)
from components.models.registry import MODEL_NAMES, build_model, load_model, save_model
from components.models.spec import InputSpec

torch.set_num_threads(2)


def _standardised(ws, n: int, seed: int = 0) -> torch.Tensor:
    """n windows picked with a fixed seed, standardised per channel."""
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(ws), size=n, replace=False)
    mean = ws.x.mean(axis=(0, 2), keepdims=True)
    std = ws.x.std(axis=(0, 2), keepdims=True) + 1e-6
    return torch.from_numpy(((ws.x[idx] - mean) / std).astype(np.float32))


DSADS_FULL = InputSpec(
    n_channels=45,
    window_len=75,
    n_classes=19,
    modality_groups={
        m: [p * 9 + s * 3 + a for p in range(5) for a in range(3)] for s, m in enumerate(["acc", "gyro", "mag"])
    },
)


@pytest.mark.parametrize("fixture", ["dsads_small_windows", "basicmotions_windows"])
def test_forward_shapes(fixture, request):
    ws = request.getfixturevalue(fixture)
    spec = InputSpec.from_windows(ws)
    torch.manual_seed(0)
    model = CMDHAR(spec)
    x = _standardised(ws, 6)
    m = len(spec.modality_groups)
    model.eval()
    with torch.no_grad():
        assert model(x).shape == (6, spec.n_classes)
    model.train()
    out = model.forward_train(x, modality_dropout=0.5)
    assert isinstance(out, CMDHAROutput)
    assert out.logits.shape == (6, spec.n_classes)
    assert out.aux_logits.shape == (m, 6, spec.n_classes)
    for t in (out.sim, out.diff, out.recon):
        assert t.dim() == 0 and torch.isfinite(t)
    assert out.sim > 0 and out.diff >= 0 and out.recon > 0
    assert (out.modality_mask.sum(1) >= 1).all()  # dropout never drops every modality
    assert set(model.encoder_parameters()) == set(spec.modality_groups)


def test_param_counts():
    counts = {
        name: count_parameters(build_model(name, DSADS_FULL)) for name in MODEL_NAMES if name.startswith("cmdhar")
    }
    print("\nCMD-HAR parameters on DSADS (45 ch, 75 samples, 19 classes):", counts)
    assert counts["cmdhar"] < 40_000
    assert counts["cmdhar"] <= 0.63 * count_parameters(build_model("tinyhar", DSADS_FULL))  # issue target
    assert counts["cmdhar-with-modulation"] == counts["cmdhar"]
    assert all(v < counts["cmdhar"] for k, v in counts.items() if k.startswith("cmdhar-no-"))


@pytest.mark.parametrize("window_len, steps", [(75, 10), (300, 38), (101, 13), (8, 1)])
def test_temporal_attention_sees_the_order_of_the_steps(window_len, steps):
    """One position-embedding row per encoder time step (stem stride 4, then max-pool 2), and
    once trained away from its identity start the block's output depends on the step order."""
    spec = InputSpec(
        n_channels=6, window_len=window_len, n_classes=4, modality_groups={"acc": [0, 1, 2], "gyro": [3, 4, 5]}
    )
    torch.manual_seed(0)
    model = build_model("cmdhar", spec).eval()
    enc = model.encoders
    assert enc.temporal and tuple(enc.time_emb.shape) == (2, steps, enc.f)
    assert not build_model("cmdhar-no-temporal", spec).encoders.temporal
    assert not build_model("cmdhar-no-attention", spec).encoders.temporal  # no attention, no temporal attention
    z = torch.randn(2, 3, steps, 3, enc.f)  # (M, B, L, Cmax, F)
    start = enc._temporal_attention(z)
    assert torch.allclose(start, z + enc.time_emb[:, None, :, None])  # identity start
    with torch.no_grad():
        enc.w_t_o.normal_()
        enc.time_emb.zero_()  # without positions, attention alone is order-blind: a permutation commutes
    perm = torch.randperm(steps)
    shuffled = enc._temporal_attention(z[:, :, perm])
    assert torch.allclose(enc._temporal_attention(z)[:, :, perm], shuffled, atol=1e-5)
    with torch.no_grad():
        enc.time_emb.normal_()  # with positions it is not
    if steps > 1:
        shuffled = enc._temporal_attention(z[:, :, perm])
        assert not torch.allclose(enc._temporal_attention(z)[:, :, perm], shuffled, atol=1e-3)
    assert model(torch.randn(2, 6, window_len)).shape == (2, 4)


def test_ablation_switches(dsads_small_windows):
    spec = InputSpec.from_windows(dsads_small_windows)
    x = _standardised(dsads_small_windows, 5)
    m = build_model("cmdhar-no-disentangle", spec).train()
    out = m.forward_train(x)
    assert float(out.sim) == float(out.diff) == float(out.recon) == 0.0
    assert m.n_tokens == 3
    m = build_model("cmdhar-no-decomposition", spec).train()
    out = m.forward_train(x)
    assert out.aux_logits.shape[0] == 1 and list(m.encoder_parameters()) == ["all"]
    assert m(x, torch.tensor([[1.0, 0.0, 1.0]] * 5)).shape == (5, 3)  # mask still per spec group
    m = build_model("cmdhar-no-attention", spec).eval()
    assert m.fusion is None and torch.isfinite(m(x)).all()
    assert build_model("cmdhar-with-modulation", spec).use_modulation is True
    assert build_model("cmdhar", spec).use_modulation is False  # off by default (model card, "Ablations")
    with pytest.raises(KeyError):
        build_model("nope", spec)


@pytest.mark.parametrize("name", ["cmdhar", "cmdhar-no-attention", "cmdhar-no-decomposition"])
def test_modality_mask(dsads_small_windows, name):
    spec = InputSpec.from_windows(dsads_small_windows)
    torch.manual_seed(0)
    model = build_model(name, spec).eval()
    x = _standardised(dsads_small_windows, 4)
    gyro = spec.modality_groups["gyro"]
    mask = torch.tensor([[1.0, 0.0, 1.0]] * 4)  # acc, gyro absent, mag
    with torch.no_grad():
        full = model(x)
        masked = model(x, mask)
        x2 = x.clone()
        x2[:, gyro] = torch.randn(4, len(gyro), x.shape[2]) * 100  # garbage in the absent modality
        x2[0, gyro[0], 0] = float("nan")
        masked2 = model(x2, mask)
        none = model(x, torch.zeros(4, 3))  # every modality absent: still finite
    assert torch.isfinite(full).all() and torch.isfinite(masked).all() and torch.isfinite(none).all()
    assert not torch.allclose(full, masked)
    torch.testing.assert_close(masked, masked2, rtol=0, atol=1e-6)


def test_cmd_loss():
    torch.manual_seed(0)
    a = torch.rand(64, 8)
    assert float(losses.cmd(a, a.clone())) < 1e-4
    shifted = float(losses.cmd(a, a + 0.3))
    assert shifted > 0.25  # first-moment term alone is 0.3 * sqrt(8)
    assert float(losses.cmd(a, a**2)) > 1e-2  # different higher moments
    a.requires_grad_(True)
    losses.cmd(a, a.detach()).backward()
    assert torch.isfinite(a.grad).all()


def test_soft_orthogonality_loss():
    h = torch.tensor([[1.0]])
    for _ in range(3):  # 8x8 Hadamard: zero-mean, mutually orthogonal columns, equal row norms
        h = torch.cat([torch.cat([h, h], 1), torch.cat([h, -h], 1)], 0)
    x1, x2 = h[:, 1:4], h[:, 4:8]
    assert float(losses.soft_orthogonality(x1, x2)) < 1e-8
    same = float(losses.soft_orthogonality(x1, x1))
    assert same > 0.05
    torch.manual_seed(0)
    r = torch.randn(32, 8)
    assert float(losses.soft_orthogonality(r, r)) > float(losses.soft_orthogonality(r, torch.randn(32, 8)))


def test_save_load_roundtrip(tmp_path, basicmotions_windows):
    spec = InputSpec.from_windows(basicmotions_windows)
    torch.manual_seed(1)
    model = build_model("cmdhar-no-attention", spec, d_model=16)
    model.set_normalization(basicmotions_windows.x.mean(axis=(0, 2)), basicmotions_windows.x.std(axis=(0, 2)))
    # move BN running stats away from their defaults
    model.train()
    with torch.no_grad():
        model(torch.from_numpy(basicmotions_windows.x[:16]))
    model.eval()
    save_model(model, tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert type(loaded) is CMDHAR and loaded.registry_config["hparams"] == {"d_model": 16}
    x = torch.from_numpy(basicmotions_windows.x[16:24])
    with torch.no_grad():
        torch.testing.assert_close(model(x), loaded(x), rtol=0, atol=0)


@pytest.mark.parametrize("attention", [False, True])
def test_onnx_export(tmp_path, dsads_small_windows, attention):
    ort = pytest.importorskip("onnxruntime")
    spec = InputSpec.from_windows(dsads_small_windows)
    torch.manual_seed(0)
    model = CMDHAR(spec, attention=attention).eval()
    x7 = _standardised(dsads_small_windows, 7)
    path = tmp_path / "cmdhar.onnx"
    batch = torch.export.Dim("batch", min=1, max=4096)
    torch.onnx.export(
        model,
        (x7[:2],),
        str(path),
        input_names=["x"],
        output_names=["logits"],
        opset_version=18,
        dynamo=True,
        dynamic_shapes={"x": {0: batch}},
        external_data=False,
    )
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for xb in (x7[:1], x7):
        (got,) = sess.run(None, {"x": xb.numpy()})
        with torch.no_grad():
            want = model(xb).numpy()
        assert got.shape == want.shape
        assert np.abs(got - want).max() <= 1e-4


def test_batched_losses_match_reference():
    """The batched sim/diff of forward_train equal the per-pair losses.cmd / soft_orthogonality."""
    torch.manual_seed(0)
    hc, hp = torch.rand(3, 32, 8), torch.rand(3, 32, 8)
    pi, pj = torch.tensor([0, 0, 1]), torch.tensor([1, 2, 2])
    pairs = list(zip(pi.tolist(), pj.tolist(), strict=True))
    want_sim = sum(losses.cmd(hc[i], hc[j], 5) for i, j in pairs) / 3
    torch.testing.assert_close(losses.cmd_pairs(hc, pi, pj, 5), want_sim, rtol=1e-5, atol=1e-6)
    terms = [losses.soft_orthogonality(hp[i], hc[i]) for i in range(3)]
    terms += [losses.soft_orthogonality(hp[i], hp[j]) for i, j in pairs]
    got = losses.soft_orthogonality_pairs(torch.cat([hp, hp[pi]]), torch.cat([hc, hp[pj]]))
    torch.testing.assert_close(got, sum(terms) / len(terms), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("attention", [False, True])
def test_unequal_groups_are_padded_and_masked(attention):
    """Groups of different sizes (+ a leftover channel) share one batched encoder."""
    spec = InputSpec(n_channels=7, window_len=50, n_classes=4, modality_groups={"a": [0, 1, 2], "b": [3, 4], "c": [5]})
    torch.manual_seed(0)
    model = CMDHAR(spec, attention=attention).eval()
    assert model.input_groups == ["a", "b", "c", "other"] and model.encoders.padded
    x = torch.randn(3, 7, 50)
    mask = torch.tensor([[1.0, 0.0, 1.0, 1.0]] * 3)
    with torch.no_grad():
        full, ones = model(x), model(x, torch.ones(3, 4))
        x2 = x.clone()
        x2[:, 3:5] = float("nan")  # absent modality "b"
        masked, masked2 = model(x, mask), model(x2, mask)
    torch.testing.assert_close(full, ones, rtol=0, atol=1e-6)  # no mask == all present
    torch.testing.assert_close(masked, masked2, rtol=0, atol=1e-6)
    out = model.train().forward_train(x)
    assert out.aux_logits.shape == (4, 3, 4) and torch.isfinite(out.sim + out.diff + out.recon)


def test_depthwise_fast_path_is_the_same_function():
    torch.manual_seed(0)
    x, w = torch.randn(4, 6, 1, 11), torch.randn(6, 1, 1, 5)
    torch.testing.assert_close(_depthwise_conv(x, w, 2, True), _depthwise_conv(x, w, 2, False))


def test_encoder_parameters_are_disjoint_modality_rows(basicmotions_windows):
    spec = InputSpec.from_windows(basicmotions_windows)
    model = CMDHAR(spec)
    params = model.encoder_parameters()
    assert list(params) == ["acc", "gyro"] and all(isinstance(p, ParamSlice) for p in params["acc"])
    # every (parameter, row) is owned by exactly one modality
    owners: dict[tuple[int, int], str] = {}
    for name, plist in params.items():
        for p in plist:
            for row in range(p.param.shape[0])[p.rows]:
                assert (id(p.param), row) not in owners
                owners[id(p.param), row] = name
    for p in [*model.encoders.parameters(), model.w_private, model.b_private]:
        assert all((id(p), r) in owners for r in range(p.shape[0]))
    # the shared encoder, fusion and heads are never modality parameters
    assert not {id(q) for q in model.shared.parameters()} & {k[0] for k in owners}
    x = torch.from_numpy(basicmotions_windows.x[:4])
    model.train().forward_train(x).logits.sum().backward()
    acc0 = params["acc"][0]
    g_gyro = params["gyro"][0].grad.clone()
    acc0.grad.mul_(0.5)  # in place on the view: only the acc rows change
    torch.testing.assert_close(params["gyro"][0].grad, g_gyro)
    acc0.grad = torch.zeros_like(acc0.grad)
    assert float(acc0.param.grad[acc0.rows].abs().sum()) == 0.0
