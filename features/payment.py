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
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from data.keys import positions

WINDOWS_MONTHS = (3, 6, 12)
LATE_DAYS = (30, 60, 90)
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
    *(f"late{d}_share_{w}m" for d in LATE_DAYS for w in WINDOWS_MONTHS),
    "dbt_trend",
    "paydex",
    "open_amount",
    "overdue_amount",
    "overdue_share",
    "oldest_overdue_days",
    "invoices_12m",
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
    """(n, n_bins) cumulative sums of `weights` per code over bins, by one bincount."""
    flat = np.bincount(codes * n_bins + bins, weights=weights, minlength=n * n_bins)
    return np.cumsum(flat.reshape(n, n_bins), axis=1)


def _window(cum: np.ndarray, win: _Windows, months: int, upper_months: int = 0) -> np.ndarray:
    """(n_dates, n) sums over (T - months, T - upper_months] from cumulative sums."""
    hi = win.end if upper_months == 0 else win.start[upper_months]
    return (cum[:, hi] - cum[:, win.start[months]]).T


def payment_features(
    invoices: pd.DataFrame,
    events: pd.DataFrame,
    buyer_ids: pd.Index,
    as_of_dates: pd.DatetimeIndex,
) -> pd.DataFrame:
    """Features for every (as_of_date, buyer) pair, date-major (all buyers of date 1, then date 2 …)."""
    as_of = pd.DatetimeIndex(as_of_dates).sort_values()
    n, k = len(buyer_ids), len(as_of)
    win = _Windows(as_of, WINDOWS_MONTHS)
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

    # --- volume and counterparties: invoices issued ------------------------------------
    i_bins = win.bin(issue)
    out["invoices_12m"] = _window(_cumulative(codes, i_bins, None, n, win.n_bins), win, 12)
    out["policyholders_reporting_12m"] = _distinct_in_window(
        codes, inv["policyholder_id"], i_bins, win, n
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

    frame = pd.DataFrame(
        {name: out[name].reshape(-1).astype("float64") for name in PAYMENT_FEATURES}
    )
    frame.insert(0, "as_of_date", np.repeat(as_of.to_numpy(), n))
    frame.insert(0, "buyer_id", pd.array(np.tile(buyer_ids.to_numpy(), k), dtype="str"))
    return frame


def _interval_sum(codes, start, stop, weights, n: int, k: int) -> np.ndarray:
    """(k, n) sums of weights over as-of indices [start, stop) per code, via a difference array."""
    keep = start < stop
    diff = np.bincount(
        codes[keep] * (k + 1) + start[keep], weights=weights[keep], minlength=n * (k + 1)
    )
    diff -= np.bincount(
        codes[keep] * (k + 1) + stop[keep], weights=weights[keep], minlength=n * (k + 1)
    )
    return np.cumsum(diff.reshape(n, k + 1), axis=1)[:, :k].T


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


def _distinct_in_window(codes, counterparty: pd.Series, bins, win: _Windows, n: int) -> np.ndarray:
    """(k, n) distinct counterparties per buyer with an invoice in the 12-month window."""
    pair_key = codes.astype(np.int64) * (1 << 32) + pd.factorize(counterparty)[0].astype(np.int64)
    pair_codes, pairs = pd.factorize(pair_key)
    pair_buyer = (pairs // (1 << 32)).astype(np.int64)
    m = len(pairs)
    cum = _cumulative(pair_codes, bins, None, m, win.n_bins)
    active = (_window(cum, win, 12) > 0).astype("float64")  # (k, m)
    return np.stack([np.bincount(pair_buyer, weights=row, minlength=n) for row in active])
