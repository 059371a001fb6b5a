"""benchmarks/augment_selection.py: its multi-seed summary and its concat-fusion candidate."""

from __future__ import annotations

import pytest
import torch

from benchmarks.augment_selection import (
    ARCHIVED,
    POOLED_FIRST_COMMIT,
    VARIANTS,
    build_variant_model,
    main,
    record_name,
    summarize,
    trainer_settings,
    with_concat_fusion,
)
from components.models.registry import build_model
from components.models.spec import InputSpec


def _record(variant: str, split: str, seed: int | None, f1: float) -> dict:
    rec = {"variant": variant, "augmentation": {"augment_rotation_deg": 60.0}, "val_subject": split}
    rec["best_val_macro_f1"] = f1
    if seed is not None:  # records from before --seeds have no seed key: they are seed 0
        rec["seed"] = seed
    return rec


def test_summary_keeps_seed_zero_and_adds_every_seed():
    records = [_record("a", "7", None, 0.90), _record("a", "6", 0, 0.80), _record("b", "7", 0, 0.70)]
    records += [_record("a", "7", 1, 0.60), _record("a", "6", 1, 0.50)]
    summary = summarize(records)
    a, b = summary["a"], summary["b"]
    assert a["best_val_macro_f1"] == {"7": 0.90, "6": 0.80} and a["mean"] == pytest.approx(0.85)
    assert a["by_seed"] == {"7": {"0": 0.90, "1": 0.60}, "6": {"0": 0.80, "1": 0.50}}
    assert a["mean_all_seeds"] == pytest.approx(0.70) and a["runs"] == 4
    assert b == {"augmentation": {"augment_rotation_deg": 60.0}, "best_val_macro_f1": {"7": 0.70}, "mean": 0.70}
    assert record_name("a", "7", 0) == "a-val7.json" and record_name("a", "7", 2) == "a-val7-seed2.json"


def _unequal_spec(ws) -> InputSpec:
    """DSADS channels with a 10-channel third group and a 5-channel leftover: padded slots."""
    spec = InputSpec.from_windows(ws)
    acc, gyro, mag = (spec.modality_groups[k] for k in ("acc", "gyro", "mag"))
    return InputSpec(spec.n_channels, spec.window_len, spec.n_classes, {"acc": acc, "gyro": gyro, "mag": mag[:10]})


def test_concat_fusion_candidate_trains_and_ignores_pad_slots(dsads_small_windows):
    ws = dsads_small_windows
    spec = _unequal_spec(ws)
    torch.manual_seed(0)
    plain = build_model("cmdhar-no-temporal", spec)
    model = with_concat_fusion(build_model("cmdhar-no-temporal", spec))
    enc = model.encoders
    assert enc.padded and enc.m == 4 and enc.cmax == 15  # acc, gyro, mag (10), other (5)
    reduce, d = enc.w_reduce.shape[-1], plain.encoders.w_proj.shape[-1]  # d: d_model
    extra = enc.m * (enc.f * reduce + enc.cmax * reduce * d + d) - enc.m * (enc.f * d + d + enc.f)
    assert sum(p.numel() for p in model.parameters()) - sum(p.numel() for p in plain.parameters()) == extra

    x = torch.from_numpy(ws.x[:16])
    out = model.forward_train(x)
    (torch.nn.functional.cross_entropy(out.logits, torch.from_numpy(ws.y[:16]).long()) + out.recon).backward()
    assert enc.w_reduce.grad.abs().sum() > 0 and enc.w_fuse.grad.abs().sum() > 0

    model.eval()
    with torch.no_grad():
        before = model(x)
        short = [i for i, g in enumerate(enc.valid[:, :, 0]) if g.sum() < enc.cmax]
        assert short == [2, 3]
        for m in short:  # the fusion rows of a group's pad slots never see a value
            rows = enc.w_fuse[m, int(enc.valid[m].sum()) * reduce :]
            rows += torch.randn_like(rows)  # random, not constant: u's LayerNorm removes a constant shift
        assert torch.allclose(model(x), before, atol=1e-6)
        mask = torch.ones(16, len(model.input_groups))
        mask[:, 0] = 0.0  # the accelerometers absent
        assert torch.isfinite(model(x, mask)).all()


def test_concat_fusion_needs_the_attention_encoder(dsads_small_windows):
    spec = InputSpec.from_windows(dsads_small_windows)
    with pytest.raises(ValueError, match="attention=True"):
        with_concat_fusion(build_model("cmdhar-no-attention", spec))


def test_pooled_first_variants_are_refused_naming_the_archive(dsads_small_windows, monkeypatch):
    """Variants that need the removed encoder fail before any training, saying where their runs are."""
    spec = InputSpec.from_windows(dsads_small_windows)
    for name in ARCHIVED:
        assert name not in VARIANTS
        with pytest.raises(ValueError, match=POOLED_FIRST_COMMIT) as err:
            build_variant_model(name, spec)
        assert "benchmarks/results/augment-selection.json" in str(err.value) and name in str(err.value)
    monkeypatch.setattr("sys.argv", ["augment_selection", "--variants", "rot60-nomod-perstep,rot60"])
    with pytest.raises(SystemExit, match="rot60.*archived in benchmarks/results/augment-selection.json"):
        main()


def test_concat_fusion_needs_one_encoder_per_modality(dsads_small_windows):
    spec = InputSpec.from_windows(dsads_small_windows)
    with pytest.raises(ValueError, match="decompose=True"):
        with_concat_fusion(build_model("cmdhar-no-decomposition", spec))


def test_every_variant_builds_its_model_and_trainer_config(dsads_small_windows):
    """A typo in a variant's settings fails here, not 25 minutes into a selection run."""
    from components.training.trainer import TrainConfig

    spec = InputSpec.from_windows(dsads_small_windows)
    for name in VARIANTS:
        model = build_variant_model(name, spec)
        assert model(torch.from_numpy(dsads_small_windows.x[:2])).shape == (2, spec.n_classes), name
        TrainConfig(**trainer_settings(name))  # an unknown key raises TypeError
    nodis = build_variant_model("rot60-nomod-perstep-nodis", spec)
    assert nodis.shared is None and nodis.n_tokens == nodis.n_modalities  # no shared encoder, M tokens
