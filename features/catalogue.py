"""The feature catalogue: every model feature, what it means, its unit, source and risk direction.

One place read by model training (monotone constraints from `risk_direction`), reason-code
texts (`reason`) and the documentation (`catalogue_markdown`). A feature computed but not
listed here is a bug, and a test checks that both sides match.

`risk_direction`: "up" means a higher value raises default risk, "down" means it lowers it,
"none" means no economic direction is imposed (categorical or size-neutral quantities).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pandas as pd

from features.payment import (
    DBT_HALF_LIFE_MONTHS,
    LATE_DAYS,
    LATE_REPORT_DAYS,
    LATE_REPORT_MONTHS,
    VOLUME_LAG_MONTHS,
    VOLUME_MONTHS,
    WINDOWS_MONTHS,
)

Direction = Literal["up", "down", "none"]


@dataclass(frozen=True)
class Feature:
    name: str
    description: str
    unit: str
    source: str
    risk_direction: Direction
    group: str
    reason: str = ""  # why it raises risk, as an underwriter would read it in a reason code
    categorical: bool = False


def _f(name, description, unit, source, direction, group, reason="", categorical=False) -> Feature:
    return Feature(name, description, unit, source, direction, group, reason, categorical)


_FIN = "financials"
_INV = "invoices"
_EVT = "events"

FEATURES: tuple[Feature, ...] = (
    # --- financial: latest statement known at as_of (by filing date) ---------------------
    _f(
        "current_ratio",
        "Current assets / current liabilities",
        "ratio",
        _FIN,
        "down",
        "liquidity",
        "low liquidity (current ratio)",
    ),
    _f(
        "quick_ratio",
        "(Current assets - inventory) / current liabilities",
        "ratio",
        _FIN,
        "down",
        "liquidity",
        "low liquidity without stock (quick ratio)",
    ),
    _f(
        "cash_ratio",
        "Cash / current liabilities",
        "ratio",
        _FIN,
        "down",
        "liquidity",
        "little cash against short-term debts",
    ),
    _f(
        "liabilities_to_assets",
        "Total liabilities / total assets",
        "ratio",
        _FIN,
        "up",
        "leverage",
        "high indebtedness (liabilities to assets)",
    ),
    _f(
        "debt_to_equity",
        "Total liabilities / equity; missing when equity <= 0 (see negative_equity)",
        "ratio",
        _FIN,
        "up",
        "leverage",
        "high gearing (debt to equity)",
    ),
    _f(
        "negative_equity",
        "1 when equity <= 0 (liabilities exceed assets)",
        "flag",
        _FIN,
        "up",
        "leverage",
        "negative equity",
    ),
    _f(
        "interest_cover",
        "Operating income / interest expense, capped to [-50, 100]; 100 without interest expense and with non-negative operating income",
        "ratio",
        _FIN,
        "down",
        "leverage",
        "weak interest cover",
    ),
    _f(
        "return_on_assets",
        "Net income / total assets",
        "ratio",
        _FIN,
        "down",
        "profitability",
        "low or negative return on assets",
    ),
    _f(
        "operating_margin",
        "Operating income / revenue",
        "ratio",
        _FIN,
        "down",
        "profitability",
        "low or negative operating margin",
    ),
    _f(
        "receivable_days",
        "Receivables / revenue x 365",
        "days",
        _FIN,
        "up",
        "activity",
        "slow collection of its own receivables",
    ),
    _f("log_turnover", "ln(1 + revenue)", "ln EUR", _FIN, "down", "size", "small turnover"),
    _f(
        "log_total_assets",
        "ln(1 + total assets)",
        "ln EUR",
        _FIN,
        "down",
        "size",
        "small balance sheet",
    ),
    _f(
        "altman_z",
        "Altman Z' score for private firms: 0.717 WC/TA + 0.847 RE/TA + 3.107 EBIT/TA + 0.420 BE/TL + 0.998 S/TA (EBIT ~ operating income; missing without revenue)",
        "score",
        _FIN,
        "down",
        "composite",
        "low Altman Z' score",
    ),
    _f(
        "revenue_growth",
        "Revenue / previous statement's revenue - 1",
        "ratio",
        _FIN,
        "down",
        "trend",
        "falling turnover",
    ),
    _f(
        "equity_growth",
        "(Equity - previous equity) / |previous equity|",
        "ratio",
        _FIN,
        "down",
        "trend",
        "shrinking equity",
    ),
    _f(
        "margin_change",
        "Operating margin - previous statement's operating margin",
        "ratio points",
        _FIN,
        "down",
        "trend",
        "deteriorating margin",
    ),
    _f(
        "statement_age_months",
        "Months from the latest known statement's period end to as_of",
        "months",
        _FIN,
        "up",
        "freshness",
        "old financial statements",
    ),
    _f(
        "no_statement",
        "1 when no statement is known at as_of",
        "flag",
        _FIN,
        "up",
        "freshness",
        "no financial statements known",
    ),
    _f(
        "abbreviated_statement",
        "1 when the latest statement has no profit and loss account (revenue missing)",
        "flag",
        _FIN,
        "up",
        "freshness",
        "abbreviated statement without P&L",
    ),
    # --- payment behaviour: invoices known at as_of (paid by paid_date, open otherwise) --
    *(
        _f(
            f"dbt_{w}m",
            f"Amount-weighted days beyond terms of invoices paid in the last {w} months (early payment counts as 0)",
            "days",
            _INV,
            "up",
            "payment",
            f"pays late (days beyond terms, {w} months)",
        )
        for w in WINDOWS_MONTHS
    ),
    # Recency-weighted: recent payments tell more about the buyer's state today than the
    # plain 12-month average, which a late spell ten months ago still weighs down.
    _f(
        "dbt_ewm",
        f"Days beyond terms of invoices paid in the last 12 months, weighted by amount x 2^(-age / {DBT_HALF_LIFE_MONTHS:g} months), age = as_of - paid date (half-life {DBT_HALF_LIFE_MONTHS:g} months; early payment counts as 0)",
        "days",
        _INV,
        "up",
        "payment",
        "pays late recently (recency-weighted days beyond terms)",
    ),
    *(
        _f(
            f"late{d}_share_{w}m",
            f"Share of the amount paid in the last {w} months that was paid {d}+ days beyond terms",
            "share",
            _INV,
            "up",
            "payment",
            f"{d}+ days late on a share of payments ({w} months)",
        )
        for d in LATE_DAYS
        for w in WINDOWS_MONTHS
    ),
    _f(
        "dbt_trend",
        "dbt over the last 3 months - dbt over months 4 to 12 before as_of",
        "days",
        _INV,
        "up",
        "payment",
        "paying later than before",
    ),
    # Direction "none": the trend's sign depends on what it is read with. Holding the
    # recent dbt fixed, a steeper rise means a better past (lower risk); holding the
    # 12-month dbt fixed, it means a worse present (higher risk); on its own it is U-shaped,
    # since erratic payers swing both ways. A monotone constraint would be wrong either way.
    _f(
        "dbt_trend_3v9m_by_policyholder",
        "Per policyholder paid in both periods: its dbt over the last 3 months - its dbt over months 4 to 12 before as_of; the mean over those policyholders (each supplier one voice, not the max, which grows with the number of suppliers by chance alone); missing when none was paid in both",
        "days",
        _INV,
        "none",
        "payment",
        "payment delays changed with its suppliers (per-supplier trend)",
    ),
    _f(
        "paydex",
        "PAYDEX-style payment index 1-100 from the 12-month amount-weighted days paid after due date (see features/payment.py for the mapping); 80 = pays on time",
        "index",
        _INV,
        "down",
        "payment",
        "poor payment index",
    ),
    _f("open_amount", "Invoices issued and not paid at as_of", "EUR", _INV, "none", "exposure"),
    _f(
        "overdue_amount",
        "Open invoices past their due date at as_of",
        "EUR",
        _INV,
        "up",
        "payment",
        "amounts currently overdue",
    ),
    _f(
        "overdue_share",
        "overdue_amount / open_amount (missing with nothing open)",
        "share",
        _INV,
        "up",
        "payment",
        "large share of open invoices overdue",
    ),
    _f(
        "oldest_overdue_days",
        "Days past due of the oldest overdue invoice at as_of (0 when none)",
        "days",
        _INV,
        "up",
        "payment",
        "long-overdue invoice",
    ),
    _f(
        "late_policyholder_share_3m",
        f"Share of the policyholders with payment experience in the last 12 months (an invoice issued or paid then, or open at as_of) that report late payment: an invoice paid {LATE_REPORT_DAYS}+ days beyond terms in the last {LATE_REPORT_MONTHS} months, or open {LATE_REPORT_DAYS}+ days past due at as_of; missing without experience",
        "share",
        _INV,
        "up",
        "payment",
        "share of its suppliers reporting late payment",
    ),
    _f(
        "days_since_last_payment",
        "Days from the latest payment (paid date <= as_of) to as_of; missing when never paid",
        "days",
        _INV,
        "up",
        "payment",
        "no payment received for a long time",
    ),
    _f("invoices_12m", "Invoices issued in the last 12 months", "count", _INV, "none", "volume"),
    # Direction "none": a fall can be distress or a supplier cutting credit, a rise can be
    # growth or a buyer stretching its suppliers (over-trading).
    _f(
        "invoice_volume_change_12m",
        f"Amount invoiced in the last {VOLUME_MONTHS} months / amount invoiced in the same {VOLUME_MONTHS} months {VOLUME_LAG_MONTHS} months earlier - 1 (-1 = trade stopped); missing without a base, or when the base period starts before the data",
        "ratio",
        _INV,
        "none",
        "volume",
        "purchases from insured suppliers changed year on year",
    ),
    _f(
        "paid_amount_12m",
        "Amount paid in the last 12 months (trade volume with insured suppliers)",
        "EUR",
        _INV,
        "none",
        "volume",
    ),
    _f(
        "policyholders_reporting_12m",
        "Policyholders with an invoice issued in the last 12 months",
        "count",
        _INV,
        "none",
        "volume",
    ),
    _f(
        "no_payment_history",
        "1 when no invoice was paid in the last 12 months",
        "flag",
        _INV,
        "none",
        "volume",
    ),
    _f(
        "overdue_notifications_3m",
        "Overdue notifications received in the last 3 months",
        "count",
        _EVT,
        "up",
        "incidents",
        "recent overdue notifications",
    ),
    _f(
        "overdue_notifications_12m",
        "Overdue notifications received in the last 12 months",
        "count",
        _EVT,
        "up",
        "incidents",
        "overdue notifications in the past year",
    ),
    _f(
        "legal_disputes_12m",
        "Legal disputes reported in the last 12 months",
        "count",
        _EVT,
        "up",
        "incidents",
        "legal disputes",
    ),
    # --- context --------------------------------------------------------------------------
    _f(
        "political_risk_class",
        "Country political-risk class 0 (low) to 7 (high)",
        "class",
        "country_risk",
        "up",
        "context",
        "high country risk",
    ),
    _f(
        "sector",
        "NACE section of the buyer's activity",
        "code",
        "buyers",
        "none",
        "context",
        categorical=True,
    ),
    _f(
        "size_class",
        "0 micro, 1 small, 2 medium, 3 large (EU SME thresholds on turnover, else on total assets); missing without statements",
        "class",
        _FIN,
        "down",
        "context",
        "small company",
    ),
    _f(
        "company_age_years",
        "Years since incorporation at as_of",
        "years",
        "buyers",
        "down",
        "context",
        "young company",
    ),
)

CATALOGUE: dict[str, Feature] = {f.name: f for f in FEATURES}
#: The longest window any feature looks back over the payment experience (months): the
#: 12-month payment, volume and event windows. An as-of date closer than this to the start
#: of the data sees truncated windows (a warm-up date), whatever the buyer's own history.
#: `invoice_volume_change_12m` compares with a base 12 to 15 months back: it is missing
#: where that base starts before the data, which a model must not learn either (the share
#: of missing values would then drift down month after month on an unchanged book).
LOOKBACK_MONTHS: int = max(*WINDOWS_MONTHS, VOLUME_MONTHS + VOLUME_LAG_MONTHS)
FEATURE_NAMES: list[str] = [f.name for f in FEATURES]
#: Snapshot columns that identify a row or carry state, not model inputs.
ID_COLUMNS = ["buyer_id", "as_of_date"]


def monotone_constraints(names: list[str]) -> list[int]:
    """LightGBM monotone constraints (+1 risk rises with the feature, -1 falls, 0 free)."""
    sign = {"up": 1, "down": -1, "none": 0}
    return [sign[CATALOGUE[n].risk_direction] for n in names]


def catalogue_frame() -> pd.DataFrame:
    return pd.DataFrame([vars(f) for f in FEATURES])


def catalogue_markdown() -> str:
    """The catalogue as a Markdown table, for docs and the validation report."""
    rows = ["| feature | description | unit | source | risk when higher |", "|---|---|---|---|---|"]
    rows += [
        f"| `{f.name}` | {f.description} | {f.unit} | {f.source} | {f.risk_direction} |"
        for f in FEATURES
    ]
    return "\n".join(rows)
