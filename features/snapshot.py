"""Point-in-time snapshots: one row per (buyer, as_of_date), built from the lake's tables.

Every feature uses only facts known at its as_of date: statements by filing date, payments
by paid date, invoices by issue date, events by event date. Many as-of dates in one call
share one pass over the invoices (see `features.payment`), so 24 monthly dates cost little
more than one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from features.catalogue import FEATURE_NAMES, ID_COLUMNS
from features.context import context_features
from features.financial import financial_features
from features.labels import DEFAULT_DEFINITION, DefaultDefinition, first_default_dates
from features.payment import payment_features

STATE_COLUMNS = ["in_default_at_as_of"]


def as_of_index(as_of_dates: Sequence | pd.DatetimeIndex) -> pd.DatetimeIndex:
    """Distinct as-of dates, sorted, at midnight (an as-of date covers the whole day)."""
    dates = pd.DatetimeIndex(pd.to_datetime(list(as_of_dates))).normalize()
    if dates.hasnans:
        raise ValueError("as-of dates must not be missing")
    return dates.unique().sort_values().astype("datetime64[ns]")


def build_snapshots(
    tables: Mapping[str, pd.DataFrame],
    as_of_dates: Sequence | pd.DatetimeIndex,
    definition: DefaultDefinition = DEFAULT_DEFINITION,
) -> pd.DataFrame:
    """Features for every buyer incorporated by each as-of date.

    `tables` maps lake table names (buyers, financials, invoices, events, country_risk) to
    their frames. Returns buyer_id, as_of_date, the catalogue's features in catalogue order,
    and `in_default_at_as_of` (a default trigger already known at as_of: such a buyer is
    rated 'in default', not scored).
    """
    as_of = as_of_index(as_of_dates)
    buyers = tables["buyers"]
    buyer_ids = pd.Index(buyers["buyer_id"].to_numpy())
    if buyer_ids.has_duplicates:
        raise ValueError("buyers.buyer_id must be unique")
    frame = payment_features(tables["invoices"], tables["events"], buyer_ids, as_of)
    grid = frame[ID_COLUMNS]
    financial = financial_features(grid, tables["financials"])
    context = context_features(grid, buyers, tables["country_risk"])
    frame = pd.concat([frame, financial, context], axis=1)

    defaults = first_default_dates(tables["events"], tables["invoices"], definition)
    default_date = defaults.set_index("buyer_id")["default_date"].reindex(
        grid["buyer_id"].to_numpy()
    )
    frame["in_default_at_as_of"] = default_date.to_numpy() <= grid["as_of_date"].to_numpy()

    incorporated = buyers.set_index("buyer_id")["incorporation_date"].reindex(
        grid["buyer_id"].to_numpy()
    )
    exists = ~(incorporated.to_numpy() > grid["as_of_date"].to_numpy())
    frame = frame.loc[exists, [*ID_COLUMNS, *FEATURE_NAMES, *STATE_COLUMNS]]
    return frame.reset_index(drop=True)


def snapshot_at(tables: Mapping[str, pd.DataFrame], as_of) -> pd.DataFrame:
    """Convenience for one date (the daily rescoring)."""
    return build_snapshots(tables, [as_of])
