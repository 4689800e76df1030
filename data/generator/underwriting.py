"""The insurer's own past underwriting: the credit limits in force at the end of the window.

A real limit book at steady state is the outcome of the insurer's past decisions: each
limit is roughly what its policy granted at the pair's last review, and only buyers whose
risk moved since then give the daily limit engine something to propose. So every trading
pair gets a last decision date (reviews every 6-18 months, and a review when the buyer files
a new statement), and that decision applies the rules the engine applies:

- capacity by grade from the buyer's newest statement filed by that date and at most
  `max_statement_age_months` old (the smaller of equity x equity multiple and turnover x
  turnover multiple), or without one from what it paid within terms (+ grace days) in the
  12 months before (x payment multiple); capped by the country cap of its political-risk
  class; none at the cancel grade or worse;
- shared across the buyer's policyholders pro rata to their trade need (peak monthly volume
  of the 12 months before the decision x (terms / 30 + 0.5));
- no cover once a default trigger is known (insolvency, liquidation, claim, an invoice 90
  days past due): the insurer cancels at once. Such a pair has two versions in the book:
  the limit decided at a review before the trigger, and its cancellation (0) on the
  trigger day, so the book read as of an earlier date shows the cover that was in force.

The grade is the master-scale grade of the buyer's true PD at the last month end before the
decision (the insurer's rating was roughly right), with underwriter noise: now and then a
grade one notch off, a noisy view of the need, nice round amounts (need rounded up, capacity
rounded down: a ceiling is never exceeded by rounding). A pair without cover (need or
capacity share under EUR 1,000, uninsurable, cancelled) has no row: the book lists the limits
in force, and a row at 0 would only be proposed for cancellation again every day.

Layering: `data/` does not import `models/` or `features/`, except here. This module simulates
the insurer's own decisions, which are by definition the shipped limit policy
(`models.limits.policy`) on the master scale (`models.master_scale`), with the default
definition (`features.labels`) and statement age (`features.financial`) the engine reads; one
definition each, so the generated book and the engine cannot drift apart. None of them
imports the generator.
"""

from __future__ import annotations

import numpy as np

from data.generator.config import (
    _COUNTRIES,
    _EVENT_ORDER,
    _NULL_DAY,
    GeneratorConfig,
    _Calendar,
    _rng,
)
from data.generator.latent import _Buyers, _Latent, _true_pd
from data.generator.trade import _Invoices, _Pairs
from features.financial import DAYS_PER_MONTH
from features.labels import DEFAULT_DEFINITION
from models.limits.policy import LimitPolicy, load_policy
from models.master_scale import MASTER_SCALE

#: Days between two reviews of a pair: uniform over 6-18 months.
_REVIEW_DAYS = (183, 548)
#: Underwriter noise: probability that the grade used is one notch better, one notch worse.
_GRADE_ERROR_P = (0.10, 0.10)
#: Log-sd of the underwriter's view of the pair's need.
_NEED_NOISE_SD = 0.15
#: The smallest limit written (EUR); a need or a capacity share below it gets no limit.
_MIN_LIMIT = 1000.0
#: Months of trade before the decision that set the need (peak monthly volume).
_NEED_MONTHS = 12


def _nice_ceil(v: np.ndarray) -> np.ndarray:
    """Round up to 'nice' limit amounts: steps of half a power of ten (12,345 -> 15,000)."""
    v = np.maximum(v, _MIN_LIMIT)
    step = 0.5 * 10.0 ** np.floor(np.log10(v))
    return np.ceil(v / step - 1e-9) * step


def _nice_floor(v: np.ndarray) -> np.ndarray:
    """Round down to nice amounts (12,345 -> 10,000); 0 below the smallest limit.

    A capacity is a ceiling: rounding it up would grant more than the policy allows.
    """
    safe = np.maximum(v, _MIN_LIMIT)
    step = 0.5 * 10.0 ** np.floor(np.log10(safe))
    return np.where(v >= _MIN_LIMIT, np.floor(safe / step + 1e-9) * step, 0.0)


def _argsort(key: np.ndarray) -> np.ndarray:
    """Stable argsort of non-negative int64 keys.

    Key and position packed into one int64 and sorted as values: several times faster than
    `np.argsort` on the tens of millions of payments of a large book.
    """
    bits = max(1, (len(key) - 1).bit_length())
    if len(key) == 0 or int(key.max()) >= 1 << (63 - bits):
        return np.argsort(key, kind="stable")
    packed = np.sort((key << bits) | np.arange(len(key), dtype=np.int64))
    return packed & ((1 << bits) - 1)


def _by_grade(table: dict[int, float], grade: np.ndarray) -> np.ndarray:
    """A per-grade multiple of the policy (0 for grades it does not list)."""
    lookup = np.zeros(MASTER_SCALE.default_grade + 1)
    for g, value in table.items():
        lookup[g] = value
    return lookup[grade]


#: No default trigger known (a day number beyond any date).
_NONE = np.iinfo(np.int64).max


def _first_default_day(
    cal: _Calendar, b: _Buyers, inv: _Invoices, events: dict[str, np.ndarray]
) -> np.ndarray:
    """Per buyer, the day its first default trigger became known by end_date (`_NONE`
    when none): the engine's default definition, its events (insolvency, liquidation,
    claim) or an invoice still unpaid `days_past_due` after its due date. From that day
    the engine rates the buyer in default and cancels, so the insurer did so at once."""
    first = np.full(b.n, _NONE, dtype=np.int64)
    codes = [_EVENT_ORDER.index(e) for e in DEFAULT_DEFINITION.event_types]
    hit = np.isin(events["type"], codes)  # events are dated <= end
    np.minimum.at(
        first, events["buyer"][hit].astype(np.int64), events["date"][hit].astype(np.int64)
    )
    overdue = inv.due.astype(np.int64) + DEFAULT_DEFINITION.days_past_due
    late = (overdue <= cal.end) & ((inv.paid == _NULL_DAY) | (inv.paid > overdue))
    np.minimum.at(first, inv.buyer[late].astype(np.int64), overdue[late])
    return first


def _need(
    cal: _Calendar, pairs: _Pairs, inv: _Invoices, sel: np.ndarray, decision: np.ndarray
) -> np.ndarray:
    """Trade need of each selected pair at its decision: peak monthly volume of the 12 whole
    months before it x (terms / 30 + 0.5).

    Invoices exist only inside the window: a decision in its first month looks at that
    month (a stand-in for the trade before the window, which is not generated).
    """
    n, months = len(sel), cal.months
    month = cal.month_index(decision) - cal.burn
    hi = np.clip(month, 1, months)  # months [lo, hi) of the window
    lo = np.clip(month - _NEED_MONTHS, 0, months - 1)
    w0, w1 = int(lo.min()), int(hi.max())
    span = w1 - w0
    # Month-major volumes: invoices come month by month, so the sums stay in cache.
    if w0 == 0 and w1 == months:  # every invoice counts: no mask over the largest table
        slot = inv.month.astype(np.int64) * pairs.n + inv.pair
        amount = inv.amount
    else:
        use = (inv.month >= w0) & (inv.month < w1)
        slot = (inv.month[use].astype(np.int64) - w0) * pairs.n + inv.pair[use]
        amount = inv.amount[use]
    vol = np.bincount(slot, amount, minlength=span * pairs.n).reshape(span, pairs.n)
    del slot, amount
    peak = np.zeros(n)
    for lag in range(1, _NEED_MONTHS + 1):
        col = hi - lag
        ok = col >= lo
        peak = np.maximum(peak, np.where(ok, vol[np.where(ok, col, w0) - w0, sel], 0.0))
    return peak * (pairs.terms[sel] / 30.0 + 0.5)


def _statement_capacity(
    stmts: dict[str, np.ndarray],
    buyer: np.ndarray,
    decision: np.ndarray,
    grade: np.ndarray,
    policy: LimitPolicy,
    n_buyers: int,
) -> np.ndarray:
    """Capacity from the newest statement filed by each decision (NaN if none is usable).

    Each query is matched with every statement of its buyer (a handful), the newest period
    filed by the decision date is kept: the statement the engine's inputs pick.
    """
    out = np.full(len(buyer), np.nan)
    if not stmts:
        return out
    bi = stmts["bi"].astype(np.int64)
    counts = np.bincount(bi, minlength=n_buyers)
    first = np.cumsum(counts) - counts
    cnt = counts[buyer]
    total = int(cnt.sum())
    q = np.repeat(np.arange(len(buyer)), cnt)
    offset = np.arange(total) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    s = np.repeat(first[buyer], cnt) + offset  # statements sorted by buyer, then period end
    filed = stmts["filing"][s] <= decision[q]
    q, s = q[filed], s[filed]
    last = np.append(q[1:] != q[:-1], True)  # the newest period filed, per query
    q, s = q[last], s[last]
    cap = policy.capacity
    age = (decision[q] - stmts["period_end"][s]) / DAYS_PER_MONTH
    g = grade[q]
    from_equity = np.maximum(stmts["equity"][s], 0.0) * _by_grade(cap.equity_multiple, g)
    revenue = stmts["revenue"][s]
    from_turnover = np.where(revenue > 0, revenue, np.nan) * _by_grade(cap.turnover_multiple, g)
    value = np.fmin(from_equity, from_turnover)
    out[q] = np.where(age <= cap.max_statement_age_months, value, np.nan)
    return out


def _paid_within_terms(
    cal: _Calendar,
    inv: _Invoices,
    buyer: np.ndarray,
    decision: np.ndarray,
    grace_days: int,
    n_buyers: int,
) -> np.ndarray:
    """Amount each buyer paid within terms (+ grace days) in the 12 months before each
    decision: paid date in (decision - 12 calendar months, decision], as the engine counts.

    One cumulative sum over the on-time payments of the queried buyers, sorted by (buyer,
    paid date), read at the two ends of every window.
    """
    asked = np.zeros(n_buyers, dtype=bool)
    asked[buyer] = True
    on_time = np.flatnonzero(
        (inv.paid != _NULL_DAY) & (inv.paid <= inv.due + grace_days) & asked[inv.buyer]
    )
    paid = inv.paid[on_time].astype(np.int64)
    base = int(paid.min()) if len(paid) else cal.end
    width = cal.end - base + 2
    key = inv.buyer[on_time].astype(np.int64) * width + (paid - base)
    order = _argsort(key)
    key = key[order]
    cum = np.concatenate([[0.0], np.cumsum(inv.amount[on_time[order]])])
    day = decision.astype("datetime64[D]")
    month = day.astype("datetime64[M]")
    earlier = month - 12
    start = np.minimum(
        earlier.astype("datetime64[D]") + (day - month.astype("datetime64[D]")),
        (earlier + 1).astype("datetime64[D]") - np.timedelta64(1, "D"),
    ).astype(np.int64)
    b = buyer.astype(np.int64) * width
    upper = np.searchsorted(key, b + np.clip(decision - base, -1, width - 1), side="right")
    lower = np.searchsorted(key, b + np.clip(start - base, -1, width - 1), side="right")
    return cum[upper] - cum[lower]


def _make_limits(
    config: GeneratorConfig,
    cal: _Calendar,
    b: _Buyers,
    lat: _Latent,
    a: float,
    pairs: _Pairs,
    inv: _Invoices,
    events: dict[str, np.ndarray],
    stmts: dict[str, np.ndarray],
    policy: LimitPolicy | None = None,
) -> dict[str, np.ndarray]:
    """Limits in force at end_date: the last decision of each pair trading in the last 6
    months or with an outstanding exposure, where it granted cover (see the module doc).

    `exposure` is the open invoice amount of the pair at end_date (it can exceed the limit);
    `pending_request_share` of the limits carry a request for 1.25-2.5 times the limit.
    """
    policy = policy or load_policy()
    rng = _rng(config, 13)
    months = cal.months
    last6 = np.bincount(inv.pair[inv.month >= months - min(6, months)], minlength=pairs.n) > 0
    unpaid = inv.paid == _NULL_DAY
    exposure = np.round(np.bincount(inv.pair[unpaid], inv.amount[unpaid], minlength=pairs.n), 2)
    sel = np.flatnonzero(last6 | (exposure > 0))
    n = len(sel)
    buyer = pairs.buyer[sel].astype(np.int64)

    # Every draw up front, one per pair, so the stream never depends on the data.
    interval = rng.uniform(*_REVIEW_DAYS, n)
    decision = cal.end - np.floor(rng.random(n) * interval).astype(np.int64)
    u = rng.random(n)
    grade_error = np.where(u < _GRADE_ERROR_P[0], -1, np.where(u > 1 - _GRADE_ERROR_P[1], 1, 0))
    need_noise = np.exp(rng.normal(0.0, _NEED_NOISE_SD, n))
    pending = rng.random(n) < config.pending_request_share
    ask_more = rng.uniform(1.25, 2.5, n)
    before_default = rng.random(n)

    # A new statement is reviewed when it arrives: the insurer re-underwrites on new financials.
    if stmts:
        last_filing = np.full(b.n, np.iinfo(np.int64).min)
        np.maximum.at(last_filing, stmts["bi"].astype(np.int64), stmts["filing"].astype(np.int64))
        decision = np.maximum(decision, last_filing[buyer])

    # A buyer that defaulted: its limit in force until then was decided at a review before
    # the trigger (the cancellation on the trigger day is a version of its own, below).
    trigger = _first_default_day(cal, b, inv, events)[buyer]
    defaulted = trigger != _NONE
    earlier = trigger - 1 - np.floor(before_default * interval).astype(np.int64)
    decision = np.where(defaulted, np.minimum(decision, earlier), decision)
    decision = np.maximum(decision, cal.window_start)

    # The grade: true PD at the last month end known at the decision, one notch off now and then.
    t_known = cal.month_index(decision + 1) - 1
    true_pd = np.empty(n)
    for t in np.unique(t_known):
        at = np.flatnonzero(t_known == t)
        true_pd[at] = _true_pd(config, b, lat, a, int(t), buyer[at])
    grade = np.clip(MASTER_SCALE.grade_of(true_pd) + grade_error, 1, MASTER_SCALE.n_performing)

    # Capacity of the buyer at the decision, then its pro rata share by trade need.
    cap = policy.capacity
    capacity = _statement_capacity(stmts, buyer, decision, grade, policy, b.n)
    # Without a usable statement: what the buyer paid within terms.
    rest = np.flatnonzero(np.isnan(capacity))
    paid = _paid_within_terms(cal, inv, buyer[rest], decision[rest], cap.payment_grace_days, b.n)
    capacity[rest] = paid * _by_grade(cap.payment_multiple, grade[rest])
    risk_class = np.array([v[1] for v in _COUNTRIES.values()])[b.country[buyer]]
    country_cap = np.full(len(risk_class), np.inf)
    for cls, amount in policy.country_caps.items():
        country_cap[risk_class == cls] = amount
    capacity = np.minimum(capacity, country_cap)
    capacity[grade >= policy.cancel.grade] = 0.0
    need = _need(cal, pairs, inv, sel, decision)
    buyer_need = np.bincount(buyer, need, minlength=b.n)[buyer]
    share = np.divide(need, buyer_need, out=np.zeros(n), where=buyer_need > 0)

    wanted = need * need_noise
    limit = np.where(
        wanted >= _MIN_LIMIT, np.minimum(_nice_ceil(wanted), _nice_floor(capacity * share)), 0.0
    )
    keep = limit > 0
    requested = np.where(pending & ~defaulted, _nice_ceil(limit * ask_more), np.nan)
    # A default trigger known by end_date: the limit was cancelled that day (a second
    # version of the pair, at 0, in force at once).
    cancelled = keep & defaulted
    return {
        "pair": np.concatenate([sel[keep], sel[cancelled]]).astype(np.int32),
        "limit": np.concatenate([limit[keep], np.zeros(int(cancelled.sum()))]),
        "requested": np.concatenate([requested[keep], np.full(int(cancelled.sum()), np.nan)]),
        "exposure": np.concatenate([exposure[sel][keep], exposure[sel][cancelled]]),
        "decision": np.concatenate([decision[keep], trigger[cancelled]]).astype(np.int32),
    }
