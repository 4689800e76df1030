"""Features on hand-computed examples, and the point-in-time rule as a property."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from features.catalogue import CATALOGUE, FEATURE_NAMES, catalogue_markdown, monotone_constraints
from features.payment import paydex
from features.snapshot import build_snapshots

AS_OF = pd.Timestamp("2025-06-30")
D = pd.Timestamp


def _tables(
    invoices: list[tuple], financials: list[dict] | None = None, events: list[tuple] | None = None
):
    """Typed lake tables for buyers B1 (DE, 2001) and B2 (PL, 2019); B2 has nothing by default."""
    buyers = pd.DataFrame(
        {
            "buyer_id": ["B1", "B2"],
            "name": ["Alpha", "Beta"],
            "country": ["DE", "PL"],
            "sector": ["C", "F"],
            "legal_form": ["private_limited", None],
            "incorporation_date": [D("2001-05-17"), D("2019-01-02")],
        }
    )
    inv = pd.DataFrame(
        invoices,
        columns=[
            "invoice_id",
            "buyer_id",
            "policyholder_id",
            "issue_date",
            "due_date",
            "paid_date",
            "amount",
        ],
    )
    for c in ("issue_date", "due_date", "paid_date"):
        inv[c] = pd.to_datetime(inv[c]).astype("datetime64[ns]")
    inv["amount"] = inv["amount"].astype("float64")
    inv["currency"] = "EUR"
    fin = pd.DataFrame(
        financials or [], columns=[*STATEMENT, "buyer_id", "period_end", "filing_date"]
    )
    for c in ("period_end", "filing_date"):
        fin[c] = pd.to_datetime(fin[c]).astype("datetime64[ns]")
    ev = pd.DataFrame(
        events or [], columns=["buyer_id", "event_date", "event_type", "policyholder_id", "amount"]
    )
    ev["event_date"] = pd.to_datetime(ev["event_date"]).astype("datetime64[ns]")
    country_risk = pd.DataFrame({"country": ["DE", "PL"], "political_risk_class": [0, 2]})
    return {
        "buyers": buyers,
        "invoices": inv,
        "financials": fin,
        "events": ev,
        "country_risk": country_risk,
    }


STATEMENT = {
    "currency": "EUR", "revenue": 1_000_000.0, "operating_income": 80_000.0, "net_income": 50_000.0,
    "total_assets": 800_000.0, "current_assets": 400_000.0, "cash": 50_000.0, "receivables": 150_000.0,
    "inventory": 100_000.0, "total_liabilities": 500_000.0, "current_liabilities": 250_000.0,
    "long_term_debt": 200_000.0, "equity": 300_000.0, "retained_earnings": 120_000.0,
    "interest_expense": 10_000.0,
}  # fmt: skip

INVOICES = [
    ("I1", "B1", "P1", "2025-01-01", "2025-01-31", "2025-03-02", 100),  # 30 days beyond terms
    ("I2", "B1", "P1", "2025-04-01", "2025-05-01", "2025-05-11", 300),  # 10 days beyond terms
    ("I3", "B1", "P2", "2025-05-01", "2025-05-31", None, 200),  # open, 30 days overdue at as_of
    ("I4", "B1", "P1", "2025-06-01", "2025-07-01", "2025-07-15", 50),  # paid after as_of: open then
    ("I5", "B1", "P3", "2025-07-05", "2025-08-04", None, 999),  # issued after as_of: unknown
    ("I6", "B1", "P1", "2024-01-10", "2024-02-10", "2024-02-05", 100),  # paid > 12 months ago
]


def _row(frame: pd.DataFrame, buyer: str) -> pd.Series:
    return frame.set_index("buyer_id").loc[buyer]


def test_payment_features_by_hand():
    row = _row(build_snapshots(_tables(INVOICES), [AS_OF]), "B1")
    assert row["dbt_3m"] == pytest.approx(10.0)  # only I2 paid in (Mar 30, Jun 30]
    assert row["dbt_6m"] == pytest.approx((100 * 30 + 300 * 10) / 400)
    assert row["dbt_12m"] == pytest.approx(15.0)
    assert row["late30_share_6m"] == pytest.approx(0.25)
    assert row["late30_share_3m"] == pytest.approx(0.0)
    assert row["late60_share_12m"] == pytest.approx(0.0)
    assert row["dbt_trend"] == pytest.approx(10.0 - 30.0)
    assert row["paydex"] == 70  # 15 days after due on average
    assert row["open_amount"] == pytest.approx(250.0)  # I3 and I4 (paid only after as_of)
    assert row["overdue_amount"] == pytest.approx(200.0)
    assert row["overdue_share"] == pytest.approx(0.8)
    assert row["oldest_overdue_days"] == 30
    assert row["invoices_12m"] == 4
    assert row["policyholders_reporting_12m"] == 2  # P1 and P2; P3's invoice is not known yet
    assert row["paid_amount_12m"] == pytest.approx(400.0)
    assert row["no_payment_history"] == 0


def test_dbt_ewm_by_hand_weighs_recent_payments_more():
    # Paid in the 12 months to 2025-06-30, half-life 3 months = 91.3125 days (h):
    #   I1 100 EUR, 30 days beyond terms, paid 120 days before: 100 x 2^(-120/h) = 40.216
    #   I2 300 EUR, 10 days beyond terms, paid  50 days before: 300 x 2^(-50/h) = 205.251
    #   (40.216 x 30 + 205.251 x 10) / (40.216 + 205.251) = 13.2767
    # I6 (paid 2024-02-05, on time) is older than 12 months and I4 is paid after as_of: both
    # left out; counting either would pull the value down.
    row = _row(build_snapshots(_tables(INVOICES), [AS_OF]), "B1")
    assert row["dbt_ewm"] == pytest.approx(13.276668, abs=1e-5)
    assert row["dbt_3m"] < row["dbt_ewm"] < row["dbt_12m"]  # between recent and 12-month


TREND_BOOK = [
    # months 4-12 before 2025-06-30, i.e. paid in (2024-06-30, 2025-03-30]
    ("T1", "B1", "P1", "2024-09-01", "2024-10-01", "2024-10-11", 100),  # 10 days beyond
    ("T2", "B1", "P2", "2024-09-01", "2024-10-01", "2024-11-10", 100),  # 40 days beyond
    ("T3", "B1", "P3", "2024-11-01", "2024-12-01", "2024-12-21", 50),  # 20 days beyond
    # last 3 months, paid in (2025-03-30, 2025-06-30]
    ("T4", "B1", "P1", "2025-04-01", "2025-05-01", "2025-05-11", 300),  # 10 days beyond
    ("T5", "B1", "P2", "2025-03-01", "2025-03-31", "2025-05-10", 100),  # 40 days beyond
    ("T6", "B1", "P3", "2025-03-01", "2025-03-31", "2025-05-20", 50),  # 50 days beyond
    ("T7", "B1", "P4", "2025-01-01", "2025-01-31", "2025-05-01", 80),  # 90 days, recent only
    ("T8", "B1", "P1", "2025-05-01", "2025-05-31", "2025-07-20", 500),  # paid after as_of
]


def test_dbt_trend_by_policyholder_by_hand_ignores_a_change_of_reporting_mix():
    # Per policyholder (recent dbt - dbt of months 4-12): P1 10 - 10 = 0, P2 40 - 40 = 0,
    # P3 50 - 20 = +30; P4 was paid only recently (no trend); T8 is paid after as_of.
    # Mean over P1..P3: (0 + 0 + 30) / 3 = 10.
    # The buyer-level dbt_trend mixes in who reports: recent (300x10 + 100x40 + 50x50 +
    # 80x90) / 530 = 31.509, older (100x10 + 100x40 + 50x20) / 250 = 24, trend 7.509.
    row = _row(build_snapshots(_tables(TREND_BOOK), [AS_OF]), "B1")
    assert row["dbt_trend_3v9m_by_policyholder"] == pytest.approx(10.0)
    assert row["dbt_trend"] == pytest.approx(16700 / 530 - 24)
    assert np.isnan(
        _row(build_snapshots(_tables(TREND_BOOK), [AS_OF]), "B2")["dbt_trend_3v9m_by_policyholder"]
    )


LATE_BOOK = [
    ("L1", "B1", "P1", "2025-03-01", "2025-03-31", "2025-05-15", 100),  # 45 days beyond: late
    ("L2", "B1", "P2", "2025-05-01", "2025-05-31", None, 100),  # open, 30 days past due at as_of
    ("L3", "B1", "P3", "2025-04-01", "2025-05-01", "2025-05-21", 100),  # 20 days beyond: not late
    ("L4", "B1", "P3", "2024-12-01", "2024-12-31", "2025-03-01", 100),  # 60 beyond, in March
    ("L5", "B1", "P4", "2025-05-10", "2025-06-10", "2025-08-15", 100),  # 20 days past due at as_of
    ("L6", "B1", "P5", "2024-03-01", "2024-03-31", "2024-06-20", 100),  # nothing in 12 months
    ("L7", "B1", "P6", "2024-01-15", "2024-02-14", None, 100),  # open since 2024: late
    ("L8", "B1", "P7", "2025-07-05", "2025-08-04", None, 100),  # issued after as_of: unknown
]


def test_late_policyholder_share_by_hand():
    # With experience in the 12 months to 2025-06-30: P1 (paid), P2 (open), P3 (paid),
    # P4 (open at as_of: its late payment on 2025-08-15 is not known yet), P6 (open);
    # not P5 (last paid 2024-06-20) nor P7 (not issued yet). Late: P1 (45 days beyond),
    # P2 (30 days past due), P6 (open 502 days past due); P3's 60-day payment is older than
    # 3 months. 3 / 5 = 0.6. A day earlier L2 is 29 days past due: 2 / 5 = 0.4.
    frame = build_snapshots(_tables(LATE_BOOK), [AS_OF - pd.Timedelta(days=1), AS_OF])
    frame = frame.set_index(["buyer_id", "as_of_date"])
    assert frame.loc[("B1", AS_OF), "late_policyholder_share_3m"] == pytest.approx(0.6)
    assert frame.loc[
        ("B1", AS_OF - pd.Timedelta(days=1)), "late_policyholder_share_3m"
    ] == pytest.approx(0.4)
    assert np.isnan(frame.loc[("B2", AS_OF), "late_policyholder_share_3m"])


VOLUME_BOOK = [
    ("V1", "B1", "P1", "2024-03-30", "2024-04-29", "2024-04-29", 1000),  # day before the base
    ("V2", "B1", "P1", "2024-04-15", "2024-05-15", "2024-05-15", 100),  # base
    ("V3", "B1", "P2", "2024-06-30", "2024-07-30", "2024-07-30", 300),  # base (its last day)
    ("V4", "B1", "P1", "2025-04-10", "2025-05-10", None, 200),  # last 3 months
    ("V5", "B1", "P2", "2025-06-30", "2025-07-30", None, 100),  # last 3 months (as_of)
    ("V6", "B1", "P1", "2025-07-01", "2025-07-31", None, 5000),  # issued after as_of
    ("V7", "B2", "P1", "2024-05-01", "2024-05-31", "2024-05-31", 50),  # base, nothing since
]


def test_invoice_volume_change_by_hand():
    # Base (2024-03-30, 2024-06-30]: B1 100 + 300 = 400; last 3 months (2025-03-30,
    # 2025-06-30]: 200 + 100 = 300 -> 300 / 400 - 1 = -0.25. B2 stopped buying: -1.
    frame = build_snapshots(_tables(VOLUME_BOOK), [AS_OF]).set_index("buyer_id")
    assert frame.loc["B1", "invoice_volume_change_12m"] == pytest.approx(-0.25)
    assert frame.loc["B2", "invoice_volume_change_12m"] == pytest.approx(-1.0)
    # Without a base invoice: missing (B1 of the main book, nothing issued in the base).
    assert np.isnan(
        _row(build_snapshots(_tables(INVOICES), [AS_OF]), "B1")["invoice_volume_change_12m"]
    )
    # When the data start inside the base period (first invoice V2, 2024-04-15), every base
    # is truncated: missing, not a made-up growth.
    later = [inv for inv in VOLUME_BOOK if inv[0] != "V1"]
    frame = build_snapshots(_tables(later), [AS_OF]).set_index("buyer_id")
    assert frame["invoice_volume_change_12m"].isna().all()


def test_days_since_last_payment_by_hand():
    # B1's payments: I6 on 2024-02-05, I1 on 2025-03-02, I2 on 2025-05-11, I4 on 2025-07-15.
    # 2024-02-04: none yet (missing); 2024-02-05: paid that day (0); 2025-06-30: I2, 50 days
    # (I4 is paid after that date); 2025-07-20: I4, 5 days. B2 never paid: missing.
    dates = [D("2024-02-04"), D("2024-02-05"), AS_OF, D("2025-07-20")]
    frame = build_snapshots(_tables(INVOICES), dates).set_index(["buyer_id", "as_of_date"])
    days = frame.loc["B1", "days_since_last_payment"]
    assert np.isnan(days[D("2024-02-04")])
    assert list(days.iloc[1:]) == [0, 50, 5]
    assert frame.loc["B2", "days_since_last_payment"].isna().all()


def test_buyer_without_invoices_or_statements_keeps_missing_values():
    row = _row(build_snapshots(_tables(INVOICES), [AS_OF]), "B2")
    for name in (
        "dbt_3m",
        "dbt_12m",
        "late30_share_12m",
        "paydex",
        "overdue_share",
        "current_ratio",
        "altman_z",
    ):
        assert np.isnan(row[name]), name
    assert row["no_payment_history"] == 1
    assert row["no_statement"] == 1
    assert row["open_amount"] == 0 and row["oldest_overdue_days"] == 0
    assert row["political_risk_class"] == 2
    assert row["company_age_years"] == pytest.approx((AS_OF - D("2019-01-02")).days / 365.25)


def test_financial_features_by_hand_use_the_latest_filed_statement():
    statements = [
        {**STATEMENT, "buyer_id": "B1", "period_end": "2024-12-31", "filing_date": "2025-06-30"},
        {**STATEMENT, "buyer_id": "B1", "period_end": "2023-12-31", "filing_date": "2024-05-01",
         "revenue": 800_000.0, "operating_income": 40_000.0, "equity": 250_000.0, "total_liabilities": 550_000.0},
        # filed after as_of: must not be used
        {**STATEMENT, "buyer_id": "B1", "period_end": "2025-03-31", "filing_date": "2025-07-10",
         "revenue": 1.0},
    ]  # fmt: skip
    row = _row(build_snapshots(_tables(INVOICES, statements), [AS_OF]), "B1")
    assert row["current_ratio"] == pytest.approx(1.6)
    assert row["quick_ratio"] == pytest.approx(1.2)
    assert row["cash_ratio"] == pytest.approx(0.2)
    assert row["liabilities_to_assets"] == pytest.approx(0.625)
    assert row["debt_to_equity"] == pytest.approx(500 / 300)
    assert row["negative_equity"] == 0
    assert row["interest_cover"] == pytest.approx(8.0)
    assert row["return_on_assets"] == pytest.approx(0.0625)
    assert row["operating_margin"] == pytest.approx(0.08)
    assert row["receivable_days"] == pytest.approx(54.75)
    assert row["log_turnover"] == pytest.approx(np.log1p(1e6))
    assert row["altman_z"] == pytest.approx(
        0.717 * 0.1875 + 0.847 * 0.15 + 3.107 * 0.1 + 0.42 * 0.6 + 0.998 * 1.25
    )
    assert row["revenue_growth"] == pytest.approx(0.25)
    assert row["equity_growth"] == pytest.approx(50 / 250)
    assert row["margin_change"] == pytest.approx(0.08 - 0.05)
    assert row["statement_age_months"] == pytest.approx(181 / (365.25 / 12))
    assert row["no_statement"] == 0 and row["abbreviated_statement"] == 0
    assert row["size_class"] == 0  # 1M turnover: micro
    # one day earlier the 2024 statement was not filed yet: the 2023 one is used
    before = _row(
        build_snapshots(_tables(INVOICES, statements), [AS_OF - pd.Timedelta(days=1)]), "B1"
    )
    assert before["operating_margin"] == pytest.approx(0.05)
    assert np.isnan(before["revenue_growth"])


def test_negative_equity_and_no_interest():
    statements = [{**STATEMENT, "buyer_id": "B1", "period_end": "2024-12-31", "filing_date": "2025-03-01",
                   "equity": -10_000.0, "total_liabilities": 810_000.0, "interest_expense": 0.0}]  # fmt: skip
    row = _row(build_snapshots(_tables(INVOICES, statements), [AS_OF]), "B1")
    assert row["negative_equity"] == 1
    assert np.isnan(row["debt_to_equity"])
    assert row["interest_cover"] == 100.0


def test_known_default_is_flagged_point_in_time():
    events = [("B1", "2025-06-15", "insolvency", None, None)]
    frame = build_snapshots(
        _tables(INVOICES, events=events), ["2025-06-14", "2025-06-15"]
    ).set_index(["buyer_id", "as_of_date"])
    assert not frame.loc[("B1", D("2025-06-14")), "in_default_at_as_of"]
    assert frame.loc[("B1", D("2025-06-15")), "in_default_at_as_of"]
    assert not frame.loc[("B2", D("2025-06-15")), "in_default_at_as_of"]


def test_buyers_not_yet_incorporated_are_left_out():
    frame = build_snapshots(_tables(INVOICES), ["2018-12-31", "2019-01-02"])
    assert sorted(frame.loc[frame["as_of_date"] == D("2018-12-31"), "buyer_id"]) == ["B1"]
    assert sorted(frame.loc[frame["as_of_date"] == D("2019-01-02"), "buyer_id"]) == ["B1", "B2"]


def test_unknown_incorporation_date_gives_a_missing_age_not_a_huge_one():
    tables = _tables(INVOICES)
    tables["buyers"].loc[1, "incorporation_date"] = pd.NaT
    frame = build_snapshots(tables, [AS_OF]).set_index("buyer_id")
    assert np.isnan(frame.loc["B2", "company_age_years"])
    assert frame.loc["B1", "company_age_years"] == pytest.approx(
        (AS_OF - D("2001-05-17")).days / 365.25
    )


def test_paydex_mapping_is_monotone_and_anchored():
    days = np.array([-60, -30, 0, 15, 30, 90, 120, 400, np.nan])
    idx = paydex(days)
    assert list(idx[:-1]) == [100, 100, 80, 70, 50, 30, 20, 1]
    assert np.isnan(idx[-1])
    grid = np.linspace(-50, 300, 500)
    assert np.all(np.diff(paydex(grid)) <= 0)


def test_catalogue_lists_every_snapshot_feature_once():
    frame = build_snapshots(_tables(INVOICES), [AS_OF])
    assert list(frame.columns) == ["buyer_id", "as_of_date", *FEATURE_NAMES, "in_default_at_as_of"]
    assert len(set(FEATURE_NAMES)) == len(FEATURE_NAMES)
    for name in FEATURE_NAMES:
        f = CATALOGUE[name]
        assert f.description and f.unit and f.source
        if f.risk_direction != "none":
            assert f.reason, name
    assert set(monotone_constraints(FEATURE_NAMES)) <= {-1, 0, 1}
    assert "`dbt_12m`" in catalogue_markdown()


# --------------------------------------------------------------------------------------
# The point-in-time rule, as properties over random books.
# --------------------------------------------------------------------------------------

DAY0 = pd.Timestamp("2024-01-01")


@st.composite
def books(draw, max_invoices: int = 25, min_invoices: int = 0):
    """A random small book: invoices, statements and events for two buyers over ~2 years."""
    n_inv = draw(st.integers(min_invoices, max_invoices))
    invoices = []
    for i in range(n_inv):
        issue = draw(st.integers(0, 700))
        terms = draw(st.sampled_from([0, 30, 60, 90]))
        delay = draw(st.one_of(st.none(), st.integers(-20, 200)))
        paid = (
            None if delay is None else DAY0 + pd.Timedelta(days=max(issue, issue + terms + delay))
        )
        invoices.append(
            (f"I{i}", draw(st.sampled_from(["B1", "B2"])), draw(st.sampled_from(["P1", "P2", "P3"])),
             DAY0 + pd.Timedelta(days=issue), DAY0 + pd.Timedelta(days=issue + terms), paid,
             draw(st.floats(1, 1e5)))
        )  # fmt: skip
    statements = []
    for year in draw(st.lists(st.integers(2022, 2025), unique=True, max_size=4)):
        for buyer in draw(st.sets(st.sampled_from(["B1", "B2"]), min_size=1)):
            scale = draw(st.floats(0.5, 2.0))
            statements.append(
                {**{k: (v * scale if isinstance(v, float) else v) for k, v in STATEMENT.items()},
                 "buyer_id": buyer, "period_end": f"{year}-12-31",
                 "filing_date": pd.Timestamp(f"{year + 1}-01-01") + pd.Timedelta(days=draw(st.integers(60, 300)))}
            )  # fmt: skip
    events = [
        (draw(st.sampled_from(["B1", "B2"])), DAY0 + pd.Timedelta(days=draw(st.integers(0, 800))),
         draw(st.sampled_from(["overdue_notification", "legal_dispute", "insolvency", "claim_filed"])), None, None)
        for _ in range(draw(st.integers(0, 5)))
    ]  # fmt: skip
    as_of = DAY0 + pd.Timedelta(days=draw(st.integers(30, 760)))
    return invoices, statements, events, as_of


def _future_variant(draw, invoices, statements, events, as_of):
    """Add, change or delete facts dated after as_of only."""
    after = lambda: as_of + pd.Timedelta(days=draw(st.integers(1, 400)))  # noqa: E731
    new_inv = []
    for inv in invoices:
        iid, b, p, issue, due, paid, amt = inv
        if issue > as_of:
            choice = draw(st.sampled_from(["keep", "drop", "change"]))
            if choice == "drop":
                continue
            if choice == "change":
                amt = amt * 3
        elif paid is not None and paid > as_of:
            paid = draw(st.sampled_from([None, max(after(), issue)]))
        new_inv.append((iid, b, p, issue, due, paid, amt))
    for j in range(draw(st.integers(0, 3))):
        issue = after()
        new_inv.append(
            (f"X{j}", draw(st.sampled_from(["B1", "B2"])), "P9", issue, issue, None, 5.0)
        )
    new_fin = [s for s in statements if pd.Timestamp(s["filing_date"]) <= as_of]
    if draw(st.booleans()):
        new_fin.append(
            {
                **STATEMENT,
                "buyer_id": "B1",
                "period_end": as_of,
                "filing_date": after(),
                "revenue": 1.0,
            }
        )
    new_ev = [e for e in events if e[1] <= as_of]
    new_ev += [
        ("B1", after(), draw(st.sampled_from(["insolvency", "overdue_notification"])), None, None)
    ]
    return new_inv, new_fin, new_ev


def _features_equal(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(
        a.reset_index(drop=True), b.reset_index(drop=True), check_exact=False, rtol=1e-9
    )


#: Shrinking a failing book takes minutes: report the failing example as generated.
PROPERTY = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow],
    "phases": [Phase.explicit, Phase.reuse, Phase.generate],
}


def _check_future_facts_change_nothing(book, draw) -> None:
    invoices, statements, events, as_of = book
    base = build_snapshots(_tables(invoices, statements, events), [as_of])
    variant = _future_variant(draw, invoices, statements, events, as_of)
    _features_equal(base, build_snapshots(_tables(*variant), [as_of]))


def _check_dates_together_equal_alone(book, offsets) -> None:
    invoices, statements, events, as_of = book
    tables = _tables(invoices, statements, events)
    dates = sorted(as_of + pd.Timedelta(days=o) for o in offsets)
    together = build_snapshots(tables, dates)
    for date in dates:
        alone = build_snapshots(tables, [date])
        _features_equal(together[together["as_of_date"] == date], alone)


#: Books busy enough that the features needing payments in two periods (the per-policyholder
#: trend, the year-on-year volume change) are known in a good share of examples (about 50 %
#: and 25 %, against 7 % on the default books).
BUSY = {"max_invoices": 80, "min_invoices": 30}
OFFSETS = st.lists(st.integers(-200, 200), min_size=2, max_size=5, unique=True)


@settings(max_examples=60, **PROPERTY)
@given(book=books(), data=st.data())
def test_facts_dated_after_as_of_never_change_features(book, data):
    _check_future_facts_change_nothing(book, data.draw)


@settings(max_examples=30, **PROPERTY)
@given(book=books(**BUSY), data=st.data())
def test_facts_dated_after_as_of_never_change_features_of_busy_books(book, data):
    _check_future_facts_change_nothing(book, data.draw)


@settings(max_examples=40, **PROPERTY)
@given(book=books(), offsets=OFFSETS)
def test_many_dates_in_one_call_equal_one_call_per_date(book, offsets):
    _check_dates_together_equal_alone(book, offsets)


@settings(max_examples=20, **PROPERTY)
@given(book=books(**BUSY), offsets=OFFSETS)
def test_many_dates_in_one_call_equal_one_call_per_date_on_busy_books(book, offsets):
    _check_dates_together_equal_alone(book, offsets)


def test_catalogue_document_is_generated_from_the_catalogue():
    from pathlib import Path

    text = (Path(__file__).parents[1] / "features" / "CATALOGUE.md").read_text(encoding="utf-8")
    assert catalogue_markdown() in text, "regenerate: solvency catalogue --markdown"
