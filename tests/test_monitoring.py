"""Monitoring: PSI against a stored reference (by hand), grade migration, cohort backtest."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from models.master_scale import grade_of
from models.monitoring.drift import (
    BACKTEST_COLUMNS,
    MIGRATION_COLUMNS,
    PSI_COLUMNS,
    build_reference,
    cohort_backtest,
    grade_migration,
    migration_summary,
    psi_against_reference,
)
from models.pd.validation import (
    GREEN,
    NOT_APPLICABLE,
    RED,
    jeffreys_p_value,
    psi_from_shares,
    worst_light,
)


def _hand_psi(expected: list[float], actual: list[float]) -> float:
    return float(sum((a - e) * np.log(a / e) for e, a in zip(expected, actual, strict=True)))


def _row(table: pd.DataFrame, name: str) -> pd.Series:
    return table.set_index("name").loc[name]


# --- PSI -------------------------------------------------------------------------------------
@pytest.mark.parametrize("bins", [2, 10])
def test_psi_equals_the_hand_computed_value(bins):
    # Reference: half 0, half 1 -> shares [0.5, 0.5]; now a quarter 0 -> [0.25, 0.75].
    reference_frame = pd.DataFrame({"current_ratio": [0.0] * 50 + [1.0] * 50})
    now_frame = pd.DataFrame({"current_ratio": [0.0] * 25 + [1.0] * 75})
    pd_ref, pd_now = np.full(100, 0.01), np.full(100, 0.01)
    reference = build_reference(reference_frame, ["current_ratio"], pd_ref, bins=bins)
    table = psi_against_reference(reference, now_frame, pd_now)
    expected = (0.25 - 0.5) * np.log(0.25 / 0.5) + (0.75 - 0.5) * np.log(0.75 / 0.5)
    assert expected == pytest.approx(_hand_psi([0.5, 0.5], [0.25, 0.75]))
    row = _row(table, "current_ratio")
    assert row["psi"] == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(0.2747, abs=1e-4) and row["light"] == RED  # >= 0.25
    assert _row(table, "score")["psi"] == pytest.approx(0.0, abs=1e-12)


def test_the_score_psi_is_hand_computed_too():
    frame = pd.DataFrame({"current_ratio": np.zeros(4)})
    reference = build_reference(frame, ["current_ratio"], np.array([0.01, 0.01, 0.2, 0.2]), bins=2)
    table = psi_against_reference(reference, frame, np.array([0.01, 0.2, 0.2, 0.2]))
    assert table["name"].iat[0] == "score"
    assert table["psi"].iat[0] == pytest.approx(_hand_psi([0.5, 0.5], [0.25, 0.75]), rel=1e-12)


def _sample(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "current_ratio": rng.lognormal(0, 0.5, n),
            "debt_to_equity": np.where(rng.random(n) < 0.2, np.nan, rng.gamma(2, 1, n)),
            "no_statement": (rng.random(n) < 0.3).astype("float64"),
            "sector": rng.choice(list("CFGH"), n, p=[0.4, 0.3, 0.2, 0.1]),
        }
    )
    return frame, rng.beta(1, 30, n)


FEATURES = ["current_ratio", "debt_to_equity", "no_statement", "sector"]


def test_identical_distributions_give_zero_psi_and_green():
    frame, pd_ = _sample(20_000, 1)
    reference = build_reference(frame, FEATURES, pd_)
    table = psi_against_reference(reference, frame, pd_)
    assert list(table.columns) == PSI_COLUMNS
    assert table["name"].tolist() == ["score", *FEATURES]
    assert np.allclose(table["psi"], 0.0, atol=1e-12)
    assert (table["light"] == GREEN).all()
    # a fresh sample of the same population: small and green
    fresh, fresh_pd = _sample(20_000, 2)
    again = psi_against_reference(reference, fresh, fresh_pd)
    assert (again["psi"] < 0.01).all() and (again["light"] == GREEN).all()


def test_a_shifted_feature_is_red_and_the_others_stay_green():
    frame, pd_ = _sample(20_000, 3)
    reference = build_reference(frame, FEATURES, pd_)
    shifted = frame.assign(current_ratio=frame["current_ratio"] * 3)
    table = psi_against_reference(reference, shifted, pd_).set_index("name")
    assert table.loc["current_ratio", "psi"] > 0.25
    assert table.loc["current_ratio", "light"] == RED
    assert (table.drop(index="current_ratio")["light"] == GREEN).all()


def test_missing_values_are_a_bin_of_their_own():
    # Reference: 25 missing, 25 zeros, 50 ones; now: 50 missing, 25 zeros, 25 ones.
    reference_frame = pd.DataFrame({"debt_to_equity": [np.nan] * 25 + [0.0] * 25 + [1.0] * 50})
    now_frame = pd.DataFrame({"debt_to_equity": [np.nan] * 50 + [0.0] * 25 + [1.0] * 25})
    pd_ = np.full(100, 0.02)
    reference = build_reference(reference_frame, ["debt_to_equity"], pd_, bins=2)
    spec = reference["features"]["debt_to_equity"]
    assert spec["shares"] == [0.25, 0.5] and spec["missing_share"] == 0.25
    row = _row(psi_against_reference(reference, now_frame, pd_), "debt_to_equity")
    expected = _hand_psi([0.25, 0.5, 0.25], [0.25, 0.25, 0.5])  # = 0.5 ln 2
    assert row["psi"] == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(0.5 * np.log(2))
    assert row["light"] == RED
    assert (row["missing_share_reference"], row["missing_share_now"]) == (0.25, 0.5)


def test_a_feature_that_stops_being_filled_shows_as_drift():
    frame, pd_ = _sample(5_000, 4)
    reference = build_reference(frame, FEATURES, pd_)
    table = psi_against_reference(reference, frame.assign(current_ratio=np.nan), pd_)
    row = _row(table, "current_ratio")
    assert row["light"] == RED and row["missing_share_now"] == 1.0


def test_categorical_shares_known_value_and_unseen_categories_go_to_other():
    reference_frame = pd.DataFrame({"sector": ["C"] * 50 + ["G"] * 50})
    pd_ = np.full(100, 0.02)
    reference = build_reference(reference_frame, ["sector"], pd_)
    spec = reference["features"]["sector"]
    assert spec == {
        "kind": "categorical",
        "categories": ["C", "G"],
        "shares": [0.5, 0.5],
        "missing_share": 0.0,
    }
    now = pd.DataFrame({"sector": ["C"] * 25 + ["G"] * 75})
    row = _row(psi_against_reference(reference, now, pd_), "sector")
    assert row["psi"] == pytest.approx(_hand_psi([0.5, 0.5], [0.25, 0.75]), rel=1e-12)
    # "Q" was never seen in training: an "other" bin with a reference share of 0
    unseen = pd.DataFrame({"sector": ["C"] * 50 + ["G"] * 25 + ["Q"] * 25})
    row = _row(psi_against_reference(reference, unseen, pd_), "sector")
    assert row["psi"] == pytest.approx(psi_from_shares([0.5, 0.5, 0.0], [0.5, 0.25, 0.25]))
    assert row["light"] == RED
    # missing categories are their own bin too
    gaps = pd.DataFrame({"sector": ["C"] * 50 + [None] * 50})
    row = _row(psi_against_reference(reference, gaps, pd_), "sector")
    assert row["missing_share_now"] == 0.5 and row["light"] == RED


def test_whole_number_categories_match_across_int_and_float():
    reference_frame = pd.DataFrame({"sector": pd.Series([1, 2] * 50, dtype="int64")})
    reference = build_reference(reference_frame, ["sector"], np.full(100, 0.02))
    assert reference["features"]["sector"]["categories"] == ["1", "2"]
    now = pd.DataFrame({"sector": pd.Series([1.0, 2.0] * 50)})
    assert _row(psi_against_reference(reference, now, np.full(100, 0.02)), "sector")[
        "psi"
    ] == pytest.approx(0.0, abs=1e-12)


def test_the_reference_survives_a_json_round_trip():
    frame, pd_ = _sample(5_000, 5)
    reference = build_reference(frame, FEATURES, pd_)
    text = json.dumps(reference, allow_nan=False)  # plain JSON: no NaN, no numpy types
    loaded = json.loads(text)
    assert loaded == reference
    assert loaded["rows"] == 5_000 and loaded["bins"] == 10
    assert list(loaded["features"]) == FEATURES
    now, now_pd = _sample(5_000, 6)
    pd.testing.assert_frame_equal(
        psi_against_reference(loaded, now, now_pd), psi_against_reference(reference, now, now_pd)
    )


def test_a_feature_absent_from_the_frame_has_no_psi():
    frame, pd_ = _sample(1_000, 7)
    reference = build_reference(frame, FEATURES, pd_)
    row = _row(psi_against_reference(reference, frame.drop(columns="sector"), pd_), "sector")
    assert np.isnan(row["psi"]) and row["light"] == NOT_APPLICABLE
    assert row["missing_share_reference"] == 0.0 and np.isnan(row["missing_share_now"])


def test_build_reference_rejects_bad_inputs():
    frame, pd_ = _sample(100, 8)
    with pytest.raises(ValueError, match="missing from the frame"):
        build_reference(frame, ["current_ratio", "altman_z"], pd_)
    with pytest.raises(ValueError, match="one value per row"):
        build_reference(frame, FEATURES, pd_[:-1])
    with pytest.raises(ValueError, match="one value per row"):
        psi_against_reference(build_reference(frame, FEATURES, pd_), frame, pd_[:-1])


# --- grade migration --------------------------------------------------------------------------
def test_grade_migration_counts_by_hand_with_new_and_gone():
    previous = pd.DataFrame({"buyer_id": list("ABCDEF"), "grade": [3, 3, 4, 5, 6, 2]})
    current = pd.DataFrame({"buyer_id": list("ABCDEGH"), "grade": [3, 3, 6, 4, 10, 1, 5]})
    migration = grade_migration(previous, current)
    assert list(migration.columns) == MIGRATION_COLUMNS
    rows = [
        (None if pd.isna(p) else int(p), None if pd.isna(g) else int(g), int(n))
        for p, g, n in migration.itertuples(index=False)
    ]
    assert rows == [
        (2, None, 1),  # F gone
        (3, 3, 2),  # A, B stable
        (4, 6, 1),  # C down 2
        (5, 4, 1),  # D up 1
        (6, 10, 1),  # E into default
        (None, 1, 1),  # G new
        (None, 5, 1),  # H new
    ]
    assert migration["buyers"].sum() == 8
    summary = migration_summary(migration)
    assert summary == {
        "compared": 5,
        "upgraded": pytest.approx(1 / 5),
        "downgraded": pytest.approx(2 / 5),
        "stable": pytest.approx(2 / 5),
        "downgraded_2plus": 2,
        "new": 2,
        "gone": 1,
    }


def test_the_first_run_has_only_new_buyers():
    current = pd.DataFrame({"buyer_id": list("ABC"), "grade": [1, 1, 4]})
    migration = grade_migration(None, current)
    assert migration["previous_grade"].isna().all()
    assert migration["grade"].tolist() == [1, 4] and migration["buyers"].tolist() == [2, 1]
    summary = migration_summary(migration)
    assert summary["compared"] == 0 and summary["new"] == 3 and summary["gone"] == 0
    assert np.isnan(summary["upgraded"])


# --- cohort backtest -------------------------------------------------------------------------
def test_cohort_backtest_auc_and_table_by_hand():
    rng = np.random.default_rng(9)
    pd_ = rng.beta(1, 20, 3_000)
    y = (rng.random(3_000) < pd_).astype(int)
    grade = grade_of(pd_)
    metrics, table = cohort_backtest(y, pd_, grade)
    assert metrics["auc"] == pytest.approx(roc_auc_score(y, pd_), rel=1e-12)
    assert metrics["count"] == 3_000 and metrics["defaults"] == int(y.sum())
    assert metrics["mean_pd"] == pytest.approx(pd_.mean())
    assert metrics["default_rate"] == pytest.approx(y.mean())
    assert list(table.columns) == BACKTEST_COLUMNS
    assert table["grade"].tolist() == sorted(set(grade.tolist()))
    assert table["count"].sum() == 3_000 and table["defaults"].sum() == y.sum()
    worst = table["grade"].iat[-1]
    in_worst = grade == worst
    row = table.iloc[-1]
    assert row["count"] == in_worst.sum() and row["defaults"] == y[in_worst].sum()
    assert row["mean_pd"] == pytest.approx(pd_[in_worst].mean())
    assert row["p_value"] == pytest.approx(
        jeffreys_p_value(y[in_worst].sum(), in_worst.sum(), pd_[in_worst].mean())
    )
    assert metrics["worst_light"] == worst_light(table["light"])
    json.dumps(metrics)  # plain values for the run summary


def test_cohort_backtest_with_one_class_has_no_auc():
    metrics, table = cohort_backtest(np.zeros(4), np.array([0.01, 0.02, 0.3, 0.3]), [2, 3, 9, 9])
    assert np.isnan(metrics["auc"]) and metrics["defaults"] == 0
    assert table["grade"].tolist() == [2, 3, 9] and table["count"].tolist() == [1, 1, 2]
    with pytest.raises(ValueError, match="same length"):
        cohort_backtest(np.zeros(3), np.zeros(2), np.ones(3))
