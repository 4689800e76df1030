"""The limit book at a date: which decided limit is in force, and which change is scheduled.

The lake's `limits` table keeps every decision as a version of its (policyholder, buyer)
pair: the decided amount, its decision date and the date it takes effect (`effective_date`;
empty = at once). Reductions are notified to the policyholder and take effect after a
notice period, so on a given day a pair can have a limit in force and a lower one
scheduled. Reading the book point in time:

- a version is *known* at D when it was decided by D;
- a version is *withdrawn* when a later decision was taken before it took effect (the
  newer decision replaces whatever was still pending);
- the limit *in force* at D is the known, not withdrawn version with the latest effective
  date on or before D (ties: the later decision);
- the *scheduled* change at D is the known, not withdrawn version taking effect after D
  (at most one: a later decision withdraws any earlier pending one).

So rescoring a past date after later decisions are loaded gives the same book as on that
date, and a decided reduction is not proposed again while its notice runs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

PAIR_KEY = ["policyholder_id", "buyer_id"]
#: Columns of a version the book carries forward (besides the key and dates).
VERSION_COLUMNS = ["limit_amount", "requested_amount", "exposure"]


def _effective(limits: pd.DataFrame) -> pd.Series:
    """The date a version takes effect: its effective date, or its decision date (also for
    books written before effective dates existed)."""
    decided = limits["decision_date"].astype("datetime64[ns]")
    if "effective_date" not in limits:
        return decided
    return limits["effective_date"].astype("datetime64[ns]").fillna(decided)


def _withdrawn(versions: pd.DataFrame, as_of: pd.Timestamp) -> np.ndarray:
    """Versions replaced, before they took effect, by a later decision known at `as_of`.

    `versions` is sorted by pair then decision date (only versions known at `as_of`)."""
    same_pair = versions[PAIR_KEY].eq(versions[PAIR_KEY].shift(-1)).all(axis=1).to_numpy()
    next_decision = versions["decision_date"].shift(-1).to_numpy()
    effective = versions["_effective"].to_numpy()
    return same_pair & (next_decision < effective) & (next_decision <= as_of.to_datetime64())


def limits_as_of(limits: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """One row per pair with a limit in force or scheduled at `as_of`, ordered by pair.

    Columns: the key, `limit_amount`, `requested_amount`, `exposure` and `decision_date`
    of the version in force (limit 0 and the scheduled version's request and exposure
    when only a future version exists: a new limit not yet in force), `effective_date`
    (when that version took effect), `scheduled_amount` / `scheduled_date` (the pending
    change, NaN / NaT when none).
    """
    known = limits.loc[limits["decision_date"] <= as_of]
    versions = known.assign(_effective=_effective(known)).sort_values(
        [*PAIR_KEY, "decision_date"], kind="stable", ignore_index=True
    )
    live = versions.loc[~_withdrawn(versions, as_of)]
    started = live["_effective"] <= as_of
    in_force = (
        live.loc[started]
        .sort_values([*PAIR_KEY, "_effective", "decision_date"], kind="stable")
        .drop_duplicates(PAIR_KEY, keep="last")
    )
    scheduled = (
        live.loc[~started]
        .sort_values([*PAIR_KEY, "decision_date"], kind="stable")
        .drop_duplicates(PAIR_KEY, keep="last")
    )
    book = in_force[[*PAIR_KEY, *VERSION_COLUMNS, "decision_date", "_effective"]].rename(
        columns={"_effective": "effective_date"}
    )
    future = scheduled[[*PAIR_KEY, "limit_amount", "_effective", *VERSION_COLUMNS[1:]]].rename(
        columns={"limit_amount": "scheduled_amount", "_effective": "scheduled_date"}
    )
    book = book.merge(future, on=PAIR_KEY, how="outer", suffixes=("", "_scheduled"))
    for column in VERSION_COLUMNS[1:]:  # a pair only scheduled: its request and exposure
        book[column] = book[column].fillna(book.pop(f"{column}_scheduled"))
    book["limit_amount"] = book["limit_amount"].fillna(0.0)
    return book.sort_values(PAIR_KEY, kind="stable", ignore_index=True).astype(
        {"decision_date": "datetime64[ns]", "effective_date": "datetime64[ns]",
         "scheduled_date": "datetime64[ns]"}
    )  # fmt: skip


def amounts_in_force(limits: pd.DataFrame, pairs: pd.DataFrame, when: np.ndarray) -> np.ndarray:
    """The limit in force for each row of `pairs` on its own date `when[i]` (0 without one):
    the rule of `limits_as_of`, for many pairs on many dates at once (the backtest asks
    each defaulting buyer's cover on its own default day)."""
    queries = (
        pairs[PAIR_KEY]
        .reset_index(drop=True)
        .assign(_query=np.arange(len(pairs)), _when=np.asarray(when, dtype="datetime64[ns]"))
    )
    versions = limits[[*PAIR_KEY, "limit_amount", "decision_date"]].assign(
        decision_date=limits["decision_date"].astype("datetime64[ns]"),
        _effective=_effective(limits),
    )
    rows = queries.merge(versions, on=PAIR_KEY, how="inner")
    rows = rows.loc[rows["decision_date"] <= rows["_when"]].sort_values(
        ["_query", "decision_date"], kind="stable", ignore_index=True
    )
    same = (rows["_query"] == rows["_query"].shift(-1)).to_numpy()
    next_decision = rows["decision_date"].shift(-1).to_numpy()
    withdrawn = same & (next_decision < rows["_effective"].to_numpy())
    live = rows.loc[~withdrawn & (rows["_effective"] <= rows["_when"]).to_numpy()]
    latest = live.sort_values(["_query", "_effective", "decision_date"], kind="stable")
    latest = latest.drop_duplicates("_query", keep="last")
    out = np.zeros(len(pairs))
    out[latest["_query"].to_numpy()] = latest["limit_amount"].to_numpy(dtype="float64")
    return out
