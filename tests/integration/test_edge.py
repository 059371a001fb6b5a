"""Edge bundle (build, verify, tamper), runtime input checks, and the deployment simulation on real data."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from components.edge.bundle import BundleError, build_bundle, verify_bundle
from components.edge.simulate import load_profile, load_streams, plot_timeline, simulate
from har_runtime.runtime import Classifier, InputError, RingBuffer
from tests.conftest import REPO_ROOT

pytest_plugins = ["tests.edge_fixtures"]


def test_export_report_is_honest(exported_small):
    r = exported_small.report
    assert r["parity_max_abs_diff"] <= 1e-4
    assert r["size_ratio"] == pytest.approx(r["fp32_bytes"] / r["int8_bytes"])
    assert r["size_ratio"] > 1.5  # compacted int8 QDQ; the 3x gate is checked at promotion, not faked here
    assert "Softmax" in r["float_op_types"] or "Relu" in r["float_op_types"]
    assert all(v is not None for v in r.values())  # BentoML metadata and MLflow take no None
    assert r["float_activation_nodes"] == 0 and "no validation windows" in r["float_prefix_tried"]


def test_bundle_contents_and_verify(small_bundle):
    files = {p.name for p in small_bundle.iterdir()}
    assert {"model.onnx", "model.int8.onnx", "preprocessing.json", "labels.json", "manifest.json"} <= files
    manifest = json.loads((small_bundle / "manifest.json").read_text())
    assert set(manifest["files"]) == files - {"manifest.json"}
    assert {"data_version", "zenml_run_id", "mlflow_run_id", "registered_version", "git_commit"} <= set(
        manifest["lineage"]
    )
    assert manifest["metrics"]["int8_bytes"] == (small_bundle / "model.int8.onnx").stat().st_size
    pre = json.loads((small_bundle / "preprocessing.json").read_text())
    assert len(pre["channel_names"]) == 45 and pre["window_len"] == 75 and pre["sampling_rate_hz"] == 25
    for path in (small_bundle, small_bundle.parent / "test-v1.tar.gz"):
        checked = verify_bundle(path)
        assert checked["fp32_max_abs_diff"] <= 1e-4 and checked["files"] == len(files) - 1


@pytest.mark.parametrize("victim", ["model.int8.onnx", "preprocessing.json", "parity.npz"])
def test_tampered_bundle_is_a_clear_error(small_bundle, tmp_path, victim):
    copy = shutil.copytree(small_bundle, tmp_path / "b")
    data = bytearray((copy / victim).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / victim).write_bytes(bytes(data))
    with pytest.raises(BundleError, match=f"{victim} was modified"):
        verify_bundle(copy)


def test_missing_and_extra_files(small_bundle, tmp_path):
    copy = shutil.copytree(small_bundle, tmp_path / "b")
    (copy / "labels.json").unlink()
    with pytest.raises(BundleError, match="missing file"):
        verify_bundle(copy)
    copy = shutil.copytree(small_bundle, tmp_path / "c")
    (copy / "evil.onnx").write_bytes(b"x")
    with pytest.raises(BundleError, match="not in the manifest"):
        verify_bundle(copy)


def test_cli_verify_tampered_exit_code(small_bundle, tmp_path):
    copy = shutil.copytree(small_bundle, tmp_path / "b")
    ok = subprocess.run(
        [sys.executable, "-m", "cli", "edge", "verify", str(copy)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    (copy / "model.onnx").write_bytes((copy / "model.onnx").read_bytes() + b"\0")
    bad = subprocess.run(
        [sys.executable, "-m", "cli", "edge", "verify", str(copy)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert bad.returncode != 0 and "model.onnx was modified" in " ".join(bad.stdout.split())


def test_runtime_rejects_bad_input(small_bundle, small_split):
    clf = Classifier.from_folder(small_bundle)
    x = small_split.test.x[:2]
    assert [r["label"] for r in clf.classify(x)] == [clf.label_names[i] for i in clf.logits(x).argmax(1)]
    bad = [
        (x[:, :44], "44 channels"),
        (x[:, :, :70], "70 samples"),
        (x[0], "shape"),
        (np.zeros((0, 45, 75)), "empty"),
        (np.where(np.arange(75) == 3, np.nan, x), "non-finite"),
        ([[["a"] * 75] * 45], "numbers only"),
        ([[[1.0] * 75] * 45, [[1.0] * 74] * 45], "rectangular"),
        (np.zeros((257, 45, 75)), "over the limit"),
    ]
    for value, needle in bad:
        with pytest.raises(InputError, match=needle):
            clf.prepare_windows(value)
    names = list(reversed(clf.channel_names))
    reordered = clf.classify({"v": x[:, ::-1]}["v"], names)
    assert [r["label"] for r in reordered] == [r["label"] for r in clf.classify(x)]
    with pytest.raises(InputError, match="missing"):
        clf.prepare_windows(x, names[:-1] + ["bogus"])


def test_ring_buffer_and_stream_match_training_windows(small_bundle, small_split):
    ring = RingBuffer(2, 5)
    ring.push(np.arange(14, dtype=np.float32).reshape(7, 2))
    assert np.array_equal(ring.latest(3), np.array([[4, 6, 8], [5, 7, 9]], np.float32) + 4)
    clf = Classifier.from_folder(small_bundle)
    # 3 consecutive training-style windows of one recording, re-streamed sample by sample
    rec = small_split.test.recording[0]
    idx = np.where(small_split.test.recording == rec)[0][:3]
    x = small_split.test.x[idx]
    samples = np.concatenate([x[0].T, *[w.T[-clf.hop :] for w in x[1:]]])
    out = clf.classify_stream(samples, 25.0)
    assert [w["label"] for w in out["windows"]] == [r["label"] for r in clf.classify(x)]
    assert out["windows"][1]["start_s"] == pytest.approx(clf.hop / 25.0)
    with pytest.raises(InputError, match="does not match the model's 25 Hz"):
        clf.classify_stream(samples, 50.0)


def test_simulation_on_a_short_real_recording(small_bundle, small_data_dir, tmp_path):
    streams = load_streams(small_data_dir / "dsads", ["2"], limit=2, max_seconds=30)
    assert len(streams) == 2
    for name in ("phone", "mcu"):
        profile = load_profile(name)
        result = simulate(small_bundle, streams, profile, progress=False)
        r = result.report
        hop = json.loads((small_bundle / "preprocessing.json").read_text())["hop"]
        # 30 s at 25 Hz, a 75-sample window every hop samples, per recording
        assert r["windows"] == 2 * (1 + (750 - 75) // hop)
        assert 0 < r["latency_ms_p50"] <= r["latency_ms_p95"] <= r["latency_ms_p99"]
        assert r["deadline_ms"] == pytest.approx(hop / 25 * 1000)
        assert r["model_bytes"] == (small_bundle / "model.int8.onnx").stat().st_size
        assert r["activation_bytes"] > 0 and 0 <= r["streaming_macro_f1"] <= 1
        assert r["scored_windows"] == r["windows"]
        png = plot_timeline(result, tmp_path / f"{name}.png")
        assert png.stat().st_size > 1000
    with pytest.raises(FileNotFoundError, match="available: mcu, phone"):
        load_profile("watch")


def test_realtime_replay_takes_stream_time(small_bundle, small_data_dir):
    """speed 10: 10 s of stream take >= 1 s of wall time; same windows as unthrottled."""
    streams = load_streams(small_data_dir / "dsads", ["2"], limit=1, max_seconds=10)
    fast = simulate(small_bundle, streams, load_profile("phone"), progress=False)
    from dataclasses import replace

    timed = simulate(small_bundle, streams, replace(load_profile("phone"), speed=10.0), progress=False)
    assert timed.report["replay_wall_seconds"] >= 0.95
    assert np.array_equal(fast.y_pred, timed.y_pred)


def _quantize_linear_count(path) -> int:
    import onnx

    return sum(n.op_type == "QuantizeLinear" for n in onnx.load(str(path)).graph.node)


def test_int8_guard_keeps_leading_layers_float_only_when_validation_asks(exported_small, small_split, tmp_path):
    """int8 activations are kept where the judging windows say they cost nothing, and the
    leading layers go float first when they do; every weight stays int8-stored."""
    from components.export.onnx_export import quantizable_nodes, quantize_int8, quantize_int8_guarded

    fp32 = tmp_path / "model.onnx"
    fp32.write_bytes(exported_small.fp32)
    nodes = quantizable_nodes(fp32)
    assert len(nodes) >= 3 and len(set(nodes)) == len(nodes)
    calib = small_split.train.x[::8]
    judge = small_split.train.select(np.arange(3, len(small_split.train), 8))  # mechanism only, not a score

    full = quantize_int8(fp32, calib, tmp_path / "full.onnx")
    one_float = quantize_int8(fp32, calib, tmp_path / "one.onnx", float_nodes=[nodes[0]])
    # one float node is one node: compaction had left every node unnamed, and excluding
    # one unnamed node used to exclude them all
    assert 0 < _quantize_linear_count(one_float.path) < _quantize_linear_count(full.path)
    with pytest.raises(ValueError, match="not quantisable nodes"):
        quantize_int8(fp32, calib, tmp_path / "x.onnx", float_nodes=["no_such_node"])

    args = (fp32, calib, judge.x, judge.y, judge.n_classes)
    res, rep = quantize_int8_guarded(*args, tmp_path / "loose.onnx", max_changed_share=1.0)
    assert rep["float_prefix"] == 0 and list(rep["tried"]) == [0] and res.float_nodes == []
    assert 0 <= rep["val_int8_changed_share"] == rep["tried"][0] <= 1
    res, rep = quantize_int8_guarded(*args, tmp_path / "strict.onnx", max_changed_share=-1.0)  # cannot be met
    assert rep["float_prefix"] == len(nodes) and {0, len(nodes)} <= set(rep["tried"])
    assert len(rep["tried"]) <= 2 + int(np.ceil(np.log2(len(nodes))))  # bisection, not a sweep
    assert res.float_nodes == nodes and _quantize_linear_count(res.path) == 0
    assert res.size_ratio > 1.5  # the weights are still stored int8


@pytest.mark.parametrize("kind", ["parent", "absolute", "symlink"])
def test_bundle_archive_with_unsafe_members_is_refused(small_bundle, tmp_path, kind):
    """Members outside the bundle folder or links are refused on every Python 3.11 release
    (``extractall(filter=...)`` only exists from 3.11.4)."""
    import io
    import tarfile

    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(small_bundle, arcname="test-v1")
        info = tarfile.TarInfo({"parent": "test-v1/../../evil", "absolute": "/tmp/evil"}.get(kind, "test-v1/link"))
        if kind == "symlink":
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(info)
        else:
            tar.addfile(info, io.BytesIO(b""))
    with pytest.raises(BundleError, match="is not a plain file or folder inside the bundle"):
        verify_bundle(archive)


def test_bundle_without_a_git_commit_goes_into_the_bentoml_store(exported_small, small_split, tmp_path):
    """A step image has no .git: the lineage's commit is None, which BentoML metadata refuses;
    the champion is still saved, with the unknown id left out (found by `make rehearsal`)."""
    lineage = {"dataset": "dsads", "data_version": "test.dir", "registered_version": "3", "git_commit": None}
    e = exported_small
    bundle = build_bundle(e.fp32, e.int8, e.preprocessing, small_split.test.x[:4], lineage, e.report, tmp_path, "t-v3")
    code = (
        "import json, sys; from pathlib import Path; import bentoml; "
        "from components.edge.store import champion_labels, save_to_bentoml; "
        "tag = save_to_bentoml(Path(sys.argv[1]), 'cmd-har-nogit', champion_labels(Path(sys.argv[1]))); "
        "m = bentoml.models.get(tag); "
        "print(json.dumps({'labels': m.info.labels, 'lineage': m.info.metadata['lineage']}))"
    )
    env = {**os.environ, "BENTOML_HOME": str(tmp_path / "bentoml"), "BENTOML_DO_NOT_TRACK": "true"}
    proc = subprocess.run([sys.executable, "-c", code, str(bundle)], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    saved = json.loads(proc.stdout.strip().splitlines()[-1])
    assert saved["labels"]["registered_version"] == "3" and "git_commit" not in saved["labels"]
    assert "git_commit" not in saved["lineage"] and saved["lineage"]["registered_version"] == "3"
