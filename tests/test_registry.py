"""MLflow round trip against a temporary local store: log, register, alias, load, score."""

from __future__ import annotations

from typing import ClassVar

import mlflow
import numpy as np
import pandas as pd
import pytest

from models import registry


class ThresholdModel:
    """A stand-in PD model: logistic in one feature, with a configurable slope."""

    kind = "stand-in"
    feature_names: ClassVar[list[str]] = ["dbt_12m"]

    def __init__(self, slope: float) -> None:
        self.slope = slope

    def predict_pd(self, frame: pd.DataFrame) -> np.ndarray:
        return 1 / (1 + np.exp(-(self.slope * frame["dbt_12m"].to_numpy() - 4)))


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow")
    registry.configure(f"sqlite:///{root}/mlflow.db")
    experiment = registry.ensure_experiment("test", root / "artifacts")
    yield experiment
    mlflow.set_tracking_uri(None)


def _train(experiment: str, slope: float) -> str:
    with mlflow.start_run(experiment_id=experiment) as run:
        uri = registry.log_pd_model(ThresholdModel(slope), ["dbt_12m"], set())
        return registry.register(uri, run.info.run_id, {"kind": "stand-in"}).version


def test_register_alias_load_score_promote_and_roll_back(store):
    frame = pd.DataFrame({"dbt_12m": [0.0, 10.0, 40.0]})
    with pytest.raises(registry.NoChampionError, match="solvency train"):
        registry.champion_version()

    v1 = _train(store, 0.1)
    assert registry.version_by_alias(registry.CHALLENGER).version == v1
    registry.move_alias(registry.CHAMPION, v1, "first model")
    model, mv = registry.load_pd_model(registry.CHAMPION)
    assert mv.version == v1
    np.testing.assert_allclose(model.predict_pd(frame), ThresholdModel(0.1).predict_pd(frame))
    # the generic pyfunc returns calibrated PDs, not labels
    pyfunc = mlflow.pyfunc.load_model(f"models:/{registry.MODEL_NAME}@{registry.CHAMPION}")
    out = pyfunc.predict(frame)
    assert list(out.columns) == ["pd"] and ((out["pd"] > 0) & (out["pd"] < 1)).all()

    v2 = _train(store, 0.2)
    assert registry.version_by_alias(registry.CHALLENGER).version == v2
    assert registry.version_by_alias(registry.CHAMPION).version == v1
    move = registry.move_alias(registry.CHAMPION, v2, "forced: test", forced=True)
    assert (move.previous, move.version) == (str(v1), str(v2))
    assert registry.version_by_alias(registry.PREVIOUS_CHAMPION).version == v1
    tags = mlflow.MlflowClient().get_model_version(registry.MODEL_NAME, v2).tags
    assert tags["champion_forced"] == "true" and tags["champion_reason"] == "forced: test"

    registry.move_alias(
        registry.CHAMPION, registry.version_by_alias(registry.PREVIOUS_CHAMPION).version, "rollback"
    )
    assert registry.champion_version().version == v1
