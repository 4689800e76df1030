"""The training flow end to end on a small generated book: planned dates, rolling-origin
folds recorded, the production refit registered with its fitted-rows reference, the gate
comparing validation models, and intercept recalibration as a new version."""

from __future__ import annotations

import datetime as dt
import json
import pickle

import numpy as np
import pandas as pd
import pytest

from flows.context import RunContext
from flows.settings import Settings
from models.registry import (
    CHALLENGER,
    CHAMPION,
    REFERENCE_ARTIFACT,
    VALIDATION_MODEL_ARTIFACT,
)

END = dt.date(2026, 11, 30)
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from data.generator import GeneratorConfig, generate_portfolio, write_portfolio
    from data.ingest import ingest_directory
    from data.lake import Lake
    from flows.train import train_flow

    root = tmp_path_factory.mktemp("train")
    config = GeneratorConfig(n_buyers=700, months=48, end_date=END, seed=5,
                             annual_default_rate=0.05)  # fmt: skip
    write_portfolio(generate_portfolio(config), root / "src", fmt="parquet")
    ingest_directory(root / "src", Lake(root / "lake"), END)
    settings = Settings(
        lake_dir=root / "lake",
        mlflow_uri=f"sqlite:///{root}/mlflow.db",
        mlflow_artifacts=root / "artifacts",
        decision_db_url=f"sqlite:///{root}/decisions.db",
    )
    ctx = RunContext.build(settings, END)
    result = train_flow(ctx, folds=2)
    return {"ctx": ctx, "result": result, "root": root}


def test_folds_are_recorded_and_the_production_refit_is_registered(trained) -> None:
    ctx, result = trained["ctx"], trained["result"]
    registry = ctx.registry
    lightgbm = next(m for m in result.models if m.kind == "lightgbm")
    assert {"fold1_auc", "fold2_auc", "mean_auc", "auc"} <= set(
        registry.client.get_run(lightgbm.run_id).data.metrics
    )
    assert lightgbm.metrics["mean_auc"] == pytest.approx(
        np.mean([registry.client.get_run(lightgbm.run_id).data.metrics[f"fold{k}_auc"]
                 for k in (1, 2)])
    )  # fmt: skip
    challenger = registry.version_by_alias(CHALLENGER)
    assert challenger.version == lightgbm.registered_version
    production, _ = registry.load_pd_model(challenger.version)
    validation, which = registry.validation_model(challenger)
    assert which == "validation fold model"
    # the registered model is the refit on every matured row after the warm-up
    first, last = (pd.Timestamp(d) for d in production.info["train_as_of"])
    assert (first, last) == (pd.Timestamp("2024-03-31"), pd.Timestamp("2025-11-30"))
    assert production.info["calibrate_on"] == "cross_fit"
    assert production.info["n_train"] > validation.info["n_train"]
    assert pd.Timestamp(validation.info["train_as_of"][1]) < pd.Timestamp("2025-09-30")
    # its drift reference describes those rows, month by month
    reference = json.loads(registry.run_artifact(challenger.run_id, REFERENCE_ARTIFACT).read_text())
    assert reference["rows"] == production.info["n_train"]
    assert sum(part["rows"] for part in reference["by_month"].values()) == reference["rows"]
    assert challenger.tags["fit_as_of"] == "2024-03-31..2025-11-30"


def test_the_gate_and_intercept_recalibration(trained) -> None:
    from flows.train import promote_flow, recalibrate_flow

    registry = trained["ctx"].registry
    decision, move = promote_flow(registry)
    assert decision.approved and move is not None
    champion = registry.version_by_alias(CHAMPION)
    before, _ = registry.load_pd_model(champion.version)

    result = recalibrate_flow(trained["ctx"])
    assert result.after["observed_to_predicted"] == pytest.approx(1.0, abs=0.01)
    assert result.before["auc"] == pytest.approx(result.after["auc"])
    recalibrated = registry.version_by_alias(CHALLENGER)
    assert str(recalibrated.version) == result.registered_version != str(champion.version)
    assert recalibrated.tags["recalibrated_from"] == str(champion.version)
    after, _ = registry.load_pd_model(recalibrated.version)
    assert after.info["intercept_shifts"][-1]["delta"] == pytest.approx(result.delta)
    rows = pd.read_parquet(
        registry.run_artifact(recalibrated.run_id, "validation/test_rows.parquet")
    )
    old, new = before.predict_pd(rows), after.predict_pd(rows)
    assert np.array_equal(np.argsort(old, kind="stable"), np.argsort(new, kind="stable"))
    assert np.sign(new.mean() - old.mean()) == np.sign(result.delta)
    # the validation model moved alike, so the gate sees the same ranking
    shifted = pickle.loads(registry.run_artifact(recalibrated.run_id,
                                                 VALIDATION_MODEL_ARTIFACT).read_bytes())  # fmt: skip
    assert shifted.info["intercept_shifts"][-1]["delta"] == pytest.approx(result.delta)
    decision, move = promote_flow(registry)
    import re

    challenger_auc, champion_auc = re.search(
        r"AUC (\S+) vs champion (\S+)", decision.summary()
    ).groups()
    assert challenger_auc == champion_auc  # the ranking did not change
    if result.after["light"] != "red":
        assert decision.approved and move.version == str(recalibrated.version)
