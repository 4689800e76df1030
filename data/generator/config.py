"""The ground of the synthetic economy: table names, reference parameters, configuration, calendar.

Countries, sectors, size classes, legal forms, payment terms and seasonality are fixed
reference parameters shared by every other module, so the world is described once; the
tunable knobs are in :class:`GeneratorConfig`. The calendar maps simulation months to day
numbers and :func:`_rng` hands each component its own random stream, which is what keeps the
output identical for an identical config however the code around one component changes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from data.reference import (
    EVENT_TYPES,
    ISO_COUNTRIES,
    LEGAL_FORM_ORDER,
    LEGAL_FORMS,
    NACE_SECTIONS,
    POLICY_SCHEMES,
)

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
# Configuration and result
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
