"""Synthetic trade-credit-insurance portfolio: buyers, statements, payments, events, limits.

Everything observable is driven by one hidden quantity per buyer and month, its *latent
creditworthiness* ``x`` (higher is better):

    x[i, t] = mu[i] + z[i, t] + s[sector(i), t] + e[t]

- ``mu`` is the buyer's long-run level: sector, country (political-risk class), size class,
  company age and an idiosyncratic term;
- ``z`` is a buyer-specific Gaussian AR(1) around 0 (persistent shocks);
- ``s`` and ``e`` are sector-wide and economy-wide Gaussian AR(1) shocks.

From ``x`` follow the monthly default hazard ``h = min(exp(a - b * x), cap)`` (``a`` is
calibrated so the portfolio's 12-month default rate equals ``annual_default_rate``), the
ratios of the annual statements (fiscal-year average of ``x``) and the days late of every
invoice (``x`` in the month the invoice falls due). Payment delays therefore lengthen before a
default without any rule saying so: defaults happen where ``x`` has fallen.

The ground truth is returned beside the tables: the true 12-month PD per buyer and month end
(a closed-form conditional expectation, see :func:`_truth_pd`), the defaults, and the rows
deliberately corrupted when ``dirty_fraction > 0``. ``data/README.md`` documents the model,
its parameters and measured figures.

All amounts are in EUR (``currency == "EUR"`` everywhere). Generation is vectorised with
numpy: loops run over months, fiscal-year ends or corruption kinds, never over buyers or
invoices, so a million buyers over 24 months (about 24 million invoices) fit in minutes.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from data.reference import (
    EVENT_TYPES,
    ISO_COUNTRIES,
    LEGAL_FORM_ORDER,
    LEGAL_FORMS,
    NACE_SECTIONS,
    POLICY_SCHEMES,
)

__all__ = [
    "INPUT_TABLES",
    "TRUTH_TABLES",
    "GeneratorConfig",
    "Portfolio",
    "generate_portfolio",
    "write_portfolio",
]

#: Input tables in the order they are generated and written (the data contracts' names).
INPUT_TABLES: tuple[str, ...] = (
    "buyers",
    "financials",
    "invoices",
    "events",
    "policies",
    "limits",
    "country_risk",
)
#: Ground-truth frames, written to ``_truth/`` (never ingested).
TRUTH_TABLES: tuple[str, ...] = ("pd_monthly", "defaults", "dirty_rows")

CURRENCY = "EUR"
#: Months of latent path simulated past the window: only used to calibrate the intercept on
#: the 12-month forward default rate of every window month (never published).
_HORIZON = 12
_NULL_DAY = np.iinfo(np.int32).min
_EPOCH = np.datetime64("1970-01-01", "D")

# --------------------------------------------------------------------------------------
# Reference parameters of the synthetic economy
# --------------------------------------------------------------------------------------

#: country: (portfolio weight, political-risk class 0-7, GDP growth, inflation,
#: extra days late from payment culture, long payment terms customary).
_COUNTRIES: dict[str, tuple[float, int, float | None, float | None, float, bool]] = {
    "DE": (0.17, 0, 0.008, 0.021, 0.0, False),
    "FR": (0.13, 0, 0.011, 0.018, 6.0, True),
    "IT": (0.11, 1, 0.007, 0.017, 12.0, True),
    "ES": (0.09, 1, 0.024, 0.026, 10.0, True),
    "NL": (0.06, 0, 0.014, 0.029, 1.0, False),
    "BE": (0.04, 0, 0.012, 0.031, 4.0, False),
    "AT": (0.03, 0, 0.006, 0.028, 1.0, False),
    "PL": (0.06, 2, 0.031, 0.043, 5.0, False),
    "CZ": (0.03, 1, 0.019, 0.026, 4.0, False),
    "PT": (0.03, 1, 0.021, 0.024, 12.0, True),
    "SE": (0.02, 0, 0.015, 0.019, 0.0, False),
    "DK": (0.02, 0, 0.018, 0.017, 0.0, False),
    "GB": (0.05, 0, 0.011, 0.032, 5.0, False),
    "US": (0.04, 0, 0.022, 0.029, 4.0, False),
    "HU": (0.02, 3, 0.012, 0.047, 6.0, False),
    "RO": (0.02, 3, 0.016, 0.061, 10.0, True),
    "GR": (0.02, 3, 0.021, 0.027, 15.0, True),
    "TR": (0.02, 5, 0.032, 0.380, 10.0, True),
    "CN": (0.02, 2, 0.046, None, 8.0, False),
    "UA": (0.01, 7, None, 0.120, 12.0, True),
    "BR": (0.01, 5, 0.023, 0.051, 10.0, True),
}
#: Effect of one political-risk class step on the latent level (transfer and macro risk).
_COUNTRY_CLASS_EFFECT = -0.10

#: NACE section: (weight, latent level effect, operating margin, asset turnover,
#: current-asset share of total assets, inventory share of current assets).
_SECTORS: dict[str, tuple[float, float, float, float, float, float]] = {
    "A": (0.03, -0.05, 0.06, 0.6, 0.35, 0.30),
    "C": (0.17, 0.00, 0.06, 1.1, 0.55, 0.35),
    "F": (0.12, -0.30, 0.05, 1.3, 0.65, 0.25),
    "G": (0.25, -0.10, 0.03, 2.0, 0.70, 0.40),
    "H": (0.07, -0.10, 0.05, 1.2, 0.35, 0.05),
    "I": (0.06, -0.35, 0.05, 1.0, 0.25, 0.10),
    "J": (0.05, 0.10, 0.10, 1.0, 0.55, 0.03),
    "L": (0.04, -0.05, 0.15, 0.25, 0.15, 0.05),
    "M": (0.09, 0.10, 0.09, 1.3, 0.60, 0.05),
    "N": (0.06, -0.10, 0.06, 1.5, 0.55, 0.05),
    "Q": (0.03, 0.25, 0.07, 1.0, 0.40, 0.05),
    "S": (0.03, -0.15, 0.06, 1.2, 0.45, 0.10),
}

#: EU SME turnover thresholds (EUR): micro < 2M <= small < 10M <= medium < 50M <= large.
_SIZE_NAMES = ("micro", "small", "medium", "large")
_SIZE_BOUNDS = (2e6, 10e6, 50e6)
_SIZE_EFFECT = np.array([-0.20, 0.0, 0.15, 0.30])
#: Share of buyers of each size class that never file statements, and share of filers
#: that file abbreviated statements (balance sheet only, no P&L).
_NEVER_FILE = np.array([0.50, 0.25, 0.05, 0.05])
_ABBREVIATED = np.array([0.70, 0.35, 0.05, 0.0])
#: Extra filing delay (days) by size class: small firms file late.
_FILING_DELAY_SIZE = np.array([40.0, 20.0, 0.0, -10.0])
#: Policyholders trading with a buyer: 1 + Poisson(mean) by size class, at most 5.
_PH_PER_BUYER_EXTRA = np.array([0.3, 1.1, 1.9, 2.7])

_LEGAL_FORM_ORDER = LEGAL_FORM_ORDER
#: P(legal form | size class), rows micro..large, columns in _LEGAL_FORM_ORDER.
_LEGAL_FORM_P = np.array(
    [
        [0.35, 0.10, 0.45, 0.00, 0.03, 0.07],
        [0.08, 0.07, 0.75, 0.02, 0.03, 0.05],
        [0.00, 0.03, 0.80, 0.10, 0.03, 0.04],
        [0.00, 0.00, 0.55, 0.40, 0.02, 0.03],
    ]
)
_LEGAL_SUFFIX = {
    "sole_proprietorship": "",
    "partnership": "& Partners",
    "private_limited": "Ltd",
    "public_limited": "PLC",
    "cooperative": "Cooperative",
    "other": "Group",
}
_LOCAL_SUFFIX = {  # (country, legal form) -> local suffix, where it differs from the generic
    ("DE", "private_limited"): "GmbH",
    ("DE", "public_limited"): "AG",
    ("AT", "private_limited"): "GmbH",
    ("AT", "public_limited"): "AG",
    ("FR", "private_limited"): "SARL",
    ("FR", "public_limited"): "SA",
    ("IT", "private_limited"): "Srl",
    ("IT", "public_limited"): "SpA",
    ("ES", "private_limited"): "SL",
    ("ES", "public_limited"): "SA",
    ("NL", "private_limited"): "BV",
    ("NL", "public_limited"): "NV",
    ("BE", "private_limited"): "BV",
    ("PL", "private_limited"): "Sp. z o.o.",
    ("PL", "public_limited"): "S.A.",
    ("US", "private_limited"): "LLC",
    ("US", "public_limited"): "Inc.",
}
_NAME_FIRST = (
    "Alpha", "Nordic", "Atlas", "Vertex", "Delta", "Orion", "Summit", "Pioneer", "Apex",
    "Horizon", "Unity", "Crown", "Phoenix", "Silver", "Blue", "Green", "Golden", "Central",
    "Euro", "Global", "Prime", "Star", "Metro", "Royal", "United", "Northern", "Southern",
    "Western", "Eastern", "Smart", "Baltic", "Alpine", "Danube", "Rhine", "Iberia", "Adria",
)  # fmt: skip
_NAME_SECOND = (
    "Logistics", "Trading", "Foods", "Metals", "Textiles", "Systems", "Solutions", "Industries",
    "Construction", "Pharma", "Energy", "Plastics", "Electronics", "Retail", "Services",
    "Consulting", "Holdings", "Packaging", "Motors", "Chemicals", "Software", "Furniture",
    "Farming", "Transport", "Hotels", "Media", "Paper", "Tools", "Timber", "Glass",
)  # fmt: skip

#: Default kinds and their probabilities (micro firms liquidate more often).
_DEFAULT_KINDS = ("insolvency", "liquidation", "protracted")
_DEFAULT_KIND_P = np.array([[0.55, 0.25, 0.20], [0.70, 0.10, 0.20]])  # micro, others
#: Share of insolvencies later followed by a liquidation event.
_LIQUIDATION_AFTER_INSOLVENCY = 0.30

_EVENT_ORDER = ("insolvency", "liquidation", "claim_filed", "overdue_notification", "legal_dispute")
_EVENTS_WITH_AMOUNT = np.array([False, False, True, True, True])

_TERMS = np.array([30, 45, 60, 90], dtype=np.int32)
_TERMS_P = np.array([[0.50, 0.20, 0.25, 0.05], [0.20, 0.15, 0.40, 0.25]])  # north, south
#: Monthly seasonality of invoicing (Jan..Dec): August and December are quiet.
_SEASON = np.array([0.97, 1.0, 1.06, 1.02, 1.03, 1.02, 0.98, 0.82, 1.05, 1.07, 1.04, 0.94])

#: Shape of the Gamma noise on days late (mean 1): larger is a thinner tail.
_DELAY_SHAPE = 2.5
#: Disputes: base probability per invoice (times exp(-x/2)), then 10 + Exponential(20) extra days.
_DISPUTE_RATE = 0.008
_DISPUTE_MIN_DAYS = 10
_DISPUTE_MEAN_EXTRA = 20.0

_WAITING_DAYS = np.array([60, 90, 120, 180])
_WAITING_P = np.array([0.40, 0.30, 0.20, 0.10])

assert set(_COUNTRIES) <= ISO_COUNTRIES
assert set(_SECTORS) <= set(NACE_SECTIONS)
assert set(_LEGAL_FORM_ORDER) <= LEGAL_FORMS
assert set(_EVENT_ORDER) <= EVENT_TYPES
assert {"first_euro", "excess_of_loss"} <= POLICY_SCHEMES


# --------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GeneratorConfig:
    """Size, window, seed and the tunable parameters of the synthetic portfolio.

    The defaults are the documented baseline (``data/README.md``); the latent-process
    parameters are in units of the latent score, whose cross-sectional sd is about 1.
    """

    n_buyers: int = 2000
    months: int = 24
    #: Last day covered; the window is the `months` calendar months ending with this day's month.
    end_date: dt.date = dt.date(2026, 11, 30)
    seed: int = 42
    #: Target 12-month default rate of buyers alive at a month end, averaged over the window.
    annual_default_rate: float = 0.03
    #: Approximate share of rows of each input table that are deliberately corrupted.
    dirty_fraction: float = 0.0
    #: Average invoices per buyer and month (over all its policyholders).
    invoices_per_buyer_month: float = 1.0
    #: Buyers per policyholder (at least 5 policyholders).
    buyers_per_policyholder: int = 50
    #: Months of latent history simulated before the window (statements need a year of it).
    burn_in_months: int = 36
    #: Statements are generated for fiscal years ending up to this many months before the window.
    statement_history_months: int = 24
    #: Buyer-specific AR(1): monthly persistence and stationary sd.
    latent_phi: float = 0.90
    latent_sd: float = 0.90
    #: Sd of the buyer's idiosyncratic long-run level (on top of segment effects).
    idiosyncratic_sd: float = 0.50
    sector_shock_phi: float = 0.90
    sector_shock_sd: float = 0.12
    macro_shock_phi: float = 0.90
    macro_shock_sd: float = 0.10
    #: Slope b of the log monthly hazard on the latent score: h = min(exp(a - b x), cap).
    hazard_slope: float = 1.8
    hazard_cap: float = 0.30
    #: Days late: mean delay of a late payment is delay_base_days * exp(habit - delay_slope * x).
    delay_base_days: float = 5.0
    delay_slope: float = 0.8
    #: Days past due at which a policyholder sends an overdue notification.
    overdue_notice_days: int = 60
    #: Share of limits with a pending request for more.
    pending_request_share: float = 0.05

    def __post_init__(self) -> None:
        if self.n_buyers < 1:
            raise ValueError("n_buyers must be >= 1")
        if not 1 <= self.months <= 240:
            raise ValueError("months must be in 1..240")
        if not 0.001 <= self.annual_default_rate <= 0.3:
            raise ValueError("annual_default_rate must be in [0.001, 0.3]")
        if not 0.0 <= self.dirty_fraction < 0.5:
            raise ValueError("dirty_fraction must be in [0, 0.5)")
        if not 0.0 <= self.latent_phi < 1 or not 0.0 <= self.sector_shock_phi < 1:
            raise ValueError("AR(1) persistence must be in [0, 1)")
        if not 0.0 <= self.macro_shock_phi < 1:
            raise ValueError("AR(1) persistence must be in [0, 1)")
        if self.burn_in_months < 12 + self.statement_history_months:
            raise ValueError("burn_in_months must cover statement_history_months + 12")
        if self.invoices_per_buyer_month <= 0 or self.buyers_per_policyholder < 1:
            raise ValueError("invoice rate and buyers per policyholder must be positive")


@dataclass
class Portfolio:
    """Generated input tables (what a source system would deliver) and the hidden truth."""

    tables: dict[str, pd.DataFrame]
    truth: dict[str, pd.DataFrame]


def generate_portfolio(
    config: GeneratorConfig, progress: Callable[[str], None] | None = None
) -> Portfolio:
    """Generate a whole portfolio; identical output for an identical config (seed included)."""
    say = progress or (lambda _msg: None)
    cal = _Calendar.build(config)
    say(f"buyers: {config.n_buyers:,}")
    buyers = _make_buyers(config, cal)
    say(f"latent paths: {cal.n_sim} months (burn-in {cal.burn})")
    lat = _simulate_latent(config, cal, buyers)
    a = _calibrate_intercept(config, cal, buyers, lat)
    say(f"hazard intercept a = {a:.4f} for annual default rate {config.annual_default_rate:.2%}")
    tau = _draw_defaults(config, cal, buyers, lat, a)
    say(f"defaults in window: {int((tau != _NULL_DAY).sum()):,}")
    policies = _make_policies(config)
    pairs = _make_pairs(config, buyers, policies)
    say(f"policyholders: {policies.n:,}, trading pairs: {pairs.n:,}")
    inv = _make_invoices(config, cal, buyers, lat, pairs, tau, say)
    say(f"invoices: {inv.n:,}")
    kind = _default_kinds(config, buyers, inv, tau)
    events = _make_events(config, cal, buyers, policies, pairs, inv, tau, kind)
    say(f"events: {len(events['buyer']):,}")
    limits = _make_limits(config, cal, buyers, lat, pairs, inv, events)
    invoices = _invoices_frame(inv, pairs)
    del inv  # the largest intermediate: release it before the truth is built
    financials = _make_financials(config, cal, buyers, lat, tau)
    say(f"statements: {len(financials):,}")
    pd_monthly = _truth_pd(config, cal, buyers, lat, a, tau)
    say(f"truth rows: {len(pd_monthly):,}")
    del lat
    tables = {
        "buyers": _buyers_frame(buyers),
        "financials": financials,
        "invoices": invoices,
        "events": _events_frame(events),
        "policies": _policies_frame(policies),
        "limits": _limits_frame(limits, pairs),
        "country_risk": _country_risk_frame(),
    }
    del invoices, financials
    defaults = _defaults_frame(buyers, tau, kind)
    dirty_rows = _empty_dirty_rows()
    if config.dirty_fraction > 0:
        say(f"injecting dirty rows ({config.dirty_fraction:.1%})")
        tables, dirty_rows = _inject_dirty(config, tables)
    truth = {"pd_monthly": pd_monthly, "defaults": defaults, "dirty_rows": dirty_rows}
    say("done")
    return Portfolio(tables=tables, truth=truth)


def write_portfolio(
    portfolio: Portfolio, out_dir: Path, fmt: Literal["parquet", "csv"] = "parquet"
) -> list[Path]:
    """Write every input table as ``<table>.<fmt>`` and the truth as ``_truth/<name>.parquet``.

    Each file is written to a temporary name in its directory and renamed into place, so a
    reader never sees a half-written file. Dates are written as date32 (Parquet) or
    ``YYYY-MM-DD`` (CSV); rows keep their order, so ``dirty_rows.row_number`` is the 1-based
    data row of the file.
    """
    if fmt not in ("parquet", "csv"):
        raise ValueError(f"unknown format {fmt!r}: use 'parquet' or 'csv'")
    out_dir = Path(out_dir)
    truth_dir = out_dir / "_truth"
    truth_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name in INPUT_TABLES:
        path = out_dir / f"{name}.{fmt}"
        _atomic_write(_to_arrow(portfolio.tables[name]), path, fmt)
        written.append(path)
    for name in TRUTH_TABLES:
        path = truth_dir / f"{name}.parquet"
        _atomic_write(_to_arrow(portfolio.truth[name]), path, "parquet")
        written.append(path)
    return written


# --------------------------------------------------------------------------------------
# Calendar and random streams
# --------------------------------------------------------------------------------------


def _rng(config: GeneratorConfig, *stream: int) -> np.random.Generator:
    """An independent stream per component (and per month), so one change stays local."""
    return np.random.default_rng([config.seed, *stream])


def _day(d: dt.date) -> int:
    return int((np.datetime64(d, "D") - _EPOCH).astype(np.int64))


@dataclass(frozen=True)
class _Calendar:
    """Month grid: simulation month t = 0..n_sim-1; the window is t = burn..burn+months-1."""

    burn: int
    months: int
    n_sim: int
    starts: np.ndarray  # day number of each month's first day, length n_sim + 1
    end: int  # day number of end_date
    month_of_year: np.ndarray  # 1..12 per simulation month

    @classmethod
    def build(cls, config: GeneratorConfig) -> _Calendar:
        burn, months = config.burn_in_months, config.months
        n_sim = burn + months + _HORIZON
        first = np.datetime64(config.end_date, "M") - (months - 1) - burn
        grid = first + np.arange(n_sim + 1)
        starts = (grid.astype("datetime64[D]") - _EPOCH).astype(np.int64)
        moy = (grid[:-1].astype(np.int64) % 12 + 1).astype(np.int8)
        return cls(burn, months, n_sim, starts, _day(config.end_date), moy)

    @property
    def window(self) -> range:
        return range(self.burn, self.burn + self.months)

    @property
    def window_start(self) -> int:
        return int(self.starts[self.burn])

    def month_end(self, t: int) -> int:
        """Last covered day of month t (end_date for the last window month)."""
        return int(min(self.starts[t + 1] - 1, self.end))

    def month_index(self, days: np.ndarray) -> np.ndarray:
        return (np.searchsorted(self.starts, days, side="right") - 1).astype(np.int32)


# --------------------------------------------------------------------------------------
# Buyers and latent process
# --------------------------------------------------------------------------------------


@dataclass
class _Buyers:
    n: int
    country: np.ndarray  # int8 index into _COUNTRIES
    sector: np.ndarray  # int8 index into _SECTORS
    size: np.ndarray  # int8 0..3
    turnover: np.ndarray  # float64 EUR, latest annual level
    legal_form: np.ndarray  # int8 index into _LEGAL_FORM_ORDER
    inc_day: np.ndarray  # int32 day number or _NULL_DAY
    mu: np.ndarray  # float32 long-run latent level
    habit: np.ndarray  # float32 log-scale payment habit
    filer: np.ndarray  # bool: files statements at all
    abbreviated: np.ndarray  # bool: files balance sheet only
    fye: np.ndarray  # int8 fiscal-year-end month 1..12
    share_capital: np.ndarray  # float32 paid-in capital as share of assets
    name_words: np.ndarray  # (2, n) int16 indices into _NAME_FIRST, _NAME_SECOND


def _make_buyers(config: GeneratorConfig, cal: _Calendar) -> _Buyers:
    """Segments, size and age, and from them the buyer's long-run creditworthiness."""
    rng = _rng(config, 1)
    n = config.n_buyers
    cw = np.array([v[0] for v in _COUNTRIES.values()])
    country = rng.choice(len(cw), n, p=cw / cw.sum()).astype(np.int8)
    sw = np.array([v[0] for v in _SECTORS.values()])
    sector = rng.choice(len(sw), n, p=sw / sw.sum()).astype(np.int8)
    turnover = np.maximum(np.exp(rng.normal(np.log(1.2e6), 1.5, n)), 2e4)
    size = np.searchsorted(np.array(_SIZE_BOUNDS), turnover, side="right").astype(np.int8)
    cum = np.cumsum(_LEGAL_FORM_P[size], axis=1)
    legal_form = (rng.random(n)[:, None] > cum).sum(axis=1).clip(0, 5).astype(np.int8)
    # Age in years at the window start: log-normal, larger firms older; at least 3 months.
    age = np.exp(rng.normal(np.log(9.0), 0.85, n)) + 3.0 * size + rng.random(n) * 0.5
    # At most 150 years: the log-normal tail would otherwise date a few firms before 1800,
    # which the buyers contract rightly rejects.
    age = np.clip(age, 0.25, 150.0)
    inc_day = (cal.window_start - np.round(age * 365.25)).astype(np.int32)
    inc_day[rng.random(n) < 0.015] = _NULL_DAY
    cls = np.array([v[1] for v in _COUNTRIES.values()])
    sec_eff = np.array([v[1] for v in _SECTORS.values()])
    age_eff = 0.15 - 0.55 * np.exp(-age / 3.0)
    mu = (
        sec_eff[sector]
        + _COUNTRY_CLASS_EFFECT * cls[country]
        + _SIZE_EFFECT[size]
        + age_eff
        + rng.normal(0.0, config.idiosyncratic_sd, n)
    ).astype(np.float32)
    habit = rng.normal(0.0, 0.35, n).astype(np.float32)
    filer = rng.random(n) >= _NEVER_FILE[size]
    abbreviated = rng.random(n) < _ABBREVIATED[size]
    fye = np.where(rng.random(n) < 0.8, 12, rng.choice(np.array([3, 6, 9]), n)).astype(np.int8)
    share_capital = rng.uniform(0.03, 0.25, n).astype(np.float32)
    name_words = np.stack(
        [rng.integers(0, len(_NAME_FIRST), n), rng.integers(0, len(_NAME_SECOND), n)]
    ).astype(np.int16)
    return _Buyers(
        n, country, sector, size, turnover, legal_form, inc_day, mu, habit, filer,
        abbreviated, fye, share_capital, name_words,
    )  # fmt: skip


@dataclass
class _Latent:
    z: np.ndarray  # (n_sim, n) float32 buyer AR(1)
    s: np.ndarray  # (n_sim, n_sectors) float64 sector AR(1)
    e: np.ndarray  # (n_sim,) float64 economy AR(1)

    def x(
        self, b: _Buyers, t: int | np.ndarray, idx: np.ndarray | slice = slice(None)
    ) -> np.ndarray:
        """Latent score of buyers `idx` at month(s) `t` (scalar t, or one t per buyer)."""
        mu, sec = b.mu[idx], b.sector[idx]
        return mu + self.z[t, idx] + (self.s[t, sec] + self.e[t]).astype(np.float32)


def _ar1(rng: np.random.Generator, phi: float, sd: float, shape: tuple[int, ...]) -> np.ndarray:
    """Stationary Gaussian AR(1) paths along axis 0 (started in the stationary law)."""
    out = np.empty(shape)
    out[0] = rng.normal(0.0, sd, shape[1:])
    innov = sd * np.sqrt(1.0 - phi**2)
    for t in range(1, shape[0]):
        out[t] = phi * out[t - 1] + rng.normal(0.0, innov, shape[1:])
    return out


def _simulate_latent(config: GeneratorConfig, cal: _Calendar, b: _Buyers) -> _Latent:
    """Simulate z, s, e over burn-in + window + horizon.

    The processes start in their stationary law and run `burn_in_months` before the window,
    so the window starts stationary and statements before it have a latent history.
    """
    rng = _rng(config, 2)
    s = _ar1(rng, config.sector_shock_phi, config.sector_shock_sd, (cal.n_sim, len(_SECTORS)))
    e = _ar1(rng, config.macro_shock_phi, config.macro_shock_sd, (cal.n_sim,))
    phi, sd = np.float32(config.latent_phi), config.latent_sd
    innov = np.float32(sd * np.sqrt(1.0 - config.latent_phi**2))
    z = np.empty((cal.n_sim, b.n), dtype=np.float32)
    z[0] = rng.standard_normal(b.n, dtype=np.float32) * np.float32(sd)
    for t in range(1, cal.n_sim):
        z[t] = phi * z[t - 1] + innov * rng.standard_normal(b.n, dtype=np.float32)
    return _Latent(z, s, e)


def _hazard(config: GeneratorConfig, a: float, x: np.ndarray) -> np.ndarray:
    return np.minimum(np.exp(a - config.hazard_slope * x.astype(np.float64)), config.hazard_cap)


def _calibrate_intercept(
    config: GeneratorConfig, cal: _Calendar, b: _Buyers, lat: _Latent
) -> float:
    """Solve for `a` so the expected 12-month default rate over the window hits the target.

    The rate is computed on the simulated latent paths (a subsample of at most 200k buyers):
    for each window month, the survival-weighted probability of defaulting in the following
    12 months, averaged over months. Conditioning on the simulated macro path means the
    realised rate matches the target up to default-sampling noise, while the within-window
    cycle is kept.
    """
    m = min(b.n, 200_000)
    idx = np.arange(m)
    t0 = cal.burn
    xs = np.stack([lat.x(b, t, idx) for t in range(t0, t0 + cal.months + _HORIZON)])
    g = np.exp(-config.hazard_slope * xs.astype(np.float64))
    del xs

    def rate(a: float) -> float:
        h = np.minimum(np.exp(a) * g, config.hazard_cap)
        c = np.concatenate([np.zeros((1, m)), np.cumsum(h, axis=0)])
        alive = np.exp(-c[1 : cal.months + 1])  # survived window months 0..w
        fwd = c[1 + _HORIZON : cal.months + 1 + _HORIZON] - c[1 : cal.months + 1]
        return float((alive * -np.expm1(-fwd)).sum() / alive.sum())

    # The rate is close to proportional to exp(a): the fixed-point step a += log(target / rate)
    # converges in a handful of iterations (monotonically, as the rate is concave in exp(a)).
    a = float(np.log(config.annual_default_rate / 12.0 / g.mean()))
    for _ in range(100):
        step = float(np.log(config.annual_default_rate / rate(a)))
        a += step
        if abs(step) < 1e-7:
            break
    return a


def _draw_defaults(
    config: GeneratorConfig, cal: _Calendar, b: _Buyers, lat: _Latent, a: float
) -> np.ndarray:
    """Default day per buyer (or _NULL_DAY): first month where cumulative hazard passes Exp(1).

    The day inside the month is where the cumulative hazard crosses, interpolated linearly.
    """
    rng = _rng(config, 3)
    threshold = rng.exponential(1.0, b.n)
    cum = np.zeros(b.n)
    tau = np.full(b.n, _NULL_DAY, dtype=np.int32)
    for t in cal.window:
        h = _hazard(config, a, lat.x(b, t))
        new = (cum < threshold) & (cum + h >= threshold)
        frac = (threshold[new] - cum[new]) / h[new]
        ndays = cal.month_end(t) - cal.starts[t] + 1
        tau[new] = (cal.starts[t] + np.floor(frac * ndays).clip(0, ndays - 1)).astype(np.int32)
        cum += h
    return tau


def _truth_pd(
    config: GeneratorConfig, cal: _Calendar, b: _Buyers, lat: _Latent, a: float, tau: np.ndarray
) -> pd.DataFrame:
    """True 12-month PD at every window month end, for buyers not yet defaulted.

    Given the state at month end t, the future scores x[t+1..t+12] are jointly Gaussian:
    component c (buyer, sector, economy; persistence phi_c, stationary sd_c) contributes mean
    phi_c^k * state_c and covariance sd_c^2 (phi_c^|j-k| - phi_c^(j+k)). The hazards
    h_k = exp(a - b x[t+k]) are therefore log-normal with exact means and covariances, which
    gives the exact mean m and variance v of the 12-month cumulative hazard H. The PD
    1 - E[exp(-H)] is then taken from a Gamma law with that mean and variance:
    1 - (1 + v/m)^(-m^2/v). This is exact in the first two moments (plain 1 - exp(-m) would
    overstate the PD of risky buyers by Jensen's inequality); the hazard cap is ignored (it
    binds only far in the tail).
    """
    bslope = config.hazard_slope
    k = np.arange(1, _HORIZON + 1)
    parts = [
        (config.latent_phi, config.latent_sd),
        (config.sector_shock_phi, config.sector_shock_sd),
        (config.macro_shock_phi, config.macro_shock_sd),
    ]
    jj, kk = np.meshgrid(k, k, indexing="ij")
    cov = sum(sd**2 * (phi ** np.abs(jj - kk) - phi ** (jj + kk)) for phi, sd in parts)
    const_k = a + 0.5 * bslope**2 * np.diag(cov)
    lognormal_cov = np.expm1(bslope**2 * cov)  # Cov(h_j, h_k) = E h_j E h_k (exp(b^2 C_jk) - 1)
    phi_z = config.latent_phi**k
    phi_s = config.sector_shock_phi**k
    phi_e = config.macro_shock_phi**k
    ids, ends, pds, scores = [], [], [], []
    for t in cal.window:
        end = cal.month_end(t)
        alive = np.flatnonzero((tau == _NULL_DAY) | (tau > end))
        mu = b.mu[alive].astype(np.float64)
        z = lat.z[t, alive].astype(np.float64)
        s = lat.s[t, b.sector[alive]]
        e = lat.e[t]
        mean_h = np.exp(
            const_k[None, :]
            - bslope * (mu[:, None] + np.outer(z, phi_z) + np.outer(s, phi_s) + phi_e[None, :] * e)
        )
        m = mean_h.sum(axis=1)
        v = np.einsum("ij,ij->i", mean_h @ lognormal_cov, mean_h)
        del mean_h
        with np.errstate(divide="ignore", invalid="ignore"):
            pd_gamma = -np.expm1(-(m * m / v) * np.log1p(v / m))
        ids.append(alive.astype(np.int32))
        ends.append(np.full(len(alive), end, dtype=np.int32))
        pds.append(np.where(v > 0, pd_gamma, -np.expm1(-m)))
        scores.append(mu + z + s + e)
    idx = np.concatenate(ids)
    return pd.DataFrame(
        {
            "buyer_id": _id_series("B", idx.astype(np.int64) + 1, _BUYER_WIDTH),
            "month_end": _dates(np.concatenate(ends)),
            "pd_12m_true": np.concatenate(pds),
            "latent_score": np.concatenate(scores),
        }
    )


# --------------------------------------------------------------------------------------
# Policies, trading pairs and invoices
# --------------------------------------------------------------------------------------


@dataclass
class _Policies:
    n: int
    weight: np.ndarray  # Zipf-like share of trade
    xol: np.ndarray  # bool
    indemnity: np.ndarray
    waiting: np.ndarray  # int32 claim waiting days
    discretionary: np.ndarray
    first_loss: np.ndarray


def _make_policies(config: GeneratorConfig) -> _Policies:
    """Policyholders sized Zipf-like; ~70 % whole-turnover (first euro), the rest XoL."""
    rng = _rng(config, 5)
    n = max(5, round(config.n_buyers / config.buyers_per_policyholder))
    rank = rng.permutation(n) + 1
    weight = 1.0 / (rank + 2.0)
    weight /= weight.sum()
    xol = rng.random(n) >= 0.70
    indemnity = np.where(
        xol,
        rng.choice(np.array([70.0, 75.0, 80.0, 85.0, 90.0]), n, p=[0.1, 0.2, 0.3, 0.25, 0.15]),
        rng.choice(np.array([80.0, 85.0, 90.0, 95.0]), n, p=[0.15, 0.25, 0.45, 0.15]),
    )
    waiting = rng.choice(_WAITING_DAYS, n, p=_WAITING_P).astype(np.int32)
    disc_xol = rng.choice(np.array([25e3, 50e3, 75e3, 100e3, 150e3, 250e3]), n)
    disc_fe = np.where(rng.random(n) < 0.6, 0.0, rng.choice(np.array([5e3, 10e3, 20e3]), n))
    discretionary = np.where(xol, disc_xol, disc_fe)
    # Aggregate first loss grows with the policyholder's size (rank 1 is the largest).
    afl_grid = np.array([25e3, 50e3, 100e3, 250e3, 500e3, 1e6])
    afl_idx = np.clip(5 - np.floor(np.log2(rank)).astype(int) // 2 + rng.integers(-1, 2, n), 0, 5)
    first_loss = np.where(xol, afl_grid[afl_idx], 0.0)
    return _Policies(n, weight, xol, indemnity, waiting, discretionary, first_loss)


@dataclass
class _Pairs:
    """(buyer, policyholder) trading relationships, sorted by buyer then policyholder."""

    n: int
    buyer: np.ndarray  # int32
    ph: np.ndarray  # int32
    rate: np.ndarray  # expected invoices per month
    mean_amount: np.ndarray  # expected invoice amount (EUR)
    terms: np.ndarray  # int32 payment terms (days)


def _make_pairs(config: GeneratorConfig, b: _Buyers, p: _Policies) -> _Pairs:
    """1-5 policyholders per buyer (more for larger buyers), drawn by policyholder weight.

    A buyer's invoice rate grows less than proportionally with turnover; the invoice size
    takes up the rest, so insured purchases are about 8 % of turnover.
    """
    rng = _rng(config, 6)
    k = np.minimum(1 + rng.poisson(_PH_PER_BUYER_EXTRA[b.size]), 5)
    buyer = np.repeat(np.arange(b.n, dtype=np.int64), k)
    ph = np.searchsorted(np.cumsum(p.weight), rng.random(len(buyer)) * p.weight.sum()).clip(
        0, p.n - 1
    )
    code = np.unique(buyer * p.n + ph)  # dedupe repeated draws; sorted by buyer then ph
    buyer = (code // p.n).astype(np.int32)
    ph = (code % p.n).astype(np.int32)
    share = rng.gamma(1.5, 1.0, len(code)) * (p.weight[ph] * p.n) ** 0.25
    share /= np.bincount(buyer, share, minlength=b.n)[buyer]
    rel = (b.turnover / 1e6) ** 0.45
    buyer_rate = np.minimum(config.invoices_per_buyer_month * rel / rel.mean(), 60.0)
    rate = buyer_rate[buyer] * share
    monthly_insured = 0.08 * b.turnover[buyer] / 12.0
    mean_amount = np.maximum(monthly_insured / buyer_rate[buyer], 50.0)
    south = np.array([v[5] for v in _COUNTRIES.values()])[b.country[buyer]]
    cum = np.cumsum(_TERMS_P[south.astype(int)], axis=1)
    terms = _TERMS[(rng.random(len(code))[:, None] > cum).sum(axis=1).clip(0, 3)]
    return _Pairs(len(code), buyer, ph, rate, mean_amount, terms)


@dataclass
class _Invoices:
    n: int
    pair: np.ndarray  # int32
    buyer: np.ndarray  # int32
    issue: np.ndarray  # int32 day
    due: np.ndarray  # int32 day
    paid: np.ndarray  # int32 day or _NULL_DAY
    amount: np.ndarray  # float64
    month: np.ndarray  # int16 window month of issue (0-based)
    dispute: np.ndarray  # bool


def _make_invoices(
    config: GeneratorConfig,
    cal: _Calendar,
    b: _Buyers,
    lat: _Latent,
    pairs: _Pairs,
    tau: np.ndarray,
    say: Callable[[str], None],
) -> _Invoices:
    """Invoices month by month: Poisson counts per pair, log-normal amounts, latent-driven delays.

    Days late depend on the latent score in the month the invoice falls due: a punctual
    payment (0-7 days early) with probability rising in x, otherwise a Gamma-distributed delay
    whose mean grows as exp(-delay_slope x) scaled by the buyer's habit, plus the country's
    payment culture; occasional disputes (more frequent for weak buyers) add 10 +
    Exponential(20) days. A buyer pays nothing on or after its default day and issues nothing
    from it on.
    """
    culture = np.array([v[4] for v in _COUNTRIES.values()], dtype=np.float32)
    last_t = cal.burn + cal.months - 1
    out: dict[str, list[np.ndarray]] = {
        k: [] for k in ("pair", "buyer", "issue", "due", "paid", "amount", "month", "dispute")
    }
    for w, t in enumerate(cal.window):
        rng = _rng(config, 7, w)
        start, end = int(cal.starts[t]), cal.month_end(t)
        ndays = end - start + 1
        season = _SEASON[cal.month_of_year[t] - 1] * ndays / (cal.starts[t + 1] - cal.starts[t])
        counts = rng.poisson(pairs.rate * season)
        pair = np.repeat(np.arange(pairs.n, dtype=np.int32), counts)
        issue = (start + np.floor(rng.random(len(pair)) * ndays)).astype(np.int32)
        buyer = pairs.buyer[pair]
        dtau = tau[buyer]
        keep = (dtau == _NULL_DAY) | (issue < dtau)
        order = np.flatnonzero(keep)[np.argsort(issue[keep], kind="stable")]
        pair, issue, buyer, dtau = pair[order], issue[order], buyer[order], dtau[order]
        m = len(pair)
        sigma = 0.7
        amount = np.round(
            pairs.mean_amount[pair] * np.exp(rng.normal(-0.5 * sigma**2, sigma, m)), 2
        )
        amount = np.maximum(amount, 10.0)
        due = issue + pairs.terms[pair]
        t_due = np.minimum(cal.month_index(due), last_t)
        x = lat.x(b, t_due, buyer)
        punctual = rng.random(m) < np.clip(0.5 + 0.12 * x, 0.1, 0.85)
        scale = config.delay_base_days * np.exp(b.habit[buyer] - config.delay_slope * x)
        late = culture[b.country[buyer]] * (0.5 + rng.random(m, dtype=np.float32))
        late += scale * rng.gamma(_DELAY_SHAPE, 1.0 / _DELAY_SHAPE, m).astype(np.float32)
        days = np.where(punctual, -np.floor(rng.random(m) * 8), np.ceil(late)).astype(np.int32)
        dispute = rng.random(m) < np.minimum(_DISPUTE_RATE * np.exp(-0.5 * x), 0.15)
        extra = _DISPUTE_MIN_DAYS + np.floor(rng.exponential(_DISPUTE_MEAN_EXTRA, m))
        days += np.where(dispute, extra, 0).astype(np.int32)
        paid = due + days
        unpaid = (paid > cal.end) | ((dtau != _NULL_DAY) & (paid >= dtau))
        paid[unpaid] = _NULL_DAY
        out["pair"].append(pair)
        out["buyer"].append(buyer)
        out["issue"].append(issue)
        out["due"].append(due.astype(np.int32))
        out["paid"].append(paid.astype(np.int32))
        out["amount"].append(amount)
        out["month"].append(np.full(m, w, dtype=np.int16))
        out["dispute"].append(dispute)
        if w % 6 == 5:
            say(f"invoices: month {w + 1}/{cal.months}")
    cat = {k: np.concatenate(v) for k, v in out.items()}
    return _Invoices(n=len(cat["pair"]), **cat)


def _default_kinds(
    config: GeneratorConfig, b: _Buyers, inv: _Invoices, tau: np.ndarray
) -> np.ndarray:
    """Kind per buyer (index into _DEFAULT_KINDS, -1 if no default).

    A protracted default (non-payment without a legal event) needs an unpaid invoice: a
    buyer that left nothing unpaid is made an insolvency so every default stays observable.
    """
    rng = _rng(config, 8)
    kind = np.full(b.n, -1, dtype=np.int8)
    dflt = np.flatnonzero(tau != _NULL_DAY)
    p = _DEFAULT_KIND_P[(b.size[dflt] > 0).astype(int)]
    draw = (rng.random(len(dflt))[:, None] > np.cumsum(p, axis=1)).sum(axis=1).clip(0, 2)
    kind[dflt] = draw
    unpaid = np.zeros(b.n, dtype=bool)
    unpaid[inv.buyer[inv.paid == _NULL_DAY]] = True
    kind[(kind == 2) & ~unpaid] = 0
    return kind


# --------------------------------------------------------------------------------------
# Events and limits
# --------------------------------------------------------------------------------------


def _make_events(
    config: GeneratorConfig,
    cal: _Calendar,
    b: _Buyers,
    p: _Policies,
    pairs: _Pairs,
    inv: _Invoices,
    tau: np.ndarray,
    kind: np.ndarray,
) -> dict[str, np.ndarray]:
    """Legal events of defaulters, claims, overdue notifications and disputes (dated <= end).

    Rows sharing the contract key (buyer, date, type, policyholder) are merged, amounts summed.
    """
    rng = _rng(config, 9)
    end = cal.end
    buyer_l, date_l, type_l, ph_l, amt_l = [], [], [], [], []

    def add(
        buyer: np.ndarray,
        date: np.ndarray,
        etype: int,
        ph: np.ndarray | None,
        amount: np.ndarray | None,
    ) -> None:
        ok = date <= end
        buyer_l.append(buyer[ok].astype(np.int32))
        date_l.append(date[ok].astype(np.int32))
        type_l.append(np.full(int(ok.sum()), etype, dtype=np.int8))
        ph_l.append(
            np.full(int(ok.sum()), -1, dtype=np.int32) if ph is None else ph[ok].astype(np.int32)
        )
        amt_l.append(np.full(int(ok.sum()), np.nan) if amount is None else amount[ok])

    ins = np.flatnonzero(kind == 0)
    ins_day = tau[ins] + rng.integers(0, 46, len(ins))
    add(ins, ins_day, 0, None, None)
    follow = rng.random(len(ins)) < _LIQUIDATION_AFTER_INSOLVENCY
    add(ins[follow], ins_day[follow] + 60 + rng.integers(0, 301, int(follow.sum())), 1, None, None)
    liq = np.flatnonzero(kind == 1)
    add(liq, tau[liq] + rng.integers(0, 61, len(liq)), 1, None, None)

    # Claims: one per (buyer, policyholder) left with unpaid invoices by a default, filed the
    # policy's waiting period after the earliest unpaid due date, for the total unpaid.
    open_inv = np.flatnonzero((inv.paid == _NULL_DAY) & (tau[inv.buyer] != _NULL_DAY))
    if len(open_inv):
        opair = inv.pair[open_inv]
        upair, inverse = np.unique(opair, return_inverse=True)
        earliest = np.full(len(upair), np.iinfo(np.int32).max, dtype=np.int64)
        np.minimum.at(earliest, inverse, inv.due[open_inv])
        total = np.bincount(inverse, inv.amount[open_inv], minlength=len(upair))
        ph = pairs.ph[upair]
        add(pairs.buyer[upair], earliest + p.waiting[ph], 2, ph, np.round(total, 2))

    # Overdue notifications: an invoice still unpaid `overdue_notice_days` after its due date.
    n_days = config.overdue_notice_days
    notice = inv.due.astype(np.int64) + n_days
    over = np.flatnonzero((notice <= end) & ((inv.paid == _NULL_DAY) | (inv.paid > notice)))
    add(inv.buyer[over], notice[over], 3, pairs.ph[inv.pair[over]], inv.amount[over])

    # Half of the disputes still open 30 days after the due date escalate to a legal dispute.
    escalate = inv.due.astype(np.int64) + 30
    disp = np.flatnonzero(inv.dispute & ((inv.paid == _NULL_DAY) | (inv.paid > escalate)))
    disp = disp[rng.random(len(disp)) < 0.5]
    add(inv.buyer[disp], escalate[disp], 4, pairs.ph[inv.pair[disp]], inv.amount[disp])

    buyer = np.concatenate(buyer_l).astype(np.int64)
    date = np.concatenate(date_l).astype(np.int64)
    etype = np.concatenate(type_l).astype(np.int64)
    ph = np.concatenate(ph_l).astype(np.int64)
    amount = np.concatenate(amt_l)
    base = date.min() if len(date) else 0
    key = (((buyer * (p.n + 1) + ph + 1) * 8 + etype) << 20) + (date - base)
    ukey, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    summed = np.bincount(inverse, np.nan_to_num(amount), minlength=len(ukey))
    etype_u = etype[first]
    summed = np.where(_EVENTS_WITH_AMOUNT[etype_u], np.round(summed, 2), np.nan)
    order = np.lexsort((etype_u, buyer[first], date[first]))
    sel = first[order]
    return {
        "buyer": buyer[sel].astype(np.int32),
        "date": date[sel].astype(np.int32),
        "type": etype[sel].astype(np.int8),
        "ph": ph[sel].astype(np.int32),
        "amount": summed[order],
    }


def _nice_ceil(v: np.ndarray) -> np.ndarray:
    """Round up to 'nice' limit amounts: steps of half a power of ten (12,345 -> 15,000)."""
    v = np.maximum(v, 1000.0)
    step = 0.5 * 10.0 ** np.floor(np.log10(v))
    return np.ceil(v / step - 1e-9) * step


def _make_limits(
    config: GeneratorConfig,
    cal: _Calendar,
    b: _Buyers,
    lat: _Latent,
    pairs: _Pairs,
    inv: _Invoices,
    events: dict[str, np.ndarray],
) -> dict[str, np.ndarray]:
    """Current limits: pairs trading in the last 6 months or with an outstanding exposure.

    Sized to peak monthly volume over the last 12 months times (terms/30 + 0.5), rounded up to
    nice amounts, cut for buyers the underwriter sees as weak (a noisy view of the latent
    score) and set to 0 for buyers whose default is already known (legal event or claim).
    """
    rng = _rng(config, 10)
    months = cal.months
    n12 = min(12, months)
    recent = inv.month >= months - n12
    slot = inv.pair[recent].astype(np.int64) * n12 + (inv.month[recent] - (months - n12))
    vol = np.bincount(slot, inv.amount[recent], minlength=pairs.n * n12).reshape(pairs.n, n12)
    peak = vol.max(axis=1)
    del vol
    last6 = np.bincount(inv.pair[inv.month >= months - min(6, months)], minlength=pairs.n) > 0
    exposure = np.round(
        np.bincount(
            inv.pair[inv.paid == _NULL_DAY], inv.amount[inv.paid == _NULL_DAY], minlength=pairs.n
        ),
        2,
    )
    sel = np.flatnonzero(last6 | (exposure > 0))
    buyer = pairs.buyer[sel]
    base = np.where(peak[sel] > 0, peak[sel], exposure[sel])
    want = _nice_ceil(base * (pairs.terms[sel] / 30.0 + 0.5))
    view = lat.x(b, cal.burn + months - 1, buyer) + rng.normal(0.0, 0.6, len(sel))
    factor = np.select([view < -2.5, view < -1.5], [0.3, 0.6], 1.0)
    limit = np.where(factor < 1.0, _nice_ceil(want * factor), want)
    decision = cal.end - np.floor(rng.exponential(150.0, len(sel))).astype(np.int64)
    decision = np.maximum(decision, cal.window_start - 365)
    # A default is known once an insolvency, liquidation or claim is on record: limit cancelled.
    known = np.full(b.n, np.iinfo(np.int32).max, dtype=np.int64)
    trig = events["type"] <= 2
    np.minimum.at(known, events["buyer"][trig], events["date"][trig])
    kb = known[buyer]
    cancelled = kb <= cal.end
    limit = np.where(cancelled, 0.0, limit)
    decision = np.where(cancelled, kb, decision)
    pending = (rng.random(len(sel)) < config.pending_request_share) & ~cancelled
    requested = np.where(pending, _nice_ceil(limit * rng.uniform(1.25, 2.5, len(sel))), np.nan)
    return {
        "pair": sel.astype(np.int32),
        "limit": limit,
        "requested": requested,
        "exposure": exposure[sel],
        "decision": decision.astype(np.int32),
    }


# --------------------------------------------------------------------------------------
# Financial statements
# --------------------------------------------------------------------------------------


def _make_financials(
    config: GeneratorConfig, cal: _Calendar, b: _Buyers, lat: _Latent, tau: np.ndarray
) -> pd.DataFrame:
    """Annual statements driven by the fiscal-year average of the latent score.

    Better buyers grow, earn higher margins, carry more equity and cash, and pay less interest.
    Amounts are whole euros and the identities hold exactly: components are floored from
    their parent totals and equity is total assets minus total liabilities.
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
        return _financials_frame({})
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
    return _financials_frame({k: v[order] for k, v in cols.items()})


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


# --------------------------------------------------------------------------------------
# Output frames
# --------------------------------------------------------------------------------------

#: Digits of buyer / policyholder / invoice numbers in their ids ("B0000001", "P000001", ...).
_BUYER_WIDTH = 7
_PH_WIDTH = 6
_INVOICE_WIDTH = 12


def _id_array(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    """Fixed-width ids like "B0000042", built as raw bytes (no per-row Python)."""
    numbers = np.asarray(numbers, dtype=np.int64)
    if len(numbers) and numbers.max() >= 10**width:
        width = len(str(int(numbers.max())))
    pre = np.frombuffer(prefix.encode(), dtype=np.uint8)
    size = len(pre) + width
    buf = np.empty((len(numbers), size), dtype=np.uint8)
    buf[:, : len(pre)] = pre
    rest = numbers.copy()
    for j in range(width - 1, -1, -1):
        buf[:, len(pre) + j] = rest % 10 + 48
        rest //= 10
    offsets = np.arange(len(numbers) + 1, dtype=np.int64) * size
    return pa.Array.from_buffers(
        pa.large_string(), len(numbers), [None, pa.py_buffer(offsets), pa.py_buffer(buf)]
    )


def _id_series(prefix: str, numbers: np.ndarray, width: int) -> pd.Series:
    return pd.Series(pd.array(_id_array(prefix, numbers, width), dtype="str"))


def _str_series(values: np.ndarray) -> pd.Series:
    """A pandas string column from a (small) array of Python strings."""
    return pd.Series(pd.array(pa.array(values, type=pa.large_string()), dtype="str"))


def _take_str(table: tuple[str, ...] | list[str], codes: np.ndarray) -> pd.Series:
    """Decode integer codes into a string column through a small dictionary."""
    dictionary = pa.array(list(table), type=pa.large_string())
    return pd.Series(pd.array(dictionary.take(np.asarray(codes, dtype=np.int32)), dtype="str"))


def _const_str(value: str, n: int) -> pd.Series:
    return _take_str([value], np.zeros(n, dtype=np.int32))


def _dates(days: np.ndarray) -> np.ndarray:
    """Day numbers (with _NULL_DAY for missing) -> datetime64[s] with NaT."""
    days = np.asarray(days, dtype=np.int64)
    out = (days * 86400).astype("datetime64[s]")
    out[days == _NULL_DAY] = np.datetime64("NaT")
    return out


def _buyers_frame(b: _Buyers) -> pd.DataFrame:
    first, second = b.name_words
    countries = list(_COUNTRIES)
    suffixes = [
        _LOCAL_SUFFIX.get((c, f), _LEGAL_SUFFIX[f]) for c in countries for f in _LEGAL_FORM_ORDER
    ]
    suffix_code = b.country.astype(np.int32) * len(_LEGAL_FORM_ORDER) + b.legal_form
    name = pc.binary_join_element_wise(
        pa.array(_NAME_FIRST).take(pa.array(first)),
        pa.array(_NAME_SECOND).take(pa.array(second)),
        pa.array(suffixes).take(pa.array(suffix_code)),
        " ",
    )
    name = pc.utf8_rtrim_whitespace(name).cast(pa.large_string())
    return pd.DataFrame(
        {
            "buyer_id": _id_series("B", np.arange(1, b.n + 1), _BUYER_WIDTH),
            "name": pd.array(name, dtype="str"),
            "country": _take_str(countries, b.country),
            "sector": _take_str(list(_SECTORS), b.sector),
            "legal_form": _take_str(_LEGAL_FORM_ORDER, b.legal_form),
            "incorporation_date": _dates(b.inc_day),
        }
    )


def _invoices_frame(inv: _Invoices, pairs: _Pairs) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "invoice_id": _id_series("INV", np.arange(1, inv.n + 1), _INVOICE_WIDTH),
            "buyer_id": _id_series("B", inv.buyer.astype(np.int64) + 1, _BUYER_WIDTH),
            "policyholder_id": _id_series("P", pairs.ph[inv.pair].astype(np.int64) + 1, _PH_WIDTH),
            "issue_date": _dates(inv.issue),
            "due_date": _dates(inv.due),
            "paid_date": _dates(inv.paid),
            "amount": inv.amount,
            "currency": _const_str(CURRENCY, inv.n),
        }
    )


def _events_frame(ev: dict[str, np.ndarray]) -> pd.DataFrame:
    ph = ev["ph"]
    null = ph < 0
    ph_ids = _id_array("P", np.where(null, 0, ph).astype(np.int64) + 1, _PH_WIDTH)
    ph_ids = pc.if_else(pa.array(null), pa.scalar(None, pa.large_string()), ph_ids)
    return pd.DataFrame(
        {
            "buyer_id": _id_series("B", ev["buyer"].astype(np.int64) + 1, _BUYER_WIDTH),
            "event_date": _dates(ev["date"]),
            "event_type": _take_str(_EVENT_ORDER, ev["type"]),
            "policyholder_id": pd.array(ph_ids, dtype="str"),
            "amount": ev["amount"],
        }
    )


def _policies_frame(p: _Policies) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "policyholder_id": _id_series("P", np.arange(1, p.n + 1), _PH_WIDTH),
            "scheme": _take_str(("first_euro", "excess_of_loss"), p.xol.astype(np.int32)),
            "indemnity_pct": p.indemnity.astype(np.float64),
            "claim_waiting_days": p.waiting.astype(np.int64),
            "discretionary_limit": p.discretionary.astype(np.float64),
            "aggregate_first_loss": p.first_loss.astype(np.float64),
        }
    )


def _limits_frame(lim: dict[str, np.ndarray], pairs: _Pairs) -> pd.DataFrame:
    pair = lim["pair"]
    return pd.DataFrame(
        {
            "policyholder_id": _id_series("P", pairs.ph[pair].astype(np.int64) + 1, _PH_WIDTH),
            "buyer_id": _id_series("B", pairs.buyer[pair].astype(np.int64) + 1, _BUYER_WIDTH),
            "limit_amount": lim["limit"].astype(np.float64),
            "requested_amount": lim["requested"].astype(np.float64),
            "exposure": lim["exposure"].astype(np.float64),
            "decision_date": _dates(lim["decision"]),
        }
    )


def _country_risk_frame() -> pd.DataFrame:
    vals = list(_COUNTRIES.values())
    return pd.DataFrame(
        {
            "country": _str_series(np.array(list(_COUNTRIES), dtype=object)),
            "political_risk_class": np.array([v[1] for v in vals], dtype=np.int64),
            "gdp_growth": np.array([np.nan if v[2] is None else v[2] for v in vals]),
            "inflation": np.array([np.nan if v[3] is None else v[3] for v in vals]),
        }
    )


def _defaults_frame(b: _Buyers, tau: np.ndarray, kind: np.ndarray) -> pd.DataFrame:
    idx = np.flatnonzero(tau != _NULL_DAY)
    idx = idx[np.lexsort((idx, tau[idx]))]
    return pd.DataFrame(
        {
            "buyer_id": _id_series("B", idx.astype(np.int64) + 1, _BUYER_WIDTH),
            "default_date": _dates(tau[idx]),
            "default_kind": _take_str(_DEFAULT_KINDS, kind[idx]),
        }
    )


def _empty_dirty_rows() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "table": pd.Series([], dtype="str"),
            "row_number": pd.Series([], dtype="int64"),
            "corruption": pd.Series([], dtype="str"),
        }
    )


# --------------------------------------------------------------------------------------
# Dirty rows
# --------------------------------------------------------------------------------------

#: Corruptions injected per table; each breaks at least one rule of the table's contract.
_CORRUPTIONS: dict[str, tuple[str, ...]] = {
    "buyers": (
        "bad_country", "bad_sector", "bad_legal_form", "missing_name", "missing_country",
        "unparseable_date",
    ),
    "financials": (
        "unknown_buyer", "negative_amount", "identity_violation", "filing_before_period_end",
        "bad_currency", "unparseable_date", "missing_total_assets",
    ),
    "invoices": (
        "negative_amount", "zero_amount", "due_before_issue", "paid_before_issue",
        "unknown_buyer", "unknown_policyholder", "duplicate_invoice_id", "unparseable_date",
        "bad_currency", "missing_amount", "missing_buyer_id",
    ),
    "events": (
        "bad_event_type", "unknown_buyer", "unknown_policyholder", "unparseable_date",
        "negative_amount", "missing_event_type",
    ),
    "policies": (
        "bad_scheme", "indemnity_out_of_range", "negative_amount", "missing_scheme",
        "xol_without_first_loss", "bad_waiting_days",
    ),
    "limits": (
        "unknown_buyer", "unknown_policyholder", "negative_amount", "zero_requested",
        "unparseable_date", "missing_limit",
    ),
    "country_risk": (
        "bad_country", "risk_class_out_of_range", "missing_risk_class", "gdp_in_percent",
    ),
}  # fmt: skip
_DATE_COLUMNS: dict[str, tuple[str, ...]] = {
    "buyers": ("incorporation_date",),
    "financials": ("period_end", "filing_date"),
    "invoices": ("issue_date", "due_date", "paid_date"),
    "events": ("event_date",),
    "policies": (),
    "limits": ("decision_date",),
    "country_risk": (),
}
_KEYS: dict[str, tuple[str, ...]] = {
    "buyers": ("buyer_id",),
    "financials": ("buyer_id", "period_end"),
    "invoices": ("invoice_id",),
    "events": ("buyer_id", "event_date", "event_type", "policyholder_id"),
    "policies": ("policyholder_id",),
    "limits": ("policyholder_id", "buyer_id"),
    "country_risk": ("country",),
}
_BAD_DATES = np.array(
    ["2024-13-45", "31/02/2025", "2025-02-30", "2025-06-31", "0000-00-00", "2025-1-"]
)
_SPARE_COUNTRIES = ("IE", "LU", "NO", "CH", "SK", "SI", "HR", "BG", "LT", "LV", "EE", "FI")


class _Fresh:
    """Ids that exist nowhere in the clean data, handed out without overlap."""

    def __init__(self, n_buyers: int, n_policies: int, n_invoices: int) -> None:
        self.next = {"B": n_buyers + 1, "P": n_policies + 1, "INV": n_invoices + 1}

    def ids(self, prefix: str, k: int) -> pd.Series:
        start = self.next[prefix]
        self.next[prefix] += k
        width = {"B": _BUYER_WIDTH, "P": _PH_WIDTH, "INV": _INVOICE_WIDTH}[prefix]
        return _id_series(prefix, np.arange(start, start + k), width)


def _text_dates(values: pd.Series) -> pd.Series:
    """datetime64 -> 'YYYY-MM-DD' strings (nulls kept), vectorised through Arrow."""
    arr = pa.Array.from_pandas(values).cast(pa.date32()).cast(pa.large_string())
    return pd.Series(pd.array(arr, dtype="str"), index=values.index)


def _month_end_shift(values: pd.Series, months: int) -> pd.Series:
    m = values.to_numpy().astype("datetime64[M]") + months
    return pd.Series(
        ((m + 1).astype("datetime64[D]") - 1).astype("datetime64[s]"), index=values.index
    )


def _corrupt(
    name: str,
    rows: pd.DataFrame,
    kinds: np.ndarray,
    rng: np.random.Generator,
    fresh: _Fresh,
    clean: pd.DataFrame,
    counts: dict[str, int],
) -> tuple[pd.DataFrame, np.ndarray]:
    """Apply one corruption per row (rows are copies of clean rows); return rows and labels.

    Rows get fresh keys so a corrupted copy never clashes with the clean row it came from
    (financials move to a period end six months away, which no buyer uses).
    """
    df = rows.copy()
    k = len(df)

    def m(kind: str) -> np.ndarray:
        return kinds == kind

    def pick(values: np.ndarray | list[str], mask: np.ndarray) -> np.ndarray:
        return np.asarray(values, dtype=object)[rng.integers(0, len(values), int(mask.sum()))]

    if name == "buyers":
        df["buyer_id"] = fresh.ids("B", k).to_numpy()
        df.loc[m("bad_country"), "country"] = pick(["XX", "UK", "EU", "D", "deu"], m("bad_country"))
        df.loc[m("bad_sector"), "sector"] = pick(["Z", "47", "CC", "c"], m("bad_sector"))
        df.loc[m("bad_legal_form"), "legal_form"] = pick(
            ["GmbH", "LLC", "ltd"], m("bad_legal_form")
        )
        df.loc[m("missing_name"), "name"] = None
        df.loc[m("missing_country"), "country"] = None
    elif name == "financials":
        unknown = m("unknown_buyer")
        df.loc[unknown, "buyer_id"] = fresh.ids("B", int(unknown.sum())).to_numpy()
        shift = ~unknown
        df.loc[shift, "period_end"] = _month_end_shift(df.loc[shift, "period_end"], -6)
        df.loc[shift, "filing_date"] = df.loc[shift, "filing_date"] - pd.Timedelta(days=183)
        neg = m("negative_amount")
        df.loc[neg, "total_assets"] = -df.loc[neg, "total_assets"].abs() - 1.0
        idv = m("identity_violation")
        df.loc[idv, "total_assets"] = np.round(df.loc[idv, "total_assets"] * 1.5 + 1000.0)
        fb = m("filing_before_period_end")
        df.loc[fb, "filing_date"] = df.loc[fb, "period_end"] - pd.to_timedelta(
            rng.integers(1, 60, int(fb.sum())), unit="D"
        )
        df.loc[m("bad_currency"), "currency"] = pick(["EUU", "EURO", "€"], m("bad_currency"))
        df.loc[m("missing_total_assets"), "total_assets"] = np.nan
    elif name == "invoices":
        df["invoice_id"] = fresh.ids("INV", k).to_numpy()
        df.loc[m("negative_amount"), "amount"] = -df.loc[m("negative_amount"), "amount"]
        df.loc[m("zero_amount"), "amount"] = 0.0
        days = pd.to_timedelta(rng.integers(1, 31, k), unit="D")
        dbi = m("due_before_issue")
        df.loc[dbi, "due_date"] = df.loc[dbi, "issue_date"] - days[dbi]
        pbi = m("paid_before_issue")
        df.loc[pbi, "paid_date"] = df.loc[pbi, "issue_date"] - days[pbi]
        ub = m("unknown_buyer")
        df.loc[ub, "buyer_id"] = fresh.ids("B", int(ub.sum())).to_numpy()
        up = m("unknown_policyholder")
        df.loc[up, "policyholder_id"] = fresh.ids("P", int(up.sum())).to_numpy()
        df.loc[m("bad_currency"), "currency"] = pick(["EUU", "EURO", "€"], m("bad_currency"))
        df.loc[m("missing_amount"), "amount"] = np.nan
        df.loc[m("missing_buyer_id"), "buyer_id"] = None
    elif name == "events":
        df.loc[m("bad_event_type"), "event_type"] = pick(
            ["bankruptcy", "payment_default", "winding_up"], m("bad_event_type")
        )
        ub = m("unknown_buyer")
        df.loc[ub, "buyer_id"] = fresh.ids("B", int(ub.sum())).to_numpy()
        up = m("unknown_policyholder")
        df.loc[up, "policyholder_id"] = fresh.ids("P", int(up.sum())).to_numpy()
        neg = m("negative_amount")
        df.loc[neg, "amount"] = -(df.loc[neg, "amount"].fillna(1000.0).abs() + 1.0)
        df.loc[neg, "event_date"] = df.loc[neg, "event_date"] - pd.to_timedelta(
            rng.integers(1, 6, int(neg.sum())), unit="D"
        )
        df.loc[m("missing_event_type"), "event_type"] = None
    elif name == "policies":
        df["policyholder_id"] = fresh.ids("P", k).to_numpy()
        df.loc[m("bad_scheme"), "scheme"] = pick(
            ["whole_turnover", "XoL", "first-euro"], m("bad_scheme")
        )
        df.loc[m("indemnity_out_of_range"), "indemnity_pct"] = pick(
            [0.0, 120.0, 950.0], m("indemnity_out_of_range")
        ).astype(float)
        df.loc[m("negative_amount"), "discretionary_limit"] = -25_000.0
        df.loc[m("missing_scheme"), "scheme"] = None
        xf = m("xol_without_first_loss")
        df.loc[xf, "scheme"] = "excess_of_loss"
        df.loc[xf, "aggregate_first_loss"] = 0.0
        df.loc[m("bad_waiting_days"), "claim_waiting_days"] = pick(
            [-30, 1000], m("bad_waiting_days")
        ).astype(int)
    elif name == "limits":
        ub, up = m("unknown_buyer"), m("unknown_policyholder")
        df.loc[ub, "buyer_id"] = fresh.ids("B", int(ub.sum())).to_numpy()
        df.loc[up, "policyholder_id"] = fresh.ids("P", int(up.sum())).to_numpy()
        other = ~(ub | up)
        buyers_, phs_ = _unused_pairs(
            clean, counts["buyers"], counts["policies"], int(other.sum()), rng
        )
        df.loc[other, "buyer_id"] = buyers_
        df.loc[other, "policyholder_id"] = phs_
        neg = m("negative_amount")
        df.loc[neg, "limit_amount"] = -(df.loc[neg, "limit_amount"] + 1000.0)
        df.loc[m("zero_requested"), "requested_amount"] = 0.0
        df.loc[m("missing_limit"), "limit_amount"] = np.nan
    elif name == "country_risk":
        spare = [c for c in _SPARE_COUNTRIES if c not in set(clean["country"])]
        codes = np.array([spare[i % len(spare)] for i in range(k)], dtype=object)
        codes[m("bad_country")] = pick(["XX", "UK", "EU"], m("bad_country"))
        df["country"] = codes
        df.loc[m("risk_class_out_of_range"), "political_risk_class"] = pick(
            [8, 9, -1], m("risk_class_out_of_range")
        ).astype(int)
        df.loc[m("missing_risk_class"), "political_risk_class"] = pd.NA
        df.loc[m("gdp_in_percent"), "gdp_growth"] = (
            np.round(df.loc[m("gdp_in_percent"), "gdp_growth"].fillna(0.02) * 100, 1) + 0.5
        )

    for col in _DATE_COLUMNS[name]:
        df[col] = _text_dates(df[col])
    bad_date = m("unparseable_date")
    if bad_date.any():
        cols = np.array(_DATE_COLUMNS[name])
        # Garbage goes into a required date column where the table has one.
        required = cols[:1] if name in ("invoices", "events", "limits") else cols[-1:]
        df.loc[bad_date, str(required[0])] = pick(_BAD_DATES, bad_date)
    labels = kinds.astype(object)
    if name == "invoices" and m("duplicate_invoice_id").any():
        # A twin of each such row: same invoice id, another amount. Both are bad: which copy
        # is right is unknowable, so an ingest must quarantine every copy of the id.
        twins = df[m("duplicate_invoice_id")].copy()
        twins["amount"] = np.round(twins["amount"] * rng.uniform(1.1, 2.0, len(twins)), 2)
        df = pd.concat([df, twins], ignore_index=True)
        labels = np.concatenate([labels, np.full(len(twins), "duplicate_invoice_id", dtype=object)])
    return df, labels


def _unused_pairs(
    lim: pd.DataFrame, n_b: int, n_p: int, k: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """k (buyer_id, policyholder_id) pairs of existing ids that have no limit yet."""
    used = set()
    if len(lim):
        b = lim["buyer_id"].str.slice(1).astype("int64").to_numpy()
        p = lim["policyholder_id"].str.slice(1).astype("int64").to_numpy()
        used_codes = b * (n_p + 2) + p
    else:
        used_codes = np.zeros(0, dtype=np.int64)
    out_b: list[int] = []
    out_p: list[int] = []
    for _ in range(20):
        if len(out_b) >= k:
            break
        cb = rng.integers(1, n_b + 1, 2 * k + 4)
        cp = rng.integers(1, n_p + 1, 2 * k + 4)
        code = cb * (n_p + 2) + cp
        ok = ~np.isin(code, used_codes)
        for bb, pp, cc in zip(cb[ok], cp[ok], code[ok], strict=True):
            if cc not in used:
                used.add(cc)
                out_b.append(int(bb))
                out_p.append(int(pp))
    out_b, out_p = out_b[:k], out_p[:k]
    return (
        _id_series("B", np.array(out_b, dtype=np.int64), _BUYER_WIDTH).to_numpy(),
        _id_series("P", np.array(out_p, dtype=np.int64), _PH_WIDTH).to_numpy(),
    )


def _inject_dirty(
    config: GeneratorConfig, tables: dict[str, pd.DataFrame]
) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Mix corrupted copies of clean rows into every input table at random positions.

    About `dirty_fraction` of each table's rows (at least one) are corrupted copies; clean
    rows are untouched and keep their order. Date columns of every table become
    'YYYY-MM-DD' text so that unparseable dates can be represented. The clean frames are
    taken out of `tables` one by one and released as soon as their dirty version is built.
    """
    rng = _rng(config, 12)
    counts = {"buyers": len(tables["buyers"]), "policies": len(tables["policies"])}
    fresh = _Fresh(counts["buyers"], counts["policies"], len(tables["invoices"]))
    out: dict[str, pd.DataFrame] = {}
    records = []
    for name in INPUT_TABLES:
        clean = tables.pop(name)
        for col in ("claim_waiting_days", "political_risk_class"):
            if col in clean:
                clean[col] = clean[col].astype("Int64")
        kinds_all = _CORRUPTIONS[name]
        k = max(1, round(config.dirty_fraction * len(clean)))
        if len(clean) == 0:
            for col in _DATE_COLUMNS[name]:
                clean[col] = _text_dates(clean[col])
            out[name] = clean
            continue
        kinds = np.array(kinds_all, dtype=object)[rng.permutation(k) % len(kinds_all)]
        src = np.sort(rng.integers(0, len(clean), k))
        rows = clean.iloc[src].reset_index(drop=True)
        dirty, labels = _corrupt(name, rows, kinds, rng, fresh, clean, counts)
        if name != "invoices":  # invoices got fresh ids; their only clash is the intended twin
            keys = list(_KEYS[name])
            clean_keys = clean[keys].copy()
            for col in set(keys) & set(_DATE_COLUMNS[name]):
                clean_keys[col] = _text_dates(clean_keys[col])
            both = pd.concat([clean_keys, dirty[keys]], ignore_index=True)
            clash = both.duplicated(keep=False).to_numpy()[len(clean_keys) :]
            del both, clean_keys
            dirty, labels = dirty[~clash].reset_index(drop=True), labels[~clash]
        merged, positions = _interleave(clean, dirty, rng, _DATE_COLUMNS[name])
        del clean
        out[name] = merged
        records.append(
            pd.DataFrame(
                {
                    "table": _const_str(name, len(dirty)),
                    "row_number": (positions + 1).astype(np.int64),
                    "corruption": _str_series(labels),
                }
            )
        )
    dirty_rows = pd.concat(records, ignore_index=True)
    dirty_rows = dirty_rows.sort_values(["table", "row_number"], kind="stable", ignore_index=True)
    return out, dirty_rows


def _interleave(
    clean: pd.DataFrame, dirty: pd.DataFrame, rng: np.random.Generator, date_cols: tuple[str, ...]
) -> tuple[pd.DataFrame, np.ndarray]:
    """Put dirty rows at random positions among clean rows; return frame and dirty positions.

    Built column by column (dates of the clean rows turned into text on the way) so that a
    large table is never copied whole more than once.
    """
    n_clean, n_dirty = len(clean), len(dirty)
    total = n_clean + n_dirty
    pos = np.sort(rng.choice(total, n_dirty, replace=False))
    is_dirty = np.zeros(total, dtype=bool)
    is_dirty[pos] = True
    perm = rng.permutation(n_dirty)
    order = np.empty(total, dtype=np.int64)
    order[~is_dirty] = np.arange(n_clean)
    order[is_dirty] = n_clean + perm
    columns: dict[str, pd.Series] = {}
    for col in clean.columns:
        c = _text_dates(clean[col]) if col in date_cols else clean[col]
        d = dirty[col]
        if isinstance(c.dtype, np.dtype) and c.dtype.kind in "fiub" and d.dtype == c.dtype:
            values = np.empty(total, dtype=c.dtype)
            values[~is_dirty] = c.to_numpy()
            values[is_dirty] = d.to_numpy()[perm]
            columns[col] = pd.Series(values)
        else:
            columns[col] = pd.concat([c, d], ignore_index=True).take(order).reset_index(drop=True)
    positions = np.empty(n_dirty, dtype=np.int64)
    positions[perm] = pos
    return pd.DataFrame(columns), positions


# --------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------


def _to_arrow(frame: pd.DataFrame) -> pa.Table:
    """pandas -> Arrow with dates as date32 and no pandas metadata (plain, tool-neutral files)."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    cols = []
    for col in table.columns:
        cols.append(col.cast(pa.date32()) if pa.types.is_timestamp(col.type) else col)
    return pa.Table.from_arrays(cols, names=table.column_names)


def _atomic_write(table: pa.Table, path: Path, fmt: str) -> None:
    """Write to a temporary file in the target directory, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        if fmt == "parquet":
            pq.write_table(table, tmp, compression="zstd")
        else:
            pacsv.write_csv(table, tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
