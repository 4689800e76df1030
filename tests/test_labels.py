"""Default triggers and labels on hand-built cases, plus a property test of the label rule."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from features.labels import (
    DEFAULT_DEFINITION,
    DPD_TRIGGER,
    DefaultDefinition,
    default_triggers,
    first_default_dates,
    label_snapshots,
)

T = pd.Timestamp
NS = "datetime64[ns]"


def events(*rows: tuple[str, str, str]) -> pd.DataFrame:
    """(buyer_id, event_date, event_type) rows, typed like the lake's events table."""
    frame = pd.DataFrame(rows, columns=["buyer_id", "event_date", "event_type"])
    return pd.DataFrame(
        {
            "buyer_id": frame["buyer_id"].astype("str"),
            "event_date": pd.to_datetime(frame["event_date"]).astype(NS),
            "event_type": frame["event_type"].astype("str"),
            "policyholder_id": pd.Series([None] * len(frame), dtype="str"),
            "amount": pd.Series([float("nan")] * len(frame), dtype="float64"),
        }
    )


def invoices(*rows: tuple[str, str, str | None]) -> pd.DataFrame:
    """(buyer_id, due_date, paid_date or None) rows, typed like the lake's invoices table."""
    frame = pd.DataFrame(rows, columns=["buyer_id", "due_date", "paid_date"])
    due = pd.to_datetime(frame["due_date"]).astype(NS)
    return pd.DataFrame(
        {
            "invoice_id": pd.Series([f"I{i}" for i in range(len(frame))], dtype="str"),
            "buyer_id": frame["buyer_id"].astype("str"),
            "policyholder_id": pd.Series(["P1"] * len(frame), dtype="str"),
            "issue_date": (due - pd.Timedelta(days=30)).astype(NS),
            "due_date": due,
            "paid_date": pd.to_datetime(frame["paid_date"]).astype(NS),
            "amount": pd.Series([100.0] * len(frame), dtype="float64"),
            "currency": pd.Series(["EUR"] * len(frame), dtype="str"),
        }
    )


NO_EVENTS = events()
NO_INVOICES = invoices()


def snapshot_rows(*rows: tuple[str, str]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["buyer_id", "as_of_date"])
    return pd.DataFrame(
        {
            "buyer_id": frame["buyer_id"].astype("str"),
            "as_of_date": pd.to_datetime(frame["as_of_date"]).astype(NS),
        }
    )


def first_defaults(*rows: tuple[str, str]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["buyer_id", "default_date"])
    return pd.DataFrame(
        {
            "buyer_id": frame["buyer_id"].astype("str"),
            "default_date": pd.to_datetime(frame["default_date"]).astype(NS),
        }
    )


def triggers_of(ev: pd.DataFrame, inv: pd.DataFrame, **kw) -> list[tuple[str, pd.Timestamp, str]]:
    out = default_triggers(ev, inv, **kw)
    return sorted(
        zip(out["buyer_id"], out["trigger_date"], out["trigger"].astype(str), strict=True)
    )


# --- triggers --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["insolvency", "liquidation", "claim_filed"])
def test_each_event_trigger(kind: str) -> None:
    ev = events(("B1", "2023-03-15", kind), ("B2", "2023-03-15", "overdue_notification"))
    assert triggers_of(ev, NO_INVOICES) == [("B1", T("2023-03-15"), kind)]


def test_overdue_notification_and_legal_dispute_are_not_defaults() -> None:
    ev = events(("B1", "2023-03-15", "overdue_notification"), ("B1", "2023-04-01", "legal_dispute"))
    assert triggers_of(ev, NO_INVOICES) == []


@pytest.mark.parametrize(
    ("paid_after_due", "expected"),
    [
        (None, True),  # still unpaid
        (95, True),  # paid late: it was unpaid on day 90
        (91, True),
        (90, False),  # paid on day 90 itself: within the limit
        (89, False),
        (0, False),
    ],
)
def test_days_past_due_trigger(paid_after_due: int | None, expected: bool) -> None:
    due = T("2023-01-10")
    paid = None if paid_after_due is None else str(due + pd.Timedelta(days=paid_after_due))
    got = triggers_of(NO_EVENTS, invoices(("B1", str(due), paid)))
    assert got == ([("B1", due + pd.Timedelta(days=90), DPD_TRIGGER)] if expected else [])


def test_dpd_trigger_is_dated_when_known_and_respects_known_by() -> None:
    inv = invoices(("B1", "2023-01-10", None))  # 90 days past due on 2023-04-10
    assert triggers_of(NO_EVENTS, inv, known_by="2023-04-10") == [
        ("B1", T("2023-04-10"), DPD_TRIGGER)
    ]
    assert triggers_of(NO_EVENTS, inv, known_by="2023-04-09") == []


def test_definition_is_configurable() -> None:
    ev = events(("B1", "2023-03-15", "claim_filed"))
    inv = invoices(("B2", "2023-01-10", "2023-03-01"))  # paid 50 days past due
    no_claims = DefaultDefinition(claim_event_types=(), days_past_due=30)
    assert triggers_of(ev, inv, definition=no_claims) == [("B2", T("2023-02-09"), DPD_TRIGGER)]
    assert triggers_of(ev, inv) == [("B1", T("2023-03-15"), "claim_filed")]


def test_definition_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="unknown event type"):
        DefaultDefinition(legal_event_types=("bankruptcy",))
    with pytest.raises(ValueError, match="horizon_months"):
        DefaultDefinition(horizon_months=0)
    with pytest.raises(ValueError, match="twice"):
        DefaultDefinition(claim_event_types=("insolvency",))


def test_first_default_is_the_earliest_trigger_with_a_stable_tie_break() -> None:
    ev = events(
        ("B1", "2023-06-01", "insolvency"),
        ("B1", "2023-05-01", "claim_filed"),
        ("B2", "2023-04-10", "claim_filed"),
        ("B2", "2023-04-10", "liquidation"),
        ("B3", "2023-01-01", "overdue_notification"),
    )
    inv = invoices(
        ("B1", "2023-03-01", None), ("B2", "2023-01-10", None), ("B3", "2023-01-01", "2023-02-01")
    )
    for order in (slice(None), slice(None, None, -1)):
        first = first_default_dates(ev.iloc[order], inv.iloc[order]).set_index("buyer_id")
        assert sorted(first.index) == ["B1", "B2"]  # B3 paid 31 days late: no default
        assert first.loc["B1", "default_date"] == T("2023-05-01")
        assert first.loc["B1", "trigger"] == "claim_filed"
        # B2: liquidation, claim and 90 DPD all on 2023-04-10: the legal event is reported
        assert first.loc["B2", "default_date"] == T("2023-04-10")
        assert first.loc["B2", "trigger"] == "liquidation"


def test_no_events_and_no_invoices_give_no_defaults() -> None:
    first = first_default_dates(NO_EVENTS, NO_INVOICES)
    assert list(first.columns) == ["buyer_id", "default_date", "trigger"]
    assert first.empty


# --- labels ----------------------------------------------------------------------------


def label_one(as_of: str, default: str | None, observation_end: str, **kw) -> pd.Series:
    fd = first_defaults(("B1", default)) if default else first_defaults()
    out = label_snapshots(snapshot_rows(("B1", as_of)), fd, observation_end, **kw)
    return out.iloc[0]


def test_default_exactly_at_as_of_is_defaulted_before_not_label_1() -> None:
    row = label_one("2022-06-30", "2022-06-30", "2024-12-31")
    assert row["defaulted_before"]
    assert pd.isna(row["label"])


def test_default_exactly_at_window_end_is_label_1() -> None:
    row = label_one("2022-06-30", "2023-06-30", "2024-12-31")
    assert not row["defaulted_before"]
    assert row["label"] == 1


def test_default_one_day_after_window_end() -> None:
    matured = label_one("2022-06-30", "2023-07-01", "2024-12-31")
    assert matured["label"] == 0
    assert matured["default_date"] == T("2023-07-01")  # still reported, outside the window
    unmatured = label_one("2022-06-30", "2023-07-01", "2023-06-29")
    assert not unmatured["matured"]
    assert pd.isna(unmatured["label"])  # the default is not known yet at observation end


def test_default_one_day_after_as_of_is_label_1() -> None:
    assert label_one("2022-06-30", "2022-07-01", "2024-12-31")["label"] == 1


def test_horizon_is_calendar_months() -> None:
    # 2023-02-28 + 12 months = 2024-02-28: a default on 2024-02-29 is outside the window
    assert label_one("2023-02-28", "2024-02-28", "2025-01-31")["label"] == 1
    assert label_one("2023-02-28", "2024-02-29", "2025-01-31")["label"] == 0
    six = DefaultDefinition(horizon_months=6)
    assert label_one("2023-01-31", "2023-07-31", "2025-01-31", definition=six)["label"] == 1
    assert label_one("2023-01-31", "2023-08-01", "2025-01-31", definition=six)["label"] == 0


def test_maturity_edge() -> None:
    on_time = label_one("2022-06-30", None, "2023-06-30")
    assert on_time["matured"]
    assert on_time["label"] == 0
    one_day_short = label_one("2022-06-30", None, "2023-06-29")
    assert not one_day_short["matured"]
    assert pd.isna(one_day_short["label"])


def test_unmatured_rows_are_never_0_but_a_known_default_is_1() -> None:
    rows = snapshot_rows(("B1", "2024-01-31"), ("B2", "2024-01-31"), ("B3", "2024-01-31"))
    fd = first_defaults(("B1", "2024-03-15"), ("B3", "2024-09-01"))
    out = label_snapshots(rows, fd, "2024-06-30").set_index("buyer_id")
    assert not out["matured"].any()
    assert out.loc["B1", "label"] == 1  # default observed inside the (incomplete) window
    assert pd.isna(out.loc["B2", "label"])  # nothing seen yet: unknown, not good
    assert pd.isna(out.loc["B3", "label"])  # default after observation end: unknown
    assert pd.isna(out.loc["B3", "default_date"])
    assert (out["label"] == 0).sum() == 0


def test_triggers_after_observation_end_are_ignored_end_to_end() -> None:
    ev = events(("B1", "2023-09-01", "insolvency"))
    inv = invoices(("B2", "2023-05-01", None))  # 90 days past due on 2023-07-30
    rows = snapshot_rows(("B1", "2023-01-31"), ("B2", "2023-01-31"))
    fd = first_default_dates(ev, inv)  # knows both: label_snapshots must cut them itself

    def labels(observation_end: str) -> list:
        out = label_snapshots(rows, fd, observation_end)
        return [list(out["label"].astype("object")), list(out["default_date"])]

    assert labels("2023-07-29") == [[pd.NA, pd.NA], [pd.NaT, pd.NaT]]
    assert labels("2023-07-30") == [[pd.NA, 1], [pd.NaT, T("2023-07-30")]]
    assert labels("2024-01-31") == [[1, 1], [T("2023-09-01"), T("2023-07-30")]]


def test_matured_window_without_default_is_0_even_with_a_later_default() -> None:
    rows = snapshot_rows(("B1", "2022-06-30"))
    fd = first_defaults(("B1", "2023-09-01"))
    out = label_snapshots(rows, fd, "2023-12-31").iloc[0]
    assert out["matured"]
    assert out["label"] == 0


def test_buyers_without_events_or_invoices() -> None:
    ev = events(("B1", "2023-01-15", "insolvency"))
    inv = invoices(("B1", "2022-01-10", "2022-01-20"))
    rows = snapshot_rows(("B1", "2022-06-30"), ("B9", "2022-06-30"), ("B9", "2024-06-30"))
    out = label_snapshots(rows, first_default_dates(ev, inv), "2024-12-31")
    assert out["label"].dtype == "Int8"
    assert list(out["label"].astype("object")) == [1, 0, pd.NA]
    assert out["default_date"].iloc[1:].isna().all()
    assert not out["defaulted_before"].any()


def test_rows_keep_their_index_order_and_columns() -> None:
    rows = snapshot_rows(("B2", "2022-06-30"), ("B1", "2022-06-30"), ("B2", "2021-06-30"))
    rows.index = pd.Index([30, 10, 20])
    rows["feature"] = [1.0, 2.0, 3.0]
    out = label_snapshots(rows, first_defaults(("B2", "2022-09-01")), "2024-12-31")
    assert list(out.index) == [30, 10, 20]
    assert list(out["feature"]) == [1.0, 2.0, 3.0]
    assert list(out["label"].astype("object")) == [1, 0, 0]
    assert out["default_date"].dtype == NS
    assert "feature" not in label_snapshots(
        rows[["buyer_id", "as_of_date"]], first_defaults(), "2024-12-31"
    )


def test_label_columns_must_not_exist_already() -> None:
    rows = snapshot_rows(("B1", "2022-06-30")).assign(label=1)
    with pytest.raises(ValueError, match="already have"):
        label_snapshots(rows, first_defaults(), "2024-12-31")


def test_first_defaults_must_be_one_per_buyer() -> None:
    fd = first_defaults(("B1", "2023-01-01"), ("B1", "2023-02-01"))
    with pytest.raises(ValueError, match="one row per buyer"):
        label_snapshots(snapshot_rows(("B1", "2022-06-30")), fd, "2024-12-31")


# --- property: the label rule ------------------------------------------------------------

BASE = T("2020-01-01")
day = st.integers(min_value=0, max_value=2000).map(lambda d: BASE + pd.Timedelta(days=d))
trigger_kind = st.sampled_from(["insolvency", "liquidation", "claim_filed", "dpd", "noise"])


@settings(max_examples=75, deadline=None)
@given(
    buyers=st.lists(
        st.tuples(day, st.lists(st.tuples(trigger_kind, day), max_size=4)),
        min_size=1,
        max_size=4,
    ),
    horizon=st.integers(min_value=1, max_value=24),
    observation_end=day,
)
def test_label_is_1_iff_first_known_trigger_in_window(buyers, horizon, observation_end) -> None:
    ev_rows, inv_rows, row_list = [], [], []
    expected, expected_before = [], []
    h = pd.DateOffset(months=horizon)
    for i, (as_of, triggers) in enumerate(buyers):
        buyer = f"B{i}"
        row_list.append((buyer, str(as_of)))
        dates = []
        for kind, when in triggers:
            if kind == "dpd":  # unpaid invoice reaching 90 DPD on `when`
                inv_rows.append((buyer, str(when - pd.Timedelta(days=90)), None))
                dates.append(when)
            elif kind == "noise":  # non-default facts: a paid-on-time invoice, a dispute
                inv_rows.append((buyer, str(when), str(when + pd.Timedelta(days=89))))
                ev_rows.append((buyer, str(when), "legal_dispute"))
            else:
                ev_rows.append((buyer, str(when), kind))
                dates.append(when)
        known = [d for d in dates if d <= observation_end]
        first = min(known) if known else None
        expected_before.append(first is not None and first <= as_of)
        if first is not None and first <= as_of:
            expected.append(None)  # already in default
        elif first is not None and first <= as_of + h:
            expected.append(1)
        elif as_of + h <= observation_end:
            expected.append(0)
        else:
            expected.append(None)
    definition = dataclasses.replace(DEFAULT_DEFINITION, horizon_months=horizon)
    fd = first_default_dates(events(*ev_rows), invoices(*inv_rows), definition)
    out = label_snapshots(snapshot_rows(*row_list), fd, observation_end, definition)
    got = [None if pd.isna(v) else int(v) for v in out["label"]]
    assert got == expected
    assert list(out["defaulted_before"]) == expected_before
