"""Trade between policyholders and buyers: policies, trading pairs and invoices.

Invoices are where the latent score becomes visible day to day: their payment delays
lengthen as a buyer's score falls, which is what the payment features pick up before a
default.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from data.generator.config import (
    _COUNTRIES,
    _DELAY_SHAPE,
    _DISPUTE_MEAN_EXTRA,
    _DISPUTE_MIN_DAYS,
    _DISPUTE_RATE,
    _NULL_DAY,
    _PH_PER_BUYER_EXTRA,
    _SEASON,
    _TERMS,
    _TERMS_P,
    _WAITING_DAYS,
    _WAITING_P,
    GeneratorConfig,
    _Calendar,
    _rng,
)
from data.generator.latent import _Buyers, _Latent


@dataclass
class _Policies:
    """Policyholders: their share of the insured trade and the terms of their policy."""

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
    """All invoices of the window, one array per field, in issue-date order."""

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
