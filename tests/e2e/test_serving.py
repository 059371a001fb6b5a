"""The BentoML service as users run it: `bentoml serve` from the repo root, a real HTTP client.

The server serves a model trained on real DSADS (subject 1) from an isolated BentoML
home; answers are checked against the same int8 model run in-process, every bad-input
class gets a 4xx naming the problem, and a hypothesis fuzzer never gets a 5xx.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys

import httpx
import numpy as np
import psutil
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from components.data.manifest import Manifest
from har_runtime.runtime import Classifier, RangeError, encode_b64, faster_precision, time_classifiers
from tests.bentoml_server import start_server, stop_server
from tests.conftest import QUIET_ENV, REPO_ROOT

MODEL_NAME = "cmd-har-test"  # tests/edge_fixtures.py

pytest_plugins = ["tests.edge_fixtures"]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(bentoml_home, tmp_path_factory):
    """One `bentoml serve` from the repo root for the whole module."""
    env = {"BENTOML_HOME": str(bentoml_home), "HAR_BENTO_MODEL": f"{MODEL_NAME}:latest"}
    log = tmp_path_factory.mktemp("serve") / "bentoml-serve.log"
    client, proc = start_server([], REPO_ROOT, env, log)
    proc.log_path = log  # the server's own log (the precision choice is logged)
    yield client, proc
    stop_server(proc)


def test_classify_agrees_with_in_process_model(server, small_bundle, small_split):
    client, _ = server
    clf = Classifier.from_folder(small_bundle)
    x = small_split.test.x[:16]
    r = client.post("/classify", json={"windows": x.tolist()})
    assert r.status_code == 200, r.text
    got = [w["label"] for w in r.json()]
    assert got == [clf.label_names[i] for i in clf.logits(x).argmax(1)]
    assert r.json()[0]["model_version"] == f"{MODEL_NAME} v1"
    probs = np.array([[w["probabilities"][n] for n in clf.label_names] for w in r.json()])
    assert np.allclose(probs.sum(1), 1, atol=1e-4)
    named = {"channel_names": clf.channel_names[::-1], "values": x[:, ::-1].tolist()}
    assert [w["label"] for w in client.post("/classify", json={"windows": named}).json()] == got
    # the compact base64 form gives the same answer, with and without channel names
    assert client.post("/classify", json={"windows": encode_b64(x)}).json() == r.json()
    named_b64 = {**encode_b64(x[:, ::-1]), "channel_names": clf.channel_names[::-1]}
    assert [w["label"] for w in client.post("/classify", json={"windows": named_b64}).json()] == got


def test_stream_and_metadata(server, small_split):
    client, _ = server
    meta = client.post("/metadata").json()
    assert meta["lineage"]["mlflow_run_id"] == "mlflow-test" and len(meta["channels"]) == 45
    assert meta["window"]["length_samples"] == 75 and meta["labels"]
    x = small_split.test.x
    rec = small_split.test.recording == small_split.test.recording[0]
    samples = np.concatenate([x[rec][0].T, *[w.T[-meta["window"]["hop_samples"] :] for w in x[rec][1:6]]])
    r = client.post("/classify_stream", json={"samples": samples.tolist(), "sampling_rate_hz": 25, "smoothing": 3})
    assert r.status_code == 200, r.text
    body = r.json()
    compact = {"samples": encode_b64(samples), "sampling_rate_hz": 25, "smoothing": 3}
    assert client.post("/classify_stream", json=compact).json() == body
    assert len(body["windows"]) == 6 and body["windows"][0]["end_s"] == 3.0
    assert sum(s["windows"] for s in body["segments"]) == 6


def _spiked(x, channel: int, sample: int, value: float) -> np.ndarray:
    """A copy of ``x`` (windows) with one value replaced in window 0."""
    out = np.array(x, np.float32)
    out[0, channel, sample] = value
    return out


def test_out_of_range_values_get_a_422_naming_channel_value_and_range(server, small_split):
    client, _ = server
    meta = client.post("/metadata").json()
    names, ranges = meta["channels"], meta["channel_ranges"]
    x = small_split.test.x[:2]
    # a real window scaled by 1e30: finite float32, far outside every sensor's range
    for windows in (
        (x * 1e30).tolist(),
        encode_b64(x * 1e30),
        {"channel_names": names[::-1], "values": (x * 1e30)[:, ::-1].tolist()},
    ):
        r = client.post("/classify", json={"windows": windows})
        assert r.status_code == 422, r.text
        assert "outside its physical range" in r.text and "HAR_RANGE_CHECK=off" in r.text
    # one value just past one channel's limit: that channel, that value, that range
    k = 20
    hi = ranges[names[k]]["max"]
    spiked = _spiked(x, k, 7, np.float32(hi * 1.01))
    r = client.post("/classify", json={"windows": spiked.tolist()})
    assert r.status_code == 422, r.text
    text = r.json()[0]["error"]
    assert f"channel {names[k]!r} has value {float(np.float32(hi * 1.01)):.7g} (window 0, sample 7)" in text
    assert f"[{-hi:.7g}, {hi:.7g}] {ranges[names[k]]['unit']}" in text and "1 value(s) out of range" in text
    # the same through the stream API
    samples = spiked[0].T
    r = client.post("/classify_stream", json={"samples": samples.tolist(), "sampling_rate_hz": 25})
    assert r.status_code == 422, r.text
    assert f"channel {names[k]!r}" in r.text and "(sample 7)" in r.text
    # the largest float32 inside the limit is accepted (compared as float64, as data validation does)
    inside = np.float32(hi)
    if float(inside) > hi:
        inside = np.nextafter(inside, np.float32(0))
    assert client.post("/classify", json={"windows": _spiked(x, k, 7, inside).tolist()}).status_code == 200


def test_metadata_and_log_show_the_precision_choice_and_timings(server):
    client, proc = server
    meta = client.post("/metadata").json()
    precision = meta["precision"]
    assert precision["setting"] == "auto" and precision["served"] in ("int8", "fp32")
    assert set(precision["ms_per_window"]) == {"int8", "fp32"} and all(
        v > 0 for v in precision["ms_per_window"].values()
    )
    ms = precision["ms_per_window"]
    assert precision["served"] == faster_precision(ms)
    assert meta["model_file"] == {"int8": "model.int8.onnx", "fp32": "model.onnx"}[precision["served"]]
    assert precision["timed_windows"] == 4 and meta["range_check"] == "on"
    logged = [line for line in proc.log_path.read_text().splitlines() if "cmd-har: serving" in line]
    assert logged and f"cmd-har: serving {precision['served']} (HAR_MODEL_PRECISION=auto: ms per window" in logged[-1]


def test_precision_choice_is_the_faster_one():
    assert faster_precision({"int8": 2.4e-3, "fp32": 1.0e-3}) == "fp32"
    assert faster_precision({"int8": 0.5e-3, "fp32": 1.0e-3}) == "int8"
    assert faster_precision({"fp32": 1.0e-3, "int8": 1.0e-3}) == "int8"  # a tie: the edge model
    with pytest.raises(ValueError, match="no timings"):
        faster_precision({})


def test_timing_alternates_warms_up_and_takes_the_median():
    """A fake clock that only the fake models advance: no timed assertions."""
    clock, calls = [0.0], []

    class Fake:
        def __init__(self, name, costs):
            self.name, self.costs = name, iter(costs)

        def logits(self, x):
            calls.append(self.name)
            clock[0] += next(self.costs)

    # warm-up call first (cost 100, ignored), then 5 timed calls; one outlier each
    slow = Fake("int8", [100, 8, 8, 8, 80, 8])
    fast = Fake("fp32", [100, 4, 40, 4, 4, 4])
    seconds = time_classifiers({"int8": slow, "fp32": fast}, np.zeros((4, 1, 1)), repeats=5, timer=lambda: clock[0])
    assert seconds == {"int8": 2.0, "fp32": 1.0}  # median per call / 4 windows
    assert calls[:2] == ["int8", "fp32"]
    assert calls[2:] == ["int8", "fp32", "fp32", "int8", "int8", "fp32", "fp32", "int8", "int8", "fp32"]
    assert faster_precision(seconds) == "fp32"


def test_channel_ranges_come_from_the_manifest_and_are_checked(small_bundle, small_split, small_data_dir):
    """One source: preprocessing.json carries the manifest's physical ranges (what validation checks)."""
    clf = Classifier.from_folder(small_bundle)
    manifest = Manifest.load(small_data_dir / "dsads")
    assert clf.channel_ranges == {c.name: {"unit": c.unit, "min": -c.limit, "max": c.limit} for c in manifest.channels}
    assert clf.range_check and clf.metadata()["range_check"] == "on"
    x = small_split.test.x[:2]
    clf.prepare_windows(x)  # real data are in range
    gyro = next(i for i, c in enumerate(manifest.channels) if c.modality == "gyro")
    limit = manifest.channels[gyro].limit
    with pytest.raises(
        RangeError, match=rf"channel '{manifest.channels[gyro].name}' has value -100 \(window 0, sample 3\)"
    ):
        clf.prepare_windows(_spiked(x, gyro, 3, -100.0))
    assert limit < 100
    names = clf.channel_names[::-1]  # the caller's order: the message still names the right channel
    with pytest.raises(RangeError, match=rf"channel '{manifest.channels[gyro].name}'"):
        clf.prepare_windows(_spiked(x, gyro, 3, -100.0)[:, ::-1], names)
    with pytest.raises(RangeError, match=r"\(sample 3\)"):
        clf.classify_stream(_spiked(x, gyro, 3, -100.0)[0].T, 25.0)
    off = Classifier.from_folder(small_bundle, range_check=False)
    assert off.metadata()["range_check"] == "off"
    assert len(off.classify(x * 1e30)) == 2


def _import_service(bentoml_home, code: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    """Import deployment.service (as ``s``) in a fresh interpreter with ``env``, then run ``code`` with ``args``."""
    env = {
        **os.environ,
        **QUIET_ENV,
        "BENTOML_HOME": str(bentoml_home),
        "HAR_BENTO_MODEL": f"{MODEL_NAME}:latest",
        **env,
    }
    return subprocess.run(
        [sys.executable, "-c", "import sys\nimport deployment.service as s\n" + code, *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
    )


def test_explicit_precision_and_range_check_off_are_honoured(bentoml_home, small_split, tmp_path):
    np.save(tmp_path / "x.npy", small_split.test.x[:2])
    code = (
        "import numpy as np; x = (np.load(sys.argv[1]) * 1e30).tolist()\n"
        "print(s.CLASSIFIER.model_path.name, s.PRECISION_INFO, s.CLASSIFIER.metadata()['range_check'])\n"
        "print(s._windows(x).shape)\n"
    )
    for precision, file in (("fp32", "model.onnx"), ("int8", "model.int8.onnx")):
        proc = _import_service(
            bentoml_home, code, str(tmp_path / "x.npy"), HAR_MODEL_PRECISION=precision, HAR_RANGE_CHECK="off"
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        first, second = proc.stdout.strip().splitlines()[-2:]
        assert first == f"{file} {{'setting': '{precision}', 'served': '{precision}'}} off"
        assert second == "(2, 45, 75)"


def test_range_check_on_raises_unprocessable_in_process(bentoml_home):
    code = (
        "import numpy as np, bentoml\n"
        "x = np.zeros((1, 45, 75)); x[0, 3, 5] = 1e30\n"
        "try:\n    s._windows(x.tolist())\nexcept bentoml.exceptions.UnprocessableEntity as e:\n"
        "    print(e.error_code.value, e)\n"
    )
    proc = _import_service(bentoml_home, code)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("422 windows: channel ") and "value 1e+30 (window 0, sample 5)" in proc.stdout


@pytest.mark.parametrize("var, value", [("HAR_MODEL_PRECISION", "int4"), ("HAR_RANGE_CHECK", "maybe")])
def test_bad_precision_or_range_setting_is_a_clear_error(bentoml_home, var, value):
    proc = _import_service(bentoml_home, "", **{var: value})
    assert proc.returncode != 0 and f"{var} must be" in proc.stderr and repr(value) in proc.stderr


def _b64(x, **over):
    return {**encode_b64(np.asarray(x, np.float32)), **over}


ONE = np.zeros((1, 45, 75), np.float32)
BAD = [
    ("/classify", {"windows": np.zeros((2, 44, 75)).tolist()}, "44 channels"),
    ("/classify", {"windows": np.zeros((2, 45, 70)).tolist()}, "70 samples"),
    ("/classify", {"windows": np.zeros((45, 75)).tolist()}, "shape"),
    ("/classify", {"windows": []}, "empty"),
    ("/classify", {"windows": [[["1"] * 75] * 45]}, "numbers only"),
    ("/classify", {"windows": [[[True] * 75] * 45]}, "numbers only"),
    ("/classify", {"windows": [[[1e39] * 75] * 45]}, "non-finite"),
    ("/classify", {"windows": np.zeros((257, 45, 75)).tolist()}, "over the limit"),
    ("/classify", {"windows": {"channel_names": ["x"] * 45, "values": np.zeros((1, 45, 75)).tolist()}}, "duplicates"),
    ("/classify", {"windows": {"channel_names": [f"c{i}" for i in range(45)], "values": [[[0.0]]]}}, "missing"),
    ("/classify", {}, "Field required"),
    ("/classify", {"windows": _b64(ONE, shape=[1, 45, 74])}, "needs 13320 bytes"),
    ("/classify", {"windows": _b64(ONE, dtype="int16")}, "dtype must be one of"),
    ("/classify", {"windows": _b64(ONE, dtype=["float32"])}, "dtype must be one of"),  # found by the fuzzer
    ("/classify", {"windows": _b64(ONE, dtype="float64")}, "needs 27000 bytes"),
    ("/classify", {"windows": _b64(ONE, shape=[45, 75])}, "list of 3 non-negative integers"),
    ("/classify", {"windows": _b64(ONE, shape=[1, 45, -75])}, "list of 3 non-negative integers"),
    ("/classify", {"windows": _b64(ONE, b64="not base64!")}, "not valid base64"),
    ("/classify", {"windows": _b64(ONE, b64=12)}, "base64 string"),
    ("/classify", {"windows": {"b64": encode_b64(ONE)["b64"]}}, "missing ['dtype', 'shape']"),
    ("/classify", {"windows": _b64(ONE, values=[])}, "unknown ['values']"),
    ("/classify", {"windows": {"shape": [1, 45, 75]}}, "'values' (nested lists) or 'b64'"),
    ("/classify", {"windows": _b64(np.zeros((1, 44, 75)))}, "44 channels"),
    ("/classify", {"windows": _b64(np.zeros((0, 45, 75)))}, "empty"),
    ("/classify", {"windows": _b64(np.full((1, 45, 75), np.inf))}, "non-finite"),
    ("/classify", {"windows": _b64(np.zeros((257, 45, 75)))}, "over the limit"),
    ("/classify", {"windows": _b64(ONE, channel_names=["x"] * 45)}, "duplicates"),
    ("/classify_stream", {"samples": _b64(np.zeros((100, 3))), "sampling_rate_hz": 25}, "45 channels"),
    ("/classify_stream", {"samples": _b64(np.full((100, 45), np.nan)), "sampling_rate_hz": 25}, "non-finite"),
    ("/classify_stream", {"samples": _b64(ONE), "sampling_rate_hz": 25}, "list of 2 non-negative integers"),
    ("/classify_stream", {"samples": np.zeros((100, 45)).tolist(), "sampling_rate_hz": 50}, "25 Hz"),
    ("/classify_stream", {"samples": np.zeros((10, 45)).tolist(), "sampling_rate_hz": 25}, "shorter than one window"),
    ("/classify_stream", {"samples": np.zeros((100, 3)).tolist(), "sampling_rate_hz": 25}, "45 channels"),
    (
        "/classify_stream",
        {"samples": np.zeros((100, 45)).tolist(), "sampling_rate_hz": 25, "smoothing": 0},
        "smoothing",
    ),
]


@pytest.mark.parametrize("path, body, needle", BAD, ids=[f"{b[0][1:]}-{b[2]}" for b in BAD])
def test_bad_input_is_a_4xx_naming_the_problem(server, path, body, needle):
    client, _ = server
    r = client.post(path, json=body)
    assert 400 <= r.status_code < 500, r.text
    assert needle in r.text


def test_malformed_and_oversized_bodies(server):
    client, _ = server
    r = client.post("/classify", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400
    r = client.post("/classify", content=b"0" * (33 * 2**20), headers={"content-type": "application/json"})
    assert r.status_code == 413 and "over the limit" in r.text


json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=5),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=30,
)


# the base64 form: bytes that may or may not match a (possibly wrong) shape and dtype, any float bit pattern
dims = st.integers(-1, 80) | st.sampled_from([45, 75])
b64_values = st.fixed_dictionaries(
    {
        "b64": st.binary(max_size=4 * 45 * 80).map(lambda b: base64.b64encode(b).decode()) | st.text(max_size=12),
        "shape": st.lists(dims, max_size=4) | json_values,
        "dtype": st.sampled_from(["float32", "float64", "int8", "<f4"]) | json_values,
    },
    optional={"channel_names": st.lists(st.text(max_size=6), max_size=3), "values": json_values},
)


@st.composite
def matching_b64(draw):
    """Byte length consistent with the shape: random float32 bit patterns (NaN, Inf, subnormals, huge)."""
    shape = [draw(st.integers(0, 3)), draw(st.sampled_from([44, 45])), draw(st.sampled_from([70, 75]))]
    n = 4 * shape[0] * shape[1] * shape[2]
    raw = draw(st.binary(min_size=n, max_size=n))
    return {"b64": base64.b64encode(raw).decode(), "shape": shape, "dtype": "float32"}


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(
    path=st.sampled_from(["/classify", "/classify_stream", "/metadata"]),
    body=st.dictionaries(
        st.sampled_from(["windows", "samples", "sampling_rate_hz", "channel_names", "smoothing", "t0", "x"]),
        json_values
        | st.lists(st.lists(st.floats(width=32), min_size=1, max_size=50), max_size=80)
        | b64_values
        | matching_b64(),
        max_size=4,
    ),
)
def test_fuzzed_requests_never_get_a_5xx(server, path, body):
    client, _ = server
    # json.dumps writes NaN/Infinity tokens (not strict JSON): the server must reject those with a 4xx too
    r = client.post(path, content=json.dumps(body).encode(), headers={"content-type": "application/json"})
    assert r.status_code < 500, (path, r.status_code, r.text[:500])


def test_clean_shutdown(server):
    """Ctrl-C stops the server and its workers (runs last in this module: it ends the shared server)."""
    client, proc = server
    assert client.get("/livez").status_code == 200
    assert psutil.Process(proc.pid).children(recursive=True), "no worker processes found"
    leftover = stop_server(proc, signal.SIGINT, timeout=60)
    assert proc.returncode is not None and not leftover, f"workers still alive after shutdown: {leftover}"
    with pytest.raises(httpx.HTTPError):
        client.get("/livez")


def test_no_champion_is_a_clear_error(tmp_path):
    env = {**os.environ, **QUIET_ENV, "BENTOML_HOME": str(tmp_path), "HAR_BENTO_MODEL": "cmd-har-nothing:latest"}
    proc = subprocess.run(
        [sys.executable, "-c", "import deployment.service"], cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )
    assert proc.returncode != 0 and "nothing has been promoted to champion yet" in proc.stderr


def test_service_does_not_import_torch(bentoml_home):
    env = {**os.environ, **QUIET_ENV, "BENTOML_HOME": str(bentoml_home), "HAR_BENTO_MODEL": f"{MODEL_NAME}:latest"}
    code = "import sys, deployment.service; bad = {'torch', 'zenml', 'mlflow', 'dvc'} & set(sys.modules); print(bad)"
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().endswith("set()"), proc.stdout
