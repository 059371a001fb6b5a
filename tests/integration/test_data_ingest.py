"""`har data ingest`: new real DSADS recordings into an existing dataset.

The project holds DSADS subject 1 (sitting, walking in a parking lot); subject 2's real
recordings are the "new" ones, as canonical Parquet and as CSV (header block or
sidecar). Deliberately bad inputs (wrong channels, rate, spikes) are built from them.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from components.data import ingest as ingest_mod
from components.data.importers import import_dataset
from components.data.ingest import IngestError, change_lines, ingest, read_incoming, resample_to
from components.data.manifest import Manifest
from components.data.recordings import list_recordings, read_index, read_recording
from tests.conftest import dvc_project

LABELS = ["sitting", "walking_parking_lot"]


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """Template project with subject 1, and subject 2's canonical files as new arrivals."""
    root = tmp_path_factory.mktemp("ingest")
    import_dataset("dsads", root / "template" / "data", subjects=["1"], labels=LABELS)
    import_dataset("dsads", root / "incoming", subjects=["2"], labels=LABELS)
    return root


@pytest.fixture
def data(sources, tmp_path):
    shutil.copytree(sources / "template" / "data", tmp_path / "data")
    return tmp_path / "data"


def _new(sources, rid="s02_a01"):
    return sources / "incoming" / "dsads" / "recordings" / f"{rid}.parquet"


def _frame(sources, rid="s02_a09"):
    return pq.read_table(_new(sources, rid)).to_pandas()


def _ids(data):
    return sorted(p.stem for p in list_recordings(data / "dsads"))


def test_canonical_parquet_is_added_with_index_and_stats(sources, data):
    report = ingest([_new(sources)], data, dataset="dsads")
    assert [o.status for o in report.outcomes] == ["added"]
    assert _ids(data) == ["s01_a01", "s01_a09", "s02_a01"]
    rows = {r["recording_id"]: r for r in read_index(data / "dsads")}
    assert rows["s02_a01"]["subject"] == "2" and rows["s02_a01"]["n_samples"] == 7500
    m = Manifest.load(data / "dsads")
    got = read_recording(data / "dsads" / "recordings" / "s02_a01.parquet", m)
    src = read_recording(_new(sources), m)
    np.testing.assert_array_equal(got.values, src.values)
    lines = change_lines(report)
    assert lines[0] == "dsads: recordings 2 -> 3 (+1), subjects 1 -> 2 (new: 2)"
    assert lines[1] == "  sitting: 0.083 h -> 0.167 h (+0.083 h)"
    assert not list(data.glob(".ingest-*"))


def test_duplicates_are_skipped_and_reported(sources, data):
    ingest([_new(sources)], data, dataset="dsads")
    before = sorted(p.name for p in (data / "dsads" / "recordings").iterdir())
    # the same content twice in one batch, plus an existing recording under a new id
    copy = data.parent / "renamed.parquet"
    shutil.copy(_new(sources, "s02_a09"), copy)
    (data.parent / "renamed.yaml").write_text("recording_id: s02_other\n")
    report = ingest([_new(sources), _new(sources, "s02_a09"), copy], data, dataset="dsads")
    assert [o.status for o in report.outcomes] == ["duplicate", "added", "duplicate"]
    assert "same content as recording 's02_a01'" in report.outcomes[0].message
    assert "same content as recording 's02_a09'" in report.outcomes[2].message
    assert sorted(p.name for p in (data / "dsads" / "recordings").iterdir()) == sorted([*before, "s02_a09.parquet"])


def test_csv_with_header_block(sources, data, tmp_path):
    df = _frame(sources)
    path = tmp_path / "walk.csv"
    with open(path, "w") as f:
        f.write("# dataset: dsads\n# subject: '2'\n# session: a09\n# sampling_rate_hz: 25\n")
        f.write("# label: walking_parking_lot\n")
        df.drop(columns=["t", "label"]).to_csv(f, index=False)
    report = ingest([path], data)
    assert [o.status for o in report.outcomes] == ["added"], report.outcomes
    rec = read_recording(data / "dsads" / "recordings" / "walk.parquet", Manifest.load(data / "dsads"))
    assert rec.meta.subject == "2" and set(rec.labels) == {"walking_parking_lot"}
    np.testing.assert_allclose(rec.t[:3], [0.0, 0.04, 0.08])
    # CSV text round-trips float32 exactly, so this is the same recording as the Parquet one
    assert ingest([_new(sources, "s02_a09")], data, dataset="dsads").outcomes[0].status == "duplicate"


def test_csv_with_sidecar_and_channels_in_any_order(sources, data, tmp_path):
    df = _frame(sources)
    path = tmp_path / "session7.csv"
    df[["label", "t", *reversed(df.columns[1:-1])]].to_csv(path, index=False)
    (tmp_path / "session7.json").write_text(json.dumps({"dataset": "dsads", "subject": "2", "recording_id": "s02_x"}))
    report = ingest([path], data)
    assert report.outcomes[0].status == "added" and report.outcomes[0].recording_id == "s02_x"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda df: df.drop(columns=["torso_acc_x"]), "missing ['torso_acc_x'], unexpected []"),
        (lambda df: df.assign(ankle_temp=1.0), "missing [], unexpected ['ankle_temp']"),
        (lambda df: df.assign(t=df["t"] / 2), "sampled at 50 Hz but dataset 'dsads' is 25 Hz"),
    ],
)
def test_mismatching_recordings_are_rejected_and_nothing_is_written(sources, data, tmp_path, change, message):
    path = tmp_path / "bad.csv"
    change(_frame(sources)).to_csv(path, index=False)
    (tmp_path / "bad.yaml").write_text("dataset: dsads\nsubject: '2'\n")
    before = _ids(data)
    report = ingest([path], data)
    assert report.outcomes[0].status == "rejected" and message in report.outcomes[0].message
    assert not report.changed and _ids(data) == before and not (data / "quarantine").exists()


def test_unknown_dataset_and_missing_subject(sources, data, tmp_path):
    with pytest.raises(IngestError, match=r"unknown dataset 'pamap2'; data/ holds \['dsads'\]"):
        read_incoming(_new(sources), data, dataset="pamap2")
    with pytest.raises(IngestError, match="no dataset named; pass --dataset"):
        read_incoming(_new(sources), data)
    path = tmp_path / "anon.csv"
    _frame(sources).to_csv(path, index=False)
    with pytest.raises(IngestError, match="no subject id; dataset 'dsads' is split by subject"):
        read_incoming(path, data, dataset="dsads")


def test_resampling_only_when_asked_and_said(sources, data, tmp_path):
    df = _frame(sources)
    t50 = np.arange(2 * len(df) - 1) * 0.02  # a 50 Hz recording of the same signals
    up = {"t": t50, **{c: np.interp(t50, df["t"], df[c]) for c in df.columns[1:-1]}, "label": "walking_parking_lot"}
    path = tmp_path / "fast.csv"
    __import__("pandas").DataFrame(up).to_csv(path, index=False)
    (tmp_path / "fast.yaml").write_text("dataset: dsads\nsubject: '2'\n")
    assert ingest([path], data).outcomes[0].status == "rejected"
    report = ingest([path], data, resample=True)
    out = report.outcomes[0]
    assert out.status == "added" and out.notes == ["resampled 50 Hz -> 25 Hz (7500 samples)"], out
    rec = read_recording(data / "dsads" / "recordings" / "fast.parquet", Manifest.load(data / "dsads"))
    assert rec.meta.extra["resampled_from_hz"] == pytest.approx(50.0)
    np.testing.assert_allclose(rec.values, df[df.columns[1:-1]].to_numpy(np.float32), atol=1e-4)


def test_resample_labels_come_from_the_nearest_earlier_sample():
    t = np.array([0.0, 0.1, 0.2, 0.3])
    grid, values, labels = resample_to(t, np.arange(8, dtype=np.float32).reshape(4, 2), np.array(list("aabb")), 20.0)
    np.testing.assert_allclose(grid, np.arange(7) * 0.05)
    assert list(labels) == list("aaaabbb") and values[1, 0] == pytest.approx(1.0)


def test_validation_failures_are_quarantined_with_reports(sources, data, tmp_path):
    df = _frame(sources)
    df.loc[100:120, "torso_acc_x"] = 1e4  # far outside +-16 g
    path = tmp_path / "spiky.csv"
    df.to_csv(path, index=False)
    (tmp_path / "spiky.yaml").write_text("dataset: dsads\nsubject: '2'\n")
    report = ingest([path, _new(sources)], data, dataset="dsads")
    assert [o.status for o in report.outcomes] == ["quarantined", "added"]
    assert "outside the physical range in channels ['torso_acc_x']" in report.outcomes[0].message
    q = data / "quarantine" / "dsads"
    assert sorted(p.name for p in q.iterdir()) == ["spiky.parquet", "spiky.report.json", "spiky.report.md"]
    assert json.loads((q / "spiky.report.json").read_text())["ok"] is False
    assert "spiky" not in _ids(data) and "s02_a01" in _ids(data)


def test_a_reused_recording_id_with_other_content_is_rejected(sources, data, tmp_path):
    path = tmp_path / "s01_a01.csv"
    _frame(sources).to_csv(path, index=False)
    (tmp_path / "s01_a01.yaml").write_text("dataset: dsads\nsubject: '2'\n")
    out = ingest([path], data).outcomes[0]
    assert out.status == "rejected" and "already exists with different content" in out.message


def test_a_crash_while_committing_leaves_the_dataset_as_it_was(sources, data, monkeypatch):
    before = {p.name: p.read_bytes() for p in (data / "dsads").rglob("*") if p.is_file()}

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(ingest_mod, "write_index", crash)
    with pytest.raises(OSError, match="disk full"):
        ingest([_new(sources)], data, dataset="dsads")
    after = {p.name: p.read_bytes() for p in (data / "dsads").rglob("*") if p.is_file()}
    assert after == before and not list(data.glob(".ingest-*"))


def test_cli_versions_reports_and_exit_codes(sources, tmp_path, monkeypatch):
    from cli.main import app

    project = dvc_project(tmp_path / "proj")
    shutil.copytree(sources / "template" / "data", project / "data")
    monkeypatch.setenv("HAR_DATA_DIR", str(project / "data"))
    monkeypatch.setenv("HAR_ARTIFACTS_DIR", str(tmp_path / "artifacts"))
    runner = CliRunner()
    res = runner.invoke(app, ["data", "ingest", "-d", "dsads", str(_new(sources))], env={"COLUMNS": "250"})
    assert res.exit_code == 0, res.output
    version = yaml.safe_load((project / "data.dvc").read_text())["outs"][0]["md5"]
    assert f"data version None -> {version}" in res.output and "(new: 2)" in res.output
    report = json.loads(next((tmp_path / "artifacts" / "ingest").glob("*.json")).read_text())
    assert report["new"] == version and report["outcomes"][0]["status"] == "added"
    # a rejected file: exit 1, data version unchanged
    res = runner.invoke(app, ["data", "ingest", "-d", "pamap2", str(_new(sources))], env={"COLUMNS": "250"})
    assert res.exit_code == 1 and "unknown dataset 'pamap2'" in res.output
    assert f"data version unchanged: {version}" in res.output
    assert not (tmp_path / "remote").exists()  # no remote configured: nothing pushed


def test_cli_pushes_when_a_remote_is_configured(sources, tmp_path, monkeypatch):
    import subprocess
    import sys

    from cli.main import app

    project = dvc_project(tmp_path / "proj")
    subprocess.run([sys.executable, "-m", "dvc", "remote", "add", "-d", "store", str(tmp_path / "remote")],
                   cwd=project, check=True)  # fmt: skip
    shutil.copytree(sources / "template" / "data", project / "data")
    monkeypatch.setenv("HAR_DATA_DIR", str(project / "data"))
    monkeypatch.setenv("HAR_ARTIFACTS_DIR", str(tmp_path / "artifacts"))
    published = []  # in-process ZenML would be the checkout's store: tests/e2e/test_retrain_e2e.py publishes for real
    monkeypatch.setattr("cli.retrain.publish_data_version", published.append)
    res = CliRunner().invoke(app, ["data", "ingest", "-d", "dsads", str(_new(sources))], env={"COLUMNS": "250"})
    assert res.exit_code == 0 and "pushed to the DVC remote 'store'" in res.output, res.output
    md5 = yaml.safe_load((project / "data.dvc").read_text())["outs"][0]["md5"]
    assert published == [md5]  # a pushed version is published for scheduled cluster runs
    version = md5.removesuffix(".dir")
    assert (tmp_path / "remote" / "files" / "md5" / version[:2] / f"{version[2:]}.dir").exists()
