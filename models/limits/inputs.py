"""Inputs of the limit engine: one row per (policyholder, buyer) limit, point in time.

Pure functions from lake tables to the `pairs` frame `models.limits.engine.recommend_limits`
reads. Everything is as known at the as-of date: the limit in force and any scheduled
change (`models.limits.book`), statements filed by then, payments and events dated by then,
the scores of that date and of the previous scoring, the decisions underwriters took and
the requests policyholders sent.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from data.reference import EVENT_TYPES
from features.financial import DAYS_PER_MONTH
from models.limits.book import limits_as_of

PAIR_KEY = ["policyholder_id", "buyer_id"]
#: Actions after which the next increase waits (hysteresis).
DECREASING_ACTIONS = ("decrease", "cancel")


def paid_within_terms(
    invoices: pd.DataFrame, as_of: pd.Timestamp, grace_days: int, months: int = 12
) -> pd.Series:
    """Amount each buyer paid within terms (due date + `grace_days`) in the last `months`.

    The capacity basis of buyers that file no statements: what they demonstrably pay on
    time is what they can carry.
    """
    paid = invoices["paid_date"]
    start = as_of - pd.DateOffset(months=months)
    on_time = paid.notna() & (paid <= invoices["due_date"] + pd.Timedelta(days=grace_days))
    window = on_time & (paid > start) & (paid <= as_of)
    return invoices.loc[window].groupby("buyer_id", sort=False)["amount"].sum()


def latest_statement_amounts(financials: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """Per buyer, equity and turnover of the newest period filed by as-of, and its age.

    The same statement the features use (a late-filed older period never replaces a newer
    one), picked directly: the capacity rule needs no ratios.
    """
    known = financials.loc[
        financials["filing_date"] <= as_of, ["buyer_id", "period_end", "equity", "revenue"]
    ]
    latest = known.sort_values("period_end", kind="stable").drop_duplicates("buyer_id", keep="last")
    age = (as_of - latest["period_end"]).dt.days / DAYS_PER_MONTH
    return pd.DataFrame(
        {
            "equity": latest["equity"].to_numpy(dtype="float64", na_value=np.nan),
            "turnover": latest["revenue"].to_numpy(dtype="float64", na_value=np.nan),
            "statement_age_months": age.to_numpy(dtype="float64"),
        },
        index=pd.Index(latest["buyer_id"], name="buyer_id"),
    )


def last_event_dates(events: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """Per buyer, the latest date of each event type known at as-of (`last_<type>_date`)."""
    known = events.loc[events["event_date"] <= as_of, ["buyer_id", "event_type", "event_date"]]
    wide = known.pivot_table(
        index="buyer_id", columns="event_type", values="event_date", aggfunc="max"
    )
    wide = wide.reindex(columns=sorted(EVENT_TYPES))
    wide.columns = [f"last_{event}_date" for event in wide.columns]
    return wide.astype("datetime64[ns]")


def last_decrease_dates(history: pd.DataFrame | None, as_of: pd.Timestamp) -> pd.DataFrame:
    """Per pair, the latest as-of date up to `as_of` whose recommendation cut or cancelled
    the limit (a daily run's history holds earlier days only; the request desk, answering
    after the day's run, passes that run too).

    `history` holds earlier recommendations (policyholder_id, buyer_id, as_of_date,
    proposed_action); a referred cut counts too, since the underwriter saw it.
    """
    columns = [*PAIR_KEY, "last_decrease_date"]
    if history is None or history.empty:
        return pd.DataFrame(columns=columns).astype({"last_decrease_date": "datetime64[ns]"})
    earlier = history.loc[
        (history["as_of_date"] <= as_of) & history["proposed_action"].isin(DECREASING_ACTIONS)
    ]
    out = earlier.groupby(PAIR_KEY, sort=False)["as_of_date"].max().rename("last_decrease_date")
    return out.reset_index().astype({"last_decrease_date": "datetime64[ns]"})


def previous_actions(history: pd.DataFrame | None, as_of: pd.Timestamp) -> pd.DataFrame:
    """Per pair, the action proposed by the latest earlier run (to flag what is new today)."""
    columns = [*PAIR_KEY, "previous_action"]
    if history is None or history.empty:
        return pd.DataFrame(columns=columns).astype({"previous_action": "object"})
    earlier = history.loc[history["as_of_date"] < as_of]
    if earlier.empty:
        return pd.DataFrame(columns=columns).astype({"previous_action": "object"})
    latest = earlier.loc[earlier["as_of_date"] == earlier["as_of_date"].max()]
    return (
        latest[[*PAIR_KEY, "proposed_action"]]
        .rename(columns={"proposed_action": "previous_action"})
        .astype({"previous_action": "object"})
    )


def _empty_decisions() -> pd.DataFrame:
    return pd.DataFrame(
        {
            **{k: pd.Series(dtype="str") for k in PAIR_KEY},
            "last_decision_date": pd.Series(dtype="datetime64[ns]"),
            "last_decision_grade": pd.Series(dtype="float64"),
        }
    )


def with_requests(book: pd.DataFrame, requests: pd.DataFrame | None) -> pd.DataFrame:
    """The book with the open requests policyholders sent (policyholder_id, buyer_id,
    amount, received_at): a request replaces the pair's pending amount; a request on a pair
    without a limit adds the pair at 0. `request_date` is when the pending request arrived
    (a request carried in the lake's limits dates from its version's decision)."""
    book = book.assign(request_date=book["decision_date"].where(book["requested_amount"].notna()))
    if requests is None or requests.empty:
        return book
    latest = (
        requests.sort_values("received_at", kind="stable")
        .drop_duplicates(PAIR_KEY, keep="last")
        .assign(received=lambda r: pd.to_datetime(r["received_at"]).dt.tz_localize(None)
                .dt.normalize().astype("datetime64[ns]"))
    )  # fmt: skip
    merged = book.merge(latest[[*PAIR_KEY, "amount", "received"]], on=PAIR_KEY, how="outer")
    asked = merged["amount"].notna()
    merged["requested_amount"] = merged["amount"].where(asked, merged["requested_amount"])
    merged["request_date"] = merged["received"].where(asked, merged["request_date"])
    merged["limit_amount"] = merged["limit_amount"].fillna(0.0)
    merged["exposure"] = merged["exposure"].fillna(0.0)
    return merged.drop(columns=["amount", "received"]).sort_values(
        PAIR_KEY, kind="stable", ignore_index=True
    )


def assemble_pairs(
    as_of: pd.Timestamp,
    tables: dict[str, pd.DataFrame],
    scores: pd.DataFrame,
    features: pd.DataFrame,
    previous_scores: pd.DataFrame | None = None,
    history: pd.DataFrame | None = None,
    *,
    grace_days: int,
    decisions: pd.DataFrame | None = None,
    requests: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The engine's input: every limit in force or scheduled (and every open request) with
    its policy, buyer, score and capacity inputs.

    `tables`: the lake's limits (every version), policies, buyers, financials, invoices and
    events. `scores`: buyer_id, pd, grade of this as-of date; `features`: the snapshot of
    this date (oldest_overdue_days, political_risk_class); `previous_scores`: the last
    earlier scoring (for downgrades); `history`: earlier recommendations (hysteresis, what
    is new today); `decisions`: per pair, the date and grade of the latest decision an
    underwriter took (last_decision_date, last_decision_grade); `requests`: open requests
    from policyholders. Pairs whose buyer has no score keep a missing grade: the engine
    refers them.
    """
    as_of = as_of.normalize()
    book = with_requests(limits_as_of(tables["limits"], as_of), requests)
    pairs = book[
        [*PAIR_KEY, "limit_amount", "requested_amount", "exposure", "scheduled_amount",
         "scheduled_date", "request_date"]
    ].reset_index(drop=True)  # fmt: skip
    pairs.insert(0, "as_of_date", pd.Series(as_of, index=pairs.index, dtype="datetime64[ns]"))
    policies = tables["policies"].set_index("policyholder_id")[
        ["scheme", "indemnity_pct", "discretionary_limit"]
    ]
    pairs = pairs.join(policies, on="policyholder_id")
    pairs = pairs.join(tables["buyers"].set_index("buyer_id")[["country"]], on="buyer_id")
    pairs = pairs.join(
        features.set_index("buyer_id")[["political_risk_class", "oldest_overdue_days"]],
        on="buyer_id",
    )
    pairs = pairs.join(scores.set_index("buyer_id")[["pd", "grade"]], on="buyer_id")
    previous = (
        previous_scores.set_index("buyer_id")["grade"].rename("previous_grade")
        if previous_scores is not None and len(previous_scores)
        else pd.Series(dtype="Int64", name="previous_grade")
    )
    pairs = pairs.join(previous, on="buyer_id")
    pairs["previous_grade"] = pairs["previous_grade"].astype("Int64")

    pairs = pairs.join(latest_statement_amounts(tables["financials"], as_of), on="buyer_id")
    paid = paid_within_terms(tables["invoices"], as_of, grace_days)
    pairs["paid_within_terms_12m"] = (
        pairs["buyer_id"].map(paid).to_numpy(dtype="float64", na_value=np.nan)
    )
    pairs["paid_within_terms_12m"] = pairs["paid_within_terms_12m"].fillna(0.0)
    pairs = pairs.join(last_event_dates(tables["events"], as_of), on="buyer_id")
    for event in sorted(EVENT_TYPES):
        column = f"last_{event}_date"
        if column not in pairs:
            pairs[column] = pd.Series(pd.NaT, index=pairs.index, dtype="datetime64[ns]")
    pairs = pairs.merge(last_decrease_dates(history, as_of), on=PAIR_KEY, how="left")
    decided = decisions if decisions is not None and len(decisions) else _empty_decisions()
    pairs = pairs.merge(
        decided[[*PAIR_KEY, "last_decision_date", "last_decision_grade"]], on=PAIR_KEY, how="left"
    )
    pairs = pairs.merge(previous_actions(history, as_of), on=PAIR_KEY, how="left")
    return pairs.astype(
        {"last_decision_date": "datetime64[ns]", "last_decision_grade": "float64",
         "request_date": "datetime64[ns]", "scheduled_date": "datetime64[ns]",
         "scheduled_amount": "float64", "previous_action": "object"}
    )  # fmt: skip
