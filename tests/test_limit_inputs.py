"""The limit engine's inputs on tiny hand-built tables: point in time, nothing dropped."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from data.reference import EVENT_TYPES
from features.financial import DAYS_PER_MONTH
from models.limits.engine import PAIR_COLUMNS, recommend_limits
from models.limits.inputs import (
    PAIR_KEY,
    assemble_pairs,
    last_decrease_dates,
    last_event_dates,
    paid_within_terms,
)
from models.limits.policy import load_policy

AS_OF = pd.Timestamp("2026-06-30")
D = pd.Timestamp

STATEMENT = {
    "currency": "EUR", "revenue": 1_000_000.0, "operating_income": 80_000.0, "net_income": 50_000.0,
    "total_assets": 800_000.0, "current_assets": 400_000.0, "cash": 50_000.0, "receivables": 150_000.0,
    "inventory": 100_000.0, "total_liabilities": 500_000.0, "current_liabilities": 250_000.0,
    "long_term_debt": 200_000.0, "equity": 300_000.0, "retained_earnings": 120_000.0,
    "interest_expense": 10_000.0,
}  # fmt: skip
INVOICE_COLUMNS = ["invoice_id", "buyer_id", "policyholder_id", "issue_date", "due_date"]
INVOICE_COLUMNS += ["paid_date", "amount"]
EVENT_COLUMNS = ["buyer_id", "event_date", "event_type", "policyholder_id", "amount"]


def _dates(frame: pd.DataFrame, *columns: str) -> pd.DataFrame:
    for column in columns:
        frame[column] = pd.to_datetime(frame[column]).astype("datetime64[ns]")
    return frame


def statement(buyer: str, period_end: str, filing_date: str, **amounts: float) -> dict[str, Any]:
    """One financial statement (the FINANCIALS contract's columns)."""
    return {
        "buyer_id": buyer,
        "period_end": period_end,
        "filing_date": filing_date,
        **STATEMENT,
        **amounts,
    }


def invoices(*rows: tuple) -> pd.DataFrame:
    """Typed invoices from (id, buyer, policyholder, issue, due, paid, amount) tuples."""
    frame = _dates(pd.DataFrame(list(rows), columns=INVOICE_COLUMNS), "issue_date", "due_date")
    frame = _dates(frame, "paid_date")
    frame["amount"] = frame["amount"].astype("float64")
    frame["currency"] = "EUR"
    return frame


def events(*rows: tuple) -> pd.DataFrame:
    """Typed events from (buyer, date, type, policyholder, amount) tuples."""
    frame = _dates(pd.DataFrame(list(rows), columns=EVENT_COLUMNS), "event_date")
    frame["amount"] = frame["amount"].astype("float64")
    return frame


def tables(
    financials: list[dict[str, Any]] | None = None,
    invoice_rows: list[tuple] | None = None,
    event_rows: list[tuple] | None = None,
) -> dict[str, pd.DataFrame]:
    """Three limits: P2 and P1 on B1 (listed out of key order), P1 on B2."""
    limits = pd.DataFrame(
        {
            "policyholder_id": ["P2", "P1", "P1"],
            "buyer_id": ["B1", "B1", "B2"],
            "limit_amount": [50_000.0, 100_000.0, 20_000.0],
            "requested_amount": [np.nan, 150_000.0, np.nan],
            "exposure": [10_000.0, 60_000.0, 0.0],
            "decision_date": [D("2025-01-01")] * 3,
        }
    )
    policies = pd.DataFrame(
        {
            "policyholder_id": ["P1", "P2"],
            "scheme": ["first_euro", "excess_of_loss"],
            "indemnity_pct": [90.0, 85.0],
            "claim_waiting_days": pd.array([120, 90], dtype="Int64"),
            "discretionary_limit": [0.0, 50_000.0],
            "aggregate_first_loss": [np.nan, 100_000.0],
        }
    )
    buyers = pd.DataFrame(
        {
            "buyer_id": ["B1", "B2"],
            "name": ["Alpha GmbH", "Beta sp. z o.o."],
            "country": ["DE", "PL"],
            "sector": ["C", "F"],
            "legal_form": ["private_limited", None],
            "incorporation_date": [D("2001-05-17"), D("2019-01-02")],
        }
    )
    fin = pd.DataFrame(
        financials or [], columns=["buyer_id", "period_end", "filing_date", *STATEMENT]
    )
    fin = _dates(fin, "period_end", "filing_date")
    return {
        "limits": limits,
        "policies": policies,
        "buyers": buyers,
        "financials": fin,
        "invoices": invoices(*(invoice_rows or [])),
        "events": events(*(event_rows or [])),
    }


SCORES = pd.DataFrame({"buyer_id": ["B1", "B2"], "pd": [0.01, 0.03], "grade": [4, 6]})
FEATURES = pd.DataFrame(
    {"buyer_id": ["B1", "B2"], "political_risk_class": [0, 2], "oldest_overdue_days": [0, 75]}
)


def assemble(**kwargs: Any) -> pd.DataFrame:
    """assemble_pairs at AS_OF with default scores and features (overridable)."""
    args: dict[str, Any] = {
        "scores": SCORES,
        "features": FEATURES,
        "grace_days": load_policy().capacity.payment_grace_days,
        **kwargs,
    }
    t = args.pop("tables", None) or tables()
    return assemble_pairs(AS_OF, t, **args)


def row(pairs: pd.DataFrame, policyholder: str, buyer: str) -> pd.Series:
    return pairs.set_index(PAIR_KEY).loc[(policyholder, buyer)]


# --------------------------------------------------------------------------------------
# Shape: one row per limit, every column the engine needs.
# --------------------------------------------------------------------------------------


def test_one_row_per_limit_with_every_engine_column():
    pairs = assemble()
    assert len(pairs) == 3
    assert list(zip(pairs["policyholder_id"], pairs["buyer_id"], strict=True)) == [
        ("P1", "B1"),
        ("P1", "B2"),
        ("P2", "B1"),
    ]
    assert set(PAIR_COLUMNS) <= set(pairs.columns)
    assert (pairs["as_of_date"] == AS_OF).all()
    assert pairs["previous_grade"].dtype == "Int64"
    for column in [c for c in PAIR_COLUMNS if c.endswith("_date")]:
        assert pairs[column].dtype == "datetime64[ns]", column


def test_policy_buyer_score_and_features_are_joined_to_each_pair():
    p2 = row(assemble(), "P2", "B1")
    assert p2["scheme"] == "excess_of_loss" and p2["indemnity_pct"] == 85.0
    assert p2["discretionary_limit"] == 50_000.0
    assert p2["country"] == "DE" and p2["political_risk_class"] == 0
    assert p2["pd"] == 0.01 and p2["grade"] == 4
    b2 = row(assemble(), "P1", "B2")
    assert b2["oldest_overdue_days"] == 75 and b2["grade"] == 6
    p1 = row(assemble(), "P1", "B1")
    assert p1["limit_amount"] == 100_000.0 and p1["requested_amount"] == 150_000.0
    assert p1["exposure"] == 60_000.0


def test_a_buyer_without_a_score_keeps_its_pairs_with_a_missing_grade():
    pairs = assemble(scores=SCORES.iloc[:1])
    assert len(pairs) == 3
    b2 = row(pairs, "P1", "B2")
    assert np.isnan(b2["grade"]) and np.isnan(b2["pd"])
    recs = recommend_limits(pairs, load_policy(), "m").set_index(PAIR_KEY)
    assert recs.loc[("P1", "B2"), "action"] == "refer"
    assert recs.loc[("P1", "B2"), "reason_codes"] == "NO_SCORE"


def test_a_buyer_without_features_keeps_its_pairs():
    pairs = assemble(features=FEATURES.iloc[:1])
    assert len(pairs) == 3
    assert np.isnan(row(pairs, "P1", "B2")["political_risk_class"])


def test_previous_grades_are_joined_and_missing_ones_stay_missing():
    previous = pd.DataFrame({"buyer_id": ["B1"], "grade": [2]})
    pairs = assemble(previous_scores=previous)
    assert row(pairs, "P1", "B1")["previous_grade"] == 2
    assert pd.isna(row(pairs, "P1", "B2")["previous_grade"])
    assert assemble(previous_scores=None)["previous_grade"].isna().all()


# --------------------------------------------------------------------------------------
# Point in time: statements, events, payments.
# --------------------------------------------------------------------------------------


def test_a_statement_filed_after_as_of_is_not_used():
    statements = [
        statement("B1", "2024-12-31", "2025-04-30", equity=300_000.0, revenue=1_000_000.0),
        statement("B1", "2025-12-31", "2026-07-15", equity=5_000.0, revenue=7.0,
                  total_assets=505_000.0),
    ]  # fmt: skip
    pairs = assemble(tables=tables(financials=statements))
    b1 = row(pairs, "P1", "B1")
    assert b1["equity"] == 300_000.0 and b1["turnover"] == 1_000_000.0
    age = (AS_OF - D("2024-12-31")).days / DAYS_PER_MONTH
    assert b1["statement_age_months"] == pytest.approx(age)
    b2 = row(pairs, "P1", "B2")
    assert np.isnan(b2["equity"]) and np.isnan(b2["statement_age_months"])


def test_a_statement_filed_on_as_of_is_used():
    statements = [
        statement("B1", "2024-12-31", "2025-04-30"),
        statement("B1", "2025-12-31", "2026-06-30", equity=400_000.0, total_assets=900_000.0),
    ]
    b1 = row(assemble(tables=tables(financials=statements)), "P1", "B1")
    assert b1["equity"] == 400_000.0


def test_an_event_after_as_of_is_not_seen():
    rows = [
        ("B1", "2026-07-01", "insolvency", None, None),
        ("B1", "2026-06-30", "claim_filed", "P1", 700.0),
        ("B1", "2026-02-01", "claim_filed", "P2", 900.0),
        ("B1", "2026-07-10", "claim_filed", "P2", 100.0),
        ("B2", "2026-05-01", "overdue_notification", "P1", 50.0),
    ]
    pairs = assemble(tables=tables(event_rows=rows))
    b1 = row(pairs, "P2", "B1")
    assert pd.isna(b1["last_insolvency_date"])
    assert b1["last_claim_filed_date"] == D("2026-06-30")  # the latest known, not a later one
    assert pd.isna(b1["last_overdue_notification_date"])
    b2 = row(pairs, "P1", "B2")
    assert b2["last_overdue_notification_date"] == D("2026-05-01")
    assert pd.isna(b2["last_claim_filed_date"])


def test_an_insolvency_known_at_as_of_cancels_end_to_end():
    rows = [("B1", "2026-06-01", "insolvency", None, None)]
    pairs = assemble(tables=tables(event_rows=rows))
    recs = recommend_limits(pairs, load_policy(), "m").set_index(PAIR_KEY)
    assert (recs.loc[[("P1", "B1"), ("P2", "B1")], "action"] == "cancel").all()
    assert recs.loc[("P1", "B2"), "action"] != "cancel"


def test_a_payment_after_as_of_is_not_counted():
    rows = [
        ("I1", "B1", "P1", "2026-01-01", "2026-02-01", "2026-02-20", 1_000.0),  # on time
        ("I2", "B1", "P1", "2026-05-01", "2026-06-01", "2026-07-10", 2_000.0),  # after as_of
        ("I3", "B1", "P2", "2026-05-01", "2026-06-15", "2026-06-30", 4_000.0),  # on as_of
        ("I4", "B1", "P2", "2026-05-01", "2026-06-15", None, 8_000.0),  # open
    ]
    pairs = assemble(tables=tables(invoice_rows=rows))
    assert row(pairs, "P1", "B1")["paid_within_terms_12m"] == 5_000.0
    assert row(pairs, "P1", "B2")["paid_within_terms_12m"] == 0.0  # no invoices: zero


def test_grace_days_reach_the_pairs():
    rows = [("I1", "B1", "P1", "2026-01-01", "2026-02-01", "2026-02-21", 1_000.0)]  # 20 late
    t = tables(invoice_rows=rows)
    assert row(assemble(tables=t, grace_days=20), "P1", "B1")["paid_within_terms_12m"] == 1_000.0
    assert row(assemble(tables=t, grace_days=19), "P1", "B1")["paid_within_terms_12m"] == 0.0


def test_paid_within_terms_respects_grace_days_and_the_window():
    inv = invoices(
        ("I1", "B1", "P1", "2026-01-01", "2026-02-01", "2026-03-03", 100.0),  # 30 days late
        ("I2", "B1", "P1", "2026-01-01", "2026-02-01", "2026-03-04", 200.0),  # 31 days late
        ("I3", "B1", "P1", "2025-05-01", "2025-06-30", "2025-06-30", 400.0),  # 12 months ago
        ("I4", "B1", "P1", "2025-05-01", "2025-07-01", "2025-07-01", 800.0),  # inside
        ("I5", "B2", "P1", "2026-06-01", "2026-06-20", "2026-06-01", 1_600.0),  # early
        ("I6", "B2", "P1", "2026-06-01", "2026-06-20", None, 3_200.0),  # unpaid
    )
    paid = paid_within_terms(inv, AS_OF, grace_days=30)
    assert paid.to_dict() == {"B1": 900.0, "B2": 1_600.0}
    assert paid_within_terms(inv, AS_OF, grace_days=0).to_dict() == {"B1": 800.0, "B2": 1_600.0}
    six_months = paid_within_terms(inv, AS_OF, grace_days=30, months=6)
    assert six_months.to_dict() == {"B1": 100.0, "B2": 1_600.0}


def test_last_event_dates_has_a_column_per_event_type():
    ev = events(
        ("B1", "2026-01-01", "legal_dispute", None, None),
        ("B1", "2026-03-01", "legal_dispute", None, None),
        ("B1", "2026-08-01", "liquidation", None, None),
    )
    wide = last_event_dates(ev, AS_OF)
    assert list(wide.columns) == [f"last_{e}_date" for e in sorted(EVENT_TYPES)]
    assert wide.loc["B1", "last_legal_dispute_date"] == D("2026-03-01")
    assert pd.isna(wide.loc["B1", "last_liquidation_date"])
    assert (wide.dtypes == "datetime64[ns]").all()


def test_no_events_known_gives_missing_dates():
    ev = events(("B1", "2026-08-01", "insolvency", None, None))
    pairs = assemble(tables=tables(event_rows=[("B1", "2026-08-01", "insolvency", None, None)]))
    assert last_event_dates(ev, AS_OF).empty
    for event in sorted(EVENT_TYPES):
        assert pairs[f"last_{event}_date"].isna().all()
        assert pairs[f"last_{event}_date"].dtype == "datetime64[ns]"


# --------------------------------------------------------------------------------------
# Hysteresis: the last earlier decrease per pair.
# --------------------------------------------------------------------------------------

HISTORY = pd.DataFrame(
    {
        "policyholder_id": ["P1", "P1", "P1", "P1", "P2", "P1"],
        "buyer_id": ["B1", "B1", "B1", "B1", "B1", "B2"],
        "as_of_date": pd.to_datetime(
            ["2026-01-31", "2026-04-15", "2026-05-31", "2026-06-30", "2026-02-28", "2026-04-30"]
        ).astype("datetime64[ns]"),
        "proposed_action": ["cancel", "decrease", "maintain", "decrease", "increase", "cancel"],
    }
)


def test_last_decrease_is_the_latest_decrease_or_cancel_up_to_as_of():
    # a run of the day itself counts (the request desk answers after the day's run)
    out = last_decrease_dates(HISTORY, AS_OF).set_index(PAIR_KEY)["last_decrease_date"]
    assert out.to_dict() == {("P1", "B1"): D("2026-06-30"), ("P1", "B2"): D("2026-04-30")}
    earlier = last_decrease_dates(HISTORY, D("2026-06-29")).set_index(PAIR_KEY)
    assert earlier["last_decrease_date"].to_dict()[("P1", "B1")] == D("2026-04-15")
    pairs = assemble(history=HISTORY)
    assert row(pairs, "P1", "B1")["last_decrease_date"] == D("2026-06-30")
    assert row(pairs, "P1", "B2")["last_decrease_date"] == D("2026-04-30")
    assert pd.isna(row(pairs, "P2", "B1")["last_decrease_date"])  # only an increase


@pytest.mark.parametrize("history", [None, HISTORY.iloc[:0]])
def test_without_history_there_is_no_last_decrease(history: pd.DataFrame | None):
    empty = last_decrease_dates(history, AS_OF)
    assert list(empty.columns) == [*PAIR_KEY, "last_decrease_date"] and empty.empty
    pairs = assemble(history=history)
    assert len(pairs) == 3 and pairs["last_decrease_date"].isna().all()
    assert pairs["last_decrease_date"].dtype == "datetime64[ns]"


def test_a_recent_decrease_blocks_the_request_end_to_end():
    statements = [statement("B1", "2025-12-31", "2026-03-31", equity=2_000_000.0,
                            total_assets=2_500_000.0, revenue=10_000_000.0)]  # fmt: skip
    t = tables(financials=statements)
    policy = load_policy()
    granted = recommend_limits(assemble(tables=t), policy, "m").set_index(PAIR_KEY)
    assert granted.loc[("P1", "B1"), "action"] == "increase"
    blocked = recommend_limits(assemble(tables=t, history=HISTORY), policy, "m")
    reasons = blocked.set_index(PAIR_KEY).loc[("P1", "B1"), "reason_codes"]
    assert reasons == "REQUEST_DECLINED_RECENT_DECREASE"
