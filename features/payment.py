"""Payment-behaviour features, point in time, for many as-of dates in one pass.

What is known at as_of T about an invoice: that it was issued (issue_date <= T), and that it
was paid only if paid_date <= T. An invoice paid after T was *open* at T, even though the
lake now knows its payment.

Many as-of dates share one pass over the invoices: every window (T - w months, T] starts and
ends on a small set of breakpoints, each paid invoice is counted once into the interval
between two breakpoints, and cumulative sums over the intervals give every window of every
date by subtraction. Open and overdue amounts use the same trick over the as-of dates
themselves (an invoice is open from the first date >= its issue date to the first date >=
its payment date). Aggregation is `np.bincount` on integer buyer codes, so the cost is a
few passes over the invoices whatever the number of dates.

Some features look at each (buyer, policyholder) pair first: a buyer's own trend or its
number of late-reporting suppliers is read per supplier, then aggregated over the buyer's
policyholders, so that a change in which suppliers report does not pass for a change in
behaviour. The same integer tricks run on pair codes instead of buyer codes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from data.keys import positions

WINDOWS_MONTHS = (3, 6, 12)
LATE_DAYS = (30, 60, 90)
#: Half-life (months) of the recency weights of `dbt_ewm`: a payment made this long before
#: as_of counts half as much as one made on as_of (payments older than 12 months not at all).
DBT_HALF_LIFE_MONTHS = 3.0
#: A policyholder *reports late payment* at as_of when one of its invoices on the buyer was
#: paid LATE_REPORT_DAYS+ days beyond terms in the last LATE_REPORT_MONTHS, or is still open
#: that many days past its due date (`late_policyholder_share_3m`).
LATE_REPORT_DAYS = 30
LATE_REPORT_MONTHS = 3
#: `invoice_volume_change_12m` compares the amount invoiced over the last VOLUME_MONTHS with
#: the same months VOLUME_LAG_MONTHS earlier (year on year, so seasonality cancels). Its base
#: reaches further back than the 12-month windows, so it guards itself against the start of
#: the data instead of lengthening every training's warm-up (see `_volume_change`).
VOLUME_MONTHS = 3
VOLUME_LAG_MONTHS = 12
#: PAYDEX-style index: (amount-weighted days paid after due date, index). Anchors follow the
#: commercial convention (80 = pays on terms, 50 = 30 days beyond, 20 = 120 days beyond,
#: 100 = pays well ahead of terms); linear in between, flat outside.
PAYDEX_ANCHORS = (
    (-30, 100),
    (0, 80),
    (15, 70),
    (22, 60),
    (30, 50),
    (60, 40),
    (90, 30),
    (120, 20),
    (180, 1),
)

PAYMENT_FEATURES = [
    *(f"dbt_{w}m" for w in WINDOWS_MONTHS),
    "dbt_ewm",
    *(f"late{d}_share_{w}m" for d in LATE_DAYS for w in WINDOWS_MONTHS),
    "dbt_trend",
    "dbt_trend_3v9m_by_policyholder",
    "paydex",
    "open_amount",
    "overdue_amount",
    "overdue_share",
    "oldest_overdue_days",
    "late_policyholder_share_3m",
    "days_since_last_payment",
    "invoices_12m",
    "invoice_volume_change_12m",
    "paid_amount_12m",
    "policyholders_reporting_12m",
    "no_payment_history",
    "overdue_notifications_3m",
    "overdue_notifications_12m",
    "legal_disputes_12m",
]
_NAT = np.iinfo(np.int64).min


def _days(values: pd.Series | pd.Index) -> np.ndarray:
    """Dates as int64 days since 1970 (missing -> int64 min), for vectorised comparisons."""
    arr = np.asarray(values, dtype="datetime64[ns]")
    out = arr.astype("datetime64[D]").astype(np.int64)
    out[np.isnat(arr)] = _NAT
    return out


def paydex(days_after_due: np.ndarray) -> np.ndarray:
    """Map amount-weighted days paid after due date to the 1-100 payment index."""
    x, y = zip(*PAYDEX_ANCHORS, strict=True)
    out = np.interp(days_after_due, x, y)
    return np.where(np.isnan(days_after_due), np.nan, np.round(out))


class _Windows:
    """Breakpoints shared by all windows of all as-of dates, and per-date window edges."""

    def __init__(self, as_of: pd.DatetimeIndex, months: tuple[int, ...]) -> None:
        starts = {w: as_of - pd.DateOffset(months=w) for w in months}
        edges = np.unique(np.concatenate([_days(as_of), *(_days(s) for s in starts.values())]))
        self.edges = edges
        self.end = np.searchsorted(edges, _days(as_of))
        self.start = {w: np.searchsorted(edges, _days(s)) for w, s in starts.items()}

    @property
    def n_bins(self) -> int:
        return len(self.edges) + 1

    def bin(self, day: np.ndarray) -> np.ndarray:
        """Interval index j with edges[j-1] < day <= edges[j]; len(edges) means after the last."""
        return np.searchsorted(self.edges, day, side="left")


def _cumulative(
    codes: np.ndarray, bins: np.ndarray, weights: np.ndarray | None, n: int, n_bins: int
) -> np.ndarray:
    """(n_bins, n) cumulative sums of `weights` per code over bins, by one bincount.

    Bin-major, so a window (`_window`) reads whole contiguous rows: gathering columns of a
    code-major array instead is cache-unfriendly and was most of the cost of many dates."""
    flat = np.bincount(bins * n + codes, weights=weights, minlength=n * n_bins)
    return np.cumsum(flat.reshape(n_bins, n), axis=0)


def _window(cum: np.ndarray, win: _Windows, months: int, upper_months: int = 0) -> np.ndarray:
    """(n_dates, n) sums over (T - months, T - upper_months] from cumulative sums."""
    hi = win.end if upper_months == 0 else win.start[upper_months]
    return cum[hi] - cum[win.start[months]]


def payment_features(
    invoices: pd.DataFrame,
    events: pd.DataFrame,
    buyer_ids: pd.Index,
    as_of_dates: pd.DatetimeIndex,
) -> pd.DataFrame:
    """Features for every (as_of_date, buyer) pair, date-major (all buyers of date 1, then date 2 …)."""
    as_of = pd.DatetimeIndex(as_of_dates).sort_values()
    n, k = len(buyer_ids), len(as_of)
    win = _Windows(as_of, (*WINDOWS_MONTHS, VOLUME_LAG_MONTHS + VOLUME_MONTHS))
    codes = positions(invoices["buyer_id"], buyer_ids)
    mine = codes >= 0
    inv = invoices.loc[mine]
    codes = codes[mine]
    issue, due, paid = _days(inv["issue_date"]), _days(inv["due_date"]), _days(inv["paid_date"])
    amount = inv["amount"].to_numpy(dtype="float64")
    out: dict[str, np.ndarray] = {}

    # --- invoices paid, by payment date -------------------------------------------------
    is_paid = paid != _NAT
    p_codes, p_bins = codes[is_paid], win.bin(paid[is_paid])
    p_amount = amount[is_paid]
    after_due = (paid[is_paid] - due[is_paid]).astype("float64")
    beyond = np.clip(after_due, 0, None)

    def cum(weights: np.ndarray | None, c=p_codes, b=p_bins) -> np.ndarray:
        return _cumulative(c, b, weights, n, win.n_bins)

    paid_amt = cum(p_amount)
    paid_dbt = cum(p_amount * beyond)
    for w in WINDOWS_MONTHS:
        a = _window(paid_amt, win, w)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[f"dbt_{w}m"] = _window(paid_dbt, win, w) / np.where(a > 0, a, np.nan)
    for d in LATE_DAYS:
        late = cum(p_amount * (beyond >= d))
        for w in WINDOWS_MONTHS:
            a = _window(paid_amt, win, w)
            out[f"late{d}_share_{w}m"] = _window(late, win, w) / np.where(a > 0, a, np.nan)
    older_amt = _window(paid_amt, win, 12, upper_months=3)
    older_dbt = _window(paid_dbt, win, 12, upper_months=3) / np.where(
        older_amt > 0, older_amt, np.nan
    )
    out["dbt_trend"] = out["dbt_3m"] - older_dbt
    # Recency weights 2^(-(T - paid) / half-life) = 2^(-T / h) 2^(paid / h): the factor of T
    # cancels in the ratio, so one set of cumulative sums serves every date. Ages are counted
    # from the last as-of date, so weights stay in (0, 1] (later payments are in no window).
    half_life = DBT_HALF_LIFE_MONTHS * 365.25 / 12
    recency = np.exp2(np.minimum(paid[is_paid] - _days(as_of)[-1], 0) / half_life)
    ew_amt = _window(cum(p_amount * recency), win, 12)
    out["dbt_ewm"] = _window(cum(p_amount * recency * beyond), win, 12) / _positive(ew_amt)
    signed = _window(cum(p_amount * after_due), win, 12)
    amt12 = _window(paid_amt, win, 12)
    out["paydex"] = paydex(signed / np.where(amt12 > 0, amt12, np.nan))
    out["paid_amount_12m"] = amt12
    out["no_payment_history"] = (amt12 <= 0).astype("float64")

    # --- open and overdue at each as-of date --------------------------------------------
    t = _days(as_of)
    first_open = np.searchsorted(t, issue, side="left")
    closes = np.where(is_paid, np.searchsorted(t, paid, side="left"), k)
    first_overdue = np.maximum(np.searchsorted(t, due, side="right"), first_open)
    out["open_amount"] = _interval_sum(codes, first_open, closes, amount, n, k)
    out["overdue_amount"] = _interval_sum(
        codes, first_overdue, np.maximum(closes, first_overdue), amount, n, k
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        out["overdue_share"] = out["overdue_amount"] / np.where(
            out["open_amount"] > 0, out["open_amount"], np.nan
        )
    out["oldest_overdue_days"] = _oldest_overdue_days(codes, due, closes, first_overdue, t, n)
    out["days_since_last_payment"] = _days_since_last_payment(
        p_codes, p_bins, paid[is_paid], win, t, n
    )

    # --- volume and counterparties: invoices issued ------------------------------------
    i_bins = win.bin(issue)
    out["invoices_12m"] = _window(_cumulative(codes, i_bins, None, n, win.n_bins), win, 12)
    out["invoice_volume_change_12m"] = _volume_change(codes, i_bins, issue, amount, win, n)

    # --- per policyholder, then over the buyer's policyholders ----------------------------
    pair, pair_buyer = _pairs(codes, inv["policyholder_id"])
    m = len(pair_buyer)
    out["policyholders_reporting_12m"] = _by_buyer(
        _window(_cumulative(pair, i_bins, None, m, win.n_bins), win, 12) > 0, pair_buyer, n
    )
    # Trend per policyholder: its dbt over the last 3 months minus over months 4-12, where
    # it was paid in both; averaged over those policyholders (see the catalogue for why).
    pp = pair[is_paid]
    pair_amt = _cumulative(pp, p_bins, p_amount, m, win.n_bins)
    pair_dbt = _cumulative(pp, p_bins, p_amount * beyond, m, win.n_bins)
    recent = _window(pair_dbt, win, 3) / _positive(_window(pair_amt, win, 3))
    older = _window(pair_dbt, win, 12, 3) / _positive(_window(pair_amt, win, 12, 3))
    del pair_amt, pair_dbt
    out["dbt_trend_3v9m_by_policyholder"] = _mean_by_buyer(recent - older, pair_buyer, n)
    out["late_policyholder_share_3m"] = _late_policyholder_share(
        pair, pair_buyer, is_paid, paid, due, beyond, first_open, closes, win, t, n
    )

    # --- incidents from events --------------------------------------------------------------
    e_codes = positions(events["buyer_id"], buyer_ids)
    for name, etype, months in (
        ("overdue_notifications_3m", "overdue_notification", 3),
        ("overdue_notifications_12m", "overdue_notification", 12),
        ("legal_disputes_12m", "legal_dispute", 12),
    ):
        sel = (e_codes >= 0) & events["event_type"].eq(etype).to_numpy()
        bins = win.bin(_days(events["event_date"])[sel])
        out[name] = _window(_cumulative(e_codes[sel], bins, None, n, win.n_bins), win, months)

    # copy=False: most columns are float64 already, and a second copy of every column
    # cost more than all the windows of a 24-date call.
    frame = pd.DataFrame(
        {name: out[name].reshape(-1).astype("float64", copy=False) for name in PAYMENT_FEATURES}
    )
    frame.insert(0, "as_of_date", np.repeat(as_of.to_numpy(), n))
    frame.insert(0, "buyer_id", pd.array(np.tile(buyer_ids.to_numpy(), k), dtype="str"))
    return frame


def _interval_sum(codes, start, stop, weights, n: int, k: int) -> np.ndarray:
    """(k, n) sums of amounts over as-of indices [start, stop) per code, via a difference
    array; rounded to the cent, so a buyer with nothing open has exactly 0 whatever the
    other dates of the call (running sums leave float residues like -1e-11 otherwise)."""
    keep = start < stop
    diff = np.bincount(
        codes[keep] * (k + 1) + start[keep], weights=weights[keep], minlength=n * (k + 1)
    )
    diff -= np.bincount(
        codes[keep] * (k + 1) + stop[keep], weights=weights[keep], minlength=n * (k + 1)
    )
    return np.round(np.cumsum(diff.reshape(n, k + 1), axis=1)[:, :k].T, 2)


def _oldest_overdue_days(codes, due, closes, first_overdue, t, n: int) -> np.ndarray:
    """(k, n) days past due of each buyer's oldest overdue invoice at each date (0 if none)."""
    k = len(t)
    out = np.zeros((k, n))
    ever = first_overdue < closes
    c, d, lo, hi = codes[ever], due[ever], first_overdue[ever], closes[ever]
    for i in range(k):
        sel = (lo <= i) & (i < hi)
        if not sel.any():
            continue
        oldest = pd.Series(d[sel]).groupby(c[sel]).min()
        out[i, oldest.index.to_numpy()] = t[i] - oldest.to_numpy()
    return out


def _volume_change(codes, i_bins, issue, amount, win: _Windows, n: int) -> np.ndarray:
    """(k, n) amount invoiced in the last VOLUME_MONTHS / the same months VOLUME_LAG_MONTHS
    earlier - 1; missing without a base.

    The base is also missing at a date whose base window begins before the first invoice of
    the data: a truncated base would show growth that is not there. The first invoice of
    the data is point in time: invoices issued after as_of cannot move it before as_of.
    """
    issued = _cumulative(codes, i_bins, amount, n, win.n_bins)
    lag, months = VOLUME_LAG_MONTHS, VOLUME_MONTHS
    base = _window(issued, win, lag + months, lag)
    if len(issue):
        base_first_day = win.edges[win.start[lag + months]] + 1
        base[base_first_day < issue.min()] = 0.0
    return _window(issued, win, months) / _positive(base) - 1


def _positive(x: np.ndarray) -> np.ndarray:
    """x where positive, else NaN: the denominator of a ratio missing without a base."""
    return np.where(x > 0, x, np.nan)


def _pairs(codes: np.ndarray, counterparty: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Code of each invoice's (buyer, policyholder) pair, and the buyer code of each pair."""
    pair_key = codes.astype(np.int64) * (1 << 32) + pd.factorize(counterparty)[0].astype(np.int64)
    pair_codes, pairs = pd.factorize(pair_key)
    return pair_codes.astype(np.int64), (pairs // (1 << 32)).astype(np.int64)


def _by_buyer(values: np.ndarray, pair_buyer: np.ndarray, n: int) -> np.ndarray:
    """(k, n) sums over each buyer's pairs of a (k, m) per-pair array, in one bincount."""
    k = values.shape[0]
    flat = (np.arange(k, dtype=np.int64)[:, None] * n + pair_buyer).ravel()
    return np.bincount(flat, weights=values.ravel().astype("float64"), minlength=k * n).reshape(
        k, n
    )


def _mean_by_buyer(values: np.ndarray, pair_buyer: np.ndarray, n: int) -> np.ndarray:
    """(k, n) mean over each buyer's pairs of the non-missing values of a (k, m) array."""
    known = ~np.isnan(values)
    total = _by_buyer(np.where(known, values, 0.0), pair_buyer, n)
    return total / _positive(_by_buyer(known, pair_buyer, n))


def _interval_count(codes, start, stop, n: int, k: int) -> np.ndarray:
    """(k, n) number of items per code whose as-of index interval [start, stop) holds each
    date, via a difference array of integer counts (exact: no float residues)."""
    keep = start < stop
    diff = np.bincount(codes[keep] * (k + 1) + start[keep], minlength=n * (k + 1))
    diff -= np.bincount(codes[keep] * (k + 1) + stop[keep], minlength=n * (k + 1))
    return np.cumsum(diff.reshape(n, k + 1), axis=1)[:, :k].T


def _late_policyholder_share(
    pair, pair_buyer, is_paid, paid, due, beyond, first_open, closes, win: _Windows, t, n: int
) -> np.ndarray:
    """(k, n) share of the buyer's policyholders with payment experience in the last 12
    months that report late payment in the last 3 (see LATE_REPORT_DAYS).

    Both sets are intervals of as-of indices per invoice, counted per pair with
    `_interval_count`. A pair has experience at T when one of its invoices was issued by T
    and unpaid at some time in (T - 12m, T]: issued in it, paid in it or open at T; that is
    from its first date on (`first_open`) until the first date whose window starts on or
    after its payment. It reports late at T when an invoice was paid LATE_REPORT_DAYS+ days
    beyond terms in (T - 3m, T], or is open at T at least that many days past due.
    """
    k, m = len(t), len(pair_buyer)
    start12, start3 = win.edges[win.start[12]], win.edges[win.start[LATE_REPORT_MONTHS]]
    seen_until = np.full(len(pair), k, dtype=np.int64)
    seen_until[is_paid] = np.searchsorted(start12, paid[is_paid], side="left")
    active = _interval_count(pair, first_open, seen_until, m, k) > 0

    late_paid = is_paid.copy()
    late_paid[is_paid] = beyond >= LATE_REPORT_DAYS
    p_from = np.searchsorted(t, paid[late_paid], side="left")
    p_until = np.searchsorted(start3, paid[late_paid], side="left")
    o_from = np.maximum(np.searchsorted(t, due + LATE_REPORT_DAYS, side="left"), first_open)
    late = (
        _interval_count(
            np.concatenate([pair[late_paid], pair]),
            np.concatenate([p_from, o_from]),
            np.concatenate([p_until, closes]),
            m,
            k,
        )
        > 0
    )
    return _by_buyer(late, pair_buyer, n) / _positive(_by_buyer(active, pair_buyer, n))


def _days_since_last_payment(p_codes, p_bins, paid_day, win: _Windows, t, n: int) -> np.ndarray:
    """(k, n) days from each buyer's latest payment on or before each date (NaN if none):
    the latest payment per (buyer, interval), then a running maximum over the intervals."""
    last = np.full(win.n_bins * n, -np.inf)
    np.maximum.at(last, p_bins * n + p_codes, paid_day.astype("float64"))
    last = np.maximum.accumulate(last.reshape(win.n_bins, n), axis=0)[win.end]
    return np.where(np.isfinite(last), t[:, None] - last, np.nan)
