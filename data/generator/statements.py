"""Annual financial statements of the buyers that file them.

Statements follow the fiscal-year average of the latent score, so ratios carry the same
signal as payments but late (filed months after the period end) and only for filers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from data.generator.columns import _BUYER_WIDTH, _const_str, _dates, _id_series
from data.generator.config import (
    _FILING_DELAY_SIZE,
    _NULL_DAY,
    _SECTORS,
    CURRENCY,
    GeneratorConfig,
    _Calendar,
    _rng,
)
from data.generator.latent import _Buyers, _Latent


def _statement_columns(
    config: GeneratorConfig, cal: _Calendar, b: _Buyers, lat: _Latent, tau: np.ndarray
) -> dict[str, np.ndarray]:
    """Annual statements driven by the fiscal-year average of the latent score.

    Better buyers grow, earn higher margins, carry more equity and cash, and pay less interest.
    Amounts are whole euros and the identities hold exactly: components are floored from
    their parent totals and equity is total assets minus total liabilities. Returned as
    arrays (buyer index `bi`, day numbers, amounts) sorted by buyer and period end, so the
    simulated underwriting reads the same statements the frame publishes.
    """
    rng = _rng(config, 4)
    t_first = max(11, cal.burn - config.statement_history_months)
    t_last = cal.burn + cal.months - 1
    rows_b, rows_t, rows_x = [], [], []
    for t in range(t_first, t_last + 1):
        sel = np.flatnonzero(b.filer & (b.fye == cal.month_of_year[t]))
        if not len(sel):
            continue
        zbar = lat.z[t - 11 : t + 1, sel].mean(axis=0)
        sbar = lat.s[t - 11 : t + 1].mean(axis=0)[b.sector[sel]]
        xbar = b.mu[sel] + zbar + (sbar + lat.e[t - 11 : t + 1].mean()).astype(np.float32)
        rows_b.append(sel.astype(np.int32))
        rows_t.append(np.full(len(sel), t, dtype=np.int32))
        rows_x.append(xbar.astype(np.float64))
    if not rows_b:
        return {}
    bi = np.concatenate(rows_b)
    ti = np.concatenate(rows_t)
    xb = np.concatenate(rows_x)
    n = len(bi)
    period_end = (cal.starts[ti + 1] - 1).astype(np.int64)
    size = b.size[bi]
    delay = 140 + _FILING_DELAY_SIZE[size] - 25.0 * xb + rng.normal(0.0, 45.0, n)
    filing = period_end + np.clip(np.round(delay), 90, 300).astype(np.int64)
    dtau = tau[bi].astype(np.int64)
    inc = b.inc_day[bi].astype(np.int64)
    keep = (
        (filing <= cal.end)
        & ((dtau == _NULL_DAY) | (filing < dtau))
        & ((inc == _NULL_DAY) | (period_end >= inc + 180))
        & (rng.random(n) >= 0.05)  # a skipped year now and then
    )
    sec = np.array(list(_SECTORS.values()))[b.sector[bi]]
    margin0, turnover0, ca0, inv0 = sec[:, 2], sec[:, 3], sec[:, 4], sec[:, 5]
    years_back = (t_last - ti) / 12.0
    rel = xb - b.mu[bi]
    revenue = b.turnover[bi] * np.exp(0.30 * rel + rng.normal(0.0, 0.06, n)) * 1.03 ** (-years_back)
    revenue = np.round(revenue)
    margin = margin0 + 0.035 * xb + rng.normal(0.0, 0.025, n)
    total_assets = np.round(revenue / turnover0 * np.exp(rng.normal(0.0, 0.25, n)))
    total_assets = np.maximum(total_assets, 1000.0)
    eq_ratio = np.clip(0.32 + 0.12 * xb + rng.normal(0.0, 0.10, n), -0.5, 0.9)
    total_liabilities = np.round(total_assets * (1.0 - eq_ratio))
    equity = total_assets - total_liabilities
    current_assets = np.floor(
        total_assets * np.clip(ca0 * np.exp(rng.normal(0.0, 0.15, n)), 0.02, 0.95)
    )
    cash_sh = np.clip(0.15 + 0.06 * xb + rng.normal(0.0, 0.05, n), 0.005, 0.6)
    rec_sh = np.clip(0.40 - 0.6 * inv0 + rng.normal(0.0, 0.08, n), 0.05, 0.8)
    inv_sh = np.clip(inv0 * np.exp(rng.normal(0.0, 0.2, n)), 0.0, 0.8)
    tot_sh = cash_sh + rec_sh + inv_sh
    squash = np.where(tot_sh > 0.98, 0.98 / tot_sh, 1.0)
    cash = np.floor(current_assets * cash_sh * squash)
    receivables = np.floor(current_assets * rec_sh * squash)
    inventory = np.floor(current_assets * inv_sh * squash)
    current_ratio = np.exp(0.25 + 0.20 * xb + rng.normal(0.0, 0.18, n))
    current_liabilities = np.floor(np.minimum(current_assets / current_ratio, total_liabilities))
    long_term_debt = np.floor((total_liabilities - current_liabilities) * rng.uniform(0.4, 0.9, n))
    rate = np.clip(0.035 - 0.012 * xb + rng.normal(0.0, 0.005, n), 0.005, 0.15)
    interest = np.round((long_term_debt + 0.4 * current_liabilities) * rate)
    operating_income = np.round(revenue * margin)
    pre_tax = operating_income - interest
    net_income = np.round(
        pre_tax * np.where(pre_tax > 0, 0.75, 1.0) + rng.normal(0.0, 0.01, n) * revenue
    )
    retained = equity - np.round(total_assets * b.share_capital[bi])
    abbreviated = b.abbreviated[bi]
    cols = {
        "bi": bi,
        "period_end": period_end,
        "filing": filing,
        "revenue": revenue,
        "operating_income": operating_income,
        "net_income": net_income,
        "total_assets": total_assets,
        "current_assets": current_assets,
        "cash": cash,
        "receivables": receivables,
        "inventory": inventory,
        "total_liabilities": total_liabilities,
        "current_liabilities": current_liabilities,
        "long_term_debt": long_term_debt,
        "equity": equity,
        "retained_earnings": retained,
        "interest_expense": interest,
    }
    for c in ("revenue", "operating_income", "net_income", "interest_expense"):
        cols[c] = np.where(abbreviated, np.nan, cols[c])
    order = np.flatnonzero(keep)
    order = order[np.lexsort((period_end[order], bi[order]))]
    return {k: v[order] for k, v in cols.items()}


_FIN_AMOUNTS = (
    "revenue", "operating_income", "net_income", "total_assets", "current_assets", "cash",
    "receivables", "inventory", "total_liabilities", "current_liabilities", "long_term_debt",
    "equity", "retained_earnings", "interest_expense",
)  # fmt: skip


def _financials_frame(cols: dict[str, np.ndarray]) -> pd.DataFrame:
    bi = cols.get("bi", np.zeros(0, dtype=np.int32))
    frame = {
        "buyer_id": _id_series("B", bi.astype(np.int64) + 1, _BUYER_WIDTH),
        "period_end": _dates(cols.get("period_end", np.zeros(0, dtype=np.int64))),
        "filing_date": _dates(cols.get("filing", np.zeros(0, dtype=np.int64))),
        "currency": _const_str(CURRENCY, len(bi)),
    }
    for c in _FIN_AMOUNTS:
        frame[c] = cols.get(c, np.zeros(0)).astype(np.float64)
    return pd.DataFrame(frame)
