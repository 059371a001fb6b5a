"""The registry entries of a candidate (served int8 + fp32 twin, signatures, descriptions) and
the MLflow-alias vs ZenML-stage comparison of `har lineage`.

Registration uses a real exported model (tests/edge_fixtures.py: a small CNN trained on real
DSADS windows, exported to fp32 + int8 ONNX) in a temp sqlite MLflow store.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from components import registry, tracking
from components.lineage import ZenmlVersion, ZenmlView, stage_disagreements, zenml_links

pytest_plugins = ["tests.edge_fixtures"]

MODEL = "cmd-har-regtest"


@pytest.fixture
def store(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", uri)
    tracking.configure()
    return tracking.client()


def _facts(run_id: str, report: dict) -> registry.CandidateFacts:
    return registry.CandidateFacts(
        dataset="dsads",
        data_version="0123abcd.dir",
        test_subjects=("2",),
        fp32_macro_f1=report["fp32_macro_f1"],
        int8_macro_f1=report["int8_macro_f1"],
        mlflow_run_id=run_id,
    )


def _register(exported, small_split, outcome="champion"):
    with tracking.run_context(run_name="regtest") as run:
        facts = _facts(run.info.run_id, exported.report)
        pair = registry.register_pair(
            exported, MODEL, facts, np.asarray(small_split.test.x[:1], np.float32), {"promotion_outcome": outcome}
        )
    return pair, facts


def test_int8_and_fp32_registered_with_signature_description_and_links(exported_small, small_split, store):
    import mlflow
    import mlflow.models

    e = exported_small
    pair, facts = _register(e, small_split)
    assert (pair.model, pair.version, pair.fp32_model, pair.fp32_version) == (MODEL, "1", MODEL + "-fp32", "1")
    channels, window_len = small_split.test.x.shape[1:]
    n_classes = len(e.preprocessing["label_names"])
    for name, precision, data in ((MODEL, "int8", e.int8), (MODEL + "-fp32", "fp32", e.fp32)):
        mv = store.get_model_version(name, "1")
        # the registered artifact holds exactly the bytes of that precision
        local = mlflow.artifacts.download_artifacts(f"models:/{name}/1")
        (onnx_file,) = list(Path(local).glob("*.onnx"))
        assert hashlib.sha256(onnx_file.read_bytes()).digest() == hashlib.sha256(data).digest(), precision
        sig = mlflow.models.get_model_info(f"models:/{name}/1").signature
        assert sig is not None, f"{name} v1 has no signature"
        (inp,), (out,) = sig.inputs.inputs, sig.outputs.inputs
        assert (inp.name, inp.type, inp.shape) == ("x", np.dtype("float32"), (-1, channels, window_len))
        assert (out.name, out.type, out.shape) == ("logits", np.dtype("float32"), (-1, n_classes))
        f1 = e.report[f"{precision}_macro_f1"]
        for needle in (
            f"Precision: {precision}",
            "Dataset: dsads",
            "Data version (data.dvc md5): 0123abcd.dir",
            "Test subjects: 2.",
            f"Test macro-F1 ({precision}): {f1:.4f}",
        ):
            assert needle in mv.description, (needle, mv.description)
        assert mv.tags["precision"] == precision and mv.tags["test_macro_f1"] == f"{f1:.4f}"
        assert mv.tags["data_version"] == "0123abcd.dir" and mv.tags["test_subjects"] == "2"
        assert mv.tags["promotion_outcome"] == "champion" and mv.tags["mlflow_run_id"] == facts.mlflow_run_id
    int8, fp32 = store.get_model_version(MODEL, "1"), store.get_model_version(MODEL + "-fp32", "1")
    assert (int8.tags["fp32_registered_model"], int8.tags["fp32_registered_version"]) == (MODEL + "-fp32", "1")
    assert (fp32.tags["int8_registered_model"], fp32.tags["int8_registered_version"]) == (MODEL, "1")
    assert f"fp32 twin: {MODEL}-fp32 v1" in int8.description and f"int8 twin: {MODEL} v1" in fp32.description
    assert "served" in int8.description and "never served" in fp32.description
    # the served model answers through MLflow with its signature enforced: float32 windows in, logits out
    logits = mlflow.pyfunc.load_model(f"models:/{MODEL}/1").predict(small_split.test.x[:5].astype(np.float32))
    assert np.asarray(logits["logits"]).shape == (5, n_classes)

    pair2, _ = _register(e, small_split, outcome="challenger")
    assert (pair2.version, pair2.fp32_version) == ("2", "2")
    assert store.get_model_version(MODEL + "-fp32", "2").tags["int8_registered_version"] == "2"
    assert "fp32 twins" in store.get_registered_model(MODEL).description


def test_signature_refuses_a_graph_that_disagrees_with_the_preprocessing(exported_small):
    channels = len(exported_small.preprocessing["channel_names"])
    window_len = exported_small.preprocessing["window_len"]
    sig = registry.onnx_signature(exported_small.int8, channels, window_len, 3)
    assert sig.inputs.inputs[0].shape == (-1, channels, window_len)
    with pytest.raises(ValueError, match=rf"ONNX input has shape \['.*', {channels}, {window_len}\].*\(batch, 44,"):
        registry.onnx_signature(exported_small.int8, 44, window_len, 3)
    with pytest.raises(ValueError, match=r"ONNX output has shape .*\(batch, 7\)"):
        registry.onnx_signature(exported_small.fp32, channels, window_len, 7)


# --- MLflow aliases vs ZenML stages (pure) -------------------------------------------------------


def _zv(name, stage, version, model=MODEL):
    return ZenmlVersion(name, stage, model, version)


def test_agreement_is_silent():
    view = ZenmlView("zm", production=_zv("7", "production", "3"), staging=_zv("8", "staging", "4"))
    assert stage_disagreements(MODEL, {"champion": "3", "challenger": "4", "previous-champion": "2"}, view) == []
    assert stage_disagreements(MODEL, {}, ZenmlView("zm")) == []
    links = {link.stage: link.detail for link in zenml_links(MODEL, {"champion": "3", "challenger": "4"}, view)}
    assert links["MLflow vs ZenML"] == "agree (champion v3 = ZenML production, challenger v4 = ZenML staging)"


def test_champion_pointing_elsewhere_is_named():
    view = ZenmlView("zm", production=_zv("6", "production", "2"))
    (problem,) = stage_disagreements(MODEL, {"champion": "3"}, view)
    assert problem == (
        f"MLflow champion is {MODEL} v3, but the metadata of ZenML production version 6 points to {MODEL} v2"
    )
    links = {link.stage: link.detail for link in zenml_links(MODEL, {"champion": "3"}, view)}
    assert links["MLflow vs ZenML"].startswith("DISAGREE: MLflow champion is")


def test_missing_sides_are_named():
    assert stage_disagreements(MODEL, {"champion": "3"}, ZenmlView("zm")) == [
        f"MLflow champion is {MODEL} v3, but no version of ZenML model zm is in production"
    ]
    (problem,) = stage_disagreements(MODEL, {}, ZenmlView("zm", staging=_zv("8", "staging", "4")))
    assert problem == (
        f"ZenML model zm version 8 ({MODEL} v4) is in staging, but {MODEL} has no challenger alias in MLflow"
    )
    (problem,) = stage_disagreements(MODEL, {"champion": "3"}, ZenmlView("zm", production=_zv("5", "production", None)))
    assert "cannot confirm it" in problem and "no MLflow version in its metadata" in problem
    other = ZenmlView("zm", production=_zv("5", "production", "3", model="cmd-har-other"))
    (problem,) = stage_disagreements(MODEL, {"champion": "3"}, other)
    assert problem.endswith("points to cmd-har-other v3")


def test_zenml_unavailable_is_not_a_verdict():
    view = ZenmlView("zm", error="no ZenML model named 'zm' in this ZenML store")
    assert stage_disagreements(MODEL, {"champion": "3"}, view) == []
    (link,) = zenml_links(MODEL, {"champion": "3"}, view)
    assert link.detail == "not compared: no ZenML model named 'zm' in this ZenML store"


def test_lineage_asks_zenml_about_the_model_version_that_registered_it(store, tmp_path, monkeypatch):
    from components.lineage import chain

    monkeypatch.setenv("HAR_DATA_DIR", str(tmp_path / "data"))  # no manifest: lineage still prints
    exp = store.create_experiment("train_pipeline")
    run = store.create_run(exp).info.run_id
    store.set_tag(run, "dataset", "dsads")
    store.create_registered_model(MODEL)
    version = str(store.create_model_version(MODEL, f"runs:/{run}/onnx-int8", run_id=run).version)
    for key, value in {
        "precision": "int8",
        "promotion_outcome": "champion",
        "fp32_registered_model": MODEL + "-fp32",
        "fp32_registered_version": "1",
        "zenml_model": "zm",
        "zenml_model_version": "7",
    }.items():
        store.set_model_version_tag(MODEL, version, key, value)
    tracking.set_alias(MODEL, tracking.CHAMPION, version)
    asked = []

    def lookup(model, zenml_version):
        asked.append((model, zenml_version))
        # the stage moved in ZenML, the alias did not follow (or the other way round)
        return ZenmlView(model, _zv("7", "archived", version), production=_zv("9", "production", "2"))

    links = {link.stage: link.detail for link in chain(MODEL, None, zenml=lookup)}
    assert asked == [("zm", "7")]
    assert links["registered version"] == f"{MODEL} v1 (int8, outcome champion)"
    assert links["fp32 twin"] == f"{MODEL}-fp32 v1 (not served)"
    assert links["ZenML model"].startswith("this version is ZenML zm version 7, stage archived; production: version 9")
    assert links["MLflow vs ZenML"] == (
        f"DISAGREE: MLflow champion is {MODEL} v1, but the metadata of ZenML production version 9 points to {MODEL} v2"
    )
    assert "ZenML model" not in {link.stage for link in chain(MODEL)}
