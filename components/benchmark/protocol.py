"""The cross-subject benchmark protocol: the one place its numbers are written down.

The harness (:mod:`components.benchmark.harness`), ``har benchmark``'s options and help
(:mod:`components.benchmark.command`) and the result files (``protocol.description``)
read them from here; the docs (``benchmarks/run_benchmark.md``, ``docs/model_card.md``)
link here instead of restating them.

Where the protocol differs from ``configs/train.yaml`` (the deployable model, whose
values are the code defaults), it is on purpose: the benchmark trains to convergence
(no wall-clock budget), picks validation subjects by ``val_share`` unless named, and
compares ``cmdhar`` (the network ``configs/train.yaml`` ships) with its baselines. A new
dataset's config (``har config new``) trains as the benchmark does
(:func:`components.train_config.converging_trainer`).

:class:`BenchmarkSettings` is what one ``har benchmark`` run trains (the command line maps
1:1 onto it); :meth:`BenchmarkSettings.deviations` says why a run is not the full protocol.
Nothing here imports ZenML, MLflow, DVC or torch.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

WINDOW_LENGTH_S = 3.0  # window length at the native sampling rate (majority label)
WINDOW_OVERLAP = 0.5
EPOCHS = 100  # epoch cap; fewer makes a smoke run
PATIENCE = 10  # epochs without a better validation macro-F1
TIME_BUDGET_MIN = None  # no wall-clock budget: every model trains until patience or the cap
SEEDS = 1  # seeds 0 .. SEEDS-1 per fold and model
# share of the training subjects held out for validation when none are named: DSADS LOSO
# 5 train / 2 val / 1 test, USC-HAD 10 / 3 / 1 (round(share * remaining subjects))
VAL_SHARE = 0.25
STEP_CPUS = 2  # the pipeline engine: cores a training step requests, and its torch threads
# trainer settings of the protocol (a run with other values is not the full protocol)
TRAINER: dict[str, Any] = {
    "batch_size": 64,
    "lr": 1e-3,
    # reduce the LR on a validation plateau (TrainConfig.lr_decay_*), fixed before any run of it:
    # a cosine over the 100-epoch cap barely decays in runs that early stopping ends at 15-56
    "lr_schedule": "plateau",
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


# the names the harness modules use
FULL_EPOCHS, FULL_PATIENCE, PROTOCOL_TRAINER, HOLDOUT_DEFAULTS = EPOCHS, PATIENCE, TRAINER, HOLDOUT_SUBJECTS
BASELINES = ("cmdhar", "tinyhar", "deepconvlstm", "cnn")
# CMD-HAR with one part removed, and with OGM-GE gradient modulation added (cmdhar trains without it)
ABLATIONS = (
    "cmdhar-no-disentangle",
    "cmdhar-with-modulation",
    "cmdhar-no-attention",
    "cmdhar-no-decomposition",
)

# training variants: a registry model trained with other trainer settings, under a name of its
# own (records, ledger folder, result row); what --select chooses between besides the models
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "cmdhar-sqrt-weights": ("cmdhar", {"class_weighting": "sqrt"}),
    "cmdhar-unweighted": ("cmdhar", {"class_weighting": "none"}),
    "cmdhar-no-augment": ("cmdhar", {"augment_rotation_deg": 0.0, "augment_gain_std": 0.0}),
    "cmdhar-with-modulation-alpha-0-1": ("cmdhar-with-modulation", {"alpha": 0.1}),
    "cmdhar-with-modulation-alpha-1-0": ("cmdhar-with-modulation", {"alpha": 1.0}),
    # the disentanglement losses (similarity, difference, reconstruction) at half and twice
    # TrainConfig's weights (tests/integration/test_benchmark.py keeps them at exactly that)
    "cmdhar-losses-half": ("cmdhar", {"w_sim": 0.5, "w_diff": 0.15, "w_recon": 0.5}),
    "cmdhar-losses-double": ("cmdhar", {"w_sim": 2.0, "w_diff": 0.6, "w_recon": 2.0}),
    "tinyhar-sqrt-weights": ("tinyhar", {"class_weighting": "sqrt"}),
    "tinyhar-no-augment": ("tinyhar", {"augment_rotation_deg": 0.0, "augment_gain_std": 0.0}),
}


def base_model(name: str) -> str:
    """The registry model that ``name`` trains (itself unless it is a :data:`VARIANTS` name)."""
    return VARIANTS[name][0] if name in VARIANTS else name


def trainer_overrides(name: str) -> dict[str, Any]:
    """The trainer settings a :data:`VARIANTS` name changes (empty for a registry model)."""
    return dict(VARIANTS[name][1]) if name in VARIANTS else {}


def _pct(x: float) -> str:
    return f"{x * 100:g} %"


def _schedule(name: str) -> str:
    if name == "plateau":
        return "learning rate reduced when validation macro-F1 plateaus (TrainConfig.lr_decay_factor/_patience)"
    return f"{name} learning-rate schedule"


def describe() -> str:
    """The protocol in one paragraph (written into every result file)."""
    t = TRAINER
    return (
        f"Windows of {WINDOW_LENGTH_S:g} s with {_pct(WINDOW_OVERLAP)} overlap at the native sampling rate "
        f"(majority label); subject-wise splits; validation = {_pct(VAL_SHARE)} of the training subjects "
        f"(val_share={VAL_SHARE:g}, seeded) unless named; per-channel standardisation fitted on the training "
        f"subjects; AdamW lr {t['lr']:g}, weight decay {t['weight_decay']:g}, {_schedule(t['lr_schedule'])}, "
        "class-weighted "
        f"cross-entropy, batch {t['batch_size']:g}, up to {EPOCHS} epochs, early stopping on validation "
        f"macro-F1 with patience {PATIENCE} and the best weights restored; training-window augmentation for "
        f"every model (sensor-unit rotation up to {t['augment_rotation_deg']:g} deg, per-triad gain std "
        f"{t['augment_gain_std']:g}); CMD-HAR models: default loss weights, no gradient modulation (OGM-GE "
        f"only in cmdhar-with-modulation), fusion modality dropout {t['modality_dropout']:g}. Metrics on the "
        "test subjects only: macro-F1 (headline), accuracy, balanced accuracy, G-mean of per-class recall, "
        "per-class F1. Choices among candidates (--select) are made per fold on that fold's validation "
        "subjects only (highest best-epoch validation macro-F1; ties: the first candidate named)."
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


PROTOCOL_DESCRIPTION = describe()

PUBLISHED_REFERENCE: dict[str, Any] = {
    "source": "WHAR Arena, cross-subject (leave-subject-group-out) macro-F1",
    "metric": "macro_f1",
    # not like for like: WHAR Arena trains without augmentation, on its own subject groups and
    # seeds; this harness augments every model (our TinyHAR without augmentation: 0.842 on DSADS)
    "note": "for orientation only, not like for like: other subject splits and seeds, and no training "
    "augmentation there (this harness augments every model)",
    "datasets": {
        "dsads": {
            "Random Forest": 0.893,
            "DynamicWHAR": 0.878,
            "CNN-HAR": 0.869,
            "TinyHAR": 0.868,
            "Attend-and-Discriminate": 0.862,
            "DeepConvLSTM": 0.820,
        },
        "usc-had": {"MLP-Mixer": 0.788, "TinyHAR": 0.781, "CNN-HAR": 0.762, "DeepConvLSTM": 0.735},
    },
}


@dataclass
class BenchmarkSettings:
    """What to run (the command line maps 1:1 onto this).

    Attributes:
        dataset: dataset folder under ``data_dir`` (imported first if missing).
        protocol: ``holdout`` or ``loso``.
        models: registry names to benchmark.
        ablations: also run the four ``cmdhar-no-*`` ablations.
        seeds: number of seeds (0 .. seeds-1) per fold and model.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (training only; latency is CPU).
        jobs: parallel worker processes.
        epochs: epoch cap (protocol: :data:`EPOCHS`).
        patience: early-stopping patience (protocol: :data:`PATIENCE`).
        subjects: restrict to these subject ids (smoke runs).
        folds: run only these folds: fold names (``loso-3``) or test-subject ids (``3``).
        test_subjects / val_subjects: holdout override (default per dataset).
        val_share: share of training subjects used for validation when not named.
        data_dir: data folder (default ``components.config.data_dir()``).
        out: results folder (default ``<repo>/benchmarks/results``).
        batch_size, lr, weight_decay, lr_schedule: trainer settings of the protocol.
        modality_dropout: fusion-token dropout for CMD-HAR models (as ``configs/train.yaml``;
            what makes the missing-modality scores meaningful; ignored by the baselines).
        augment_rotation_deg / augment_gain_std: training-window sensor augmentation
            (:mod:`components.training.augment`), the same for every model.
        latency_runs: timed batch-1 calls per latency measurement (p50 over these).
        efficiency: measure params/MACs/ONNX/latency (off only to save time in tests).
        executor: ``processes``, ``threads`` or ``auto`` (threads on CUDA, else processes).
        time_budget_s: start no task after this many seconds of training (None: no limit).
        ledger: folder that keeps every finished training (:mod:`components.benchmark.ledger`);
            a later run with the same fingerprint trains only what is missing.
        hparams: model name -> constructor keyword arguments (e.g. ``{"cmdhar": {"d_model": 32}}``,
            parsed from ``--hparams cmdhar.d_model=32`` by :func:`parse_hparams`); recorded in the
            result and in that model's ledger fingerprint. Empty: every model at its defaults.
        run_config: the pipeline engine's ZenML run config: the step image
            (``settings.docker``) and ``steps.data_version_step.parameters`` (``pull``,
            ``latest``) it takes from it (None: ``configs/cluster.yaml`` when the orchestrator
            runs steps in containers, no run config otherwise).
        select: selection name -> candidate models (``--select NAME=A+B``): a result row that
            takes, per fold and seed, the candidate with the best validation macro-F1
            (:mod:`components.benchmark.selection`); the candidates are trained as models.
        step_cpus: the pipeline engine: CPU cores each training step requests and trains with
            as torch threads, on any machine (None: :data:`STEP_CPUS`); part of each training's
            cache key, since the thread count changes the floating-point sums.
    """

    dataset: str = "dsads"
    protocol: str = "loso"
    models: list[str] = field(default_factory=lambda: list(BASELINES))
    ablations: bool = False
    seeds: int = SEEDS
    device: str = "auto"
    jobs: int = 1
    epochs: int = FULL_EPOCHS
    patience: int = FULL_PATIENCE
    subjects: list[str] | None = None
    folds: list[str] | None = None
    test_subjects: list[str] | None = None
    val_subjects: list[str] | None = None
    val_share: float = VAL_SHARE
    data_dir: Path | None = None
    out: Path | None = None
    batch_size: int = TRAINER["batch_size"]
    lr: float = TRAINER["lr"]
    weight_decay: float = TRAINER["weight_decay"]
    modality_dropout: float = TRAINER["modality_dropout"]
    lr_schedule: str = TRAINER["lr_schedule"]
    augment_rotation_deg: float = PROTOCOL_TRAINER["augment_rotation_deg"]
    augment_gain_std: float = PROTOCOL_TRAINER["augment_gain_std"]
    latency_runs: int = 200
    efficiency: bool = True
    executor: str = "auto"
    time_budget_s: float | None = None
    ledger: Path | None = None
    hparams: dict[str, dict[str, Any]] = field(default_factory=dict)
    run_config: Path | None = None
    step_cpus: int | None = None
    select: dict[str, list[str]] = field(default_factory=dict)

    def model_names(self) -> list[str]:
        """The models to train: ``models``, the ablations, then any selection candidate not named."""
        names = list(dict.fromkeys(self.models))
        if self.ablations:
            names += [a for a in ABLATIONS if a not in names]
        for candidates in self.select.values():
            names += [c for c in candidates if c not in names]
        return names

    def to_dict(self) -> dict[str, Any]:
        """JSON-able fields (paths as strings): how a pipeline carries the settings."""
        return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> BenchmarkSettings:
        """The inverse of :meth:`to_dict`."""
        paths = {
            k: Path(values[k]) if values.get(k) is not None else None
            for k in ("data_dir", "out", "ledger", "run_config")
        }
        return cls(**{**values, **paths})

    def trainer_settings(self) -> dict[str, float]:
        return {k: getattr(self, k) for k in PROTOCOL_TRAINER}

    def deviations(self) -> list[str]:
        """Why this run is not the full protocol (empty list = complete)."""
        out = []
        if self.epochs < FULL_EPOCHS:
            out.append(f"epochs capped at {self.epochs} (protocol: {FULL_EPOCHS})")
        if self.patience != FULL_PATIENCE:
            out.append(f"patience {self.patience} (protocol: {FULL_PATIENCE})")
        if self.subjects:
            out.append(f"subjects restricted to {self.subjects}")
        if self.folds:
            out.append(f"folds restricted to {self.folds}")
        if self.test_subjects or self.val_subjects:
            out.append(f"test/val subjects overridden ({self.test_subjects} / {self.val_subjects})")
        if self.trainer_settings() != PROTOCOL_TRAINER:
            out.append("trainer settings differ from the protocol")
        return out


def parse_hparams(text: str | None) -> dict[str, dict[str, Any]]:
    """``"cmdhar.d_model=32,cmdhar.n_heads=2,tinyhar.filter_num=16"`` -> ``{model: {key: value}}``.

    Values are read as JSON where they parse (``24`` -> int, ``true`` -> bool, ``0.5`` -> float),
    else kept as strings. Raises ``ValueError`` on an item that is not ``MODEL.KEY=VALUE``.
    """
    out: dict[str, dict[str, Any]] = {}
    for item in (text or "").split(","):
        item = item.strip()
        if not item:
            continue
        target, sep, raw = (part.strip() for part in item.partition("="))
        model, dot, key = (part.strip() for part in target.rpartition("."))
        if not sep or not dot or not model or not key or not raw:
            raise ValueError(f"--hparams item {item!r} is not MODEL.KEY=VALUE (e.g. cmdhar.d_model=32)")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        out.setdefault(model, {})[key] = value
    return out
