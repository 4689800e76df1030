"""Training-set builder (with a stand-in snapshot builder) and the out-of-time split."""

from __future__ import annotations

import sys
import types

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from features.labels import DEFAULT_DEFINITION, DefaultDefinition
from features.training import (
    SPLITS,
    TimeSplit,
    assign_split,
    build_training_set,
    latest_known_date,
    monthly_as_of_dates,
    plan_time_split,
    rolling_origin_splits,
    warm_up_end,
)

T = pd.Timestamp
NS = "datetime64[ns]"


def month_ends(start: str, periods: int) -> list[pd.Timestamp]:
    return list(pd.date_range(start, periods=periods, freq="ME", unit="ns"))


# --- as-of dates -----------------------------------------------------------------------


def test_monthly_as_of_dates_are_month_ends_in_the_closed_range() -> None:
    assert monthly_as_of_dates("2023-01-15", "2023-04-30") == [
        T("2023-01-31"),
        T("2023-02-28"),
        T("2023-03-31"),
        T("2023-04-30"),
    ]
    assert monthly_as_of_dates("2023-01-31", "2023-03-30") == [T("2023-01-31"), T("2023-02-28")]
    assert monthly_as_of_dates("2024-02-01", "2024-02-29 18:00") == [T("2024-02-29")]
    assert monthly_as_of_dates("2023-05-01", "2023-04-30") == []


# --- training set ----------------------------------------------------------------------


def lake() -> dict[str, pd.DataFrame]:
    """Four buyers: B1 healthy, B2 insolvent 2023-03-15, B3 90 DPD on 2022-12-30, B4 flagged
    in default by the snapshot builder."""
    ids = ["B1", "B2", "B3", "B4"]
    return {
        "buyers": pd.DataFrame({"buyer_id": pd.Series(ids, dtype="str")}),
        "events": pd.DataFrame(
            {
                "buyer_id": pd.Series(["B2", "B1"], dtype="str"),
                "event_date": pd.Series([T("2023-03-15"), T("2022-05-01")], dtype=NS),
                "event_type": pd.Series(["insolvency", "legal_dispute"], dtype="str"),
                "policyholder_id": pd.Series([None, None], dtype="str"),
                "amount": [float("nan")] * 2,
            }
        ),
        "invoices": pd.DataFrame(
            {
                "invoice_id": pd.Series(["I1", "I2"], dtype="str"),
                "buyer_id": pd.Series(["B1", "B3"], dtype="str"),
                "policyholder_id": pd.Series(["P1", "P1"], dtype="str"),
                "issue_date": pd.Series([T("2023-10-01"), T("2022-09-01")], dtype=NS),
                "due_date": pd.Series([T("2023-11-01"), T("2022-10-01")], dtype=NS),
                "paid_date": pd.Series([T("2023-12-31"), pd.NaT], dtype=NS),
                "amount": [100.0, 200.0],
                "currency": pd.Series(["EUR", "EUR"], dtype="str"),
            }
        ),
    }


class FakeSnapshots:
    """Stands in for features.snapshot.build_snapshots and records its calls."""

    def __init__(self) -> None:
        self.calls: list[list[pd.Timestamp]] = []

    def __call__(self, tables, as_of_dates) -> pd.DataFrame:
        self.calls.append(list(as_of_dates))
        buyers = tables["buyers"]["buyer_id"]
        grid = pd.MultiIndex.from_product(
            [buyers, pd.DatetimeIndex(as_of_dates)], names=["buyer_id", "as_of_date"]
        ).to_frame(index=False)
        grid["as_of_date"] = grid["as_of_date"].astype(NS)
        grid["feature"] = range(len(grid))
        grid["in_default_at_as_of"] = grid["buyer_id"].eq("B4").to_numpy()
        return grid


def test_build_training_set_labels_and_drops_rows_in_default() -> None:
    tables = lake()
    builder = FakeSnapshots()
    out = build_training_set(tables, "2022-01-01", "2022-12-31", snapshot_builder=builder)

    assert builder.calls == [month_ends("2022-01-31", 12)]  # once, with every date
    assert "B4" not in set(out["buyer_id"])  # in default according to the snapshot
    assert not out["defaulted_before"].any()
    assert not out["in_default_at_as_of"].any()
    # B3 defaults (90 DPD) on 2022-12-30: its 2022-12-31 row is already in default
    assert out.loc[out["buyer_id"].eq("B3"), "as_of_date"].max() == T("2022-11-30")

    # observation end = latest known date = B1's payment on 2023-12-31
    labels = out.set_index(["buyer_id", "as_of_date"])["label"]
    assert labels[("B1", T("2022-12-31"))] == 0  # window ends 2023-12-31: matured
    assert labels[("B2", T("2022-03-31"))] == 1  # insolvency 2023-03-15 <= 2023-03-31
    assert labels[("B2", T("2022-02-28"))] == 0  # window ends 2023-02-28
    assert labels[("B3", T("2022-01-31"))] == 1
    assert len(out) == 12 + 12 + 11  # B1 all, B2 all (defaults after 2022), B3 up to Nov


def test_build_training_set_keeps_unmatured_rows_unlabelled() -> None:
    out = build_training_set(
        lake(), "2022-01-01", "2022-12-31", "2023-06-30", snapshot_builder=FakeSnapshots()
    )
    b1 = out[out["buyer_id"].eq("B1")]
    assert b1["matured"].sum() == 6  # as-of 2022-01..06: windows end by 2023-06-30
    assert b1["label"].isna().sum() == 6
    assert (b1.loc[b1["matured"], "label"] == 0).all()


def test_build_training_set_uses_the_definition() -> None:
    # with a 3-month horizon, B2's insolvency (2023-03-15) is only in the 2022-12-31 window
    three = DefaultDefinition(horizon_months=3)
    out = build_training_set(
        lake(), "2022-01-01", "2022-12-31", definition=three, snapshot_builder=FakeSnapshots()
    )
    b2 = out[out["buyer_id"].eq("B2")].set_index("as_of_date")["label"]
    assert b2[T("2022-12-31")] == 1
    assert b2.drop(T("2022-12-31")).eq(0).all()
    assert len(b2) == 12


def test_build_training_set_default_builder_is_imported_lazily(monkeypatch) -> None:
    fake = FakeSnapshots()
    monkeypatch.setitem(
        sys.modules, "features.snapshot", types.SimpleNamespace(build_snapshots=fake)
    )
    build_training_set(lake(), "2022-01-01", "2022-03-31")
    assert fake.calls == [month_ends("2022-01-31", 3)]


def test_build_training_set_refuses_missing_inputs() -> None:
    tables = lake()
    del tables["events"]
    with pytest.raises(ValueError, match="events"):
        build_training_set(tables, "2022-01-01", "2022-12-31", snapshot_builder=FakeSnapshots())
    with pytest.raises(ValueError, match="no month end"):
        build_training_set(lake(), "2022-01-01", "2022-01-30", snapshot_builder=FakeSnapshots())

    def no_state(tables, dates):
        return FakeSnapshots()(tables, dates).drop(columns="in_default_at_as_of")

    with pytest.raises(ValueError, match="in_default_at_as_of"):
        build_training_set(lake(), "2022-01-01", "2022-12-31", snapshot_builder=no_state)


def test_latest_known_date() -> None:
    tables = lake()
    assert latest_known_date(tables) == T("2023-12-31")
    tables["financials"] = pd.DataFrame({"filing_date": pd.Series([T("2024-02-01")], dtype=NS)})
    assert latest_known_date(tables) == T("2024-02-01")
    with pytest.raises(ValueError, match="observation_end"):
        latest_known_date({"buyers": tables["buyers"]})


# --- time split ------------------------------------------------------------------------


def test_plan_time_split_by_hand() -> None:
    split = plan_time_split(month_ends("2019-01-31", 60), "2023-12-31", DEFAULT_DEFINITION)
    # matured: as_of + 12 months <= 2023-12-31, so as_of <= 2022-12-31
    assert (split.test_start, split.test_end) == (T("2022-10-31"), T("2022-12-31"))
    # calibration windows end <= 2022-10-31
    assert (split.calibration_start, split.calibration_end) == (T("2021-08-31"), T("2021-10-31"))
    # training windows end <= 2021-08-31
    assert split.train_end == T("2020-08-31")
    text = split.describe()
    for date in ("2020-08-31", "2021-08-31", "2021-10-31", "2022-10-31", "2022-12-31"):
        assert date in text


def test_too_short_history_raises_a_clear_error() -> None:
    # 12-month horizon, 3 + 3 months: 29 matured monthly as-of dates are needed
    dates = month_ends("2020-01-31", 40)  # 2020-01 .. 2023-04, matured up to 2022-04: 28
    with pytest.raises(ValueError, match=r"needs 29 consecutive monthly as-of dates") as err:
        plan_time_split(dates, "2023-04-30", DEFAULT_DEFINITION)
    assert "41 months of history" in str(err.value)
    assert "28 matured" in str(err.value)
    plan_time_split(month_ends("2020-01-31", 41), "2023-05-31", DEFAULT_DEFINITION)
    with pytest.raises(ValueError, match="matured"):
        plan_time_split(dates, "2020-06-30", DEFAULT_DEFINITION)


def test_time_split_rejects_overlapping_periods() -> None:
    with pytest.raises(ValueError, match="out of order"):
        TimeSplit(
            T("2021-01-31"), T("2021-01-31"), T("2021-03-31"), T("2022-01-31"), T("2022-03-31")
        )


def test_assign_split_values_index_and_exclusions() -> None:
    split = TimeSplit(
        T("2020-06-30"), T("2021-06-30"), T("2021-08-31"), T("2022-08-31"), T("2022-10-31")
    )
    as_of = [
        "2020-01-31",  # train
        "2020-06-30",  # train (edge)
        "2020-07-31",  # gap
        "2021-06-30",  # calibration (edge)
        "2021-08-31",  # calibration (edge)
        "2021-09-30",  # gap
        "2022-08-31",  # test
        "2022-10-31",  # test
        "2022-11-30",  # after the test period
        "2020-03-31",  # train period, but no label
    ]
    frame = pd.DataFrame(
        {
            "as_of_date": pd.to_datetime(as_of).astype(NS),
            "label": pd.array([0, 1, 0, 0, 1, 0, 0, 1, 0, None], dtype="Int8"),
        },
        index=range(100, 110),
    )
    got = assign_split(frame, split)
    assert list(got.index) == list(frame.index)
    assert list(got.cat.categories) == list(SPLITS)
    assert list(got) == [
        "train",
        "train",
        "excluded",
        "calibration",
        "calibration",
        "excluded",
        "test",
        "test",
        "excluded",
        "excluded",
    ]
    assert assign_split(frame.drop(columns="label"), split).iloc[-1] == "train"


@settings(max_examples=60, deadline=None)
@given(
    n_dates=st.integers(min_value=1, max_value=70),
    first_month=st.integers(min_value=0, max_value=23),
    horizon=st.integers(min_value=1, max_value=18),
    test_months=st.integers(min_value=1, max_value=4),
    calibration_months=st.integers(min_value=1, max_value=4),
    extra_days=st.integers(min_value=0, max_value=900),
)
def test_split_invariants_for_random_histories(
    n_dates, first_month, horizon, test_months, calibration_months, extra_days
) -> None:
    dates = month_ends(str(T("2018-01-31") + pd.DateOffset(months=first_month)), n_dates)
    observation_end = dates[-1] + pd.Timedelta(days=extra_days)
    h = pd.DateOffset(months=horizon)
    matured = [d for d in dates if d + h <= observation_end]
    definition = DefaultDefinition(horizon_months=horizon)
    # test + gap of h - 1 + calibration + gap of h - 1 + one training month
    needed = test_months + (horizon - 1) + calibration_months + (horizon - 1) + 1
    if len(matured) < needed:
        with pytest.raises(ValueError, match="not enough history"):
            plan_time_split(dates, observation_end, definition, test_months, calibration_months)
        return
    split = plan_time_split(dates, observation_end, definition, test_months, calibration_months)

    frame = pd.DataFrame({"as_of_date": pd.DatetimeIndex(dates).astype(NS)})
    frame["split"] = assign_split(frame, split)
    rows = {name: list(frame.loc[frame["split"].eq(name), "as_of_date"]) for name in SPLITS}
    train, calibration, test = rows["train"], rows["calibration"], rows["test"]

    assert test == matured[-test_months:]  # the latest matured months, out of time
    assert all(d + h <= observation_end for d in test)
    assert len(calibration) == calibration_months
    assert all(d + h <= split.test_start for d in calibration)
    assert len(train) >= 1
    assert all(d + h <= split.calibration_start for d in train)
    assert max(train) < min(calibration) <= max(calibration) < min(test)
    # nothing usable is wasted: the next month of each period would break its rule
    after = {d: dates[i + 1] for i, d in enumerate(dates[:-1])}
    assert after[max(train)] + h > split.calibration_start
    assert after[max(calibration)] + h > split.test_start
    assert max(test) == matured[-1]


def test_end_to_end_no_training_window_reaches_the_test_period() -> None:
    tables = lake()
    out = build_training_set(
        tables, "2020-01-01", "2023-12-31", "2025-12-31", snapshot_builder=FakeSnapshots()
    )
    split = plan_time_split(monthly_as_of_dates("2020-01-01", "2023-12-31"), "2025-12-31")
    out["split"] = assign_split(out, split)
    train = out[out["split"].eq("train")]
    test = out[out["split"].eq("test")]
    assert len(train) and len(test)
    assert (train["as_of_date"] + pd.DateOffset(months=12) <= split.calibration_start).all()
    assert test["matured"].all()
    assert out.loc[out["split"].ne("excluded"), "label"].notna().all()


# --- rolling-origin folds and warm-up dates ------------------------------------------------


def test_warm_up_end_follows_the_catalogues_longest_window() -> None:
    from features.catalogue import LOOKBACK_MONTHS
    from features.payment import VOLUME_LAG_MONTHS, VOLUME_MONTHS, WINDOWS_MONTHS

    # the 12-month payment windows, or the invoiced volume against its base a year earlier
    assert LOOKBACK_MONTHS == max(*WINDOWS_MONTHS, VOLUME_MONTHS + VOLUME_LAG_MONTHS) == 15
    # data from 2022-12-03: every window is whole from the month-end 15 months later
    assert warm_up_end("2022-12-03") == T("2024-03-31")
    assert warm_up_end("2022-12-31", lookback_months=3) == T("2023-03-31")


def test_rolling_origin_folds_by_hand() -> None:
    dates = month_ends("2022-12-31", 48)  # 2022-12 .. 2026-11, as on the demo book
    folds = rolling_origin_splits(dates, "2026-11-30", folds=3, train_start="2023-12-31")
    assert [(f.test_start, f.test_end) for f in folds] == [
        (T("2025-03-31"), T("2025-05-31")),
        (T("2025-06-30"), T("2025-08-31")),
        (T("2025-09-30"), T("2025-11-30")),
    ]
    last = folds[-1]
    # calibration: the latest 3 months whose window ends by the test's first date
    assert (last.calibration_start, last.calibration_end) == (T("2024-07-31"), T("2024-09-30"))
    # expanding window: every fold trains from the warm-up end to the month before calibration
    assert all(f.train_start == T("2023-12-31") for f in folds)
    assert [f.train_end for f in folds] == [T("2023-12-31"), T("2024-03-31"), T("2024-06-30")]
    assert "2023-12-31 .. 2024-06-30" in last.describe()
    frame = pd.DataFrame({"as_of_date": pd.DatetimeIndex(dates).astype(NS)})
    split = assign_split(frame, last)
    train = frame.loc[split.eq("train"), "as_of_date"]
    assert (train.min(), train.max()) == (T("2023-12-31"), T("2024-06-30"))


def test_rolling_origin_refuses_too_many_folds_naming_the_fold() -> None:
    dates = month_ends("2022-12-31", 48)
    with pytest.raises(ValueError, match=r"fold 3 of 6: 0 training month"):
        rolling_origin_splits(dates, "2026-11-30", folds=6, train_start="2023-12-31")
    with pytest.raises(ValueError, match="folds must be"):
        rolling_origin_splits(dates, "2026-11-30", folds=0)


@settings(max_examples=60, deadline=None)
@given(
    n_dates=st.integers(min_value=20, max_value=70),
    horizon=st.integers(min_value=1, max_value=12),
    folds=st.integers(min_value=1, max_value=4),
    test_months=st.integers(min_value=1, max_value=3),
    extra_days=st.integers(min_value=0, max_value=400),
)
def test_rolling_origin_invariants(n_dates, horizon, folds, test_months, extra_days) -> None:
    dates = month_ends("2019-01-31", n_dates)
    observation_end = dates[-1] + pd.Timedelta(days=extra_days)
    definition = DefaultDefinition(horizon_months=horizon)
    h = pd.DateOffset(months=horizon)
    try:
        splits = rolling_origin_splits(
            dates, observation_end, folds=folds, definition=definition, test_months=test_months
        )
    except ValueError as exc:
        assert "fold" in str(exc)
        return
    assert len(splits) == folds
    frame = pd.DataFrame({"as_of_date": pd.DatetimeIndex(dates).astype(NS)})
    previous_test_end = None
    for split in splits:
        labels = assign_split(frame, split)
        train = frame.loc[labels.eq("train"), "as_of_date"]
        calibration = frame.loc[labels.eq("calibration"), "as_of_date"]
        test = frame.loc[labels.eq("test"), "as_of_date"]
        assert len(test) == test_months and all(d + h <= observation_end for d in test)
        # no label of a fitted row reaches into the fold's test months
        assert all(d + h <= split.test_start for d in calibration)
        assert all(d + h <= split.test_start for d in train)
        assert max(train) < min(calibration)
        if previous_test_end is not None:  # consecutive folds, no overlap, oldest first
            assert split.test_start > previous_test_end
        previous_test_end = split.test_end


# --- the training plan: warm-up, validation folds, production window -------------------------


def test_training_plan_on_a_demo_sized_window_by_hand() -> None:
    from features.training import plan_training, production_split

    dates = month_ends("2022-12-31", 48)  # data from 2022-12-01 to 2026-11-30
    plan = plan_training(dates, "2026-11-30", "2022-12-01", folds=3)
    assert plan.first_as_of == T("2024-03-31")  # 15 months of lookback windows first
    assert plan.last_matured == T("2025-11-30")  # the last label window ends 2026-11-30
    # a third fold would test from 2025-03-31 and need fitted months before 2024-03-31
    assert [(f.test_start, f.test_end) for f in plan.folds] == [
        (T("2025-06-30"), T("2025-08-31")),
        (T("2025-09-30"), T("2025-11-30")),
    ]
    frame = pd.DataFrame({"as_of_date": pd.DatetimeIndex(dates).astype(NS), "label": 0.0})
    frame.loc[frame["as_of_date"] == T("2025-01-31"), "label"] = float("nan")  # in default
    split = production_split(frame, plan)
    fitted = frame.loc[split.eq("train"), "as_of_date"]
    assert (fitted.min(), fitted.max()) == (T("2024-03-31"), T("2025-11-30"))
    assert len(fitted) == 21 - 1  # 21 matured eligible months, one without a label
    assert set(split[frame["as_of_date"] < T("2024-03-31")]) == {"excluded"}
    # every fold fits only rows whose label window closed before its test months
    for fold in plan.folds:
        rows = frame.loc[assign_split(frame, fold).isin(["train", "calibration"]), "as_of_date"]
        assert rows.min() == plan.first_as_of
        assert (rows + pd.DateOffset(months=12) <= fold.test_start).all()
    assert "validation fold 2: fit as-of 2024-03-31 .. 2024-09-30" in plan.describe()


def test_training_plan_uses_fewer_folds_on_short_history_and_says_what_is_missing() -> None:
    from features.training import plan_training

    short = plan_training(month_ends("2023-01-31", 47), "2026-11-30", "2023-01-01")
    assert len(short.folds) == 1 and short.folds[0].test_end == T("2025-11-30")
    with pytest.raises(ValueError, match=r"not enough history.*months"):
        plan_training(month_ends("2024-01-31", 35), "2026-11-30", "2024-01-01")


# --- intercept recalibration ---------------------------------------------------------------


def test_intercept_shift_matches_the_level_and_keeps_the_ranking() -> None:
    import numpy as np

    from models.pd.calibration import Calibrator, intercept_shift, sigmoid

    rng = np.random.default_rng(3)
    raw = rng.normal(-3, 1, 4000)
    y = (rng.random(4000) < sigmoid(raw + 0.4)).astype(int)  # true level 0.4 above
    calibrator = Calibrator("platt", scale="logit")
    calibrator.intercept_, calibrator.slope_ = 0.0, 1.0
    pd_ = calibrator.transform(raw)
    delta = intercept_shift(pd_, y)
    shifted = calibrator.shifted(delta).transform(raw)
    assert shifted.sum() == pytest.approx(y.sum(), rel=1e-9)
    assert np.array_equal(np.argsort(shifted, kind="stable"), np.argsort(pd_, kind="stable"))
    assert calibrator.intercept_ == 0.0  # the original is untouched
    assert 0.2 < delta < 0.6
    with pytest.raises(ValueError, match="both defaults"):
        intercept_shift(pd_, np.zeros_like(y))
    with pytest.raises(ValueError, match="Platt"):
        Calibrator("isotonic").shifted(0.1)


def test_a_shifted_reference_keeps_every_row_in_its_score_bin() -> None:
    import numpy as np

    from models.monitoring.drift import build_reference, psi_against_reference, shifted_reference
    from models.pd.calibration import logit, sigmoid

    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"dbt_12m": rng.gamma(2, 5, 3000)})
    pd_ = sigmoid(rng.normal(-3, 1, 3000))
    moved = sigmoid(logit(pd_) + 0.7)
    reference = build_reference(frame, ["dbt_12m"], pd_)
    score_psi = psi_against_reference(shifted_reference(reference, 0.7), frame, moved)
    assert score_psi.loc[0, "name"] == "score" and score_psi.loc[0, "psi"] < 1e-6
    # against the unshifted reference the same PDs drift: the test can fail
    assert psi_against_reference(reference, frame, moved).loc[0, "psi"] > 0.25
