"""A team's own recordings: a dataset started from a manifest only, CSV/Parquet ingest into it,
`har data new` (manifest from CSV headers), `har config new` and the config checks that run
before any step. Real USC-HAD recordings (subjects 1-2 from conftest, exported as CSV)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from cli.main import app
from components.benchmark import protocol
from components.data.ingest import ingest
from components.data.manifest import Manifest
from components.data.new_dataset import (
    NewDatasetError,
    channel_from_column,
    create_dataset,
    export_csv,
    manifest_from_csv,
)
from components.data.recordings import list_recordings, read_index, read_recording
from components.train_config import (
    DatasetFacts,
    check_run_config,
    check_train_parameters,
    choose_split,
    derive_config,
)
from tests.conftest import REPO_ROOT

UNITS = {"acc": "m/s^2", "gyro": "rad/s"}


@pytest.fixture(scope="module")
def csv_dir(small_data_dir, tmp_path_factory):
    """USC-HAD subjects 1-2 x 3 activities as one CSV file per recording (as a logger writes them)."""
    out = tmp_path_factory.mktemp("csv")
    export_csv(small_data_dir / "usc-had", out)
    return out


@pytest.fixture
def new_data(csv_dir, tmp_path):
    """A data folder holding only the new dataset's manifest (derived from the CSV files)."""
    manifest, _ = manifest_from_csv("team", [csv_dir], UNITS)
    create_dataset(tmp_path / "data", manifest)
    return tmp_path / "data"


def test_manifest_from_csv_headers(csv_dir, small_data_dir):
    manifest, notes = manifest_from_csv("team", [csv_dir], UNITS)
    usc = Manifest.load(small_data_dir / "usc-had")
    assert manifest.sampling_rate_hz == 100.0
    assert manifest.channels == usc.channels  # names, modality, position, unit, axis recovered from headers
    assert manifest.labels == ["sitting", "standing", "walking_forward"]
    assert any("100 Hz" in n for n in notes)


def test_ingest_csv_into_a_manifest_only_dataset(csv_dir, new_data):
    files = sorted(csv_dir.glob("*.csv"))[:3]
    report = ingest(files, new_data, dataset="team")
    assert [o.status for o in report.outcomes] == ["added"] * 3, [o.message for o in report.outcomes]
    assert sorted(p.stem for p in list_recordings(new_data / "team")) == sorted(f.stem for f in files)
    assert [r["recording_id"] for r in read_index(new_data / "team")] == sorted(f.stem for f in files)
    assert not list(new_data.glob(".ingest-*"))


def test_ingest_unlabelled_samples_and_parquet_into_a_manifest_only_dataset(csv_dir, new_data, small_data_dir):
    # CSV whose first 200 samples are unlabelled (empty label cells)
    src = sorted(csv_dir.glob("*.csv"))[0]
    lines = src.read_text().splitlines()
    body_start = next(i for i, line in enumerate(lines) if line.startswith("t,")) + 1
    for i in range(body_start, body_start + 200):
        lines[i] = lines[i].rsplit(",", 1)[0] + ","
    partly = new_data.parent / "partly_unlabelled.csv"
    partly.write_text("\n".join(lines) + "\n")
    # a canonical Parquet file (as write_recording / an importer writes it)
    parquet = list_recordings(small_data_dir / "usc-had")[-1]
    report = ingest([partly, parquet], new_data, dataset="team")
    assert [o.status for o in report.outcomes] == ["added", "added"], [o.message for o in report.outcomes]
    m = Manifest.load(new_data / "team")
    rec = read_recording(new_data / "team" / "recordings" / "partly_unlabelled.parquet", m)
    assert all(x is None for x in rec.labels[:200]) and rec.labels[200] is not None
    got = read_recording(new_data / "team" / "recordings" / f"{parquet.stem}.parquet", m)
    np.testing.assert_array_equal(got.values, read_recording(parquet, m).values)


def test_column_names_and_units_are_checked():
    assert channel_from_column("acc_x", UNITS, "wrist").position == "wrist"
    assert channel_from_column("Wrist_Gyroscope_Z", UNITS, None).modality == "gyro"
    camel = channel_from_column("leftAnkleAccX", UNITS, None)
    assert (camel.position, camel.modality, camel.axis, camel.name) == ("left_ankle", "acc", "x", "leftAnkleAccX")
    assert channel_from_column("ACC.Y", UNITS, "waist").axis == "y"
    with pytest.raises(NewDatasetError, match="'label' \\(the activity\\)"):
        channel_from_column("activity", UNITS, "waist")
    with pytest.raises(NewDatasetError, match="no modality"):
        channel_from_column("heart_rate", UNITS, "chest")
    with pytest.raises(NewDatasetError, match="--position"):
        channel_from_column("acc_x", UNITS, None)
    with pytest.raises(NewDatasetError, match="--units mag=UNIT"):
        channel_from_column("wrist_mag_x", UNITS, None)


def test_manifest_from_csv_rejects_files_that_disagree(csv_dir, tmp_path):
    shutil.copytree(csv_dir, tmp_path / "csv")
    f = sorted((tmp_path / "csv").glob("*.csv"))[0]
    f.write_text(f.read_text().replace("right_hip_gyro_z", "right_hip_gyro_w"))
    with pytest.raises(NewDatasetError, match="channels differ"):
        manifest_from_csv("team", [tmp_path / "csv"], UNITS)
    with pytest.raises(NewDatasetError, match="does not list"):
        manifest_from_csv("team", [csv_dir], UNITS, labels=["sitting"])


def test_create_dataset_refuses_existing_and_bad_names(new_data):
    m = Manifest.load(new_data / "team")
    with pytest.raises(NewDatasetError, match="already exists"):
        create_dataset(new_data, m)
    m.name = "Team Data"
    with pytest.raises(NewDatasetError, match="lower-case"):
        create_dataset(new_data, m)


def test_har_data_new_prints_next_steps(csv_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("HAR_DATA_DIR", str(tmp_path / "data"))
    res = CliRunner().invoke(
        app, ["data", "new", "team", "--from-csv", str(csv_dir), "--units", "acc=m/s^2,gyro=rad/s"]
    )
    assert res.exit_code == 0, res.output
    assert (tmp_path / "data" / "team" / "manifest.yaml").exists()
    assert "har data ingest" in res.output and "har config new team" in res.output
    res = CliRunner().invoke(app, ["data", "new", "other", "--from-csv", str(csv_dir)])
    assert res.exit_code == 1 and "--units acc=UNIT" in " ".join(res.output.split())


# -- configs that follow the dataset ---------------------------------------------------------
def _train_yaml():
    return yaml.safe_load((REPO_ROOT / "configs" / "train.yaml").read_text())


def test_choose_split_is_subject_wise_and_disjoint():
    subjects = [str(i) for i in range(1, 31)]
    s = choose_split(subjects)
    assert s["test"] == ["25", "26", "27", "28", "29", "30"] and s["val"] == ["21", "22", "23", "24"]
    assert set(s["train"]).isdisjoint(s["val"] + s["test"]) and len(s["train"]) == 20


def test_derived_config_follows_the_dataset_and_passes_its_checks(csv_dir, new_data):
    ingest(sorted(csv_dir.glob("*.csv")), new_data, dataset="team")
    facts = DatasetFacts.load(new_data / "team")
    assert facts.subjects == ["1", "2"] and facts.labels_by_subject["1"] == {"sitting", "standing", "walking_forward"}
    with pytest.raises(ValueError, match="at least 3 subjects"):
        derive_config(_train_yaml(), "team", facts)
    # the same facts with a third subject (the split rule only looks at ids and their labels)
    facts.subjects = ["1", "2", "3"]
    facts.labels_by_subject["3"] = {"sitting"}
    cfg, notes = derive_config(_train_yaml(), "team", facts)
    p = cfg["parameters"]
    assert p["dataset"] == "team" and p["registered_model"] == "cmd-har-team" and cfg["model"]["name"] == "cmd-har-team"
    assert p["split"] == {"protocol": "holdout", "test_subjects": ["3"], "val_subjects": ["2"]}
    assert p["promotion"]["recall_groups"] == []
    # trained to convergence as the benchmark trains, not within train.yaml's DSADS demo budget
    template = _train_yaml()["parameters"]["trainer"]
    assert template["time_budget_min"] is not None and template["lr_schedule"] == "cosine"
    assert p["trainer"]["time_budget_min"] is None and p["trainer"]["lr_schedule"] == protocol.TRAINER["lr_schedule"]
    assert (p["trainer"]["epochs"], p["trainer"]["patience"]) == (protocol.EPOCHS, protocol.PATIENCE)
    changed = {*protocol.TRAINER, "epochs", "patience", "time_budget_min"}
    assert {k: v for k, v in p["trainer"].items() if k not in changed} == {
        k: v for k, v in template.items() if k not in changed
    }  # the rest (loss weights, class weighting, seed, ...) as in the template
    assert any("no time budget" in n and "time_budget_min" in n for n in notes)
    assert "train 1 · validation 2 · test 3" in notes[0]
    assert any("test subjects have no recordings of ['standing', 'walking_forward']" in n for n in notes)


def test_config_copied_from_another_dataset_is_refused_before_any_step(csv_dir, new_data):
    ingest(sorted(csv_dir.glob("*.csv")), new_data, dataset="team")
    cfg = _train_yaml()
    cfg["parameters"]["dataset"] = "team"
    cfg["parameters"]["registered_model"] = "cmd-har-dsads"  # a config written for DSADS names its model
    cfg["parameters"]["window"]["length_s"] = 600.0
    cfg["parameters"]["split"] = {"protocol": "holdout", "test_subjects": ["2", "9"], "val_subjects": ["2"]}
    problems = check_run_config(cfg, new_data)
    text = "\n".join(problems)
    assert "model.name: 'cmd-har-dsads' is the model of dataset 'dsads'" in text
    assert "parameters.registered_model: 'cmd-har-dsads'" in text
    assert "parameters.promotion.recall_groups: classes ['standing_in_elevator']" in text
    assert "parameters.split.test_subjects: subjects ['9']" in text
    assert "parameters.split: subjects ['2'] are in both" in text
    assert "parameters.window.length_s: 600 s is longer than every recording" in text
    assert len(problems) == 6
    # a window longer than every recording of one class (here: its recordings cut to 2 s)
    facts = DatasetFacts.load(new_data / "team")
    cfg = _train_yaml()
    cfg["parameters"].update(dataset="team", registered_model=None)
    cfg["parameters"]["promotion"]["recall_groups"] = []
    cfg["parameters"]["split"] = {"protocol": "holdout", "test_subjects": ["2"], "val_subjects": []}
    assert check_run_config({"parameters": cfg["parameters"]}, new_data) == []
    cfg["parameters"]["window"]["length_s"] = min(facts.longest_by_label.values()) + 0.5
    short = min(facts.longest_by_label, key=facts.longest_by_label.get)
    problems = check_run_config({"parameters": cfg["parameters"]}, new_data)
    assert len(problems) == 1 and f"classes ['{short}']" in problems[0] and "no windows" in problems[0]


def test_config_checks_name_unknown_keys_and_a_missing_dataset(tmp_path):
    (tmp_path / "data").mkdir()
    params = _train_yaml()["parameters"]
    assert check_train_parameters(params, tmp_path / "data") == []  # dsads: imported by the first step
    params = {**params, "dataset": "mine", "registered_model": None}
    params["trainer"] = {**params["trainer"], "epoch": 3}
    params["export"] = {"calibration": 5}
    text = "\n".join(check_train_parameters(params, tmp_path / "data"))
    assert "parameters.trainer: TrainConfig: unknown keys ['epoch']" in text
    assert "parameters.export: unknown keys ['calibration']" in text
    assert "parameters.dataset: no dataset 'mine'" in text and "har data new mine" in text
    params = {**_train_yaml()["parameters"], "registered_model": "cmd-har-dsads-fp32"}
    (problem,) = check_train_parameters(params, tmp_path / "data")
    assert problem.startswith("parameters.registered_model: 'cmd-har-dsads-fp32' ends with '-fp32'"), problem


def test_shipped_configs_pass_their_checks(tmp_path):
    for name in ("train", "schedule", "cluster"):
        cfg = yaml.safe_load((REPO_ROOT / "configs" / f"{name}.yaml").read_text())
        assert check_run_config(cfg, tmp_path) == [], name
