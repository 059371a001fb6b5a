"""One source per default: configs/train.yaml's ``parameters:`` equal the code's defaults.

Each block of train.yaml is compared with the defaults of the dataclass or step that reads it;
a mismatch names the key and both values. Dataset-specific values (DSADS's holdout subjects,
its recall groups) have no code default and are listed in ``DATASET_SPECIFIC``. The benchmark
protocol's own values live in components/benchmark/protocol.py and are not defaults.
"""

from __future__ import annotations

import dataclasses
import inspect

import pytest
import yaml

from components.config import TRAIN_CONFIG, default_parameters, run_parameters
from components.data.splitting import SplitConfig
from components.data.validation import ValidationConfig
from components.data.windowing import WindowConfig
from components.evaluation.promotion import PromotionConfig
from components.training.trainer import TrainConfig

TRAIN = yaml.safe_load(TRAIN_CONFIG.read_text())["parameters"]
DATACLASSES = {
    "validation": ValidationConfig,
    "window": WindowConfig,
    "split": SplitConfig,
    "trainer": TrainConfig,
    "promotion": PromotionConfig,
}
# DSADS's, written in train.yaml; other datasets' configs (`har config new`) carry their own
DATASET_SPECIFIC = {"split": {"test_subjects", "val_subjects"}, "promotion": {"recall_groups"}}


def _same(a, b) -> bool:
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return a == b


def _mismatches(block: str, yaml_values: dict, code_defaults: dict) -> list[str]:
    out = []
    for key, value in yaml_values.items():
        if key in DATASET_SPECIFIC.get(block, set()):
            continue
        if key not in code_defaults:
            out.append(f"parameters.{block}.{key}: in configs/train.yaml ({value!r}) but not a code default")
        elif not _same(value, code_defaults[key]):
            out.append(f"parameters.{block}.{key}: configs/train.yaml {value!r} != code default {code_defaults[key]!r}")
    return out


@pytest.mark.parametrize("block", sorted(DATACLASSES))
def test_dataclass_defaults_equal_train_yaml(block):
    defaults = {f.name: f.default for f in dataclasses.fields(DATACLASSES[block])}
    problems = _mismatches(block, TRAIN[block], defaults)
    assert not problems, "\n".join(problems)


def test_the_comparison_fails_naming_the_field_and_both_values():
    (problem,) = _mismatches("promotion", {"min_macro_f1": 0.75, "recall_groups": [["a", "b"]]}, {"min_macro_f1": 0.8})
    assert problem == "parameters.promotion.min_macro_f1: configs/train.yaml 0.75 != code default 0.8"
    assert _mismatches("trainer", {"modulation": 1}, {"modulation": True})  # a bool is not a number


def _signature_defaults(fn) -> dict:
    fn = getattr(fn, "entrypoint", fn)  # a ZenML step: the decorated function
    return {k: p.default for k, p in inspect.signature(fn).parameters.items() if p.default is not p.empty}


def test_export_and_edge_step_defaults_equal_train_yaml():
    from components.edge.simulate import DEFAULT_PROFILES
    from components.export.pipeline import export_and_measure
    from steps.export_model import export_model_step
    from steps.simulate_edge import simulate_edge_step

    problems = _mismatches("export", TRAIN["export"], _signature_defaults(export_model_step))
    problems += _mismatches("export", TRAIN["export"], _signature_defaults(export_and_measure))
    edge = {**_signature_defaults(simulate_edge_step), "profiles": DEFAULT_PROFILES}  # None: DEFAULT_PROFILES
    problems += _mismatches("edge", TRAIN["edge"], edge)
    assert not problems, "\n".join(problems)


def test_train_pipeline_defaults_are_train_yaml_parameters():
    from pipelines.train_pipeline import train_pipeline

    defaults = _signature_defaults(train_pipeline.entrypoint)
    assert {k: v for k, v in defaults.items() if k != "stop_if_unchanged"} == TRAIN
    assert defaults["stop_if_unchanged"] is False


def test_run_parameters_replace_whole_blocks_as_zenml_does():
    params = run_parameters({"parameters": {"trainer": {"epochs": 2}, "stop_if_unchanged": True}})
    assert params["trainer"] == {"epochs": 2}  # the rest of the block: TrainConfig's defaults (train.yaml's)
    assert params["stop_if_unchanged"] is True and params["promotion"] == TRAIN["promotion"]
    assert run_parameters({}) == default_parameters() == TRAIN
    default_parameters()["trainer"]["lr"] = 1.0  # a fresh copy each time
    assert default_parameters()["trainer"]["lr"] == TRAIN["trainer"]["lr"]


def test_benchmark_protocol_has_one_source():
    """The harness and `har benchmark` take the protocol from components/benchmark/protocol.py,
    and a default run is the complete protocol (no train.yaml time budget leaks into it)."""
    import typer

    from components.benchmark import protocol
    from components.benchmark.command import benchmark
    from components.benchmark.protocol import PROTOCOL_DESCRIPTION, BenchmarkSettings

    settings = BenchmarkSettings()
    assert settings.trainer_settings() == protocol.TRAINER and settings.deviations() == []
    assert (settings.epochs, settings.patience, settings.seeds) == (protocol.EPOCHS, protocol.PATIENCE, protocol.SEEDS)
    options = {k: p.default for k, p in inspect.signature(benchmark).parameters.items()}
    assert all(isinstance(o, typer.models.OptionInfo) for o in options.values())
    got = {k: options[k].default for k in ("epochs", "patience", "seeds", "modality_dropout")}
    assert got == {
        "epochs": protocol.EPOCHS,
        "patience": protocol.PATIENCE,
        "seeds": protocol.SEEDS,
        "modality_dropout": protocol.TRAINER["modality_dropout"],
    }
    assert options["augment_rotation"].default == protocol.TRAINER["augment_rotation_deg"]
    assert options["augment_gain"].default == protocol.TRAINER["augment_gain_std"]
    assert f"up to {protocol.EPOCHS} epochs" in PROTOCOL_DESCRIPTION
    assert f"patience {protocol.PATIENCE}" in PROTOCOL_DESCRIPTION
    assert protocol.TIME_BUDGET_MIN is None  # the benchmark trains to patience or the cap
