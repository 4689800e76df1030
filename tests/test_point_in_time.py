"""Point in time: rescoring a past date after later days were loaded and decided gives
exactly the outputs the date had (limits, requests, events, statements and payments are cut
at the as-of date)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from data.daily_store import DailyStore
from flows.daily import daily_rescore_flow
from tests.book_fixtures import context_for, make_book

OUTPUTS = ("scores", "recommendations", "alerts", "migration", "psi")
DAYS = [dt.date(2026, 11, d) for d in (27, 28, 29, 30)]


@pytest.fixture(scope="module")
def replayed(tmp_path_factory):
    """A book whose four daily drops were rescored in order, with a limit request received
    before the second day and answered on the third, and an underwriter's decision of the
    third day written into the limit book by the fourth day's run."""
    book = make_book(tmp_path_factory.mktemp("pit"))
    store = DailyStore(book["lake"])
    published = {}
    for day in DAYS:
        ctx = context_for(book, day)
        if day == DAYS[1]:
            recs = store.read(DAYS[0].isoformat(), "recommendations")
            pair = recs.iloc[0]
            ctx.decisions.add_request(
                str(pair["policyholder_id"]), str(pair["buyer_id"]), 123_456.0,
                channel="api", requested_by="policyholder",
                received_at=dt.datetime(2026, 11, 27, 15, tzinfo=dt.UTC),
            )  # fmt: skip
        if day == DAYS[3]:
            _answer_and_decide(ctx, dt.datetime(2026, 11, 29, 10, tzinfo=dt.UTC))
        daily_rescore_flow(ctx)
        published[day] = {
            name: store.read(day.isoformat(), name)
            for name in OUTPUTS
            if store.has(day.isoformat(), f"{name}.parquet")
        }
    return book, store, published


def _answer_and_decide(ctx, when: dt.datetime) -> None:
    store = ctx.decisions
    (request,) = store.requests().itertuples()
    assert request.status == "received"  # still waiting after the second and third day
    store.record_request_decision(
        int(request.id), outcome="accepted", decided_action="increase",
        decided_amount=request.amount, decided_by="ursula", reason="strong payer",
        effective_date=when.date(), notice_days=0, previous_amount=None,
        model_version="1", policy_version="test", decided_at=when,
    )  # fmt: skip
    proposal = store.open_proposals().iloc[0]
    store.record_decision(
        int(proposal["id"]), outcome="modified", decided_action="decrease",
        decided_amount=max(float(proposal["limit_amount"]) / 2, 1.0), decided_by="ursula",
        reason="weaker accounts", effective_date=when.date(), notice_days=0, decided_at=when,
    )  # fmt: skip


def test_a_past_date_rescored_after_later_days_gives_the_same_outputs(replayed):
    book, store, published = replayed
    day = DAYS[1]
    later = context_for(book, day).decisions
    assert later.requests()["status"].iloc[0] == "granted"  # answered after the day
    assert later.unapplied_decisions().empty  # the fourth day wrote them into the book
    daily_rescore_flow(context_for(book, day))
    for name, before in published[day].items():
        after = store.read(day.isoformat(), name)
        pd.testing.assert_frame_equal(before, after, obj=f"{name} of {day}")


def test_a_request_withdrawn_later_was_waiting_on_the_days_before(decision_store):
    """Closed without a decision (no business date of its own): its audit entry dates it."""
    from flows.underwriting import open_requests

    received = dt.datetime(2026, 11, 20, 9, tzinfo=dt.UTC)
    kept = decision_store.add_request("P1", "B1", 50_000.0, "api", "policyholder", received)
    gone = decision_store.add_request("P1", "B2", 70_000.0, "api", "policyholder", received)
    decision_store.set_request_status(gone.id, "withdrawn", reason="no longer needed")
    today = dt.datetime.now(dt.UTC).date()
    assert set(open_requests(decision_store, dt.date(2026, 11, 21))["id"]) == {kept.id, gone.id}
    assert set(open_requests(decision_store, today + dt.timedelta(days=1))["id"]) == {kept.id}
    assert set(open_requests(decision_store)["id"]) == {kept.id}
    assert open_requests(decision_store, dt.date(2026, 11, 20)).empty  # not yet received
