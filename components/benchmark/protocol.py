"""The cross-subject benchmark protocol: the one place its numbers are written down.

The harness (:mod:`components.benchmark.harness`), ``har benchmark``'s options and help
(:mod:`components.benchmark.command`) and the result files (``protocol.description``)
read them from here; the docs (``benchmarks/run_benchmark.md``, ``docs/model_card.md``)
link here instead of restating them.

Where the protocol differs from ``configs/train.yaml`` (the deployable model, whose
values are the code defaults), it is on purpose: the benchmark trains to convergence
(no wall-clock budget), picks validation subjects by ``val_share`` unless named, and
compares the undeployed default ``cmdhar`` with its baselines.

Nothing here imports ZenML, MLflow, DVC or torch.
"""

from __future__ import annotations

from typing import Any

WINDOW_LENGTH_S = 3.0  # window length at the native sampling rate (majority label)
WINDOW_OVERLAP = 0.5
EPOCHS = 100  # epoch cap; fewer makes a smoke run
PATIENCE = 10  # epochs without a better validation macro-F1
TIME_BUDGET_MIN = None  # no wall-clock budget: every model trains until patience or the cap
SEEDS = 1  # seeds 0 .. SEEDS-1 per fold and model
VAL_SHARE = 0.2  # share of the training subjects held out for validation when none are named
# trainer settings of the protocol (a run with other values is not the full protocol)
TRAINER: dict[str, float] = {
    "batch_size": 64,
    "lr": 1e-3,
    "weight_decay": 1e-4,
    "val_share": VAL_SHARE,
    "modality_dropout": 0.1,  # CMD-HAR models' fusion-token dropout (ignored by the baselines)
    # sensor augmentation for every model (chosen on validation subjects: benchmarks/augment_selection.py)
    "augment_rotation_deg": 60.0,
    "augment_gain_std": 0.1,
}
# the holdout split per dataset (test subjects, validation subjects); other datasets: the last
# subject for test and VAL_SHARE of the others for validation
HOLDOUT_SUBJECTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {"dsads": (("8",), ("7",))}


def _pct(x: float) -> str:
    return f"{x * 100:g} %"


def describe() -> str:
    """The protocol in one paragraph (written into every result file)."""
    t = TRAINER
    return (
        f"Windows of {WINDOW_LENGTH_S:g} s with {_pct(WINDOW_OVERLAP)} overlap at the native sampling rate "
        f"(majority label); subject-wise splits; validation = {_pct(VAL_SHARE)} of the training subjects "
        f"(val_share={VAL_SHARE:g}, seeded) unless named; per-channel standardisation fitted on the training "
        f"subjects; AdamW lr {t['lr']:g}, weight decay {t['weight_decay']:g}, cosine schedule, class-weighted "
        f"cross-entropy, batch {t['batch_size']:g}, up to {EPOCHS} epochs, early stopping on validation "
        f"macro-F1 with patience {PATIENCE} and the best weights restored; training-window augmentation for "
        f"every model (sensor-unit rotation up to {t['augment_rotation_deg']:g} deg, per-triad gain std "
        f"{t['augment_gain_std']:g}); CMD-HAR models: default loss weights, no gradient modulation (OGM-GE "
        f"only in cmdhar-with-modulation), fusion modality dropout {t['modality_dropout']:g}. Metrics on the "
        "test subjects only: macro-F1 (headline), accuracy, balanced accuracy, G-mean of per-class recall, "
        "per-class F1."
    )


def holdout_help(which: str) -> str:
    """``--test-subjects`` / ``--val-subjects`` help: the per-dataset default, from HOLDOUT_SUBJECTS."""
    index = 0 if which == "test" else 1
    named = "; ".join(f"{d} {','.join(s[index])}" for d, s in HOLDOUT_SUBJECTS.items())
    other = "the last subject" if which == "test" else "val_share of the others"
    return f"holdout {'test' if which == 'test' else 'validation'} subjects (default: {named}; else {other})"


def as_dict() -> dict[str, Any]:
    """Every protocol value, for result files and tests."""
    return {
        "window_s": WINDOW_LENGTH_S,
        "overlap": WINDOW_OVERLAP,
        "epochs": EPOCHS,
        "patience": PATIENCE,
        "time_budget_min": TIME_BUDGET_MIN,
        "seeds": SEEDS,
        "trainer": dict(TRAINER),
        "holdout_subjects": {d: {"test": list(t), "val": list(v)} for d, (t, v) in HOLDOUT_SUBJECTS.items()},
    }
