"""PD models end to end on a small generated book: fit, discrimination, monotonicity, pickling.

One module-scoped training set (1,500 buyers x 48 months through the real generator,
ingestion, features and time split) is shared by the snapshot tests here to keep the suite
fast; the cross-fitted calibration tests use a small undated numpy set with a known truth.
"""

from __future__ import annotations

import datetime as dt
import pickle

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from features.catalogue import CATALOGUE, FEATURE_NAMES
from models.master_scale import MASTER_SCALE
from models.pd import gbm
from models.pd.calibration import sigmoid
from models.pd.model import PDModel, fit_model, stopping_slices
from models.pd.reasons import reason_codes
from models.pd.validation import expected_calibration_error, validate

END = dt.date(2026, 11, 30)
UP = [n for n in FEATURE_NAMES if CATALOGUE[n].risk_direction == "up"]
DOWN = [n for n in FEATURE_NAMES if CATALOGUE[n].risk_direction == "down"]


@pytest.fixture(scope="module")
def training_set(tmp_path_factory) -> pd.DataFrame:
    from data.generator import GeneratorConfig, generate_portfolio, write_portfolio
    from data.ingest import ingest_directory
    from data.lake import Lake
    from features.training import (
        assign_split,
        build_training_set,
        latest_known_date,
        monthly_as_of_dates,
        plan_time_split,
    )

    root = tmp_path_factory.mktemp("book")
    config = GeneratorConfig(n_buyers=1500, months=48, seed=11, annual_default_rate=0.05)
    write_portfolio(generate_portfolio(config), root / "src", fmt="parquet")
    ingest_directory(root / "src", Lake(root / "lake"), END)
    tables = Lake(root / "lake").read_tables(
        ["buyers", "financials", "invoices", "events", "country_risk"]
    )
    end = latest_known_date(tables)
    start = tables["invoices"]["issue_date"].min() + pd.offsets.MonthEnd(0)
    frame = build_training_set(tables, start, end, end)
    frame["split"] = assign_split(frame, plan_time_split(monthly_as_of_dates(start, end), end))
    return frame


@pytest.fixture(scope="module")
def models(training_set) -> dict[str, PDModel]:
    return {kind: fit_model(kind, training_set) for kind in ("scorecard", "lightgbm")}


@pytest.fixture(scope="module")
def test_rows(training_set) -> pd.DataFrame:
    return training_set.loc[training_set["split"] == "test"]


def _shuffled_labels(frame: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """The same rows with labels permuted within each split: nothing left to learn."""
    rng = np.random.default_rng(seed)
    out = frame.copy()
    for _, index in out.groupby("split", observed=True).groups.items():
        out.loc[index, "label"] = rng.permutation(out.loc[index, "label"].to_numpy())
    return out


@pytest.mark.parametrize("kind", ["scorecard", "lightgbm"])
def test_out_of_time_auc_is_clearly_better_than_chance(
    models, training_set, test_rows, kind
) -> None:
    pd_ = models[kind].predict_pd(test_rows)
    y = test_rows["label"].to_numpy(dtype=int)
    auc = roc_auc_score(y, pd_)
    # against the same model fitted where labels carry no signal, not against a number
    blind = fit_model(kind, _shuffled_labels(training_set))
    blind_auc = roc_auc_score(y, blind.predict_pd(test_rows))
    assert auc - blind_auc > 0.1, (auc, blind_auc)
    assert pd_.min() >= MASTER_SCALE.pd_floor and pd_.max() < 1
    # calibrated on a later period: the PD level is within a factor 2 of the default rate
    assert 0.5 < pd_.mean() / y.mean() < 2
    assert validate(y, pd_).metrics["auc"] == pytest.approx(auc)


@pytest.mark.parametrize("kind", ["scorecard", "lightgbm"])
def test_predicts_on_frames_with_extra_or_reordered_columns(models, test_rows, kind) -> None:
    model = models[kind]
    base = model.predict_pd(test_rows)
    shuffled = test_rows[list(reversed(test_rows.columns))].assign(extra=1.0)
    assert np.array_equal(model.predict_pd(shuffled), base)
    with pytest.raises(KeyError, match="dbt_12m"):
        model.predict_pd(test_rows.drop(columns="dbt_12m"))


@pytest.mark.parametrize("kind", ["scorecard", "lightgbm"])
def test_pickle_round_trip_predicts_the_same(models, test_rows, kind) -> None:
    clone = pickle.loads(pickle.dumps(models[kind]))
    assert np.array_equal(clone.predict_pd(test_rows), models[kind].predict_pd(test_rows))
    pd.testing.assert_frame_equal(
        clone.contributions(test_rows.head(50)), models[kind].contributions(test_rows.head(50))
    )


def test_fitting_is_deterministic(training_set, models, test_rows) -> None:
    again = fit_model("lightgbm", training_set)
    assert np.array_equal(again.predict_pd(test_rows), models["lightgbm"].predict_pd(test_rows))


def test_lightgbm_contributions_add_up_to_the_raw_score(models, test_rows) -> None:
    model = models["lightgbm"]
    rows = test_rows.head(200)
    contrib = model.contributions(rows)
    assert list(contrib.columns) == model.feature_names
    assert contrib.index.equals(rows.index)
    bias = model.raw_score(rows) - contrib.sum(axis=1).to_numpy()
    assert np.allclose(bias, bias[0], atol=1e-6)  # the expected value, the same for every row


def test_scorecard_contributions_add_up_to_the_log_odds(models, test_rows) -> None:
    model = models["scorecard"]
    rows = test_rows.head(200)
    contrib = model.contributions(rows)
    total = model.scorecard.intercept + contrib.sum(axis=1).to_numpy()
    assert np.allclose(total, model.raw_score(rows))
    table = model.scorecard_table()
    assert {"feature", "bin", "woe", "coefficient", "points"} <= set(table.columns)
    assert set(table["feature"]) == set(model.scorecard.selected)


def _bump(rows: pd.DataFrame, feature: str, low: float, high: float) -> tuple:
    a, b = rows.copy(), rows.copy()
    a[feature], b[feature] = low, high
    return a, b


@pytest.mark.parametrize("kind", ["scorecard", "lightgbm"])
def test_monotone_on_a_grid_of_rows(models, test_rows, kind) -> None:
    """Raising a risk-raising feature (all else equal) never lowers the PD; and vice versa."""
    model = models[kind]
    rows = test_rows.sample(100, random_state=0)
    for feature in UP + DOWN:
        values = test_rows[feature].dropna()
        grid = np.unique(np.quantile(values, np.linspace(0, 1, 9))) if len(values) else []
        pds = []
        for value in grid:
            pds.append(model.predict_pd(rows.assign(**{feature: value})))
        if len(pds) < 2:
            continue
        steps = np.diff(np.vstack(pds), axis=0)
        sign = 1 if feature in UP else -1
        assert (sign * steps >= -1e-12).all(), feature


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_lightgbm_monotone_property(models, test_rows, data) -> None:
    model = models["lightgbm"]
    row = test_rows.iloc[[data.draw(st.integers(0, len(test_rows) - 1))]]
    feature = data.draw(st.sampled_from(UP + DOWN))
    values = data.draw(
        st.lists(st.floats(-1e4, 1e6, allow_nan=False), min_size=2, max_size=2, unique=True)
    )
    low, high = sorted(values)
    a, b = _bump(row, feature, low, high)
    pd_low, pd_high = model.predict_pd(a)[0], model.predict_pd(b)[0]
    if feature in UP:
        assert pd_high >= pd_low
    else:
        assert pd_high <= pd_low


def test_reason_codes_for_a_scored_portfolio(models, test_rows) -> None:
    model = models["lightgbm"]
    rows = test_rows.head(300)
    contrib = model.contributions(rows)
    reasons = reason_codes(contrib, rows, top=3)
    assert reasons.index.equals(rows.index)
    first = reasons["reason_1"].dropna()
    assert len(first) > 0
    for idx, name in first.items():
        assert contrib.loc[idx, name] == contrib.loc[idx].max() > 0


def test_stopping_slice_is_late_and_buyer_disjoint(training_set) -> None:
    train = training_set.loc[training_set["split"] == "train"]
    y = train["label"].to_numpy(dtype=int)
    pairs = stopping_slices(train, y, 0.2, seed=42)
    assert len(pairs) == 5  # a small book: too few defaults for one slice, so 5 CV folds
    for fit_rows, stop_rows in pairs:
        assert stop_rows.any() and fit_rows.any()
        assert not (fit_rows & stop_rows).any()
        assert train.loc[stop_rows, "as_of_date"].min() > train["as_of_date"].min()
        stop_buyers = set(train.loc[stop_rows, "buyer_id"])
        assert stop_buyers.isdisjoint(set(train.loc[fit_rows, "buyer_id"]))
    held = [set(train.loc[stop, "buyer_id"]) for _, stop in pairs]
    assert all(a.isdisjoint(b) for i, a in enumerate(held) for b in held[i + 1 :])


def test_one_stopping_slice_when_it_holds_enough_defaults(training_set) -> None:
    train = training_set.loc[training_set["split"] == "train"]
    y = train["label"].to_numpy(dtype=int)
    pairs = stopping_slices(train, y, 0.2, seed=42, min_defaults=1)
    assert len(pairs) == 1


def test_fit_model_rejects_unknown_kind_and_missing_slices(training_set) -> None:
    with pytest.raises(ValueError, match="unknown model kind"):
        fit_model("random_forest", training_set)
    no_calibration = training_set.assign(
        split=training_set["split"].astype(str).replace("calibration", "excluded")
    )
    with pytest.raises(ValueError, match="calibration"):
        fit_model("scorecard", no_calibration)


# --- cross-fitted calibration on undated data ------------------------------------------------

UNDATED_FEATURES = ["x0", "x1", "x2", "x3"]
SMALL_GBM = {"learning_rate": 0.05, "num_leaves": 8, "min_data_in_leaf": 50}


def _undated(n: int, seed: int) -> pd.DataFrame:
    """Independent rows with a logistic truth (one term non-linear, one feature 10 % missing)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, len(UNDATED_FEATURES)))
    true_pd = sigmoid(-3.2 + 1.2 * x[:, 0] - 0.8 * x[:, 1] + 0.6 * np.abs(x[:, 2]))
    x[rng.random(n) < 0.1, 3] = np.nan
    frame = pd.DataFrame(x, columns=UNDATED_FEATURES)
    frame["label"] = (rng.random(n) < true_pd).astype(np.int8)
    frame["true_pd"] = true_pd
    return frame


@pytest.fixture(scope="module")
def undated_set() -> pd.DataFrame:
    """3,000 fitting rows (2,400 'train' + 600 'calibration'), 300 'excluded', 20,000 'test'."""
    split = ["train"] * 2400 + ["calibration"] * 600 + ["excluded"] * 300
    known = _undated(len(split), seed=1).assign(split=split)
    return pd.concat([known, _undated(20_000, seed=2).assign(split="test")], ignore_index=True)


@pytest.mark.parametrize("kind", ["scorecard", "lightgbm"])
def test_cross_fitted_calibration_gives_calibrated_pds_on_undated_data(undated_set, kind) -> None:
    model = fit_model(
        kind,
        undated_set,
        features=UNDATED_FEATURES,
        params=SMALL_GBM if kind == "lightgbm" else None,
        calibrate_on="cross_fit",
    )
    test = undated_set.loc[undated_set["split"] == "test"]
    y = test["label"].to_numpy()
    pd_ = model.predict_pd(test)
    assert model.info["calibrate_on"] == "cross_fit"
    assert model.info["n_train"] == model.info["n_calibration"] == 3000
    assert model.calibrator.n_ == 3000  # out-of-fold scores of every fitted row
    # within reach of the truth on the same rows (not a number tuned to one seed)
    assert roc_auc_score(y, pd_) > roc_auc_score(y, test["true_pd"].to_numpy()) - 0.05
    assert abs(pd_.mean() / y.mean() - 1) < 0.1
    assert expected_calibration_error(y, pd_) < 0.02
    assert expected_calibration_error(test["true_pd"].to_numpy(), pd_) < 0.02


def test_cross_fitted_booster_is_trained_on_every_non_test_row(undated_set, monkeypatch) -> None:
    fitted: list[tuple[int, float]] = []
    train = gbm.lgb.train

    def spy(params, train_set, *args, **kwargs):
        booster = train(params, train_set, *args, **kwargs)
        fitted.append((train_set.num_data(), float(train_set.get_label().sum())))
        return booster

    monkeypatch.setattr(gbm.lgb, "train", spy)
    params = SMALL_GBM | {"n_models": 2}
    model = fit_model("lightgbm", undated_set, UNDATED_FEATURES, params, calibrate_on="cross_fit")
    used = undated_set.loc[undated_set["split"].isin(["train", "calibration"])]
    # every member sees all 'train' and 'calibration' rows, no 'excluded' or 'test' row
    assert fitted == [(len(used), float(used["label"].sum()))] * 2
    assert len(model.ensemble.boosters) == 2
    assert model.info["members"][0]["stopping_folds"] == model.info["cross_fit_folds"] == 5


def test_cross_fitted_scores_are_out_of_fold_and_the_refit_matches_fit_gbm(undated_set) -> None:
    rows = undated_set.loc[undated_set["split"] == "train"]
    y = rows["label"].to_numpy(dtype=int)
    matrix = rows[UNDATED_FEATURES].to_numpy(dtype=np.float32)
    folds = stopping_slices(rows, y, 0.2, seed=3)
    args = (matrix, y, folds, UNDATED_FEATURES, [0] * 4, [], SMALL_GBM)
    ensemble, out_of_fold = gbm.fit_gbm_cross_fitted(*args)
    assert out_of_fold.shape == y.shape and np.isfinite(out_of_fold).all()
    # scores of unseen rows rank worse than the refit's in-sample scores, but still rank
    in_sample = roc_auc_score(y, ensemble.raw_score(matrix))
    assert 0.7 < roc_auc_score(y, out_of_fold) < in_sample
    assert np.array_equal(ensemble.raw_score(matrix), gbm.fit_gbm(*args).raw_score(matrix))
    # one pair: only its slice is scored, by the booster that did not fit it
    _, one = gbm.fit_gbm_cross_fitted(
        matrix, y, folds[:1], UNDATED_FEATURES, [0] * 4, [], SMALL_GBM
    )
    assert np.array_equal(np.isfinite(one), folds[0][1])
    fitting_its_slice = [(np.ones(len(y), dtype=bool), stop) for _, stop in folds]
    with pytest.raises(ValueError, match="disjoint"):
        gbm.fit_gbm_cross_fitted(matrix, y, fitting_its_slice, UNDATED_FEATURES, [0] * 4, [])
    overlapping = [(~folds[0][1], folds[0][1]), (~folds[0][1], folds[0][1])]
    with pytest.raises(ValueError, match="disjoint"):
        gbm.fit_gbm_cross_fitted(matrix, y, overlapping, UNDATED_FEATURES, [0] * 4, [])


@pytest.mark.parametrize("kind", ["scorecard", "lightgbm"])
def test_cross_fitted_snapshots_calibrate_on_the_latest_months_of_unseen_buyers(
    training_set, test_rows, kind
) -> None:
    """The production refit: every matured row fitted, the level set on the latest cohort."""
    matured = training_set.loc[training_set["split"].isin(["train", "calibration"])]
    model = fit_model(kind, training_set, calibrate_on="cross_fit")
    months = np.sort(matured["as_of_date"].unique())
    late = months[-max(1, round(0.2 * len(months))) :]
    first, last = (pd.Timestamp(d) for d in model.info["calibration_as_of"])
    assert first >= late[0] and last == late[-1]
    assert model.info["n_train"] == len(matured)
    # a small book: every buyer's late rows scored once, by a fit without that buyer
    assert model.info["n_calibration"] == (matured["as_of_date"] >= late[0]).sum()
    y = test_rows["label"].to_numpy(dtype=int)
    pd_ = model.predict_pd(test_rows)
    assert 0.5 < pd_.mean() / y.mean() < 2
    assert roc_auc_score(y, pd_) > 0.6
    with pytest.raises(ValueError, match="calibrate_on"):
        fit_model(kind, training_set, calibrate_on="test")
