"""The default definition (the PD model's label), in one place, and the labelling of snapshots.

A buyer *defaults* on the first day any trigger of `DefaultDefinition` is met. A snapshot row
(buyer, as_of_date) gets label 1 when that first default falls in its label window
(as_of, as_of + horizon], 0 when the window is fully observed without a default, and <NA>
otherwise. Every trigger is dated on the day it became *known*, so the same dates serve the
point-in-time "already in default at as_of" state of the snapshots and the labels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from data.keys import positions
from data.reference import EVENT_TYPES

DATE = "datetime64[ns]"
DPD_TRIGGER = "days_past_due"
#: Columns `label_snapshots` adds to the rows it is given.
LABEL_COLUMNS = ("default_date", "default_trigger", "defaulted_before", "matured", "label")


@dataclass(frozen=True)
class DefaultDefinition:
    """What counts as a default (the PD model's label).

    Why each trigger:
    - insolvency / liquidation events: the legal end of the buyer's ability to pay; the
      unambiguous default of every rating convention.
    - claim_filed: a policyholder declared a loss on this buyer; for a credit insurer that
      is the economic default (it is what costs money), and it often precedes the legal
      event by months.
    - days_past_due: an invoice still unpaid `days_past_due` days after its due date (90 as
      in the Basel "90 days past due" rule). It catches buyers that stop paying without any
      filing. The trigger is dated due_date + days_past_due, the day the fact became known;
      an invoice paid on that very day or earlier does not trigger (paid within the limit).
    The horizon is in calendar months (`pd.DateOffset(months=horizon_months)`).
    """

    horizon_months: int = 12
    legal_event_types: tuple[str, ...] = ("insolvency", "liquidation")
    claim_event_types: tuple[str, ...] = ("claim_filed",)
    days_past_due: int = 90

    def __post_init__(self) -> None:
        if self.horizon_months < 1:
            raise ValueError(f"horizon_months must be >= 1, got {self.horizon_months}")
        if self.days_past_due < 1:
            raise ValueError(f"days_past_due must be >= 1, got {self.days_past_due}")
        events = self.event_types
        unknown = sorted(set(events) - EVENT_TYPES)
        if unknown:
            raise ValueError(f"unknown event type(s) {unknown}; known: {sorted(EVENT_TYPES)}")
        if len(set(events)) != len(events):
            raise ValueError(f"event types listed twice in the default definition: {events}")

    @property
    def event_types(self) -> tuple[str, ...]:
        """Event types that trigger a default, in tie-break priority order."""
        return (*self.legal_event_types, *self.claim_event_types)

    @property
    def trigger_names(self) -> tuple[str, ...]:
        """Every trigger name; on the same day the earlier one in this order is reported."""
        return (*self.event_types, DPD_TRIGGER)

    @property
    def horizon(self) -> pd.DateOffset:
        return pd.DateOffset(months=self.horizon_months)


DEFAULT_DEFINITION = DefaultDefinition()


def _require(frame: pd.DataFrame, columns: tuple[str, ...], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} is missing column(s) {', '.join(missing)}")


def _trigger_frame(
    buyer_id: pd.Series, trigger_date: pd.Series, trigger, dtype: pd.CategoricalDtype
) -> pd.DataFrame:
    n = len(buyer_id)
    if isinstance(trigger, str):
        codes = np.full(n, dtype.categories.get_loc(trigger), dtype=np.int8)
    else:
        codes = dtype.categories.get_indexer(np.asarray(trigger, dtype=object)).astype(np.int8)
    return pd.DataFrame(
        {
            "buyer_id": buyer_id.astype("str").reset_index(drop=True),
            "trigger_date": trigger_date.astype(DATE).reset_index(drop=True),
            "trigger": pd.Categorical.from_codes(codes, dtype=dtype),
        }
    )


def default_triggers(
    events: pd.DataFrame,
    invoices: pd.DataFrame,
    definition: DefaultDefinition = DEFAULT_DEFINITION,
    *,
    known_by=None,
) -> pd.DataFrame:
    """Every trigger occurrence: buyer_id, trigger_date, trigger (ordered categorical).

    One row per triggering event and per invoice that went `days_past_due` days past due
    unpaid. `known_by` drops triggers dated after it (not yet known then): the trigger date
    is the day the fact became known, so this is exactly the point-in-time cut.

    Without `known_by`, an invoice still open in the lake gets a trigger at due_date +
    days_past_due even when that day is after the lake's last load: a guess, not a fact
    (it may still be paid). Cut at a date the lake has reached before using such triggers
    (`label_snapshots` cuts at observation_end; snapshots compare with as_of).
    """
    _require(events, ("buyer_id", "event_date", "event_type"), "events")
    _require(invoices, ("buyer_id", "due_date", "paid_date"), "invoices")
    dtype = pd.CategoricalDtype(list(definition.trigger_names), ordered=True)

    # Undated facts (impossible under the contracts) cannot be placed in time: skipped.
    hit = (
        events["event_type"].isin(list(definition.event_types)) & events["event_date"].notna()
    ).to_numpy()
    event_part = _trigger_frame(
        events["buyer_id"][hit], events["event_date"][hit], events["event_type"][hit], dtype
    )

    limit = invoices["due_date"].astype(DATE) + pd.Timedelta(days=definition.days_past_due)
    paid = invoices["paid_date"].astype(DATE)
    late = ((paid.isna() | (paid > limit)) & limit.notna()).to_numpy()
    invoice_part = _trigger_frame(invoices["buyer_id"][late], limit[late], DPD_TRIGGER, dtype)

    triggers = pd.concat([event_part, invoice_part], ignore_index=True)
    if known_by is not None:
        triggers = triggers[triggers["trigger_date"] <= pd.Timestamp(known_by)]
    return triggers.reset_index(drop=True)


def first_default_dates(
    events: pd.DataFrame,
    invoices: pd.DataFrame,
    definition: DefaultDefinition = DEFAULT_DEFINITION,
    *,
    known_by=None,
) -> pd.DataFrame:
    """One row per buyer that ever defaulted: buyer_id, default_date (earliest trigger), trigger.

    Buyers without any trigger are absent. Ties on the same day report the trigger that
    comes first in `definition.trigger_names` (legal, then claim, then days past due), so
    the result does not depend on row order.
    """
    triggers = default_triggers(events, invoices, definition, known_by=known_by)
    first = triggers.sort_values(["trigger_date", "trigger"], kind="stable").drop_duplicates(
        "buyer_id", keep="first"
    )
    return first.rename(columns={"trigger_date": "default_date"}).reset_index(drop=True)


def _window_ends(as_of: pd.Series, definition: DefaultDefinition) -> np.ndarray:
    """as_of + horizon (calendar months), computed once per distinct date: snapshots repeat
    a few as-of dates over millions of rows and the month offset is slow per element."""
    codes, uniques = pd.factorize(as_of.astype(DATE), sort=False)
    ends = (pd.DatetimeIndex(uniques) + definition.horizon).astype(DATE).to_numpy()
    return ends[codes]


def label_snapshots(
    rows: pd.DataFrame,
    first_defaults: pd.DataFrame,
    observation_end,
    definition: DefaultDefinition = DEFAULT_DEFINITION,
) -> pd.DataFrame:
    """`rows` (buyer_id, as_of_date, ...) plus the label columns, index and order preserved.

    - default_date / default_trigger: the buyer's first default if known by observation_end
      (a later one is not known at observation_end and is never used), else NaT / <NA>;
      observation_end must not be after the lake's last load (open invoices would then
      count as past due on days the lake has not seen);
    - defaulted_before: default_date <= as_of_date: the buyer is already in default at
      as_of, so the row is no training row (its label is <NA>);
    - matured: as_of + horizon <= observation_end, the whole label window is observed;
    - label (Int8): 1 when as_of < default_date <= as_of + horizon; 0 when matured without
      a default in the window; <NA> otherwise.

    A default observed inside a window that is not complete yet still gives 1: a default
    that happened cannot be undone by later data, so the 1 is a fact. A 0 needs the whole
    window, since a default may still come. Beware: in an unmatured cohort only the early
    defaulters are labelled, so the labelled rows overstate its default rate; fit and
    validate on matured rows only (`features.training.plan_time_split` does so).
    """
    _require(rows, ("buyer_id", "as_of_date"), "rows")
    _require(first_defaults, ("buyer_id", "default_date"), "first_defaults")
    clash = [c for c in LABEL_COLUMNS if c in rows.columns]
    if clash:
        raise ValueError(f"rows already have label column(s) {', '.join(clash)}")
    if rows["as_of_date"].isna().any():
        raise ValueError("rows have a missing as_of_date")
    observation_end = pd.Timestamp(observation_end)

    known = first_defaults[first_defaults["default_date"] <= observation_end]
    if known["buyer_id"].duplicated().any():
        raise ValueError("first_defaults must have one row per buyer (see first_default_dates)")
    pos = positions(rows["buyer_id"], known["buyer_id"])
    found = pos >= 0

    dates = known["default_date"].astype(DATE).to_numpy()
    default_date = np.full(len(rows), np.datetime64("NaT", "ns"))
    default_date[found] = dates[pos[found]]

    as_of = rows["as_of_date"].astype(DATE)
    as_of_np = as_of.to_numpy()
    window_end = _window_ends(as_of, definition)
    defaulted_before = found & (default_date <= as_of_np)
    in_window = found & (default_date > as_of_np) & (default_date <= window_end)
    matured = window_end <= observation_end.to_datetime64()
    known_label = ~defaulted_before & (in_window | matured)

    trigger_dtype = pd.CategoricalDtype(list(definition.trigger_names), ordered=True)
    trigger_codes = np.full(len(rows), -1, dtype=np.int8)
    if "trigger" in known.columns:
        known_codes = trigger_dtype.categories.get_indexer(
            known["trigger"].astype("object").to_numpy()
        )
        trigger_codes[found] = known_codes[pos[found]]
    trigger = pd.Categorical.from_codes(trigger_codes, dtype=trigger_dtype)

    label = pd.arrays.IntegerArray(in_window.astype(np.int8), mask=~known_label)
    return rows.assign(
        default_date=pd.Series(default_date, index=rows.index, dtype=DATE),
        default_trigger=pd.Series(trigger, index=rows.index),
        defaulted_before=pd.Series(defaulted_before, index=rows.index),
        matured=pd.Series(matured, index=rows.index),
        label=pd.Series(label, index=rows.index, dtype="Int8"),
    )
