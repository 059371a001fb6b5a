"""Lineage for a team's own data.

A dataset that starts as a hand-written manifest gets its recordings from
``har data ingest``; the manifest then records the sha256 of every source file and a
tree digest over them. A registered version promoted by another pipeline run than the
one that trained it (ZenML cached the training step) names both runs.
"""

from __future__ import annotations

import hashlib
from types import SimpleNamespace

import numpy as np
import pytest

from components import tracking
from components.data import ingest as ingest_mod
from components.data.ingest import ingest
from components.data.manifest import Manifest
from components.data.recordings import list_recordings

MANIFEST = """\
# written by hand for the team's own wrist sensor
name: mine
sampling_rate_hz: 50
channels:
  - {name: wrist_acc_x, modality: acc, position: wrist, unit: m/s^2, axis: x}
  - {name: wrist_acc_y, modality: acc, position: wrist, unit: m/s^2, axis: y}
  - {name: wrist_acc_z, modality: acc, position: wrist, unit: m/s^2, axis: z}
labels: [walking, sitting]
source:
  owner: team-wearables
"""


def _csv(folder, name, seed, subject="1", label="walking"):
    """A 10-s three-axis accelerometer recording as CSV with a ``# key: value`` header."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (500, 3)) + [0.0, 0.0, 9.81]
    path = folder / name
    lines = [
        f"# subject: '{subject}'",
        "# sampling_rate_hz: 50",
        f"# label: {label}",
        "wrist_acc_x,wrist_acc_y,wrist_acc_z",
    ]
    lines += [",".join(f"{v:.5f}" for v in row) for row in x]
    path.write_text("\n".join(lines) + "\n")
    return path


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tree(entries):
    """The tree digest, computed here independently: sha256 of sorted "<sha256>  <id>/<file>" lines."""
    names = sorted((f"{rid}/{e['file']}", e["sha256"]) for rid, e in entries.items())
    return hashlib.sha256("".join(f"{sha}  {name}\n" for name, sha in names).encode()).hexdigest()


@pytest.fixture
def own(tmp_path):
    """data/mine/ with only a hand-written manifest, and a folder of new CSV files."""
    data = tmp_path / "data"
    (data / "mine").mkdir(parents=True)
    (data / "mine" / "manifest.yaml").write_text(MANIFEST)
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    return data, incoming


def test_ingest_records_source_checksums_and_tree_digest(own):
    data, incoming = own
    a, b = _csv(incoming, "walk_monday.csv", 1), _csv(incoming, "sit_monday.csv", 2, label="sitting")
    report = ingest([incoming], data, dataset="mine")
    assert [o.status for o in report.outcomes] == ["added", "added"], report.outcomes
    src = Manifest.load(data / "mine").source
    assert src["owner"] == "team-wearables"  # what the team wrote stays
    first = {
        "sit_monday": {"file": "sit_monday.csv", "sha256": _sha(b)},
        "walk_monday": {"file": "walk_monday.csv", "sha256": _sha(a)},
    }
    assert src["ingested_files"] == first
    assert src["ingested_tree_digest"] == _tree(first)
    assert len(list_recordings(data / "mine")) == 2

    (incoming / "tuesday").mkdir()
    c = _csv(incoming / "tuesday", "walk.csv", 3, subject="2")
    assert ingest([c], data, dataset="mine").outcomes[0].status == "added"
    src = Manifest.load(data / "mine").source
    assert src["ingested_files"] == {**first, "walk": {"file": "walk.csv", "sha256": _sha(c)}}
    assert src["ingested_tree_digest"] == _tree(src["ingested_files"]) != _tree(first)


def test_a_failed_ingest_leaves_manifest_and_recordings_as_they_were(own, monkeypatch):
    data, incoming = own
    ingest([_csv(incoming, "walk_monday.csv", 1)], data, dataset="mine")
    before = {p.relative_to(data): p.read_bytes() for p in data.rglob("*") if p.is_file()}

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(ingest_mod, "digest_of_sums", crash)  # fails while writing the new manifest
    with pytest.raises(OSError, match="disk full"):
        ingest([_csv(incoming, "sit_monday.csv", 2, label="sitting")], data, dataset="mine")
    after = {p.relative_to(data): p.read_bytes() for p in data.rglob("*") if p.is_file()}
    assert after == before and not list(data.glob(".ingest-*"))


@pytest.fixture
def store(tmp_path, monkeypatch):
    """An empty MLflow sqlite store (tracking + registry) and BentoML home under tmp_path."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", uri)
    monkeypatch.setenv("BENTOML_HOME", str(tmp_path / "bentoml"))
    tracking.configure()
    return tracking.client()


def _version(client, model, run_id):
    return str(client.create_model_version(model, f"runs:/{run_id}/onnx-model", run_id=run_id).version)


def test_lineage_names_training_and_promoting_runs_and_shared_versions(own, store, monkeypatch):
    from components.evaluation.champion import champion_macro_f1
    from components.lineage import chain

    data, incoming = own
    ingest([_csv(incoming, "walk_monday.csv", 1), _csv(incoming, "sit_monday.csv", 2, label="sitting")], data, "mine")
    monkeypatch.setenv("HAR_DATA_DIR", str(data))
    exp = store.create_experiment("train_pipeline")
    train = store.create_run(exp, run_name="train_pipeline-1").info.run_id
    for key, value in {
        "zenml_pipeline_run_id": "zid-1",
        "zenml_pipeline_run_name": "train_pipeline-1",
        "dataset": "mine",
        "data_version": "d41d8.dir",
        "test_subjects": "2",
    }.items():
        store.set_tag(train, key, value)
    store.log_metric(train, "test_macro_f1", 0.8)
    promote2 = store.create_run(exp, run_name="train_pipeline-2").info.run_id
    model = "cmd-har-mine"
    store.create_registered_model(model)
    v1, v2 = _version(store, model, train), _version(store, model, train)
    tracking.link_version_runs(model, v1, train, train, "zid-1", "train_pipeline-1")  # trained and promoted
    tracking.link_version_runs(model, v2, train, promote2, "zid-2", "train_pipeline-2")  # training was cached

    links = {link.stage: link.detail for link in chain(model, v2)}
    assert links["ZenML run"] == "trained in run train_pipeline-1 (cached), promoted by run train_pipeline-2"
    assert links["training run"] == f"ZenML train_pipeline-1 (zid-1), MLflow {train}"
    assert links["promoting run"] == f"ZenML train_pipeline-2 (zid-2), MLflow {promote2}"
    assert links["registered version"].endswith(f"training run {train} is shared with v{v1}")
    src = Manifest.load(data / "mine").source
    assert links["raw source"] == (
        f"mine (own data) | tree digest {_tree(src['ingested_files'])} over 2 ingested source files"
    )
    assert "None" not in links["raw source"]
    tags = store.get_run(promote2).data.tags
    assert (tags["registered_version"], tags["training_mlflow_run_id"]) == (v2, train)
    mv2 = store.get_model_version(model, v2)
    assert mv2.tags["promoting_mlflow_run_id"] == promote2 and mv2.tags["training_mlflow_run_id"] == train

    links = {link.stage: link.detail for link in chain(model, v1)}
    assert links["ZenML run"] == "train_pipeline-1 (zid-1)"
    assert "training run" not in links and "promoting run" not in links
    assert links["registered version"].endswith(f"is shared with v{v2}")

    tracking.set_alias(model, tracking.CHAMPION, v1)
    split = SimpleNamespace(provenance={"data_version": "d41d8.dir"}, fold=SimpleNamespace(test=["2"]))
    champion, f1, note = champion_macro_f1(model, split, candidate_run_id=train)
    assert str(champion.version) == v1 and f1 == pytest.approx(0.8)
    assert f"trained in the same MLflow run {train} as this candidate" in note


def test_a_public_datasets_pinned_checksums_are_kept_next_to_ingested_files(own):
    from components.lineage import _source_detail

    data, incoming = own
    path = data / "mine" / "manifest.yaml"
    pinned = {"dataset": "public-x", "sha256sums_sha256": "a" * 64, "tree_digest": "b" * 64}
    path.write_text(MANIFEST.replace("  owner: team-wearables\n", "".join(f"  {k}: {v}\n" for k, v in pinned.items())))
    assert _source_detail("mine", Manifest.load(data / "mine").source) == (
        f"public-x | SHA256SUMS sha256 {'a' * 64} | tree digest {'b' * 64}"
    )
    ingest([_csv(incoming, "walk_monday.csv", 1)], data, dataset="mine")
    src = Manifest.load(data / "mine").source
    assert {k: src[k] for k in pinned} == pinned
    assert _source_detail("mine", src) == (
        f"public-x | SHA256SUMS sha256 {'a' * 64} | tree digest {'b' * 64} "
        f"+ tree digest {src['ingested_tree_digest']} over 1 ingested source files"
    )
