"""The decision loop end to end, on SQLite and on a real PostgreSQL: the daily run proposes
and decides what the policy allows, underwriters decide the queue within their authority,
decisions change the book, and a decided pair is not proposed again without a reason."""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil

import pandas as pd
import pytest

from data.decisions import (
    AlreadyDecidedError,
    DecisionStore,
    DuplicateRequestError,
    UnknownProposalError,
)
from data.lake import Lake
from flows.daily import daily_rescore_flow
from flows.underwriting import RequestDesk, decide
from models.limits.backtest import policy_variant
from models.limits.book import PAIR_KEY, limits_as_of
from models.limits.decisions import DecisionRefused
from tests.book_fixtures import context_for

DAY = dt.date(2026, 11, 27)


def _loop(book, tmp_path, url: str, **changes):
    """A copy of the book's lake with its own decision store at `url`: contexts by day."""
    lake = tmp_path / "lake"
    shutil.copytree(book["lake"], lake)
    with DecisionStore(url) as store:  # a server database is migrated by its operators
        store.upgrade()

    def on(day: dt.date):
        return context_for(book, day, lake_dir=lake, decision_db_url=url, drop_dir=None, **changes)

    return on


def _counts(store) -> dict[str, int]:
    return {
        "decisions": len(store.decisions()),
        "audit": len(store.audit()),
        "requests": len(store.requests()),
    }


def test_the_daily_run_decides_what_the_policy_allows_and_queues_the_rest(
    book, tmp_path, decision_db_url
):
    on = _loop(book, tmp_path, decision_db_url)
    ctx = on(DAY)
    result = daily_rescore_flow(ctx)
    store = ctx.decisions
    recs = ctx.store.read(DAY, "recommendations")
    acting = recs.loc[recs["action"] != "maintain"]
    summary = result.summary
    assert summary["proposals"] == len(acting) > 0
    # no proposal that would leave the book as it is
    assert not ((acting["limit_amount"] == acting["recommended_amount"]) & (acting["proposed_action"] != "maintain") & acting["requested_amount"].isna()).any()  # fmt: skip
    automatic = store.decisions(outcome="automatic")
    assert len(automatic) == summary["automatic"] == acting["automatic_rule"].notna().sum()
    assert set(automatic["rule"]) <= {
        "cancel_on_event", "cancel_on_grade", "decrease_within_authority",
        "increase_within_authority",
    }  # fmt: skip
    queue = store.open_proposals(human_required=True)
    assert len(queue) == summary["queue"] == (acting["action"] == "refer").sum()
    assert queue["deadline"].notna().all()
    # the automatic decisions are in the book from the next day's run on
    daily_rescore_flow(on(DAY + dt.timedelta(days=1)))
    assert store.unapplied_decisions().empty
    versions = Lake(ctx.settings.lake_dir).read("limits")
    changed = automatic.loc[automatic["decided_action"] != "maintain"]
    later = limits_as_of(versions, pd.Timestamp(DAY + dt.timedelta(days=60)))
    decided = changed.merge(later, on=PAIR_KEY)
    assert len(decided) == len(changed)
    assert (decided["decided_amount"] == decided["limit_amount"]).all()
    cuts = changed.loc[changed["notice_days"] > 0]
    if len(cuts):  # a notified cut is scheduled, not yet in force, the day after
        tomorrow = limits_as_of(versions, pd.Timestamp(DAY + dt.timedelta(days=1)))
        pending = cuts.merge(tomorrow, on=PAIR_KEY)
        assert (pending["scheduled_amount"] == pending["decided_amount"]).all()


def test_an_underwriters_decision_is_checked_and_refusals_write_nothing(
    book, tmp_path, decision_db_url
):
    on = _loop(book, tmp_path, decision_db_url)
    ctx = on(DAY)
    daily_rescore_flow(ctx)
    store = ctx.decisions
    store.add_user("ada", "underwriter", authority_amount=10_000_000)
    store.add_user("junior", "underwriter", authority_amount=1_000)
    store.add_user("vic", "viewer")
    queue = store.open_proposals(human_required=True)
    assert len(queue) >= 1
    item = queue.iloc[0]
    before = _counts(store)
    refusals = {
        "above authority": dict(user="junior", outcome="rejected", reason="keep it"),
        "not an underwriter": dict(user="vic", outcome="accepted", reason="ok"),
        "no reason": dict(user="ada", outcome="accepted", reason=" "),
        "amount without modify": dict(user="ada", outcome="accepted", reason="x", amount=5.0),
        "unknown user": dict(user="nobody", outcome="accepted", reason="x"),
    }
    for name, args in refusals.items():
        if name == "above authority" and item["limit_amount"] <= 1_000:
            continue
        with pytest.raises(DecisionRefused):
            decide(ctx, store, int(item["id"]), **args)
        assert _counts(store) == before, name
    with pytest.raises(UnknownProposalError, match="no proposal"):
        decide(ctx, store, 999_999, user="ada", outcome="accepted", reason="x")
    record = decide(ctx, store, int(item["id"]), user="ada", outcome="modified",
                    amount=float(item["limit_amount"]) / 2, reason="half, pending statements")  # fmt: skip
    assert record.outcome == "modified" and record.decided_by == "ada"
    after = _counts(store)
    with pytest.raises(AlreadyDecidedError, match="ada"):
        decide(ctx, store, int(item["id"]), user="ada", outcome="rejected", reason="again")
    assert _counts(store) == after
    # the decision went into the book at once (the lake was free), with its notice
    assert store.unapplied_decisions().empty
    pair = (item["policyholder_id"], item["buyer_id"])
    versions = Lake(ctx.settings.lake_dir).read("limits")
    mine = versions.loc[
        (versions["policyholder_id"] == pair[0]) & (versions["buyer_id"] == pair[1])
        & (versions["decision_date"] == pd.Timestamp(DAY))
    ]  # fmt: skip
    assert len(mine) == 1 and mine["limit_amount"].iat[0] == float(item["limit_amount"]) / 2
    assert mine["effective_date"].iat[0] == pd.Timestamp(record.effective_date)


@pytest.mark.slow
def test_a_decided_pair_is_not_proposed_again_for_14_days_without_a_material_change(
    book, tmp_path, decision_db_url
):
    """Day one: the system decides what it may, an underwriter decides the whole queue
    (accepting, modifying, rejecting). The next 14 daily runs propose none of those pairs
    again unless its grade moved or an event arrived since."""
    on = _loop(book, tmp_path, decision_db_url)
    ctx = on(DAY)
    first = daily_rescore_flow(ctx)
    store = ctx.decisions
    store.add_user("ada", "underwriter", authority_amount=1e12)
    queue = store.open_proposals(human_required=True)
    outcomes = ("accepted", "modified", "rejected")
    for k, item in enumerate(queue.itertuples()):
        outcome = outcomes[k % 3]
        amount = float(item.limit_amount) * 0.8 if outcome == "modified" else None
        decide(ctx, store, int(item.id), user="ada", outcome=outcome, amount=amount,
               reason=f"scripted: {outcome}")  # fmt: skip
    decided = store.decisions()
    assert len(decided) == first.summary["automatic"] + len(queue) > 0
    grades = ctx.store.read(DAY, "recommendations").set_index(PAIR_KEY)["grade"]
    decided_pairs = set(map(tuple, decided[PAIR_KEY].to_numpy()))
    events = Lake(ctx.settings.lake_dir).read("events")
    for k in range(1, 15):
        day = DAY + dt.timedelta(days=k)
        daily_rescore_flow(on(day))
        recs = on(day).store.read(day, "recommendations").set_index(PAIR_KEY)
        again = recs.loc[recs["action"] != "maintain"]
        for pair in set(again.index) & decided_pairs:
            moved = again.loc[pair, "grade"] != grades.loc[pair]
            news = events.loc[
                (events["buyer_id"] == pair[1]) & (events["event_date"] > pd.Timestamp(DAY))
            ]
            assert moved or len(news), f"{pair} proposed again on {day} without a reason"


def test_limit_requests_are_answered_at_once_or_queued(book, tmp_path, decision_db_url):
    on = _loop(book, tmp_path, decision_db_url)
    ctx = on(DAY)
    daily_rescore_flow(ctx)
    store = ctx.decisions
    desk = RequestDesk(ctx, store)
    pairs = desk.pairs.reset_index(drop=True)
    pairs = pairs.loc[pairs["grade"].notna() & (pairs["limit_amount"] > 0)]
    good = pairs.sort_values(["grade", "limit_amount"]).iloc[0]
    weak = pairs.sort_values("grade").iloc[-1]
    assert weak["grade"] > good["grade"]

    before = _counts(store)
    for args, message in (
        (("P-none", good["buyer_id"], 10_000.0), "unknown policyholder"),
        ((good["policyholder_id"], "B-none", 10_000.0), "unknown buyer"),
        ((good["policyholder_id"], good["buyer_id"], -5.0), "positive amount"),
        ((good["policyholder_id"], good["buyer_id"], float("inf")), "positive amount"),
    ):
        with pytest.raises(DecisionRefused, match=message):
            desk.request(*args, requested_by="test")
    assert _counts(store) == before  # nothing written

    policy = ctx.policy
    small = float(good["limit_amount"]) + 20_000.0
    answer = desk.request(good["policyholder_id"], good["buyer_id"], small, requested_by="test")
    assert answer.seconds < 5
    if good["grade"] <= policy.authority.increase_max_grade:  # within the system's authority
        assert answer.status in ("granted", "partially_granted", "declined")
    if answer.status in ("granted", "partially_granted"):
        assert answer.granted > answer.previous and answer.decision_id is not None
        assert store.request(answer.request_id).status == answer.status
    if weak["grade"] > policy.increase.max_grade:  # too weak for any increase
        declined = desk.request(weak["policyholder_id"], weak["buyer_id"],
                                float(weak["limit_amount"]) + 50_000.0, requested_by="test")  # fmt: skip
        assert declined.status == "declined" and declined.granted == declined.previous
        assert "declined" in declined.explanation
    big = desk.request(good["policyholder_id"], good["buyer_id"], 50_000_000.0, requested_by="t")
    assert big.status in ("queued", "partially_granted", "declined")
    if big.status == "queued":  # waits for an underwriter: the same request again is refused
        assert store.proposal(big.proposal_id).human_required
        before = _counts(store)
        with pytest.raises(DuplicateRequestError):
            desk.request(good["policyholder_id"], good["buyer_id"], 50_000_000.0, requested_by="t")
        assert _counts(store) == before


def test_a_request_after_a_cut_is_declined_and_one_on_a_pair_decided_today_is_queued(
    book, tmp_path, decision_db_url
):
    on = _loop(book, tmp_path, decision_db_url)
    configured = on(DAY).policy
    # a policy with plentiful capacity and increases at any grade short of cancelling: a
    # large request is worth an increase above the system's authority, so it is referred
    policy = policy_variant(configured, "open-handed", capacity_factor=100.0,
                            increase_max_grade=configured.cancel.grade - 1)  # fmt: skip
    ctx = on(DAY)
    daily_rescore_flow(ctx)  # the configured policy cuts some limits alone
    store = ctx.decisions
    cuts = store.decisions(outcome="automatic")
    cuts = cuts.loc[cuts["decided_action"].isin(["decrease", "cancel"])]
    assert len(cuts) > 0
    desk = RequestDesk(dataclasses.replace(ctx, policy=policy), store)
    cut = cuts.iloc[0]
    answer = desk.request(cut["policyholder_id"], cut["buyer_id"], 90_000_000.0,
                          requested_by="test")  # fmt: skip
    # no increase within the policy's window after a cut, on request either
    assert answer.status == "declined" and answer.granted == answer.previous
    assert "recent decrease" in answer.explanation

    # a pair an underwriter decided today without a cut: no second proposal that day, the
    # request waits for the next daily run, which takes it up
    store.add_user("uma", "underwriter", authority_amount=100_000_000)
    queue = store.open_proposals(as_of=DAY, human_required=True)
    kept = queue.loc[~queue["proposed_action"].isin(["decrease", "cancel"])]
    if kept.empty:
        pytest.skip("the generated book has no referred item without a cut today")
    item = kept.iloc[0]
    decide(ctx, store, int(item["id"]), outcome="rejected", user="uma", reason="kept as is")
    answer = desk.request(item["policyholder_id"], item["buyer_id"], 90_000_000.0,
                          requested_by="test")  # fmt: skip
    assert answer.status == "queued" and answer.proposal_id is None
    assert "next daily run" in answer.explanation
    assert store.request(answer.request_id).status == "queued"
    tomorrow = DAY + dt.timedelta(days=1)
    daily_rescore_flow(dataclasses.replace(on(tomorrow), policy=policy))
    waiting = store.open_proposals(as_of=tomorrow, human_required=True)
    mine = waiting.loc[(waiting["policyholder_id"] == item["policyholder_id"])
                       & (waiting["buyer_id"] == item["buyer_id"])]  # fmt: skip
    assert len(mine) == 1 and mine["requested_amount"].iat[0] == 90_000_000.0
