"""The drift reference is what the champion was fitted on: on a generated book where nothing
changes, today's features show no red PSI against it; an injected shift turns exactly the
shifted features red. Warm-up months (payment windows cut by the start of the data) in the
reference would raise false alarms, so the training plan leaves them out."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from features.catalogue import CATALOGUE, FEATURE_NAMES
from features.snapshot import build_snapshots
from features.training import build_training_set, monthly_as_of_dates, plan_training
from models.monitoring.drift import build_reference, psi_against_reference
from models.pd.validation import RED

END = dt.date(2026, 11, 30)
SHIFTED = ["dbt_3m", "dbt_6m", "dbt_12m"]


def _pd(frame: pd.DataFrame) -> np.ndarray:
    """A transparent score (days beyond terms); the reference's score bins need one."""
    z = -3.5 + 0.04 * frame["dbt_12m"].astype("float64").fillna(0.0).to_numpy()
    return 1 / (1 + np.exp(-z))


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    from data.generator import GeneratorConfig, generate_portfolio, write_portfolio
    from data.ingest import ingest_directory
    from data.lake import Lake
    from flows.features import FEATURE_INPUTS

    root = tmp_path_factory.mktemp("drift")
    config = GeneratorConfig(n_buyers=1200, months=46, end_date=END, seed=23)
    write_portfolio(generate_portfolio(config), root / "src", fmt="parquet")
    ingest_directory(root / "src", Lake(root / "lake"), END)
    tables = Lake(root / "lake").read_tables(FEATURE_INPUTS)
    first = tables["invoices"]["issue_date"].min()
    end = pd.Timestamp(END)
    plan = plan_training(monthly_as_of_dates(first + pd.offsets.MonthEnd(0), end), end, first)
    start = first + pd.offsets.MonthEnd(0)
    rows = build_training_set(tables, start, plan.last_matured, end)
    today = build_snapshots(tables, [end])
    today = today.loc[~today["in_default_at_as_of"].fillna(False).astype(bool)]
    return {"rows": rows, "plan": plan, "today": today}


def _reds(reference: dict, today: pd.DataFrame, month: int | None = END.month) -> set[str]:
    psi = psi_against_reference(reference, today, _pd(today), month)
    return set(psi.loc[psi["light"].eq(RED) & psi["name"].ne("score"), "name"])


def _reference(rows: pd.DataFrame) -> dict:
    months = rows["as_of_date"].dt.month.to_numpy()
    return build_reference(rows, FEATURE_NAMES, _pd(rows), months=months)


def test_an_unchanged_book_shows_no_red_feature_against_the_fitted_rows(book) -> None:
    rows = book["rows"]
    fitted = rows.loc[rows["as_of_date"] >= book["plan"].first_as_of]
    reference = _reference(fitted)
    assert _reds(reference, book["today"]) == set()
    # against the average of the year, the filing and invoicing seasons look like drift
    assert "statement_age_months" in _reds(reference, book["today"], month=None)
    # with the warm-up months in the reference, the cut payment windows raise false alarms
    warm_up = _reds(_reference(rows), book["today"], month=None)
    windowed = {"dbt_12m", "paydex", "invoices_12m", "paid_amount_12m",
                "invoice_volume_change_12m", "days_since_last_payment"}  # fmt: skip
    assert warm_up & windowed, warm_up


def test_an_injected_shift_turns_exactly_the_shifted_features_red(book) -> None:
    rows = book["rows"]
    reference = _reference(rows.loc[rows["as_of_date"] >= book["plan"].first_as_of])
    shifted = book["today"].copy()
    for name in SHIFTED:
        assert CATALOGUE[name].unit == "days"
        shifted[name] = shifted[name] + 25.0  # every buyer pays 25 days later
    assert _reds(reference, shifted) == set(SHIFTED)
