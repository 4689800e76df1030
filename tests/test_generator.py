"""Tests of the synthetic portfolio generator: contract shape, consistency and realism.

The realism tests compare measured behaviour (default rates, payment delays, calibration of
the true PD) with what the configuration asks for; nothing here is a stored expected value.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy.stats import mannwhitneyu

from data.generator import (
    INPUT_TABLES,
    TRUTH_TABLES,
    GeneratorConfig,
    Portfolio,
    generate_portfolio,
    write_portfolio,
)
from data.reference import (
    EVENT_TYPES,
    ISO_COUNTRIES,
    LEGAL_FORMS,
    NACE_SECTIONS,
    POLICY_SCHEMES,
)
from features.financial import DAYS_PER_MONTH
from features.labels import first_default_dates
from models.limits.book import limits_as_of
from models.limits.engine import buyer_capacity
from models.limits.policy import load_policy
from models.master_scale import MASTER_SCALE

END = pd.Timestamp("2026-11-30")

COLUMNS = {
    "buyers": ["buyer_id", "name", "country", "sector", "legal_form", "incorporation_date"],
    "financials": [
        "buyer_id", "period_end", "filing_date", "currency", "revenue", "operating_income",
        "net_income", "total_assets", "current_assets", "cash", "receivables", "inventory",
        "total_liabilities", "current_liabilities", "long_term_debt", "equity",
        "retained_earnings", "interest_expense",
    ],
    "invoices": [
        "invoice_id", "buyer_id", "policyholder_id", "issue_date", "due_date", "paid_date",
        "amount", "currency",
    ],
    "events": ["buyer_id", "event_date", "event_type", "policyholder_id", "amount"],
    "policies": [
        "policyholder_id", "scheme", "indemnity_pct", "claim_waiting_days",
        "discretionary_limit", "aggregate_first_loss",
    ],
    "limits": [
        "policyholder_id", "buyer_id", "limit_amount", "requested_amount", "exposure",
        "decision_date", "effective_date",
    ],
    "country_risk": ["country", "political_risk_class", "gdp_growth", "inflation"],
}  # fmt: skip
TRUTH_COLUMNS = {
    "pd_monthly": ["buyer_id", "month_end", "pd_12m_true", "latent_score"],
    "defaults": ["buyer_id", "default_date", "default_kind"],
    "dirty_rows": ["table", "row_number", "corruption"],
}
DATE_COLUMNS = {
    "buyers": ["incorporation_date"],
    "financials": ["period_end", "filing_date"],
    "invoices": ["issue_date", "due_date", "paid_date"],
    "events": ["event_date"],
    "limits": ["decision_date"],
}
NON_NEGATIVE = [
    "revenue", "total_assets", "current_assets", "cash", "receivables", "inventory",
    "total_liabilities", "current_liabilities", "long_term_debt", "interest_expense",
]  # fmt: skip


@pytest.fixture(scope="module")
def config() -> GeneratorConfig:
    return GeneratorConfig(n_buyers=8000, seed=11)


@pytest.fixture(scope="module")
def portfolio(config: GeneratorConfig) -> Portfolio:
    return generate_portfolio(config)


@pytest.fixture(scope="module")
def dirty_config() -> GeneratorConfig:
    return GeneratorConfig(n_buyers=1500, seed=5, dirty_fraction=0.03)


@pytest.fixture(scope="module")
def dirty(dirty_config: GeneratorConfig) -> Portfolio:
    return generate_portfolio(dirty_config)


def _matured(portfolio: Portfolio) -> tuple[pd.DataFrame, np.ndarray]:
    """Buyer-months whose 12-month horizon lies inside the window, and their default flag."""
    pdm = portfolio.truth["pd_monthly"]
    default_date = portfolio.truth["defaults"].set_index("buyer_id")["default_date"]
    ends = np.sort(pdm["month_end"].unique())
    assert len(ends) > 12
    m = pdm[pdm["month_end"].isin(ends[: len(ends) - 12])]
    dd = m["buyer_id"].map(default_date)
    horizon_end = m["month_end"] + pd.offsets.MonthEnd(12)
    y = (dd.notna() & (dd > m["month_end"]) & (dd <= horizon_end)).to_numpy()
    return m, y


def _auc(score: np.ndarray, y: np.ndarray) -> float:
    u = mannwhitneyu(score[y], score[~y]).statistic
    return float(u / (y.sum() * (~y).sum()))


# ------------------------------------------------------------------ shape and determinism


def test_tables_have_contract_columns_and_types(portfolio: Portfolio) -> None:
    assert list(portfolio.tables) == list(INPUT_TABLES)
    assert set(portfolio.truth) == set(TRUTH_TABLES)
    for name, cols in COLUMNS.items():
        frame = portfolio.tables[name]
        assert list(frame.columns) == cols, name
        assert len(frame) > 0, name
        for col in DATE_COLUMNS.get(name, []):
            assert frame[col].dtype.kind == "M", (name, col)
    for name, cols in TRUTH_COLUMNS.items():
        assert list(portfolio.truth[name].columns) == cols
    for col in [*NON_NEGATIVE, "equity", "net_income"]:
        assert portfolio.tables["financials"][col].dtype == np.float64
    assert portfolio.tables["invoices"]["amount"].dtype == np.float64
    assert portfolio.tables["buyers"]["buyer_id"].str.fullmatch(r"B\d{7}").all()
    assert portfolio.tables["policies"]["policyholder_id"].str.fullmatch(r"P\d{6}").all()
    assert portfolio.tables["invoices"]["invoice_id"].str.fullmatch(r"INV\d{12}").all()


def test_same_seed_same_portfolio_other_seed_differs() -> None:
    cfg = GeneratorConfig(n_buyers=800, months=14, seed=3)
    a, b = generate_portfolio(cfg), generate_portfolio(cfg)
    for name in INPUT_TABLES:
        pd.testing.assert_frame_equal(a.tables[name], b.tables[name])
    for name in TRUTH_TABLES:
        pd.testing.assert_frame_equal(a.truth[name], b.truth[name])
    c = generate_portfolio(dataclasses.replace(cfg, seed=4))
    assert not a.tables["buyers"].equals(c.tables["buyers"])
    assert len(a.tables["invoices"]) != len(c.tables["invoices"]) or not np.array_equal(
        a.tables["invoices"]["amount"], c.tables["invoices"]["amount"]
    )
    assert not a.tables["limits"].equals(c.tables["limits"])


def test_config_validation() -> None:
    with pytest.raises(ValueError):
        GeneratorConfig(annual_default_rate=0.0)
    with pytest.raises(ValueError):
        GeneratorConfig(dirty_fraction=0.7)
    with pytest.raises(ValueError):
        GeneratorConfig(n_buyers=0)
    with pytest.raises(ValueError):
        GeneratorConfig(latent_phi=1.0)


def test_progress_is_reported() -> None:
    messages: list[str] = []
    generate_portfolio(GeneratorConfig(n_buyers=200, months=13), progress=messages.append)
    assert messages and messages[-1] == "done"


# ------------------------------------------------------------------ consistency


def test_reference_codes_and_keys(portfolio: Portfolio) -> None:
    t = portfolio.tables
    b = t["buyers"]
    assert b["buyer_id"].is_unique
    assert b["country"].isin(ISO_COUNTRIES).all()
    assert b["country"].nunique() >= 15
    assert b["sector"].isin(list(NACE_SECTIONS)).all()
    assert b["sector"].nunique() >= 10
    assert b["legal_form"].isin(LEGAL_FORMS).all()
    assert b["incorporation_date"].isna().mean() < 0.05
    assert (b["incorporation_date"].dropna() < END).all()
    cr = t["country_risk"]
    assert cr["country"].is_unique and set(b["country"]) <= set(cr["country"])
    assert cr["political_risk_class"].between(0, 7).all()
    assert cr["political_risk_class"].nunique() >= 4
    assert not t["financials"].duplicated(["buyer_id", "period_end"]).any()
    assert t["invoices"]["invoice_id"].is_unique
    assert (
        not t["events"]
        .duplicated(["buyer_id", "event_date", "event_type", "policyholder_id"])
        .any()
    )
    assert t["policies"]["policyholder_id"].is_unique
    assert not t["limits"].duplicated(["policyholder_id", "buyer_id", "decision_date"]).any()
    for name in ("financials", "invoices"):
        assert (t[name]["currency"] == "EUR").all()


def test_foreign_keys_resolve(portfolio: Portfolio) -> None:
    t = portfolio.tables
    buyers = set(t["buyers"]["buyer_id"])
    policies = set(t["policies"]["policyholder_id"])
    for name in ("financials", "invoices", "events", "limits"):
        assert t[name]["buyer_id"].isin(buyers).all(), name
    for name in ("invoices", "events", "limits"):
        ph = t[name]["policyholder_id"].dropna()
        assert ph.isin(policies).all(), name
    for name in ("pd_monthly", "defaults"):
        assert portfolio.truth[name]["buyer_id"].isin(buyers).all()


def test_financial_identities_hold(portfolio: Portfolio) -> None:
    f = portfolio.tables["financials"]
    assert f["total_assets"].notna().all()
    for col in NON_NEGATIVE:
        assert (f[col].dropna() >= 0).all(), col
    assert (f["current_assets"] <= f["total_assets"]).all()
    assert (f["cash"] + f["receivables"] + f["inventory"] <= f["current_assets"]).all()
    assert (f["current_liabilities"] + f["long_term_debt"] <= f["total_liabilities"]).all()
    assert np.allclose(f["total_assets"], f["total_liabilities"] + f["equity"], rtol=0, atol=1e-6)
    delay = (f["filing_date"] - f["period_end"]).dt.days
    assert delay.between(90, 310).all()
    assert (f["filing_date"] <= END).all()
    # Abbreviated statements exist, and some statements are known before the window starts.
    assert 0.05 < f["revenue"].isna().mean() < 0.8
    window_start = portfolio.truth["pd_monthly"]["month_end"].min()
    assert (f["filing_date"] < window_start).mean() > 0.1
    # Large firms almost always file; micro firms often do not.
    assert f["buyer_id"].nunique() / len(portfolio.tables["buyers"]) < 0.85


def test_invoices_are_consistent(portfolio: Portfolio, config: GeneratorConfig) -> None:
    inv = portfolio.tables["invoices"]
    assert (inv["amount"] > 0).all()
    assert (inv["due_date"] >= inv["issue_date"]).all()
    paid = inv["paid_date"].dropna()
    assert (paid >= inv.loc[paid.index, "issue_date"]).all()
    assert (paid <= END).all() and (inv["issue_date"] <= END).all()
    assert inv["paid_date"].isna().any()
    per_buyer_month = len(inv) / config.n_buyers / config.months
    assert 0.7 < per_buyer_month < 1.3
    terms = (inv["due_date"] - inv["issue_date"]).dt.days
    assert set(terms.unique()) <= {30, 45, 60, 90}
    ph_per_buyer = inv.groupby("buyer_id")["policyholder_id"].nunique()
    assert ph_per_buyer.max() <= 5 and ph_per_buyer.mean() > 1.2


def test_defaults_stop_payments_and_trade(portfolio: Portfolio) -> None:
    t, truth = portfolio.tables, portfolio.truth
    d = truth["defaults"]
    assert d["buyer_id"].is_unique
    assert set(d["default_kind"]) <= {"insolvency", "liquidation", "protracted"}
    assert (d["default_kind"] == "insolvency").mean() > 0.4
    assert (d["default_date"] <= END).all()
    date = d.set_index("buyer_id")["default_date"]
    inv = t["invoices"]
    dd = inv["buyer_id"].map(date)
    assert not (inv["issue_date"] >= dd).any()
    assert not (inv["paid_date"] >= dd).any()
    # No truth rows for a buyer at or after the month end following its default.
    pdm = truth["pd_monthly"]
    assert not (pdm["month_end"] >= pdm["buyer_id"].map(date)).any()
    ev = t["events"]
    legal = ev[ev["event_type"].isin(["insolvency", "liquidation"])]
    assert legal["policyholder_id"].isna().all()
    assert (legal["event_date"] >= legal["buyer_id"].map(date)).all()
    kind = d.set_index("buyer_id")["default_kind"]
    assert not (legal["buyer_id"].map(kind) == "protracted").any()
    claims = ev[ev["event_type"] == "claim_filed"]
    assert len(claims) > 0 and claims["buyer_id"].isin(d["buyer_id"]).all()
    assert (claims["amount"] > 0).all() and claims["policyholder_id"].notna().all()
    over = ev[ev["event_type"] == "overdue_notification"]
    assert over["policyholder_id"].notna().all()
    assert (~over["buyer_id"].isin(d["buyer_id"])).any()  # slow payers get notices too
    assert ev["event_type"].isin(EVENT_TYPES).all() and (ev["event_date"] <= END).all()


def test_policies_and_limits(portfolio: Portfolio) -> None:
    t = portfolio.tables
    p = t["policies"]
    assert p["scheme"].isin(POLICY_SCHEMES).all()
    assert 0.5 < (p["scheme"] == "first_euro").mean() < 0.9
    assert p["indemnity_pct"].between(70, 95).all()
    xol = p["scheme"] == "excess_of_loss"
    assert (p.loc[xol, "aggregate_first_loss"] > 0).all()
    assert (p.loc[~xol, "aggregate_first_loss"].fillna(0) == 0).all()
    assert (p["discretionary_limit"] >= 0).all()
    lim = t["limits"]
    # The book lists the limits decided: a pair without cover has no row, except the
    # cancellation (0) of a pair whose buyer defaulted, after the limit it had before.
    zero = lim["limit_amount"] == 0
    assert (lim["limit_amount"] >= 0).all() and (lim["exposure"] >= 0).all()
    assert 0 < zero.sum() < len(lim) / 5
    cancelled = lim.loc[zero, ["policyholder_id", "buyer_id", "decision_date"]]
    before = cancelled.merge(lim.loc[~zero], on=["policyholder_id", "buyer_id"])
    assert (before["decision_date_y"] < before["decision_date_x"]).all()
    assert len(before.drop_duplicates(["policyholder_id", "buyer_id"])) == len(cancelled)
    req = lim["requested_amount"].dropna()
    assert (req > lim.loc[req.index, "limit_amount"]).all()
    assert 0.02 < len(req) / len(lim) < 0.09
    # Exposure is the amount of open invoices of the pair at end_date.
    inv = t["invoices"]
    open_amt = inv[inv["paid_date"].isna()].groupby(["policyholder_id", "buyer_id"])["amount"].sum()
    exp = lim.set_index(["policyholder_id", "buyer_id"])["exposure"]
    assert np.allclose(exp, open_amt.reindex(exp.index, fill_value=0.0), atol=0.05)
    # Limits cover pairs trading in the last 6 months or still owed money, most of them.
    recent = inv["issue_date"] > END - pd.DateOffset(months=6)
    active = inv.loc[recent | inv["paid_date"].isna(), ["policyholder_id", "buyer_id"]]
    active = pd.MultiIndex.from_frame(active.drop_duplicates())
    assert exp.index.isin(active).all()
    pairs = lim.drop_duplicates(["policyholder_id", "buyer_id"])
    assert 0.7 < len(pairs) / len(active) < 0.97
    # The last decision of each pair still covered: reviews every 6-18 months.
    defaulted = lim["buyer_id"].isin(lim.loc[zero, "buyer_id"])
    age = (END - lim.loc[~defaulted, "decision_date"]).dt.days
    assert age.between(0, 548).all() and 60 < age.median() < 240


def _capacity_at_decision(portfolio: Portfolio, notches_better: int) -> pd.DataFrame:
    """Each limit with its buyer's capacity at the decision date, computed independently of
    the generator: the engine's own capacity rule (`buyer_capacity`) on the published
    statements and invoices as known at that date, at the grade of the true PD of the last
    month end before it, improved by `notches_better` (the underwriter's error in the
    buyer's favour). `rated` is False where the truth has no PD (buyer already defaulted).
    """
    t, policy = portfolio.tables, load_policy()
    lim = t["limits"]
    lim = lim.loc[lim["limit_amount"] > 0].reset_index(drop=True)  # cancellations apart
    decided = lim["decision_date"]
    month_end = (decided + pd.Timedelta(days=1)).dt.to_period("M").dt.start_time
    month_end -= pd.Timedelta(days=1)
    truth = portfolio.truth["pd_monthly"].set_index(["buyer_id", "month_end"])["pd_12m_true"]
    true_pd = truth.reindex(pd.MultiIndex.from_arrays([lim["buyer_id"], month_end])).to_numpy()
    rated = ~np.isnan(true_pd)
    grade = MASTER_SCALE.grade_of(np.where(rated, true_pd, 0.5))
    grade = np.where(rated, np.maximum(grade - notches_better, 1), 0)
    queries = lim[["buyer_id", "decision_date"]].reset_index(names="row")
    fin = t["financials"][["buyer_id", "period_end", "filing_date", "equity", "revenue"]]
    filed = queries.merge(fin, on="buyer_id")
    filed = filed[filed["filing_date"] <= filed["decision_date"]]
    newest = filed.sort_values("period_end").drop_duplicates("row", keep="last")
    newest = newest.set_index("row").reindex(lim.index)
    inv = t["invoices"]
    grace = pd.Timedelta(days=policy.capacity.payment_grace_days)
    on_time = inv[inv["paid_date"] <= inv["due_date"] + grace]
    paid = queries.merge(on_time[["buyer_id", "paid_date", "amount"]], on="buyer_id")
    start = paid["decision_date"] - pd.DateOffset(months=12)
    paid = paid[(paid["paid_date"] > start) & (paid["paid_date"] <= paid["decision_date"])]
    risk = (
        t["buyers"]
        .set_index("buyer_id")["country"]
        .map(t["country_risk"].set_index("country")["political_risk_class"])
    )
    inputs = pd.DataFrame(
        {
            "grade": grade,
            "equity": newest["equity"],
            "turnover": newest["revenue"],
            "statement_age_months": (decided - newest["period_end"]).dt.days / DAYS_PER_MONTH,
            "paid_within_terms_12m": paid.groupby("row")["amount"].sum().reindex(lim.index),
            "political_risk_class": lim["buyer_id"].map(risk).to_numpy(),
        }
    )
    capacity, _ = buyer_capacity(inputs.fillna({"paid_within_terms_12m": 0.0}), policy)
    return lim.assign(capacity=capacity, rated=rated)


def test_limits_stay_within_the_policy_capacity_at_decision(portfolio: Portfolio) -> None:
    # The underwriter's grade may be one notch better than the truth, never more: no pair,
    # and no buyer's aggregate cover, exceeds the capacity at that grade.
    best = _capacity_at_decision(portfolio, notches_better=1)
    # the truth rates every buyer not yet (latently) defaulted at the decision
    latent = portfolio.truth["defaults"].set_index("buyer_id")["default_date"]
    alive = ~(best["buyer_id"].map(latent) <= best["decision_date"])
    in_window = best["decision_date"] > portfolio.truth["pd_monthly"]["month_end"].min()
    assert best.loc[alive & in_window, "rated"].all()
    best = best[best["rated"]]
    assert (best["limit_amount"] <= best["capacity"] * (1 + 1e-9)).all()
    by_buyer = best.groupby("buyer_id").agg(cover=("limit_amount", "sum"), cap=("capacity", "max"))
    assert (by_buyer["cover"] <= by_buyer["cap"] * (1 + 1e-9)).all()
    # At the true grade only the pairs rated one notch too well can be above it; and the
    # capacity binds for a good part of the book (the checks above have teeth).
    true = _capacity_at_decision(portfolio, notches_better=0)
    true = true[true["rated"]]
    ratio = true["limit_amount"] / true["capacity"]
    assert (ratio > 1 + 1e-9).mean() < 0.05
    assert (ratio >= 0.5).mean() > 0.2


def test_no_limit_once_a_default_trigger_is_known(portfolio: Portfolio) -> None:
    t = portfolio.tables
    lim = t["limits"]
    # The triggers the engine reads (insolvency, liquidation, claim, 90 days past due):
    # known by end_date means cancelled at once, so no limit in force.
    known = first_default_dates(t["events"], t["invoices"], known_by=END)
    assert len(known) > 100
    in_force = limits_as_of(lim, pd.Timestamp(END))
    assert (in_force.loc[in_force["buyer_id"].isin(known["buyer_id"]), "limit_amount"] == 0).all()
    # No cover was granted on or after the trigger: the positive versions predate it.
    trigger = lim["buyer_id"].map(known.set_index("buyer_id")["default_date"])
    granted = lim["limit_amount"] > 0
    assert not (granted & (lim["decision_date"] >= trigger)).any()


def test_limits_draw_from_their_own_stream(config: GeneratorConfig) -> None:
    # A change that only touches the limits leaves every other table and the truth as is.
    small = dataclasses.replace(config, n_buyers=1000, months=14)
    a = generate_portfolio(small)
    b = generate_portfolio(dataclasses.replace(small, pending_request_share=0.2))
    for name in INPUT_TABLES:
        if name != "limits":
            pd.testing.assert_frame_equal(a.tables[name], b.tables[name])
    for name in TRUTH_TABLES:
        pd.testing.assert_frame_equal(a.truth[name], b.truth[name])
    assert not a.tables["limits"].equals(b.tables["limits"])


# ------------------------------------------------------------------ realism


def test_realised_default_rate_matches_target(
    portfolio: Portfolio, config: GeneratorConfig
) -> None:
    _, y = _matured(portfolio)
    target = config.annual_default_rate
    assert 0.5 * target <= y.mean() <= 5 / 3 * target


@pytest.mark.parametrize("target", [0.01, 0.05])
def test_default_rate_follows_configuration(target: float) -> None:
    p = generate_portfolio(GeneratorConfig(n_buyers=10_000, seed=21, annual_default_rate=target))
    _, y = _matured(p)
    assert 0.6 * target <= y.mean() <= 1.5 * target


def test_truth_pd_is_calibrated_and_discriminating(portfolio: Portfolio) -> None:
    m, y = _matured(portfolio)
    pd_true = m["pd_12m_true"].to_numpy()
    assert ((pd_true > 0) & (pd_true < 1)).all()
    assert abs(pd_true.mean() - y.mean()) < 0.25 * y.mean()
    assert _auc(pd_true, y) > 0.75
    # Riskiest decile defaults far more often than the safest half.
    q = np.quantile(pd_true, [0.5, 0.9])
    assert y[pd_true >= q[1]].mean() > 5 * y[pd_true <= q[0]].mean()
    # The latent score is the state behind the PD: lower score, higher PD.
    assert np.corrcoef(m["latent_score"], np.log(pd_true))[0, 1] < -0.8


def test_defaulters_pay_later_before_default(portfolio: Portfolio) -> None:
    inv = portfolio.tables["invoices"]
    inv = inv[inv["paid_date"].notna()].copy()
    inv["late"] = (inv["paid_date"] - inv["due_date"]).dt.days
    inv["w"] = inv["late"] * inv["amount"]
    default_date = portfolio.truth["defaults"].set_index("buyer_id")["default_date"]
    dd = inv["buyer_id"].map(default_date)
    before = (
        dd.notna() & (inv["paid_date"] < dd) & (inv["paid_date"] >= dd - pd.Timedelta(days=182))
    )
    quiet = dd.isna() & (inv["paid_date"] > END - pd.Timedelta(days=182))

    def dbt(rows: pd.DataFrame) -> pd.Series:
        g = rows.groupby("buyer_id")[["w", "amount"]].sum()
        return g["w"] / g["amount"]

    bad, good = dbt(inv[before]), dbt(inv[quiet])
    assert len(bad) > 50
    assert mannwhitneyu(bad, good, alternative="greater").pvalue < 1e-6
    assert bad.median() > 1.5 * good.median()
    assert bad.mean() > 1.5 * good.mean()


def test_statements_reflect_creditworthiness(portfolio: Portfolio) -> None:
    f = portfolio.tables["financials"]
    defaulted = f["buyer_id"].isin(portfolio.truth["defaults"]["buyer_id"])
    eq_ratio = f["equity"] / f["total_assets"]
    cur_ratio = f["current_assets"] / f["current_liabilities"].replace(0, np.nan)
    assert eq_ratio[defaulted].median() < eq_ratio[~defaulted].median()
    assert cur_ratio[defaulted].median() < cur_ratio[~defaulted].median()


# ------------------------------------------------------------------ dirty rows


def test_dirty_rows_are_recorded_and_present(
    dirty: Portfolio, dirty_config: GeneratorConfig
) -> None:
    rows = dirty.truth["dirty_rows"]
    assert set(rows["table"]) == set(INPUT_TABLES)
    assert not rows.duplicated(["table", "row_number"]).any()
    for name in INPUT_TABLES:
        frame = dirty.tables[name]
        mine = rows[rows["table"] == name]
        assert mine["row_number"].between(1, len(frame)).all()
        if len(frame) > 100:
            share = len(mine) / len(frame)
            assert 0.5 * dirty_config.dirty_fraction < share < 2 * dirty_config.dirty_fraction
        for col in DATE_COLUMNS.get(name, []):
            assert frame[col].dtype == "str"
    inv = dirty.tables["invoices"]
    bad = rows[rows["table"] == "invoices"]
    by_kind = {k: inv.iloc[g["row_number"].to_numpy() - 1] for k, g in bad.groupby("corruption")}
    assert (by_kind["negative_amount"]["amount"] < 0).all()
    assert (by_kind["zero_amount"]["amount"] == 0).all()
    assert by_kind["missing_amount"]["amount"].isna().all()
    assert (
        by_kind["due_before_issue"]["due_date"] < by_kind["due_before_issue"]["issue_date"]
    ).all()
    assert (
        by_kind["paid_before_issue"]["paid_date"] < by_kind["paid_before_issue"]["issue_date"]
    ).all()
    clean_buyers = set(dirty.tables["buyers"]["buyer_id"]) - set(
        dirty.tables["buyers"].iloc[rows.loc[rows["table"] == "buyers", "row_number"] - 1][
            "buyer_id"
        ]
    )
    assert not by_kind["unknown_buyer"]["buyer_id"].isin(clean_buyers).any()
    dup = by_kind["duplicate_invoice_id"]["invoice_id"]
    assert (inv["invoice_id"].isin(dup).sum()) == len(dup) and dup.value_counts().eq(2).all()
    parsed = pd.to_datetime(
        by_kind["unparseable_date"]["issue_date"], format="ISO8601", errors="coerce"
    )
    assert parsed.isna().all()
    assert not by_kind["bad_currency"]["currency"].eq("EUR").any()
    ev = dirty.tables["events"]
    ev_bad = rows[(rows["table"] == "events") & (rows["corruption"] == "bad_event_type")]
    assert not ev.iloc[ev_bad["row_number"] - 1]["event_type"].isin(EVENT_TYPES).any()
    b = dirty.tables["buyers"]
    b_bad = rows[(rows["table"] == "buyers") & (rows["corruption"] == "bad_country")]
    assert not b.iloc[b_bad["row_number"] - 1]["country"].isin(ISO_COUNTRIES).any()


def test_clean_rows_survive_dirt_unchanged(dirty: Portfolio, dirty_config: GeneratorConfig) -> None:
    clean = generate_portfolio(dataclasses.replace(dirty_config, dirty_fraction=0.0))
    rows = dirty.truth["dirty_rows"]
    for name in INPUT_TABLES:
        bad = rows.loc[rows["table"] == name, "row_number"].to_numpy() - 1
        kept = dirty.tables[name].drop(index=bad).reset_index(drop=True)
        expected = clean.tables[name].copy()
        for col in DATE_COLUMNS.get(name, []):
            expected[col] = expected[col].dt.strftime("%Y-%m-%d").astype("str")
        for col in ("claim_waiting_days", "political_risk_class"):
            if col in kept:
                kept[col] = kept[col].astype("int64")
        pd.testing.assert_frame_equal(kept, expected, check_dtype=False, obj=name)
    for name in ("pd_monthly", "defaults"):
        pd.testing.assert_frame_equal(dirty.truth[name], clean.truth[name])


# ------------------------------------------------------------------ writing


def _read_back(path: Path, fmt: str) -> pd.DataFrame:
    if fmt == "csv":
        return pd.read_csv(path, keep_default_na=False, na_values=[""], dtype=str)
    return pq.read_table(path).to_pandas(date_as_object=False)


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_write_roundtrip(tmp_path: Path, fmt: str) -> None:
    p = generate_portfolio(GeneratorConfig(n_buyers=300, months=13, seed=2))
    paths = write_portfolio(p, tmp_path, fmt)  # type: ignore[arg-type]
    expected = {tmp_path / f"{n}.{fmt}" for n in INPUT_TABLES} | {
        tmp_path / "_truth" / f"{n}.parquet" for n in TRUTH_TABLES
    }
    assert set(paths) == expected and all(path.exists() for path in paths)
    assert not [f for f in tmp_path.rglob("*") if f.name.endswith(".tmp")]
    for name in INPUT_TABLES:
        back = _read_back(tmp_path / f"{name}.{fmt}", fmt)
        mem = p.tables[name]
        assert list(back.columns) == list(mem.columns) and len(back) == len(mem), name
        for col in mem.columns:
            if mem[col].dtype.kind == "M":
                want = mem[col].dt.strftime("%Y-%m-%d")
                got = back[col] if fmt == "csv" else back[col].dt.strftime("%Y-%m-%d")
                assert got.fillna("").tolist() == want.fillna("").tolist(), (name, col)
            elif mem[col].dtype.kind in "fi":
                np.testing.assert_allclose(
                    back[col].astype(float), mem[col].astype(float), err_msg=f"{name}.{col}"
                )
            else:
                assert back[col].fillna("").tolist() == mem[col].fillna("").tolist(), (name, col)
    if fmt == "parquet":
        schema = pq.read_schema(tmp_path / "invoices.parquet")
        assert schema.field("issue_date").type == pa.date32()
        assert schema.field("amount").type == pa.float64()
    else:
        header = (tmp_path / "invoices.csv").read_text().splitlines()[1]
        assert dt.date.fromisoformat(header.split(",")[3].strip('"'))
    truth = pq.read_table(tmp_path / "_truth" / "pd_monthly.parquet").to_pandas(
        date_as_object=False
    )
    assert len(truth) == len(p.truth["pd_monthly"])
    np.testing.assert_allclose(truth["pd_12m_true"], p.truth["pd_monthly"]["pd_12m_true"])


def test_dirty_row_numbers_point_into_written_csv(tmp_path: Path, dirty: Portfolio) -> None:
    write_portfolio(dirty, tmp_path, "csv")
    rows = dirty.truth["dirty_rows"]
    inv = pd.read_csv(tmp_path / "invoices.csv", keep_default_na=False, na_values=[""], dtype=str)
    neg = rows[(rows["table"] == "invoices") & (rows["corruption"] == "negative_amount")]
    assert (inv.iloc[neg["row_number"] - 1]["amount"].astype(float) < 0).all()
    buyers = pd.read_csv(tmp_path / "buyers.csv", keep_default_na=False, na_values=[""], dtype=str)
    missing = rows[(rows["table"] == "buyers") & (rows["corruption"] == "missing_name")]
    assert buyers.iloc[missing["row_number"] - 1]["name"].isna().all()
