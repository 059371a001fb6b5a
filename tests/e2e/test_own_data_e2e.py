"""End to end as a team would do it (docs/own-data.md): a folder of CSV files from their logger
-> `har data new` -> `har data ingest` -> `har config new` -> `har train` -> `bentoml serve`
without any variable -> classify a real window -> `har lineage` without -m.

The team's files are real USC-HAD recordings (subjects 1-4, five activities, 100 Hz, 6
channels), written the way a logger would: columns `acc_x` ... `gyro_z` without a body
position, a `# subject:` header line, an empty label cell for unlabelled samples. Isolated
ZenML/MLflow/BentoML/DVC state. The training budget is small and the gates are lowered so a
CPU-minute model can become champion; `configs/train.yaml` keeps the real gates.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import yaml

from components.data.importers import import_dataset
from components.data.new_dataset import export_csv
from tests.bentoml_server import start_server, stop_server
from tests.conftest import REPO_ROOT, isolated_env, run_har

pytestmark = pytest.mark.slow

SUBJECTS = ["1", "2", "3", "4"]
LABELS = ["walking_forward", "walking_upstairs", "sitting", "standing", "jumping_up"]
UNLABELLED = 150  # samples with an empty label cell at the start of every file


@pytest.fixture(scope="module")
def team(tmp_path_factory):
    root = tmp_path_factory.mktemp("own-data-e2e")
    import_dataset("usc-had", root / "public", subjects=SUBJECTS, labels=LABELS)
    csv = root / "logger"
    for f in export_csv(root / "public" / "usc-had", csv):
        lines = f.read_text().splitlines()
        head = next(i for i, line in enumerate(lines) if line.startswith("t,"))
        lines[head] = lines[head].replace("right_hip_", "")  # the logger names no position
        for i in range(head + 1, head + 1 + UNLABELLED):
            lines[i] = lines[i].rsplit(",", 1)[0] + ","
        f.write_text("\n".join(lines) + "\n")
    env = isolated_env(root)
    env["HAR_ARTIFACTS_DIR"] = str(root / "artifacts")
    return {"root": root, "csv": csv, "env": env}


def _har(team, *args, check=True):
    return run_har(team["env"], *args, check=check, timeout=1200)


def test_csv_files_to_a_served_champion(team):
    root, csv = team["root"], team["csv"]
    # -- a dataset from the CSV headers, then the recordings -------------------------------
    _, out = _har(team, "data", "new", "team", "--from-csv", str(csv), "--units", "acc=m/s^2,gyro=rad/s",
                  "--position", "hip")  # fmt: skip
    assert "6 channels at 100 Hz, 5 labels" in out and "har data ingest" in out
    _, out = _har(team, "data", "ingest", str(csv), "--dataset", "team")
    n_files = len(list(csv.glob("*.csv")))
    assert f"{n_files} added, 0 duplicate, 0 quarantined, 0 rejected" in out
    assert "subjects 0 -> 4" in out
    # -- a config that follows the dataset ------------------------------------------------
    config = root / "team.yaml"
    _, out = _har(team, "config", "new", "team", "-o", str(config))
    assert "train 1, 2 · validation 3 · test 4" in out
    cfg = yaml.safe_load(config.read_text())
    assert cfg["parameters"]["registered_model"] == "cmd-har-team" and cfg["model"]["name"] == "cmd-har-team"
    cfg.pop("steps")  # no MLflow tracker in the isolated stack: steps log on their own
    p = cfg["parameters"]
    p["validation"]["jobs"] = 1
    p["trainer"].update(epochs=3, time_budget_min=2.0, progress=False)
    p["export"]["calibration_windows"] = 256
    p["promotion"].update(min_macro_f1=0.0, max_int8_f1_drop=1.0, min_int8_size_ratio=1.0, min_class_recall=0.0)
    p["edge"]["max_seconds"] = 10
    config.write_text(yaml.safe_dump(cfg))
    # -- train: champion, per-class precision and recall in the summary --------------------
    _, out = _har(team, "train", "-c", str(config))
    assert "champion" in out and "cmd-har-team v1" in out, out[-3000:]
    for label in LABELS:
        assert label in out
    # -- serve without any variable: the one champion in the store -------------------------
    env = {k: v for k, v in team["env"].items() if k not in ("HAR_MODEL_NAME", "HAR_BENTO_MODEL")}
    client, proc = start_server([], REPO_ROOT, env, root / "serve.log")
    try:
        meta = client.post("/metadata", json={}).json()
        assert "cmd-har-team" in str(meta), meta
        channels = meta["channels"]
        rows = [line for line in (csv / "s04_a08_t1.csv").read_text().splitlines() if not line.startswith("#")]
        header = rows[0].split(",")
        values = np.array([[float(v) for v in r.split(",")[:-1]] for r in rows[1:]], np.float32)
        start = UNLABELLED + 100
        window = np.stack([values[start : start + meta["window"]["length_samples"], header.index(c)] for c in channels])
        r = client.post("/classify", json={"windows": [window.tolist()]})
        assert r.status_code == 200, r.text
        assert r.json()[0]["label"] in LABELS
    finally:
        stop_server(proc)
    # -- lineage without -m: the one champion, with the ingested files' checksums ----------
    _, out = _har(team, "lineage")
    assert "cmd-har-team" in out and re.search(rf"tree digest [0-9a-f]{{64}} over {n_files} ingested", out), out
