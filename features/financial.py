"""Financial-statement features, point in time: the latest statement *filed* by as_of.

A statement becomes usable on its filing date, not its period end: using it earlier would
let the model see accounts that nobody had yet. Ratios are computed once per statement,
then each (buyer, as_of) row picks the newest period among the statements filed by then.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

FINANCIAL_FEATURES = [
    "current_ratio",
    "quick_ratio",
    "cash_ratio",
    "liabilities_to_assets",
    "debt_to_equity",
    "negative_equity",
    "interest_cover",
    "return_on_assets",
    "operating_margin",
    "receivable_days",
    "log_turnover",
    "log_total_assets",
    "altman_z",
    "revenue_growth",
    "equity_growth",
    "margin_change",
    "statement_age_months",
    "no_statement",
    "abbreviated_statement",
    "size_class",
]
INTEREST_COVER_BOUNDS = (-50.0, 100.0)
#: EU SME thresholds (Recommendation 2003/361/EC): turnover, else balance-sheet total, in EUR.
SIZE_TURNOVER_EUR = (2e6, 10e6, 50e6)
SIZE_ASSETS_EUR = (2e6, 10e6, 43e6)
DAYS_PER_MONTH = 365.25 / 12


def _ratio(num: pd.Series, den: pd.Series) -> pd.Series:
    """num / den, missing where the denominator is zero or missing (no silent infinities)."""
    den = den.where(den != 0)
    return num / den


def statement_ratios(financials: pd.DataFrame) -> pd.DataFrame:
    """Per statement: ratios, size class, and year-on-year changes against the previous period.

    The comparison statement is the buyer's previous period, used only if it had been filed
    by the time the current one was (otherwise the trend would mix in a later filing).
    """
    f = financials.sort_values(["buyer_id", "period_end"], kind="stable").reset_index(drop=True)
    amounts = [
        c for c in f.columns if c not in ("buyer_id", "period_end", "filing_date", "currency")
    ]
    f = f.astype({c: "float64" for c in amounts})
    ca, cl, ta, tl = (
        f["current_assets"],
        f["current_liabilities"],
        f["total_assets"],
        f["total_liabilities"],
    )
    equity, revenue, op_income = f["equity"], f["revenue"], f["operating_income"]
    out = pd.DataFrame(
        {
            "buyer_id": f["buyer_id"],
            "period_end": f["period_end"],
            "filing_date": f["filing_date"],
            "current_ratio": _ratio(ca, cl),
            "quick_ratio": _ratio(ca - f["inventory"].fillna(0), cl),
            "cash_ratio": _ratio(f["cash"], cl),
            "liabilities_to_assets": _ratio(tl, ta),
            "debt_to_equity": _ratio(tl, equity.where(equity > 0)),
            "negative_equity": (equity <= 0).astype("float64").where(equity.notna()),
            "interest_cover": _interest_cover(op_income, f["interest_expense"]),
            "return_on_assets": _ratio(f["net_income"], ta),
            "operating_margin": _ratio(op_income, revenue),
            "receivable_days": _ratio(f["receivables"], revenue) * 365.0,
            "log_turnover": np.log1p(revenue.clip(lower=0)),
            "log_total_assets": np.log1p(ta.clip(lower=0)),
            "altman_z": altman_z_private(f),
            "abbreviated_statement": revenue.isna().astype("float64"),
            "size_class": size_class(revenue, ta),
        }
    )
    prev = out.groupby("buyer_id", sort=False).shift(1)
    usable = prev["filing_date"] <= out["filing_date"]
    prev_revenue = revenue.groupby(f["buyer_id"], sort=False).shift(1).where(usable)
    prev_equity = equity.groupby(f["buyer_id"], sort=False).shift(1).where(usable)
    out["revenue_growth"] = _ratio(revenue, prev_revenue) - 1.0
    out["equity_growth"] = _ratio(equity - prev_equity, prev_equity.abs())
    out["margin_change"] = out["operating_margin"] - prev["operating_margin"].where(usable)
    return out


def _interest_cover(op_income: pd.Series, interest: pd.Series) -> pd.Series:
    """EBIT over interest, bounded: without interest a profitable firm is as safe as it gets."""
    lo, hi = INTEREST_COVER_BOUNDS
    cover = _ratio(op_income, interest).clip(lo, hi)
    no_interest = interest.eq(0) & op_income.notna()
    return cover.mask(no_interest, np.where(op_income >= 0, hi, lo))


def altman_z_private(f: pd.DataFrame) -> pd.Series:
    """Altman's Z' (1983) for private firms, with operating income standing in for EBIT."""
    ta = f["total_assets"].where(f["total_assets"] > 0)
    working_capital = f["current_assets"] - f["current_liabilities"]
    return (
        0.717 * working_capital / ta
        + 0.847 * f["retained_earnings"] / ta
        + 3.107 * f["operating_income"] / ta
        + 0.420 * _ratio(f["equity"], f["total_liabilities"])
        + 0.998 * f["revenue"] / ta
    )


def size_class(revenue: pd.Series, total_assets: pd.Series) -> pd.Series:
    """0 micro .. 3 large by turnover, or by balance-sheet total when turnover is not filed."""
    by_turnover = np.searchsorted(SIZE_TURNOVER_EUR, revenue.fillna(0).to_numpy(), side="right")
    by_assets = np.searchsorted(SIZE_ASSETS_EUR, total_assets.fillna(0).to_numpy(), side="right")
    cls = np.where(revenue.notna(), by_turnover, by_assets).astype("float64")
    cls[(revenue.isna() & total_assets.isna()).to_numpy()] = np.nan
    return pd.Series(cls, index=revenue.index)


def effective_statements(ratios: pd.DataFrame) -> pd.DataFrame:
    """Statements in filing order that brought a newer period than any filed before.

    A late-filed older period never replaces a newer statement already known.
    """
    s = ratios.sort_values(["buyer_id", "filing_date", "period_end"], kind="stable")
    newest_so_far = s.groupby("buyer_id", sort=False)["period_end"].cummax()
    return s[s["period_end"] >= newest_so_far]


def financial_features(grid: pd.DataFrame, financials: pd.DataFrame) -> pd.DataFrame:
    """For each (buyer_id, as_of_date) of `grid`, the features of the latest statement filed by then."""
    ratios = statement_ratios(financials)
    known = effective_statements(ratios).sort_values("filing_date", kind="stable")
    known = known.astype({"buyer_id": "str", "filing_date": "datetime64[ns]"})
    left = (
        grid[["buyer_id", "as_of_date"]]
        .reset_index(names="_row")
        .sort_values("as_of_date", kind="stable")
        .astype({"buyer_id": "str", "as_of_date": "datetime64[ns]"})
    )
    merged = pd.merge_asof(
        left,
        known,
        left_on="as_of_date",
        right_on="filing_date",
        by="buyer_id",
        direction="backward",
        allow_exact_matches=True,
    ).sort_values("_row")
    merged.index = grid.index
    age_days = (merged["as_of_date"] - merged["period_end"]).dt.days
    merged["statement_age_months"] = age_days / DAYS_PER_MONTH
    merged["no_statement"] = merged["period_end"].isna().astype("float64")
    return merged[FINANCIAL_FEATURES].astype("float64")
