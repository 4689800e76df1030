"""The PD model as a scikit-learn classifier: clone, Pipeline, cross_val_score, explicit
monotone constraints and categorical columns, calibrated probabilities."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.impute import SimpleImputer
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from threadpoolctl import threadpool_info

from models.pd import estimator, gbm
from models.pd.estimator import PDClassifier
from models.pd.gbm import SMALL_DATA_PARAMS, SMALL_DATA_ROWS, params_for_size
from models.pd.model import stopping_slices
from models.pd.validation import expected_calibration_error

QUICK = {"learning_rate": 0.1, "num_leaves": 8, "min_data_in_leaf": 40, "n_models": 1,
         "num_boost_round": 300, "early_stopping_rounds": 30, "num_threads": 1}  # fmt: skip


def _table(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Independent rows with a logistic truth; `current_ratio` is named like a catalogue
    feature (risk falls with it there) but here the risk *rises* with it."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "current_ratio": rng.normal(size=n),
            "leverage": rng.normal(size=n),
            "noise": rng.normal(size=n),
            "region": rng.choice(["north", "south", "east"], size=n),
        }
    )
    bump = X["region"].map({"north": 0.0, "south": 0.8, "east": -0.4}).to_numpy()
    true_pd = 1 / (1 + np.exp(-(-3.0 + 1.0 * X["current_ratio"] + 0.7 * X["leverage"] + bump)))
    y = (rng.random(n) < true_pd).astype(int)
    return X, y, true_pd


@pytest.fixture(scope="module")
def table():
    return _table(6_000, seed=1), _table(20_000, seed=2)


def test_fits_and_predicts_calibrated_probabilities_like_a_classifier(table) -> None:
    (X, y, _), (X_test, y_test, true_pd) = table
    model = PDClassifier(params=QUICK, categorical=["region"]).fit(X, y)
    proba = model.predict_proba(X_test)
    assert proba.shape == (len(X_test), 2) and np.allclose(proba.sum(axis=1), 1)
    assert list(model.classes_) == [0, 1] and model.n_features_in_ == 4
    assert set(model.predict(X_test)) <= {0, 1}
    auc, oracle = roc_auc_score(y_test, proba[:, 1]), roc_auc_score(y_test, true_pd)
    assert auc > oracle - 0.03, (auc, oracle)
    # calibrated inside fit: the level is the default rate's, the PDs close to the truth's
    assert abs(proba[:, 1].mean() / y_test.mean() - 1) < 0.1
    assert expected_calibration_error(true_pd, proba[:, 1]) < 0.02


def test_no_constraint_comes_from_a_column_name(table) -> None:
    """`current_ratio` is a catalogue feature whose risk falls; here it rises, and the
    estimator must learn that unless told otherwise."""
    (X, y, _), (X_test, _, _) = table
    grid = X_test.head(200).copy()
    low, high = grid.assign(current_ratio=-2.0), grid.assign(current_ratio=2.0)
    free = PDClassifier(params=QUICK, categorical=["region"]).fit(X, y)
    assert (free.predict_proba(high)[:, 1] > free.predict_proba(low)[:, 1]).mean() > 0.9
    told = PDClassifier(params=QUICK, categorical=["region"], monotone={"current_ratio": -1})
    told.fit(X, y)  # a constraint against the data: the PD may not rise with it
    assert (told.predict_proba(high)[:, 1] <= told.predict_proba(low)[:, 1] + 1e-12).all()


def test_clone_pipeline_and_cross_val_score(table) -> None:
    (X, y, _), _ = table
    numeric = X.drop(columns="region")
    model = PDClassifier(params=QUICK, monotone={"leverage": 1})
    copy = clone(model)
    assert copy.get_params() == model.get_params() and not hasattr(copy, "model_")
    imputer = SimpleImputer().set_output(transform="pandas")  # the names reach the model
    pipeline = make_pipeline(imputer, model)
    with_gaps = numeric.mask(np.random.default_rng(3).random(numeric.shape) < 0.05)
    scores = cross_val_score(pipeline, with_gaps, y, cv=3, scoring="roc_auc")
    blind = cross_val_score(
        make_pipeline(clone(imputer), clone(model)),
        with_gaps, np.random.default_rng(4).permutation(y), cv=3, scoring="roc_auc",
    )  # fmt: skip
    # plain arrays work too: columns x0, x1, ...
    array_model = PDClassifier(params=QUICK).fit(numeric.to_numpy(), y)
    assert list(array_model.feature_names_in_) == ["x0", "x1", "x2"]
    assert scores.min() > blind.max() + 0.1, (scores, blind)


def test_bad_inputs_are_refused_with_the_reason(table) -> None:
    (X, y, _), _ = table
    with pytest.raises(ValueError, match="two classes"):
        PDClassifier(params=QUICK).fit(X.drop(columns="region"), np.zeros(len(X)))
    with pytest.raises(ValueError, match=r"not in X: \['debt'\]"):
        PDClassifier(params=QUICK, monotone={"debt": 1}).fit(X, y)
    with pytest.raises(ValueError, match="-1, 0 or \\+1"):
        PDClassifier(params=QUICK, monotone={"leverage": 2}).fit(X, y)
    with pytest.raises(ValueError, match="kind"):
        PDClassifier(kind="forest").fit(X, y)
    with pytest.raises(ValueError, match="split"):
        PDClassifier(params=QUICK).fit(X.assign(split=1.0), y)


def test_the_setting_follows_the_data_size() -> None:
    assert params_for_size(SMALL_DATA_ROWS - 1) == SMALL_DATA_PARAMS
    assert params_for_size(SMALL_DATA_ROWS) == {}
    assert SMALL_DATA_PARAMS["num_threads"] == 1  # small tables: one thread


def test_a_small_table_is_fitted_on_one_blas_thread(table, monkeypatch) -> None:
    (X, y, _), _ = table
    seen: list[int] = []
    fit_model = estimator.fit_model

    def spy(*args, **kwargs):
        seen.extend(pool["num_threads"] for pool in threadpool_info())
        return fit_model(*args, **kwargs)

    monkeypatch.setattr(estimator, "fit_model", spy)
    PDClassifier("scorecard").fit(X.drop(columns="region"), y)
    assert seen and set(seen) == {1}


def test_without_refit_the_fold_boosters_are_the_members_and_the_calibrators_scorers(
    table, monkeypatch
) -> None:
    (X, y, _), (X_test, y_test, true_pd) = table
    quick = QUICK | {"refit": False}

    def no_refit(*args, **kwargs):
        raise AssertionError("no booster may be trained besides the cross-validation's")

    monkeypatch.setattr(gbm.lgb, "train", no_refit)
    model = PDClassifier(params=quick, categorical=["region"]).fit(X, y)
    fitted, info = model.model_, model.model_.info
    best = info["members"][0]["best_iteration"]
    assert len(fitted.ensemble.boosters) == info["cross_fit_folds"] == 5
    assert all(b.num_trees() == best for b in fitted.ensemble.boosters)  # cut at the best round
    assert fitted.calibrator.n_ == len(X)  # every row's out-of-fold score
    proba = model.predict_proba(X_test)[:, 1]
    assert roc_auc_score(y_test, proba) > roc_auc_score(y_test, true_pd) - 0.03
    assert abs(proba.mean() / y_test.mean() - 1) < 0.1
    assert expected_calibration_error(true_pd, proba) < 0.02
    # each member scores the slice it did not fit: exactly the out-of-fold scores
    numeric = X.drop(columns="region").to_numpy(dtype=np.float32)
    folds = stopping_slices(X, y, 0.2, seed=5)
    args = (numeric, y, folds, ["a", "b", "c"], [0, 0, 0], [], quick)
    ensemble, out_of_fold = gbm.fit_gbm_cross_fitted(*args)
    for booster, (_, held) in zip(ensemble.boosters, folds, strict=True):
        assert np.allclose(booster.predict(numeric[held], raw_score=True), out_of_fold[held])
    assert np.array_equal(ensemble.raw_score(numeric), gbm.fit_gbm(*args).raw_score(numeric))
