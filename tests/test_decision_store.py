"""The decision store on SQLite and PostgreSQL: schema and migrations, the append-only audit
log, race-safe deciding, refusals that write nothing, and the daily publication rules.

Every test taking `decision_store` or `decision_db_url` runs once per backend
(`tests/db_fixtures.py`): a SQLite file, and a fresh database on a real PostgreSQL 16.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from data.decisions import (
    AlreadyAppliedError,
    AlreadyDecidedError,
    DecisionRecord,
    DecisionStore,
    DecisionStoreError,
    DuplicateRequestError,
    DuplicateUserError,
    NotMigratedError,
    ProposalNotOpenError,
    RequestClosedError,
    UnknownDecisionError,
    UnknownProposalError,
    UnknownRequestError,
    UnknownUserError,
)
from data.decisions.migrate import head_revision
from data.decisions.schema import LIMIT_ACTIONS, Base
from models.limits.policy import ACTIONS

DAY = dt.date(2026, 11, 30)
NEXT_DAY = dt.date(2026, 12, 1)
TABLES = ("users", "proposals", "decisions", "limit_requests", "audit_log")


def proposals(
    buyers: list[str], *, policyholder: str = "P000001", action: str = "decrease", **columns: Any
) -> pd.DataFrame:
    """A day's proposals for `buyers` of one policyholder, shaped like the limit engine's."""
    n = len(buyers)
    frame = pd.DataFrame(
        {
            "policyholder_id": policyholder,
            "buyer_id": buyers,
            "action": action,
            "proposed_action": action,
            "limit_amount": 200_000.0,
            "recommended_amount": 100_000.0,
            "requested_amount": None,
            "exposure": 50_000.0,
            "grade": 6,
            "previous_grade": pd.array([4] * n, dtype="Int64"),
            "pd": 0.02,
            "reason_codes": "OVER_CAPACITY|STEP_CAPPED",
            "explanation": "aggregate cover exceeds capacity",
            "expected_loss_before": 1_800.0,
            "expected_loss_after": 900.0,
            "priority": range(1, n + 1),
            "human_required": True,
            "automatic_rule": None,
            "deadline": pd.Timestamp(NEXT_DAY + dt.timedelta(days=7)),
            "new_today": True,
            "model_version": "buyer-pd/3",
            "policy_version": "2026.11",
        }
    )
    return frame.assign(**columns)


def decide(store: DecisionStore, proposal_id: int, by: str = "anna", **changes: Any):
    values = {
        "outcome": "accepted",
        "decided_action": "decrease",
        "decided_amount": 100_000.0,
        "decided_by": by,
        "reason": "capacity halved since the last statement",
        "effective_date": NEXT_DAY + dt.timedelta(days=30),
        "notice_days": 30,
    }
    return store.record_decision(proposal_id, **{**values, **changes})


def counts(store: DecisionStore) -> dict[str, int]:
    with store.engine.connect() as connection:
        return {
            t: connection.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one() for t in TABLES
        }


def statuses(store: DecisionStore, as_of: dt.date) -> dict[str, str]:
    with store.engine.connect() as connection:
        rows = connection.execute(
            sa.text("SELECT buyer_id, status FROM proposals WHERE as_of_date = :d"),
            {"d": as_of},
        )
        return {buyer: status for buyer, status in rows}


def writes_nothing(store: DecisionStore, attempt: Callable[[], Any], error: type, match: str):
    before = counts(store)
    with pytest.raises(error, match=match):
        attempt()
    assert counts(store) == before


# -- schema and migrations ---------------------------------------------------------------


def test_the_migrated_schema_is_the_models_schema(decision_store):
    assert decision_store.revision() == head_revision()
    with decision_store.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []
    decision_store.upgrade()  # a second upgrade is a no-op
    assert decision_store.revision() == head_revision()


def test_an_unmigrated_database_is_refused_with_the_command_to_run(decision_db_url):
    store = DecisionStore(decision_db_url)
    try:
        with pytest.raises(NotMigratedError) as refused:
            store.users()
        message = str(refused.value)
        assert f"is at revision none, expected {head_revision()}" in message
        assert "run `solvency db upgrade`" in message
        with pytest.raises(NotMigratedError):
            store.add_user("anna", "underwriter")
        store.upgrade()
        assert store.add_user("anna", "underwriter").name == "anna"
    finally:
        store.close()


def test_sqlite_runs_in_wal_mode_with_foreign_keys_and_a_busy_timeout(tmp_path):
    store = DecisionStore(f"sqlite:///{tmp_path / 'new' / 'folder' / 'decisions.db'}")
    store.upgrade()
    try:
        assert (tmp_path / "new" / "folder" / "decisions.db").exists()
        with store.engine.connect() as connection:
            pragma = connection.exec_driver_sql
            assert pragma("PRAGMA journal_mode").scalar() == "wal"
            assert pragma("PRAGMA foreign_keys").scalar() == 1
            assert pragma("PRAGMA busy_timeout").scalar() >= 1_000
    finally:
        store.close()


def test_the_store_keeps_the_limit_actions_of_the_policy():
    assert LIMIT_ACTIONS == ACTIONS


# -- the audit log --------------------------------------------------------------------------


def test_the_audit_log_refuses_updates_and_deletes(decision_store):
    decision_store.add_user("anna", "underwriter", 500_000)
    before = decision_store.audit()
    assert list(before["action"]) == ["user.added"]
    statements = ["UPDATE audit_log SET actor = 'mallory'", "DELETE FROM audit_log"]
    if decision_store.engine.dialect.name == "postgresql":
        statements.append("TRUNCATE audit_log")
    for statement in statements:
        with (
            pytest.raises(sa.exc.DBAPIError, match="audit_log is append-only"),
            decision_store.engine.begin() as connection,
        ):
            connection.exec_driver_sql(statement)
    pd.testing.assert_frame_equal(decision_store.audit(), before)


def test_every_change_is_audited_in_its_own_transaction(decision_store):
    decision_store.add_user("anna", "underwriter", 500_000, password_hash="argon2$secret")
    decision_store.set_api_token_hash("anna", "sha256$token")
    published = decision_store.publish_proposals(DAY, proposals(["B1", "B2"]))
    decision = decide(decision_store, int(published["id"][0]))
    request = decision_store.add_request("P000001", "B9", 10_000, "api", "portal")
    log = decision_store.audit()
    assert list(log["action"]) == [
        "user.added",
        "user.api_token_set",
        "proposal.published",
        "decision.recorded",
        "request.received",
    ]
    assert log["at"].is_monotonic_increasing
    assert str(log["at"].dt.tz) == "UTC"
    recorded = json.loads(log["details"].iloc[3])
    assert recorded["proposal_id"] == int(published["id"][0])
    assert recorded["previous_amount"] == 200_000.0
    assert log["actor"].iloc[3] == "anna"
    assert "secret" not in "".join(log["details"]) and "token" not in "".join(log["details"])
    assert list(decision_store.audit(entity="decision")["entity_id"]) == [str(decision.id)]
    assert list(decision_store.audit(actor="portal")["entity_id"]) == [str(request.id)]
    assert decision_store.audit(since=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).empty
    assert len(decision_store.audit(until=dt.datetime.now(dt.UTC).date())) == 5


# -- deciding -------------------------------------------------------------------------------


def test_of_underwriters_deciding_one_proposal_at_once_exactly_one_succeeds(decision_store):
    published = decision_store.publish_proposals(DAY, proposals([f"B{i}" for i in range(3)]))
    contenders = 4
    for proposal_id in published["id"]:
        start = threading.Barrier(contenders)
        results: list[Any] = [None] * contenders

        def attempt(k: int, proposal_id: int = int(proposal_id), start=start, results=results):
            start.wait()
            try:
                results[k] = decide(decision_store, proposal_id, by=f"underwriter{k}")
            except Exception as exc:
                results[k] = exc

        threads = [threading.Thread(target=attempt, args=(k,)) for k in range(contenders)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        winners = [r for r in results if isinstance(r, DecisionRecord)]
        losers = [r for r in results if isinstance(r, AlreadyDecidedError)]
        assert len(winners) == 1 and len(losers) == contenders - 1, results
        for loser in losers:
            assert loser.proposal_id == proposal_id
            assert loser.decided_by == winners[0].decided_by
            assert f"proposal {proposal_id} was already decided by {winners[0].decided_by}" in (
                str(loser)
            )
    decided = decision_store.decisions()
    assert sorted(decided["proposal_id"]) == sorted(published["id"])
    assert len(decision_store.audit(entity="decision")) == len(published)
    assert decision_store.open_proposals().empty


def test_a_decision_takes_the_proposal_out_of_the_queue_with_its_versions(decision_store):
    published = decision_store.publish_proposals(DAY, proposals(["B1", "B2"]))
    first = int(published["id"][0])
    decided_at = dt.datetime(2026, 12, 1, 10, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    record = decide(
        decision_store,
        published["id"].iloc[0],  # numpy integers, as they come out of a frame
        outcome="modified",
        decided_amount=np.float64(120_000.456),
        notice_days=np.int64(30),
        decided_at=decided_at,
    )
    assert (record.proposal_id, record.notice_days) == (first, 30)
    assert record.decided_amount == 120_000.46  # cents, rounded half up
    assert record.decided_at == dt.datetime(2026, 12, 1, 8, 30, tzinfo=dt.UTC)
    assert (record.recommended_action, record.recommended_amount) == ("decrease", 100_000.0)
    assert (record.previous_amount, record.model_version) == (200_000.0, "buyer-pd/3")
    assert decision_store.proposal(first).status == "decided"
    assert list(decision_store.open_proposals()["id"]) == [int(published["id"][1])]
    stored = decision_store.decisions(decided_by="anna")
    assert stored["decided_amount"].tolist() == [120_000.46]
    assert stored["decided_at"].iloc[0] == pd.Timestamp("2026-12-01 08:30", tz="UTC")
    assert decision_store.decisions(since=dt.date(2026, 12, 2)).empty
    assert len(decision_store.decisions(until=dt.date(2026, 12, 1))) == 1


def test_deciding_an_unknown_or_superseded_proposal_writes_nothing(decision_store):
    decision_store.publish_proposals(DAY, proposals(["B1"]))
    old = int(decision_store.open_proposals()["id"][0])
    decision_store.publish_proposals(NEXT_DAY, proposals(["B1"]))
    writes_nothing(
        decision_store, lambda: decide(decision_store, 9_999), UnknownProposalError, "9999"
    )
    writes_nothing(
        decision_store, lambda: decide(decision_store, old), ProposalNotOpenError, "superseded"
    )
    assert decision_store.proposal(9_999) is None


def test_a_decision_that_breaks_a_rule_of_the_record_writes_nothing(decision_store):
    proposal_id = int(decision_store.publish_proposals(DAY, proposals(["B1"]))["id"][0])
    for changes, match in [
        ({"outcome": "approved"}, "outcome must be one of"),
        ({"decided_action": "raise"}, "decided action must be one of"),
        ({"decided_amount": -1}, "non-negative"),
        ({"reason": " "}, "reason"),
        ({"outcome": "automatic"}, "must name the rule"),
        ({"decided_at": dt.datetime(2026, 12, 1, 9)}, "timezone-aware"),
        ({"notice_days": -3}, "notice days"),
    ]:
        writes_nothing(
            decision_store,
            lambda changes=changes: decide(decision_store, proposal_id, **changes),
            DecisionStoreError,
            match,
        )
    assert decision_store.proposal(proposal_id).status == "open"


def test_automatic_decisions_are_recorded_in_bulk_or_not_at_all(decision_store):
    published = decision_store.publish_proposals(
        DAY, proposals([f"B{i}" for i in range(6)], human_required=False, automatic_rule="small")
    )
    ids = [int(i) for i in published["id"]]
    decide(decision_store, ids[5], by="anna")
    batch = pd.DataFrame(
        {
            "proposal_id": ids,
            "decided_action": "decrease",
            "decided_amount": 100_000.0,
            "rule": "small",
            "effective_date": NEXT_DAY,
            "notice_days": 0,
        }
    )
    writes_nothing(
        decision_store,
        lambda: decision_store.record_automatic(DAY, batch),
        AlreadyDecidedError,
        f"proposal {ids[5]} was already decided by anna",
    )
    writes_nothing(
        decision_store,
        lambda: decision_store.record_automatic(NEXT_DAY, batch.iloc[:5]),
        DecisionStoreError,
        "are not of 2026-12-01",
    )
    writes_nothing(
        decision_store,
        lambda: decision_store.record_automatic(DAY, batch.iloc[:5].assign(decided_action="up")),
        DecisionStoreError,
        "decided_action has invalid values for proposal",
    )
    writes_nothing(
        decision_store,
        lambda: decision_store.record_automatic(DAY, batch.iloc[:5].assign(rule=None)),
        DecisionStoreError,
        "rule is missing for proposal",
    )
    recorded = decision_store.record_automatic(DAY, batch.iloc[:5])
    assert recorded["decision_id"].notna().all() and recorded["decision_id"].is_unique
    automatic = decision_store.decisions(outcome="automatic")
    assert sorted(automatic["proposal_id"]) == ids[:5]
    assert set(automatic["decided_by"]) == {"system"}
    assert set(automatic["rule"]) == {"small"}
    assert automatic["reason"].str.contains("small").all()
    assert len(decision_store.audit(actor="system", entity="decision")) == 5
    assert decision_store.open_proposals().empty


def test_decisions_are_applied_to_the_limit_book_once(decision_store):
    published = decision_store.publish_proposals(DAY, proposals(["B1", "B2"]))
    first = decide(decision_store, int(published["id"][0]))
    second = decide(decision_store, int(published["id"][1]), by="ben")
    assert list(decision_store.unapplied_decisions()["id"]) == [first.id, second.id]
    at = dt.datetime(2026, 12, 1, 7, tzinfo=dt.UTC)
    assert decision_store.mark_applied([first.id], at) == 1
    assert list(decision_store.unapplied_decisions()["id"]) == [second.id]
    assert decision_store.decision(first.id).applied_at == at
    writes_nothing(
        decision_store,
        lambda: decision_store.mark_applied([second.id, first.id], at),
        AlreadyAppliedError,
        f"decision {first.id} was applied",
    )
    writes_nothing(
        decision_store,
        lambda: decision_store.mark_applied([second.id, 9_999], at),
        UnknownDecisionError,
        "9999",
    )
    assert decision_store.mark_applied([second.id], at) == 1
    assert decision_store.unapplied_decisions().empty


# -- limit requests ------------------------------------------------------------------------


def test_a_duplicate_or_non_positive_request_writes_nothing(decision_store):
    request = decision_store.add_request("P000001", "B1", 250_000, "api", "portal")
    assert (request.status, request.amount) == ("received", 250_000.0)
    for amount in (0, -10_000, float("nan"), "a lot"):
        writes_nothing(
            decision_store,
            lambda amount=amount: decision_store.add_request("P000001", "B2", amount, "api", "x"),
            DecisionStoreError,
            "amount",
        )
    writes_nothing(
        decision_store,
        lambda: decision_store.add_request("P000001", "B1", 250_000.0, "file", "batch"),
        DuplicateRequestError,
        "P000001 has already asked for EUR 250,000.00 on buyer B1",
    )
    writes_nothing(
        decision_store,
        lambda: decision_store.add_request("P000001", "B2", 1_000, "fax", "x"),
        DecisionStoreError,
        "channel",
    )
    # Another amount is another request; once answered, the same amount may be asked again.
    decision_store.add_request("P000001", "B1", 300_000, "api", "portal")
    decision_store.set_request_status(request.id, "declined", reason="grade 8")
    again = decision_store.add_request("P000001", "B1", 250_000, "api", "portal")
    assert again.id != request.id
    assert len(decision_store.requests(buyer_id="B1")) == 3


def test_the_same_request_arriving_twice_at_once_is_stored_once(decision_store):
    start = threading.Barrier(2)
    results: list[Any] = [None, None]

    def arrive(k: int) -> None:
        start.wait()
        try:
            results[k] = decision_store.add_request("P000001", "B1", 75_000, "api", f"c{k}")
        except Exception as exc:
            results[k] = exc

    threads = [threading.Thread(target=arrive, args=(k,)) for k in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sum(isinstance(r, DuplicateRequestError) for r in results) == 1, results
    assert len(decision_store.requests()) == 1
    assert len(decision_store.audit(entity="request")) == 1


def test_a_request_decided_at_once_is_answered(decision_store):
    request = decision_store.add_request("P000002", "B7", 80_000, "cli", "ops")
    record = decision_store.record_request_decision(
        request.id,
        outcome="modified",
        decided_action="increase",
        decided_amount=60_000,
        decided_by="anna",
        reason="capacity allows 60k",
        effective_date=NEXT_DAY,
        notice_days=0,
        previous_amount=40_000,
        model_version="buyer-pd/3",
        policy_version="2026.11",
        recommended_action="increase",
        recommended_amount=60_000,
    )
    assert (record.proposal_id, record.request_id) == (None, request.id)
    answered = decision_store.request(request.id)
    assert (answered.status, answered.decision_id) == ("partially_granted", record.id)
    writes_nothing(
        decision_store,
        lambda: decision_store.record_request_decision(
            request.id,
            outcome="accepted",
            decided_action="increase",
            decided_amount=80_000,
            decided_by="ben",
            reason="again",
            effective_date=NEXT_DAY,
            notice_days=0,
            previous_amount=40_000,
            model_version="m",
            policy_version="p",
        ),
        RequestClosedError,
        "partially granted already",
    )
    writes_nothing(
        decision_store,
        lambda: decision_store.set_request_status(9_999, "queued"),
        UnknownRequestError,
        "9999",
    )
    assert list(decision_store.audit(entity="request")["action"]) == [
        "request.received",
        "request.status_changed",
    ]


def test_a_queued_request_is_linked_to_the_decision_on_its_proposal(decision_store):
    request = decision_store.add_request("P000001", "B1", 300_000, "api", "portal")
    queued = decision_store.set_request_status(request.id, "queued", reason="above authority")
    assert (queued.status, queued.reason) == ("queued", "above authority")
    published = decision_store.publish_proposals(
        DAY, proposals(["B1"], action="increase", requested_amount=300_000.0)
    )
    decision = decide(
        decision_store, int(published["id"][0]), decided_action="increase", decided_amount=3e5
    )
    granted = decision_store.set_request_status(request.id, "granted", decision_id=decision.id)
    assert (granted.status, granted.decision_id) == ("granted", decision.id)
    assert decision_store.decision(decision.id).request_id == request.id
    assert list(decision_store.requests(status="granted")["id"]) == [request.id]


# -- publishing the day's proposals --------------------------------------------------------


def test_a_rerun_replaces_open_proposals_keeps_decided_ones_and_supersedes_earlier_days(
    decision_store,
):
    decision_store.publish_proposals(DAY, proposals(["B1", "B2", "B3"]))
    first = decision_store.publish_proposals(NEXT_DAY, proposals(["B1", "B2", "B4"]))
    # B1 and B2 proposed again, B3 no longer: the queue is the latest run's
    assert statuses(decision_store, DAY) == {
        "B1": "superseded",
        "B2": "superseded",
        "B3": "superseded",
    }
    first_published = json.loads(decision_store.audit(entity="proposals")["details"].iloc[-1])
    assert (first_published["superseded_earlier"], first_published["no_longer_proposed"]) == (2, 1)
    by_buyer = dict(zip(first["buyer_id"], first["id"], strict=True))
    decide(decision_store, int(by_buyer["B1"]))

    rerun = decision_store.publish_proposals(
        NEXT_DAY, proposals(["B1", "B2", "B3", "B5"], recommended_amount=90_000.0)
    )
    assert statuses(decision_store, NEXT_DAY) == {
        "B1": "decided",
        "B2": "open",
        "B3": "open",
        "B5": "open",
    }
    assert statuses(decision_store, DAY) == {
        "B1": "superseded",
        "B2": "superseded",
        "B3": "superseded",
    }
    assert list(rerun["status"]) == ["decided", "open", "open", "open"]
    assert int(rerun["id"][0]) == int(by_buyer["B1"])  # the decided one is kept as it was
    assert decision_store.proposal(int(by_buyer["B1"])).recommended_amount == 100_000.0
    assert decision_store.proposal(int(by_buyer["B2"])) is None  # replaced
    queue = decision_store.open_proposals()
    assert sorted(queue["buyer_id"]) == ["B2", "B3", "B5"]
    assert set(queue["as_of_date"]) == {pd.Timestamp(NEXT_DAY)}
    assert (queue["recommended_amount"] == 90_000.0).all()
    assert queue["priority"].is_monotonic_increasing
    published = decision_store.audit(entity="proposals")
    details = json.loads(published["details"].iloc[-1])
    assert details == {
        "as_of": "2026-12-01",
        "published": 3,
        "replaced_open": 2,
        "kept_decided": 1,
        "superseded_earlier": 0,
        "no_longer_proposed": 0,
        "superseded_on_arrival": 0,
    }


def test_an_older_day_published_late_arrives_superseded(decision_store):
    decision_store.publish_proposals(NEXT_DAY, proposals(["B1"]))
    late = decision_store.publish_proposals(DAY, proposals(["B1", "B2"]))
    assert list(late["status"]) == ["superseded", "open"]
    assert sorted(decision_store.open_proposals()["buyer_id"]) == ["B1", "B2"]
    assert len(decision_store.open_proposals(as_of=NEXT_DAY)) == 1


def test_new_today_is_worked_out_when_not_given_and_survives_a_rerun(decision_store):
    decision_store.publish_proposals(DAY, proposals(["B1", "B2"]).drop(columns="new_today"))
    decide(decision_store, int(decision_store.open_proposals(buyer_id="B2")["id"][0]))
    frame = proposals(["B1", "B2", "B3"]).drop(columns="new_today")
    for _ in range(2):  # the rerun sees the same queue the first run saw
        decision_store.publish_proposals(NEXT_DAY, frame)
        queue = decision_store.open_proposals(as_of=NEXT_DAY)
        assert dict(zip(queue["buyer_id"], queue["new_today"], strict=True)) == {
            "B1": False,
            "B2": True,
            "B3": True,
        }
    assert list(decision_store.open_proposals(new_today=True)["buyer_id"]) == ["B2", "B3"]


def test_the_queue_filters(decision_store):
    frame = pd.concat(
        [
            proposals(["B1", "B2"], action="decrease"),
            proposals(["B3"], policyholder="P000002", action="refer", human_required=True),
            proposals(["B4"], action="maintain", human_required=False, automatic_rule="small"),
        ],
        ignore_index=True,
    ).assign(priority=[4, 3, 2, 1])
    decision_store.publish_proposals(DAY, frame)
    queue = decision_store.open_proposals
    assert list(queue()["buyer_id"]) == ["B4", "B3", "B2", "B1"]
    assert list(queue(as_of=DAY, action="decrease")["buyer_id"]) == ["B2", "B1"]
    assert list(queue(policyholder_id="P000002")["buyer_id"]) == ["B3"]
    assert list(queue(human_required=False)["automatic_rule"]) == ["small"]
    assert queue(as_of=NEXT_DAY).empty
    with pytest.raises(DecisionStoreError, match="unknown filter grade"):
        queue(grade=6)


def test_a_proposal_frame_that_breaks_the_rules_writes_nothing(decision_store):
    good = proposals(["B1", "B2"])
    for frame, match in [
        (good.drop(columns="recommended_amount"), "lack the columns recommended_amount"),
        (proposals(["B1", "B1"]), "P000001 / B1 appear more than once"),
        (good.assign(action=["decrease", "hold"]), "action has invalid values for P000001 / B2"),
        (good.assign(priority=[0, 1]), "priority has invalid values"),
        (good.assign(limit_amount=[1.0, -1.0]), "limit_amount has invalid values"),
        (good.assign(exposure=[1.0, np.inf]), "exposure does not hold numeric values"),
        (good.assign(model_version=["m", None]), "model_version is missing for P000001 / B2"),
        (good.assign(as_of_date=pd.Timestamp(NEXT_DAY)), "not of 2026-11-30"),
    ]:
        writes_nothing(
            decision_store,
            lambda frame=frame: decision_store.publish_proposals(DAY, frame),
            DecisionStoreError,
            match,
        )


# -- users ------------------------------------------------------------------------------------


def test_users(decision_store):
    anna = decision_store.add_user("anna", "underwriter", 1_000_000, password_hash="argon2$x")
    decision_store.add_user("system", "system")
    assert (anna.role, anna.authority_amount, anna.active) == ("underwriter", 1_000_000.0, True)
    assert "argon2" not in repr(anna)
    writes_nothing(
        decision_store,
        lambda: decision_store.add_user("anna", "analyst"),
        DuplicateUserError,
        "'anna' exists already",
    )
    writes_nothing(
        decision_store,
        lambda: decision_store.add_user("bob", "boss"),
        DecisionStoreError,
        "role must be one of",
    )
    writes_nothing(
        decision_store,
        lambda: decision_store.set_api_token_hash("bob", "h"),
        UnknownUserError,
        "'bob'",
    )
    decision_store.set_api_token_hash("anna", "sha256$abc")
    assert decision_store.user("anna").api_token_hash == "sha256$abc"
    assert decision_store.user("anna").password_hash == "argon2$x"
    assert decision_store.user("bob") is None
    assert [u.name for u in decision_store.users()] == ["anna", "system"]
