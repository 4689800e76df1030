"""MLflow round trip against a temporary local store: log, register, alias, load, score;
every run in its experiment under the store's artifact root; a moved store still loads."""

from __future__ import annotations

import json
import os
import pickle
import shutil

import mlflow
import numpy as np
import pandas as pd
import pytest

from models.registry import (
    CHALLENGER,
    CHAMPION,
    MODEL_NAME,
    PREVIOUS_CHAMPION,
    ModelRegistry,
    NoChampionError,
    load_pickled_model,
)
from tests.book_fixtures import SlopeModel

FRAME = pd.DataFrame({"dbt_12m": [0.0, 10.0, 40.0]})


def _train(registry: ModelRegistry, slope: float) -> str:
    with registry.run("test", f"slope {slope}") as run:
        mlflow.log_text(json.dumps({"slope": slope}), "reference/reference.json")
        uri = registry.log_pd_model(SlopeModel(slope), ["dbt_12m"], set())
        return registry.register(uri, run.info.run_id, {"kind": "stand-in"}).version


def test_register_alias_load_score_promote_and_roll_back(tmp_path):
    registry = ModelRegistry(f"sqlite:///{tmp_path}/mlflow.db", tmp_path / "artifacts")
    with pytest.raises(NoChampionError, match="solvency train"):
        registry.champion()

    v1 = _train(registry, 0.1)
    assert registry.version_by_alias(CHALLENGER).version == v1
    registry.move_alias(CHAMPION, v1, "first model")
    model, mv = registry.load_pd_model(CHAMPION)
    assert mv.version == v1
    np.testing.assert_allclose(model.predict_pd(FRAME), SlopeModel(0.1).predict_pd(FRAME))
    # the generic pyfunc returns calibrated PDs, not labels
    pyfunc = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}@{CHAMPION}")
    out = pyfunc.predict(FRAME)
    assert list(out.columns) == ["pd"] and ((out["pd"] > 0) & (out["pd"] < 1)).all()

    v2 = _train(registry, 0.2)
    assert registry.version_by_alias(CHALLENGER).version == v2
    assert registry.version_by_alias(CHAMPION).version == v1
    move = registry.move_alias(CHAMPION, v2, "forced: test", forced=True)
    assert (move.previous, move.version) == (str(v1), str(v2))
    assert registry.version_by_alias(PREVIOUS_CHAMPION).version == v1
    tags = registry.client.get_model_version(MODEL_NAME, v2).tags
    assert tags["champion_forced"] == "true" and tags["champion_reason"] == "forced: test"

    registry.move_alias(CHAMPION, registry.version_by_alias(PREVIOUS_CHAMPION).version, "rollback")
    assert registry.champion().version == v1


def test_runs_and_models_stay_under_the_artifact_root_and_survive_a_moved_store(
    tmp_path, monkeypatch
):
    """Every run (nested too) lands in its experiment with files under the configured root,
    nothing in ./mlruns; after moving the whole store folder, the champion, its files and
    a run's artifacts load from the new place."""
    monkeypatch.chdir(tmp_path)  # a stray ./mlruns would appear here
    old = tmp_path / "old"
    registry = ModelRegistry(f"sqlite:///{old}/mlflow.db", old / "artifacts")
    with registry.run("test", "parent") as parent:
        parent_run = registry.client.get_run(parent.info.run_id)
        with registry.run("test", "child", parent=parent_run) as child:
            uri = registry.log_pd_model(SlopeModel(0.3), ["dbt_12m"], set())
            mlflow.log_text("{}", "reference/reference.json")
            version = registry.register(uri, child.info.run_id, {"kind": "stand-in"}).version
    registry.move_alias(CHAMPION, version, "first")
    child_run = registry.client.get_run(child.info.run_id)
    assert child_run.info.experiment_id == parent_run.info.experiment_id
    assert child_run.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert str(old / "artifacts" / "test") in child_run.info.artifact_uri
    assert not (tmp_path / "mlruns").exists()
    assert registry.client.search_runs(["0"]) == []  # nothing in the Default experiment

    new = tmp_path / "moved"
    shutil.move(old, new)
    moved = ModelRegistry(f"sqlite:///{new}/mlflow.db", new / "artifacts")
    model, mv = moved.load_pd_model(CHAMPION)
    assert mv.version == version
    np.testing.assert_allclose(model.predict_pd(FRAME), SlopeModel(0.3).predict_pd(FRAME))
    reference = moved.run_artifact(child.info.run_id, "reference/reference.json")
    assert reference.is_relative_to(new) and reference.read_text() == "{}"
    assert not os.path.exists(old)


def test_models_pickled_before_the_package_split_still_load():
    """A champion pickled when the model classes lived in `models.gbm` etc. still loads."""
    from models.pd.calibration import Calibrator

    payload = pickle.dumps(Calibrator(method="isotonic"), protocol=0)  # names as plain text
    old = payload.replace(b"models.pd.calibration", b"models.calibration")
    assert b"models.calibration\n" in old
    loaded = load_pickled_model(old)
    assert isinstance(loaded, Calibrator) and loaded.method == "isotonic"
