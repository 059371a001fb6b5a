"""Train configs that follow the dataset: derived from ``configs/train.yaml`` for a new
dataset (``har config new NAME``), and checked against the dataset **before any step runs**.

``check_train_parameters`` collects every problem it finds, each naming its key
(``parameters.split.test_subjects``, ``parameters.promotion.recall_groups``, ...), so a
config copied from another dataset fails in a second instead of after training.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from components.benchmark import protocol
from components.config import build, run_parameters
from components.data.manifest import Manifest, ManifestError
from components.data.recordings import read_index
from components.data.splitting import SplitConfig, _sorted_ids
from components.data.windowing import WindowConfig
from components.evaluation.promotion import PromotionConfig
from components.models.registry import MODEL_NAMES
from components.registry import FP32_SUFFIX
from components.training.trainer import TrainConfig

PUBLIC_DATASETS = ("dsads", "usc-had", "basicmotions")  # `har data import` can make these
# sections passed to a step as keyword arguments (the step's signature is the contract)
SECTION_KEYS = {
    "export": {"calibration_windows", "max_val_int8_changed_share"},
    "edge": {"profiles", "max_recordings", "max_seconds"},
    "model": {"name", "hparams"},
}
TEST_SHARE, VAL_SHARE = 0.2, 0.15  # share of subjects held out for test / validation


class ConfigError(ValueError):
    """The run config does not fit its dataset; every problem is listed."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("config problems:\n" + "\n".join(f"  - {p}" for p in problems))


def registered_model_name(dataset: str) -> str:
    """The MLflow registered model (and BentoML model) of a dataset's champions."""
    return f"cmd-har-{dataset}"


@dataclass
class DatasetFacts:
    """What the checks need to know about ``data/<dataset>``."""

    manifest: Manifest
    subjects: list[str]
    longest_s: float
    labels_by_subject: dict[str, set[str]]
    longest_by_label: dict[str, float]  # longest recording holding each label

    @classmethod
    def load(cls, dataset_dir: Path) -> DatasetFacts:
        manifest = Manifest.load(dataset_dir)
        rows = read_index(dataset_dir)
        by_subject: dict[str, set[str]] = {}
        by_label: dict[str, float] = {}
        for r in rows:
            labels = [x for x in (r.get("labels") or "").split(",") if x]
            by_subject.setdefault(str(r["subject"]), set()).update(labels)
            for label in labels:
                by_label[label] = max(by_label.get(label, 0.0), float(r["duration_s"]))
        longest = max((float(r["duration_s"]) for r in rows), default=0.0)
        return cls(manifest, _sorted_ids(by_subject), longest, by_subject, by_label)


def choose_split(subjects: list[str]) -> dict[str, list[str]]:
    """A subject-wise holdout: the last ``TEST_SHARE`` of the sorted subjects for test, the
    ``VAL_SHARE`` before them for validation (at least one each), the rest for training."""
    if len(subjects) < 3:
        raise ConfigError([f"a subject-wise split needs at least 3 subjects; the dataset has {len(subjects)}"])
    n_test = max(1, round(TEST_SHARE * len(subjects)))
    n_val = max(1, round(VAL_SHARE * len(subjects)))
    test = subjects[len(subjects) - n_test :]
    val = subjects[len(subjects) - n_test - n_val : len(subjects) - n_test]
    return {"train": subjects[: len(subjects) - n_test - n_val], "val": val, "test": test}


def converging_trainer(trainer: dict[str, Any]) -> dict[str, Any]:
    """``trainer`` with the benchmark protocol's training settings: the learning rate reduced on a
    validation plateau, early stopping, the epoch cap and no wall-clock budget, so a new
    dataset's model trains to convergence as the benchmark's models do (``configs/train.yaml``'s
    budget sizes the DSADS demo to a few minutes, which starves a larger or unknown dataset)."""
    known = {f.name for f in fields(TrainConfig)}
    return {
        **trainer,
        **{k: v for k, v in protocol.TRAINER.items() if k in known},
        "epochs": protocol.EPOCHS,
        "patience": protocol.PATIENCE,
        "time_budget_min": protocol.TIME_BUDGET_MIN,
    }


def derive_config(template: dict[str, Any], dataset: str, facts: DatasetFacts) -> tuple[dict[str, Any], list[str]]:
    """``template`` (a train config) made to follow ``dataset``; returns it and notes for the user."""
    cfg = copy.deepcopy(template)
    name = registered_model_name(dataset)
    split = choose_split(facts.subjects)
    m = facts.manifest
    cfg["model"] = {
        **(cfg.get("model") or {}),
        "name": name,
        "description": f"CMD-HAR activity recognition on {dataset} ({len(m.channels)} channels at "
        f"{m.sampling_rate_hz:g} Hz, {len(m.labels)} activities), test subjects {', '.join(split['test'])}",
        "tags": ["cmd-har", dataset, "wearable-har"],
    }
    p = cfg["parameters"]
    p["dataset"] = dataset
    p["source"] = None
    p["subjects"] = None
    p["split"] = {"protocol": "holdout", "test_subjects": split["test"], "val_subjects": split["val"]}
    p["fold"] = 0
    p["promotion"] = {**p.get("promotion", {}), "recall_groups": []}
    p["registered_model"] = name
    t = p["trainer"] = converging_trainer(p.get("trainer") or {})
    notes = [
        f"split (subject-wise holdout, subjects in sorted order): train {', '.join(split['train'])} · "
        f"validation {', '.join(split['val'])} · test {', '.join(split['test'])}",
        f"registered model {name}; promotion.recall_groups emptied (every class on its own)",
        f"trainer: the benchmark's, until validation macro-F1 stops improving ({t['lr_schedule']} schedule, "
        f"patience {t['patience']}, at most {t['epochs']} epochs, no time budget); "
        "set parameters.trainer.time_budget_min (minutes) to bound the wall clock",
    ]
    unseen = [x for x in m.labels if x not in facts.longest_by_label]
    if unseen:
        notes.append(f"labels with no recordings yet (no windows, not judged): {unseen}")
    for part in ("val", "test"):
        seen = set().union(*(facts.labels_by_subject[s] for s in split[part]))
        missing = [x for x in m.labels if x not in seen]
        if missing:
            notes.append(f"warning: {part} subjects have no recordings of {missing}; edit parameters.split")
    return cfg, notes


def check_train_parameters(params: dict[str, Any], data_dir: Path) -> list[str]:
    """Every problem of a train config's ``parameters`` (empty list: fine).

    Config-only checks always run; checks against the dataset run when
    ``data_dir/<dataset>`` is present (a public dataset that is not imported yet is
    imported by the first step and checked there).
    """
    problems: list[str] = []
    dataset = str(params.get("dataset", "dsads"))
    parts = {
        "window": WindowConfig,
        "split": SplitConfig,
        "trainer": TrainConfig,
        "promotion": PromotionConfig,
    }
    built: dict[str, Any] = {}
    for key, cls in parts.items():
        try:
            built[key] = build(cls, params.get(key))
        except (TypeError, ValueError) as e:
            problems.append(f"parameters.{key}: {e}")
    for key, allowed in SECTION_KEYS.items():
        unknown = sorted(set(params.get(key) or {}) - allowed)
        if unknown:
            problems.append(f"parameters.{key}: unknown keys {unknown}; allowed: {sorted(allowed)}")
    model = (params.get("model") or {}).get("name", "cmdhar")
    if model not in MODEL_NAMES:
        problems.append(f"parameters.model.name: unknown model {model!r}; known: {MODEL_NAMES}")
    problems += _other_datasets_model("parameters.registered_model", params.get("registered_model"), dataset, data_dir)
    if str(params.get("registered_model") or "").endswith(FP32_SUFFIX):
        problems.append(
            f"parameters.registered_model: {params['registered_model']!r} ends with {FP32_SUFFIX!r}, the suffix of "
            "the registered models that hold fp32 twins; name the served (int8) model without it"
        )
    folder = Path(data_dir) / dataset
    if not (folder / "manifest.yaml").exists():
        # no data/ at all: a client that submits to a cluster whose steps pull the data
        if dataset not in PUBLIC_DATASETS and Path(data_dir).is_dir():
            problems.append(
                f"parameters.dataset: no dataset {dataset!r} under {data_dir} (no manifest.yaml); "
                f"create it with `har data new {dataset} ...` and `har data ingest` (docs/own-data.md)"
            )
        return problems
    try:
        facts = DatasetFacts.load(folder)
    except (ManifestError, OSError, KeyError) as e:
        return [*problems, f"parameters.dataset: data/{dataset} is unreadable: {e}"]
    return problems + _check_against(built, facts, dataset)


def _other_datasets_model(key: str, name: str | None, dataset: str, data_dir: Path) -> list[str]:
    """A model name of another dataset (``cmd-har-dsads`` in a config that trains ``usc``)."""
    other = str(name or "").removeprefix("cmd-har-")
    if not name or name == registered_model_name(dataset) or not str(name).startswith("cmd-har-"):
        return []
    if other in PUBLIC_DATASETS or (Path(data_dir) / other).is_dir():
        return [
            f"{key}: {name!r} is the model of dataset {other!r} but the config trains {dataset!r}; "
            f"use {registered_model_name(dataset)!r}"
        ]
    return []


def check_run_config(cfg: dict[str, Any], data_dir: Path) -> list[str]:
    """:func:`check_train_parameters` plus the ZenML ``model:`` block of a whole run config."""
    params = run_parameters(cfg)
    dataset = str(params.get("dataset", "dsads"))
    zenml_model = (cfg.get("model") or {}).get("name")
    return _other_datasets_model("model.name", zenml_model, dataset, data_dir) + check_train_parameters(
        params, data_dir
    )


def _check_against(built: dict[str, Any], facts: DatasetFacts, dataset: str) -> list[str]:
    problems: list[str] = []
    m = facts.manifest
    if not facts.subjects:
        return [f"parameters.dataset: data/{dataset} has no recordings yet; `har data ingest PATH --dataset {dataset}`"]
    promotion = built.get("promotion")
    if promotion is not None:
        unknown = sorted({c for g in promotion.recall_groups for c in g} - set(m.labels))
        if unknown:
            problems.append(
                f"parameters.promotion.recall_groups: classes {unknown} are not labels of {dataset!r} "
                f"(labels: {m.labels})"
            )
    split = built.get("split")
    if split is not None and m.subject_wise and split.protocol in ("holdout", "loso"):
        known = set(facts.subjects)
        named = {"test_subjects": list(split.test_subjects), "val_subjects": list(split.val_subjects)}
        for key, ids in named.items():
            missing = [s for s in ids if s not in known]
            if missing:
                problems.append(
                    f"parameters.split.{key}: subjects {missing} have no recordings in {dataset!r} "
                    f"(subjects: {facts.subjects})"
                )
        both = sorted(set(named["test_subjects"]) & set(named["val_subjects"]))
        if both:
            problems.append(f"parameters.split: subjects {both} are in both test_subjects and val_subjects")
        if split.protocol == "holdout" and not split.test_subjects:
            problems.append("parameters.split.test_subjects: the holdout protocol needs at least one test subject")
        train = known - set(named["test_subjects"]) - set(named["val_subjects"])
        if not train:
            problems.append("parameters.split: no subject is left for training")
    window = built.get("window")
    if window is not None:
        try:
            window.samples(m.sampling_rate_hz)
        except ValueError as e:
            problems.append(f"parameters.window: {e}")
        if window.length_s > facts.longest_s:
            problems.append(
                f"parameters.window.length_s: {window.length_s:g} s is longer than every recording of "
                f"{dataset!r} (longest {facts.longest_s:.2f} s)"
            )
        else:
            short = {x: d for x, d in facts.longest_by_label.items() if d < window.length_s}
            if short:
                problems.append(
                    f"parameters.window.length_s: {window.length_s:g} s is longer than every recording of "
                    f"classes {sorted(short)} (longest {max(short.values()):.2f} s): they would get no windows"
                )
        if window.group_by not in ("modality", "position"):
            problems.append(f"parameters.window.group_by: 'modality' or 'position', not {window.group_by!r}")
    return problems


def require_valid_parameters(params: dict[str, Any], data_dir: Path) -> None:
    """Raise :class:`ConfigError` listing every problem of ``params`` (see :func:`check_train_parameters`)."""
    problems = check_train_parameters(params, data_dir)
    if problems:
        raise ConfigError(problems)
