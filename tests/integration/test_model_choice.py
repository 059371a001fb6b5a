"""Which model serving and the tools use when no model is named.

One registered model with champions (in the BentoML store for `bentoml serve` / `bentoml build`
/ `har edge simulate`; with a ``champion`` alias in MLflow for `har lineage`) -> that one.
Several -> an error listing them and naming the variable or flag that picks one.
An explicit ``HAR_BENTO_MODEL`` / ``HAR_MODEL_NAME`` / ``-m`` always wins.

BentoML reads ``BENTOML_HOME`` once per process, so everything touching a store runs in a
subprocess against a store in ``tmp_path``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import QUIET_ENV, REPO_ROOT, run_har

DSADS, USC = "cmd-har-dsads", "cmd-har-usc-had"

pytest_plugins = ["tests.edge_fixtures"]  # small_bundle: a real model, for the service tests

# saves placeholder models with the labels promotion gives them (steps/package_model.py);
# argv: NAME,REGISTERED_VERSION,STAGE ... (empty STAGE: no stage label) -> prints one tag per line
SAVE_FAKES = """
import sys
from pathlib import Path
import bentoml
for spec in sys.argv[1:]:
    name, version, stage = spec.split(",")
    labels = {"registered_version": version, **({"stage": stage} if stage else {})}
    with bentoml.models.create(name, labels=labels) as m:
        (Path(m.path) / "placeholder.txt").write_text(spec)
    print(m.tag)
"""

CHOOSE = """
from har_runtime.champions import ChampionChoiceError, only_stored_champion
try:
    print("chose", only_stored_champion("set X={name} or Y={tag}", "train one").tag)
except ChampionChoiceError as e:
    print("error", e)
"""


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("HAR_MODEL_NAME", "HAR_BENTO_MODEL")}
    db = f"sqlite:///{tmp_path / 'mlflow.db'}"
    store = {"BENTOML_HOME": str(tmp_path / "bentoml"), "MLFLOW_TRACKING_URI": db, "MLFLOW_REGISTRY_URI": db}
    return {**env, **QUIET_ENV, **store, **extra}


def _python(env: dict[str, str], code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code, *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300
    )


def _save(env: dict[str, str], *specs: str) -> list[str]:
    proc = _python(env, SAVE_FAKES, *specs)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.split()


def _folded(text: str) -> str:
    return " ".join(text.split())


# --- the BentoML store (har_runtime.champions) ---------------------------------------------------


def test_store_with_one_registered_model_gives_its_newest_champion(tmp_path):
    env = _env(tmp_path)
    tags = _save(env, f"{USC},1,champion", f"{USC},2,champion", "someone-elses-model,7,")
    proc = _python(env, CHOOSE)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == ["chose", tags[1]]  # the newest of the two, the unlabelled model ignored


def test_store_with_several_registered_models_names_them_all(tmp_path):
    env = _env(tmp_path)
    dsads, usc = _save(env, f"{DSADS},3,champion", f"{USC},1,champion")
    out = _folded(_python(env, CHOOSE).stdout)
    assert out.startswith("error 2 registered models have a champion in the BentoML store")
    assert f"{DSADS} (v3, {dsads})" in out and f"{USC} (v1, {usc})" in out
    assert f"Choose one: set X={DSADS} or Y={dsads}" in out


def test_empty_store_says_nothing_was_promoted(tmp_path):
    out = _folded(_python(_env(tmp_path), CHOOSE).stdout)
    assert out.startswith("error no champion in the BentoML store") and "nothing has been promoted" in out
    assert out.endswith("train one")


# --- `har edge simulate` without -m -----------------------------------------------------------------


def _har(env: dict[str, str], *args: str) -> tuple[int, str]:
    proc, _ = run_har(env, *args, check=False, timeout=300)
    return proc.returncode, _folded(proc.stdout + proc.stderr)


def test_edge_simulate_stops_when_several_models_have_champions(tmp_path):
    env = _env(tmp_path, COLUMNS="250")
    _save(env, f"{DSADS},3,champion", f"{USC},1,champion")
    code, out = _har(env, "edge", "simulate")
    assert code == 1, out
    assert "2 registered models have a champion in the BentoML store" in out
    assert DSADS in out and USC in out and f"pass -m NAME, e.g. `-m {DSADS}`" in out


def test_edge_simulate_uses_the_only_model_in_the_store_and_m_wins(tmp_path):
    """One model in the store -> its champion is looked up (here MLflow has none, so the error names it)."""
    env = _env(tmp_path, COLUMNS="250")
    _save(env, f"{USC},1,champion")
    code, out = _har(env, "edge", "simulate")
    assert code == 1 and f"{USC} has no champion" in out, out
    code, out = _har(env, "edge", "simulate", "-m", DSADS)
    assert code == 1 and f"{DSADS} has no champion" in out, out


# --- `har lineage` without -m (MLflow champion aliases) ---------------------------------------------


@pytest.fixture
def registry(tmp_path, monkeypatch):
    """An empty MLflow store in tmp_path; returns ``add(name, versions, champion)``."""
    from components import tracking

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", uri)
    client = tracking.client()

    def add(name: str, versions: int, champion: int | None) -> None:
        client.create_registered_model(name)
        for _ in range(versions):
            client.create_model_version(name, source=(tmp_path / name).as_uri())
        if champion is not None:
            client.set_registered_model_alias(name, tracking.CHAMPION, str(champion))

    return add


def test_lineage_default_is_the_only_model_with_a_champion(registry):
    from components.lineage import default_registered_model

    registry(DSADS, 2, None)
    registry(USC, 2, 2)
    assert default_registered_model() == USC
    assert default_registered_model("champion") == USC
    assert default_registered_model(f"{DSADS}:abc123") == DSADS  # a BentoML tag names its model


def test_lineage_with_several_champions_lists_them_and_names_the_flag(registry):
    from cli.main import app
    from components.lineage import LineageError, default_registered_model

    registry(DSADS, 3, 3)
    registry(USC, 1, 1)
    registry("cmd-har-basicmotions", 1, None)
    with pytest.raises(LineageError) as e:
        default_registered_model()
    msg = str(e.value)
    assert f"2 registered models have a champion: {DSADS} (v3), {USC} (v1)" in msg
    assert "-m NAME" in msg and "basicmotions" not in msg
    result = CliRunner().invoke(app, ["lineage"], env={"COLUMNS": "250"})
    assert result.exit_code == 1 and f"{DSADS} (v3), {USC} (v1)" in _folded(result.output), result.output


def test_lineage_without_any_champion_is_a_clear_error(registry):
    from components.lineage import LineageError, default_registered_model

    registry(DSADS, 1, None)
    with pytest.raises(LineageError, match=f"has a champion alias.*registered models: {DSADS}"):
        default_registered_model()


# --- `bentoml serve` / the service module, with a real model -----------------------------------------


# importing the service module is what `bentoml serve` and `bentoml build` do first
SHOW = "import deployment.service as s; print('serving', s.STORED.tag)"


@pytest.fixture(scope="module")
def service_homes(small_bundle, tmp_path_factory) -> dict[str, tuple[dict[str, str], list[str]]]:
    """Stores holding the real test bundle: 'one' as USC; 'two' as DSADS and USC (env, tags)."""
    code = (
        "import sys; from pathlib import Path; from components.edge.store import save_to_bentoml\n"
        "for name in sys.argv[2:]:\n"
        "    print(save_to_bentoml(Path(sys.argv[1]), name, {'registered_version': '1', 'stage': 'champion'}))"
    )
    homes = {}
    for key, names in (("one", [USC]), ("two", [DSADS, USC])):
        env = _env(tmp_path_factory.mktemp(key))
        proc = _python(env, code, str(small_bundle), *names)
        assert proc.returncode == 0, proc.stderr[-3000:]
        homes[key] = (env, proc.stdout.split())
    return homes


@pytest.mark.slow
def test_service_serves_the_one_champion_without_settings(service_homes):
    env, (usc,) = service_homes["one"]
    proc = _python(env, SHOW)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split()[-2:] == ["serving", usc]


@pytest.mark.slow
def test_service_with_several_champions_stops_with_the_choices(service_homes):
    env, (dsads, usc) = service_homes["two"]
    proc = _python(env, SHOW)
    err = _folded(proc.stderr)
    assert proc.returncode != 0 and "2 registered models have a champion in the BentoML store" in err, err
    assert f"{DSADS} (v1, {dsads}); {USC} (v1, {usc})" in err
    assert f"HAR_MODEL_NAME={DSADS}" in err and f"HAR_BENTO_MODEL={dsads}" in err


@pytest.mark.slow
def test_service_explicit_settings_win(service_homes):
    env, (dsads, usc) = service_homes["two"]
    proc = _python({**env, "HAR_MODEL_NAME": USC}, SHOW)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split()[-2:] == ["serving", usc]
    proc = _python({**env, "HAR_MODEL_NAME": USC, "HAR_BENTO_MODEL": dsads}, SHOW)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split()[-2:] == ["serving", dsads]
