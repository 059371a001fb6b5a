"""Choose CMD-HAR's training settings on validation subjects only (the holdout test subject never loaded).

For each variant and each inner split (a validation subject set; DSADS: 7 = the holdout
split's own validation subject, or 6), CMD-HAR is trained on the dataset's other subjects
(all but the holdout test subject: DSADS 8, USC-HAD 14) with the protocol trainer (capped at
``--epochs`` with its cosine schedule, patience 10, seed 0 by default, modality dropout 0.1, one CPU
thread per run) and its best validation macro-F1 is recorded. ``--seeds N`` repeats every
run with seeds 0..N-1 (model initialisation, batch order, augmentation), so a difference
between variants can be set against the spread between seeds of one variant.

    python -m benchmarks.augment_selection --variants rot60-nomod-perstep,rot60-nomod-perstep-d24 --splits 7,6 --jobs 2
    -> benchmarks/results/augment-selection.json (one record per run under .../augment-selection/)
    python -m benchmarks.augment_selection --dataset usc-had --data-dir DIR \
        --variants rot60-nomod-perstep --splits 7+8+10,2+3+9 --jobs 2
    -> benchmarks/results/augment-selection-usc-had.json (a split of several subjects: "+")

A run whose record already exists is not repeated (seed 0: ``<variant>-val<split>.json``,
seed k > 0: ``<variant>-val<split>-seed<k>.json``), so the script can be resumed.

Variants: the augmentation settings of session 3 (``none``, ``rot30``, ``rot60``, the last
adopted), and design candidates tried after the LOSO ablations: ``rot60-nodis``
(disentanglement loss weights 0), ``grav60`` (each unit rotated about its window's gravity
direction instead of a random axis; :class:`GravityAxisAugment` lives here, not in the
trainer, because it was not adopted), ``rot60-nomod`` (no OGM-GE gradient modulation) and
``rot60-nomod-nodis`` (neither); then encoder candidates: ``rot60-nomod-bypos`` (one encoder
per body position), ``rot60-nomod-perstep`` (channel attention at every time step, adopted)
and ``rot60-nomod-perstep-concat`` (its channels fused by position: :func:`with_concat_fusion`
lives here until it is adopted, so ``cmdhar.py`` and the ledger's records stay as they are);
and ``rot60-nomod-perstep-nodis``, the adopted design without the shared encoder and its
losses (the architecture of the LOSO ablation ``cmdhar-no-disentangle``); and
``rot60-nomod-perstep-d24``, the adopted design at ``d_model`` 24 instead of 32 (the fusion
transformer is a third of CMD-HAR's weights on USC-HAD's 6 channels). Rule fixed before its
runs: USC-HAD uses ``d_model`` 24 if its mean best validation macro-F1 over the
same splits and seeds is at least the default's minus 0.005 (it is a size change: it has to
hold accuracy, not raise it); otherwise the size target stays missed on USC-HAD.

The variants up to ``rot60-nomod-bypos`` ran on CMD-HAR's pooled-first encoder (channel
attention once, on time means), which ``cmdhar.py`` no longer builds: they are listed in
``ARCHIVED`` so their records read clearly, and the script refuses them, naming the archived
results and the last commit that can train them.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from unittest.mock import patch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

# Variants that ran on CMD-HAR's pooled-first encoder (channels attend once, on their time
# means), which cmdhar.py no longer has: their settings stay listed so their records read
# clearly, their runs are archived under benchmarks/results/, and this script refuses them.
POOLED_FIRST = {"per_step_attention": False}
POOLED_FIRST_COMMIT = "f1ae3da"  # the last commit whose CMD-HAR builds that encoder
ARCHIVED_RESULTS = "benchmarks/results/augment-selection.json, benchmarks/results/augment-selection-usc-had.json"
ARCHIVED = {
    "none": {"augment_rotation_deg": 0.0, "augment_gain_std": 0.0, "model": POOLED_FIRST},
    "rot30": {"augment_rotation_deg": 30.0, "augment_gain_std": 0.1, "model": POOLED_FIRST},
    "rot60": {"augment_rotation_deg": 60.0, "augment_gain_std": 0.1, "model": POOLED_FIRST},
    # design candidates after the LOSO ablation: rot60 without the disentanglement losses ...
    "rot60-nodis": {
        "augment_rotation_deg": 60.0,
        "augment_gain_std": 0.1,
        "w_sim": 0.0,
        "w_diff": 0.0,
        "w_recon": 0.0,
        "model": POOLED_FIRST,
    },
    # ... and rot60 about each unit's gravity direction only (keeps posture and slope)
    "grav60": {
        "augment_rotation_deg": 60.0,
        "augment_gain_std": 0.1,
        "augment_rotation_axis": "gravity",
        "model": POOLED_FIRST,
    },
    # ... rot60 without OGM-GE gradient modulation, and without both
    "rot60-nomod": {"augment_rotation_deg": 60.0, "augment_gain_std": 0.1, "modulation": False, "model": POOLED_FIRST},
    "rot60-nomod-nodis": {
        "augment_rotation_deg": 60.0,
        "augment_gain_std": 0.1,
        "modulation": False,
        "w_sim": 0.0,
        "w_diff": 0.0,
        "w_recon": 0.0,
        "model": POOLED_FIRST,
    },
    # ... the then-default (rot60-nomod, pooled first) with one encoder per body position instead of per
    # sensor modality (TinyHAR, which keeps positions apart, wins DSADS's gait classes)
    "rot60-nomod-bypos": {
        "augment_rotation_deg": 60.0,
        "augment_gain_std": 0.1,
        "modulation": False,
        "group_by": "position",
        "model": POOLED_FIRST,
    },
}
VARIANTS = {
    # rot60-nomod with the encoders' channel attention at every time step (before time
    # pooling), so positions meet while their relative timing is still there (adopted)
    "rot60-nomod-perstep": {"augment_rotation_deg": 60.0, "augment_gain_std": 0.1, "modulation": False},
    # ... the adopted rot60-nomod-perstep without the shared encoder and its sim/diff/recon losses
    # (the architecture of the LOSO ablation cmdhar-no-disentangle, which beat cmdhar on DSADS's
    # test subjects: checked here on validation subjects before any default changes)
    "rot60-nomod-perstep-nodis": {
        "augment_rotation_deg": 60.0,
        "augment_gain_std": 0.1,
        "modulation": False,
        "model": {"disentangle": False},
    },
    # ... the adopted rot60-nomod-perstep at d_model 24 (u_m, shared/private reps and fusion tokens):
    # on 6-channel USC-HAD the fixed-width fusion transformer dominates the parameter count
    "rot60-nomod-perstep-d24": {
        "augment_rotation_deg": 60.0,
        "augment_gain_std": 0.1,
        "modulation": False,
        "model": {"d_model": 24},
    },
    # ... rot60-nomod-perstep whose channels are fused by position (concatenated), not pooled by a
    # weighted mean: TinyHAR's channel fusion keeps which body position a feature came from
    "rot60-nomod-perstep-concat": {
        "augment_rotation_deg": 60.0,
        "augment_gain_std": 0.1,
        "modulation": False,
        "encoder": "concat",
    },
}
# the holdout test subject per dataset: excluded before anything else happens
TEST_SUBJECT = {"dsads": "8", "usc-had": "14"}


def gravity_axis_augment():
    """:class:`SensorAugment` whose unit rotations turn about the window's gravity direction.

    The axis of unit ``u`` is the time-mean of its accelerometer triad (physical units), so
    the rotation keeps that unit's tilt - posture, treadmill slope - and changes only its
    heading; units without an accelerometer keep a random axis.
    """
    import torch

    from components.training.augment import SensorAugment, find_triads

    def rotations_about(axis: torch.Tensor, max_deg: float) -> torch.Tensor:
        """``(n, 3, 3)`` rotations about ``axis`` ``(n, 3)``, angle uniform in ``[-max_deg, max_deg]``."""
        n = axis.shape[0]
        axis = axis / axis.norm(dim=1, keepdim=True).clamp(min=1e-8)
        angle = (torch.rand(n, 1, 1, device=axis.device) * 2 - 1) * math.radians(max_deg)
        ax, ay, az = axis.unbind(1)
        zero = torch.zeros_like(ax)
        k = torch.stack([zero, -az, ay, az, zero, -ax, -ay, ax, zero], 1).reshape(n, 3, 3)  # [axis]x
        return torch.eye(3, device=axis.device) + torch.sin(angle) * k + (1 - torch.cos(angle)) * (k @ k)

    class GravityAxisAugment(SensorAugment):
        def __init__(self, channel_names, mean, std, rotation_deg, gain_std, device="cpu"):
            super().__init__(channel_names, mean, std, rotation_deg, gain_std, device)
            triads = find_triads(channel_names)
            acc = {}  # unit index -> its accelerometer triad
            for i, (unit, tri) in enumerate(zip(triads.unit_of, triads.channels, strict=True)):
                if channel_names[tri[0]].endswith("acc_x"):
                    acc.setdefault(unit, i)
            self.acc_of_unit = torch.tensor([acc.get(u, 0) for u in range(self.n_units)], device=device)
            self.unit_has_acc = torch.tensor([u in acc for u in range(self.n_units)], device=device)[:, None]

        def __call__(self, x: torch.Tensor) -> torch.Tensor:  # SensorAugment's, with the gravity axis
            if not self.active:
                return x
            b, t = x.shape[0], x.shape[-1]
            tri = (x[:, self.idx] * self.std + self.mean).reshape(b, self.n_triads, 3, t)  # physical units
            if self.rotation_deg > 0:
                gravity = tri[:, self.acc_of_unit].mean(-1)  # (B, n_units, 3)
                axis = torch.where(self.unit_has_acc, gravity, torch.randn_like(gravity)).reshape(-1, 3)
                rot = rotations_about(axis, self.rotation_deg)
                tri = rot.reshape(b, self.n_units, 3, 3)[:, self.unit_of] @ tri
            if self.gain_std > 0:
                tri = tri * (1 + self.gain_std * torch.randn(b, self.n_triads, 1, 1, device=x.device))
            return x.index_copy(1, self.idx, (tri.reshape(b, 3 * self.n_triads, t) - self.mean) / self.std)

    return GravityAxisAugment


def with_concat_fusion(model, reduce: int = 4):
    """Give a per-step CMD-HAR position-aware channel fusion (candidate ``...-concat``).

    The encoders' last step, an attention-weighted mean over a modality's channels
    (``(B, M, Cmax, F) -> (B, M, F)``, then ``Linear(F, d)``), keeps which features occur
    but not on which body position. Here each channel's time-pooled features are reduced
    ``F -> reduce`` (one matrix per modality), concatenated in channel order and mapped to
    ``d`` by one linear layer per modality, as TinyHAR's channel fusion does at full width.
    DSADS: +4.4 k parameters (36.5 k). The encoders are rebuilt with the same settings.
    """
    import torch
    import torch.nn.functional as F

    from components.models import cmdhar

    old = model.encoders
    if not old.attention:  # the fusion replaces the attention pooling over channels
        raise ValueError("the concat fusion candidate needs attention=True (channel attention at every time step)")
    if not model.decompose:  # the encoders are rebuilt from the input groups below
        raise ValueError("the concat fusion candidate needs decompose=True (one encoder per modality)")
    groups = [torch.nonzero(row).flatten().tolist() for row in model.group_membership]
    d_model, block = old.w_proj.shape[-1], old.blocks[0]

    class ConcatFusionEncoders(cmdhar.ModalityEncoders):
        def __init__(self):
            kernel, n_blocks = block.dw_weight.shape[-1], len(old.blocks)
            super().__init__(groups, model.spec.n_channels, d_model, old.f, True, kernel, block.radix, n_blocks)
            m, f, cmax = self.m, self.f, self.cmax
            del self.w_chan_pool, self.w_proj, self.b_proj  # replaced by the fusion below
            self.w_reduce = cmdhar._batched(m, f, reduce, std=1.0 / math.sqrt(f))
            self.w_fuse = cmdhar._batched(m, cmax * reduce, d_model)
            self.b_fuse = cmdhar._batched(m, 1, d_model, fill=0.0)
            self.register_buffer("valid", (self.chan_weight > 0).float(), persistent=False)  # (M, Cmax, 1)

        def _attend_per_step(self, z: torch.Tensor, b: int) -> torch.Tensor:
            m, f, cmax, length = self.m, self.f, self.cmax, z.shape[-1]
            z = z.reshape(b, cmax, m, f, length).permute(2, 0, 4, 1, 3)  # (M, B, L, Cmax, F)
            z = self._channel_attention(z + self.chan_emb[:, None, None])
            a = (z * self.w_time_pool[:, None, None]).sum(-1, keepdim=True).softmax(dim=2)  # (M, B, L, Cmax, 1)
            y = torch.matmul((a * z).sum(2), self.w_reduce[:, None]) * self.valid[:, None]  # (M, B, Cmax, reduce)
            u = torch.baddbmm(self.b_fuse, y.reshape(m, b, -1), self.w_fuse)  # (M, B, d); pads zeroed above
            return F.layer_norm(u, u.shape[-1:])

    model.encoders = ConcatFusionEncoders()
    return model


# variant keys that shape the data or the model; every other key is a TrainConfig field
NON_TRAINER_KEYS = ("group_by", "model", "encoder", "augment_rotation_axis")


def refuse_archived(variants) -> None:
    """Raise ``ValueError`` naming the archive if any of ``variants`` needs the pooled-first encoder."""
    archived = [v for v in variants if v in ARCHIVED]
    if archived:
        raise ValueError(
            f"variants {archived} ran on CMD-HAR's pooled-first encoder, which this checkout no longer has "
            f"(docs/decisions/cmdhar-legacy-encoder-removed.md): their runs are archived in {ARCHIVED_RESULTS} "
            f"(one record per run in the folders beside them); to train them again, check out "
            f"{POOLED_FIRST_COMMIT}, the last commit with that encoder"
        )


def build_variant_model(variant: str, spec):
    """CMD-HAR for ``spec`` with ``variant``'s model switches (and its concat fusion, if any)."""
    from components.models.registry import build_model

    refuse_archived([variant])
    settings = VARIANTS[variant]
    # every variant here was measured without temporal attention (which came later)
    model = build_model("cmdhar", spec, **{"temporal": False, **settings.get("model", {})})
    return with_concat_fusion(model) if settings.get("encoder") == "concat" else model


def trainer_settings(variant: str) -> dict:
    """``variant``'s TrainConfig overrides (augmentation, loss weights, modulation)."""
    return {k: v for k, v in VARIANTS[variant].items() if k not in NON_TRAINER_KEYS}


def run_one(variant: str, val_subject: str, epochs: int, data_dir: str, dataset: str = "dsads", seed: int = 0) -> dict:
    """Train CMD-HAR on ``dataset``'s subjects but the test subject and ``val_subject``
    (one id, or several joined by ``+``) with ``seed``; best validation macro-F1."""
    import torch

    from components.data.splitting import Fold, apply_fold
    from components.data.windowing import WindowConfig, window_dataset
    from components.models.spec import InputSpec
    from components.training.trainer import TrainConfig, seed_everything, train_model

    torch.set_num_threads(1)
    refuse_archived([variant])
    settings = VARIANTS[variant]
    group_by = settings.get("group_by", "modality")
    ws = window_dataset(Path(data_dir) / dataset, WindowConfig(length_s=3.0, overlap=0.5, group_by=group_by))
    ws = ws.for_subjects([s for s in ws.subjects if s != TEST_SUBJECT[dataset]])
    val = tuple(val_subject.split("+"))
    if not set(val) <= set(ws.subjects):
        raise ValueError(f"validation subjects {val} are not all among {dataset}'s non-test subjects {ws.subjects}")
    train = tuple(s for s in ws.subjects if s not in val)
    split = apply_fold(ws, Fold(name=f"inner-{val_subject}", train=train, val=val, test=val))
    tr, va, _ = split.standardized()
    seed_everything(seed)
    model = build_variant_model(variant, InputSpec.from_windows(tr))
    axis = settings.get("augment_rotation_axis", "random")
    cfg = TrainConfig(
        epochs=epochs,
        patience=10,
        modality_dropout=0.1,
        time_budget_min=None,  # every variant trains to patience or the cap
        progress=False,
        seed=seed,
        **trainer_settings(variant),
    )
    t0 = time.time()
    if axis == "gravity":  # the trainer builds its augmentation from this name: swap it for this run
        with patch("components.training.trainer.SensorAugment", gravity_axis_augment()):
            res = train_model(model, tr, va, cfg, split.standardizer)
    else:
        res = train_model(model, tr, va, cfg, split.standardizer)
    return {
        "dataset": dataset,
        "variant": variant,
        "augmentation": VARIANTS[variant],
        "train_subjects": list(train),
        "val_subject": val_subject,
        "seed": seed,
        "best_val_macro_f1": res.best_val_f1,
        "best_epoch": res.best_epoch,
        "epochs_run": res.epochs_run,
        "seconds": round(time.time() - t0, 1),
        "val_macro_f1_per_epoch": [round(h["val_macro_f1"], 4) for h in res.history],
    }


def record_name(variant: str, split: str, seed: int) -> str:
    """Per-run record file; seed 0 keeps the name it had before ``--seeds`` existed."""
    return f"{variant}-val{split}.json" if seed == 0 else f"{variant}-val{split}-seed{seed}.json"


def summarize(records: list[dict]) -> dict[str, dict]:
    """Per variant: best validation macro-F1 per split (seed 0, as before), its mean, and
    with more seeds, per split the values of every seed and the mean over all runs."""
    summary: dict[str, dict] = {}
    for rec in records:
        entry = summary.setdefault(
            rec["variant"], {"augmentation": rec["augmentation"], "best_val_macro_f1": {}, "by_seed": {}}
        )
        seed, f1 = rec.get("seed", 0), round(rec["best_val_macro_f1"], 4)
        if seed == 0:
            entry["best_val_macro_f1"][rec["val_subject"]] = f1
        entry["by_seed"].setdefault(rec["val_subject"], {})[str(seed)] = f1
    for entry in summary.values():
        vals = list(entry["best_val_macro_f1"].values())
        entry["mean"] = round(sum(vals) / len(vals), 4) if vals else None
        every = [f1 for per_seed in entry["by_seed"].values() for f1 in per_seed.values()]
        if len(every) > len(vals):  # several seeds: the mean over every run (the spread is read from by_seed)
            entry["mean_all_seeds"] = round(sum(every) / len(every), 4)
            entry["runs"] = len(every)
        else:
            del entry["by_seed"]
    return summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="dsads", choices=sorted(TEST_SUBJECT))
    ap.add_argument("--variants", default="rot60-nomod-perstep")
    ap.add_argument("--splits", default="7,6", help="validation subject sets, one run each (several ids: 7+8+10)")
    ap.add_argument("--epochs", type=int, default=25)
    ap.add_argument("--seeds", type=int, default=1, help="seeds 0..N-1 per variant and split")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--data-dir", default=str(REPO / "data"))
    ap.add_argument("--out", default=None, help="default benchmarks/results/augment-selection[-DATASET].json")
    args = ap.parse_args()
    if args.out is None:
        suffix = "" if args.dataset == "dsads" else f"-{args.dataset}"  # DSADS: the session-3 file name
        args.out = str(REPO / "benchmarks" / "results" / f"augment-selection{suffix}.json")
    try:
        refuse_archived(args.variants.split(","))
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    unknown = set(args.variants.split(",")) - set(VARIANTS)
    if unknown:
        raise SystemExit(f"unknown variants {sorted(unknown)}; known: {sorted(VARIANTS)}")
    runs_dir = Path(args.out).with_suffix("")
    runs_dir.mkdir(parents=True, exist_ok=True)
    todo = [
        (v, s, k)
        for v in args.variants.split(",")
        for k in range(args.seeds)
        for s in args.splits.split(",")
        if not (runs_dir / record_name(v, s, k)).exists()
    ]
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futures = {
            pool.submit(run_one, v, s, args.epochs, args.data_dir, args.dataset, k): (v, s, k) for v, s, k in todo
        }
        for fut, (v, s, k) in futures.items():
            rec = fut.result()
            (runs_dir / record_name(v, s, k)).write_text(json.dumps(rec, indent=1))
            print(f"{v} val {s} seed {k}: best val macro-F1 {rec['best_val_macro_f1']:.4f} (epoch {rec['best_epoch']})")
    records = [json.loads(p.read_text()) for p in sorted(runs_dir.glob("*-val*.json"))]
    out = {
        "what": (
            "CMD-HAR best validation macro-F1 per training variant (augmentation, loss weights, "
            f"modulation); {args.dataset}, test subject {TEST_SUBJECT[args.dataset]} never loaded"
        ),
        "settings": {
            "epochs": args.epochs,
            "patience": 10,
            "seeds": sorted({rec.get("seed", 0) for rec in records}),
            "threads_per_run": 1,
        },
        "summary": summarize(records),
        "runs": records,
    }
    Path(args.out).write_text(json.dumps(out, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
