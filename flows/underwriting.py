"""The decision loop's operations: publish the day's proposals, decide them (automatically or
by an underwriter), answer policyholders' limit requests, and write decisions into the book.

One place the daily run, the command line and the web app call, so a decision is taken
the same way whoever takes it. The rules are in `models/limits/` (the engine and
`decisions.py`); the records in the decision store (`data/decisions/`); the book in the
lake. This module only wires them:

- `decide_today`: the daily run publishes its proposals; those the policy lets the system
  decide are recorded as `automatic` and written into the book at once; the rest wait in
  the queue;
- `decide`: an underwriter's answer to one queued proposal, within their authority;
- `RequestDesk`: a policyholder's request answered at once when the policy allows (grant,
  partial grant, decline with the reason), else queued for an underwriter;
- `apply_decisions`: every recorded decision not yet in the book becomes a new version of
  its pair's limit in the lake (effective at once, or after the notice period), and is
  marked applied; re-running it adds nothing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from data.contracts import CONTRACTS, empty_table
from data.decisions import (
    AlreadyAppliedError,
    DecisionStore,
    ProposalNotOpenError,
    UnknownProposalError,
)
from data.ingest import ingest_directory
from flows.context import RunContext
from models.limits.book import PAIR_KEY, limits_as_of
from models.limits.decisions import (
    DecisionRefused,
    automatic_decisions,
    human_decision,
    last_decisions,
    limit_versions,
    proposals_to_publish,
)
from models.limits.engine import recommend_limits
from models.limits.inputs import assemble_pairs

#: Reason codes whose reduction takes effect at once (a cancelling event: no notice).
IMMEDIATE_REASONS = ("INSOLVENCY", "LIQUIDATION", "CANCEL_EVENT", "CLAIM_FILED")
#: Request statuses that are still waiting for an answer.
OPEN_REQUEST_STATUSES = ("received", "queued")
BOOK_TABLES = ("limits", "policies", "buyers", "financials", "invoices", "events")


def decision_clock(ctx: RunContext) -> dt.datetime:
    """When a decision taken in this run is dated: now for today's run, midday of the
    as-of date for a run of another day (a backfill), so the book stays point in time."""
    now = dt.datetime.now(dt.UTC)
    if ctx.as_of == ctx.settings.today():
        return now
    return dt.datetime.combine(ctx.as_of, dt.time(12), tzinfo=dt.UTC)


def _book_table(ctx: RunContext) -> pd.DataFrame:
    lake = ctx.lake
    return lake.read("limits") if lake.has_table("limits") else empty_table(CONTRACTS["limits"])


def apply_decisions(ctx: RunContext, store: DecisionStore) -> int:
    """Write every decision not yet in the book into the lake's limits (as of `ctx.as_of`),
    then mark them applied. Idempotent: a crash between the two writes the same versions
    again next time, which the lake recognises (same content) and skips."""
    pending = store.unapplied_decisions()
    pending = pending.loc[
        pd.to_datetime(pending["decided_at"], utc=True).dt.date <= ctx.as_of
    ]  # a decision dated after this run's day waits for its day
    if pending.empty:
        return 0
    book = _book_table(ctx)
    book = book.loc[book["buyer_id"].isin(pending["buyer_id"])]  # only the decided buyers
    versions = limit_versions(pending, limits_as_of(book, ctx.timestamp))
    if len(versions):
        first, last = int(pending["id"].min()), int(pending["id"].max())
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / f"decisions-{ctx.day}-{first}-{last}"
            folder.mkdir()
            versions.to_parquet(folder / "limits.parquet", index=False)
            (report,) = ingest_directory(folder, ctx.lake, ctx.as_of)
        if report.status == "failed" or report.quarantined:
            raise RuntimeError(
                f"decisions {first}..{last} could not be written to the limit book: "
                f"{report.message or report.top_reasons} (see `solvency quarantine`)"
            )
    return store.mark_applied(pending["id"].tolist())


def _day_of(stamps: pd.Series) -> pd.Series:
    return pd.to_datetime(stamps, utc=True).dt.date


def recent_decisions(store: DecisionStore, ctx: RunContext) -> pd.DataFrame:
    """Per pair, the latest decision (an underwriter's or the system's) taken before the
    run's day within the reconsider window, and the grade then (the engine keeps such
    pairs quiet unless something material changed)."""
    since = ctx.as_of - dt.timedelta(days=ctx.policy.queue.reconsider_after_days)
    decided = store.decisions(since=since)
    if len(decided):
        decided = decided.loc[_day_of(decided["decided_at"]) < ctx.as_of]
    if decided.empty:
        return last_decisions(decided.assign(grade=pd.Series(dtype="float64")))
    grades = store.proposal_grades(decided["proposal_id"].dropna().astype("int64").tolist())
    return last_decisions(decided.join(grades, on="proposal_id"))


def open_requests(store: DecisionStore, before: dt.date | None = None) -> pd.DataFrame:
    """Requests waiting for an answer (policyholder_id, buyer_id, amount, received_at).

    With `before` (a daily run's day), the requests waiting when that day began: received
    before it and not yet closed then — a request answered by a decision taken on that day
    or later, or moved out of waiting without a decision (withdrawn) on that day or later
    (by its audit entry), was still waiting — so a rerun of a past day sees what it saw.
    """
    found = store.requests()
    if found.empty:
        return found
    waiting = found["status"].isin(OPEN_REQUEST_STATUSES)
    if before is not None:
        waiting = (waiting | _closed_on_or_after(store, found, before)) & (
            _day_of(found["received_at"]) < before
        )
    return found.loc[waiting]


def _closed_on_or_after(store: DecisionStore, requests: pd.DataFrame, day: dt.date) -> pd.Series:
    """Requests no longer waiting whose answer or closing came on `day` or later: by the
    answering decision's date, else by the audit log's entry of the status change."""
    closed = ~requests["status"].isin(OPEN_REQUEST_STATUSES)
    if not closed.any():
        return closed
    answered = requests["decision_id"].notna()
    later = store.decisions(since=day)
    by_decision = answered & requests["decision_id"].isin(later["id"] if len(later) else [])
    changes = store.audit(entity="request", action="request.status_changed", since=day)
    if len(changes):
        details = changes["details"].map(json.loads)
        left_waiting = details.map(lambda d: d.get("from") in OPEN_REQUEST_STATUSES)
        ids = changes.loc[left_waiting.astype(bool), "entity_id"]
    else:
        ids = pd.Series(dtype="str")
    by_audit = ~answered & requests["id"].astype("str").isin(ids)
    return closed & (by_decision | by_audit)


def book_before_todays_decisions(
    ctx: RunContext, store: DecisionStore, limits: pd.DataFrame
) -> pd.DataFrame:
    """The lake's limit versions without those written by this system's own decisions of the
    run's day: a daily run proposes against the book as it stood when the day began, so a
    rerun of the day gives the same proposals whatever was decided since."""
    decided = store.decisions(since=ctx.as_of, until=ctx.as_of)
    if decided.empty:
        return limits
    ours = decided.loc[decided["decided_action"] != "maintain", PAIR_KEY].drop_duplicates()
    mine = limits[PAIR_KEY].merge(ours.assign(_ours=True), on=PAIR_KEY, how="left")["_ours"]
    today = (limits["decision_date"] == ctx.timestamp).to_numpy()
    return limits.loc[~(mine.fillna(False).to_numpy(dtype=bool) & today)]


def decide_today(
    ctx: RunContext, store: DecisionStore, recommendations: pd.DataFrame
) -> dict[str, Any]:
    """Publish the day's proposals and take the automatic decisions; the counts for the run's
    summary: proposals, automatic, queue (open items a human must decide, all days)."""
    published = store.publish_proposals(ctx.as_of, proposals_to_publish(recommendations))
    fresh = published.loc[published["status"] == "open"]
    automatic = automatic_decisions(fresh, recommendations)
    if len(automatic):
        store.record_automatic(
            ctx.as_of,
            automatic.assign(
                decided_at=decision_clock(ctx), reason="within the policy's automatic authority"
            ),
        )
        apply_decisions(ctx, store)  # in the book at once; this day's reruns look past them
    queue = store.open_proposals(human_required=True)
    return {
        "proposals": len(published),
        "automatic": len(automatic),
        "queue": len(queue),
        "queue_new_today": int(queue["new_today"].sum()) if len(queue) else 0,
    }


def notice_for(proposal: Any, ctx: RunContext) -> int:
    """The notice a reduction of this proposal takes: none on a cancelling event."""
    codes = set(str(proposal.reason_codes).split("|"))
    immediate = ctx.policy.notice.immediate_on_events and bool(codes & set(IMMEDIATE_REASONS))
    return 0 if immediate else ctx.policy.notice.days


def decide(
    ctx: RunContext,
    store: DecisionStore,
    proposal_id: int,
    *,
    outcome: str,
    user: str,
    reason: str,
    amount: float | None = None,
):
    """An underwriter's decision on one queued proposal; the new limit goes into the book
    at once when the lake is free (else the next daily run writes it). Raises
    `DecisionRefused` or the store's errors (unknown id, already decided), writing nothing."""
    from data.lake import LakeBusyError

    underwriter = store.user(user)
    if underwriter is None or not underwriter.active:
        raise DecisionRefused(f"no active user named {user!r}: add one with `solvency users add`")
    if underwriter.role != "underwriter":
        raise DecisionRefused(f"{user} is a {underwriter.role}: only underwriters decide limits")
    proposal = store.proposal(proposal_id)
    if proposal is None:
        raise UnknownProposalError(f"no proposal with id {proposal_id}: see `solvency queue`")
    taken = human_decision(
        {
            "limit_amount": proposal.limit_amount,
            "recommended_amount": proposal.recommended_amount,
        },
        outcome,
        amount,
        underwriter.authority_amount,
        ctx.as_of,
        notice_for(proposal, ctx),
        reason,
    )
    record = store.record_decision(
        proposal_id,
        outcome=outcome,
        decided_action=taken.decided_action,
        decided_amount=taken.decided_amount,
        decided_by=underwriter.name,
        reason=reason.strip(),
        effective_date=taken.effective_date,
        notice_days=taken.notice_days,
        decided_at=decision_clock(ctx),
    )
    # A load or a daily run holding the lake applies the decision itself; another caller
    # applying the pending decisions at the same moment has applied this one too.
    with contextlib.suppress(LakeBusyError, AlreadyAppliedError):
        apply_decisions(ctx, store)
    return record


@dataclass(frozen=True)
class RequestAnswer:
    """What a policyholder hears back about a limit request."""

    request_id: int
    status: str  # granted | partially_granted | declined | queued
    requested: float
    granted: float | None
    previous: float
    explanation: str
    decision_id: int | None
    proposal_id: int | None
    effective_date: dt.date | None
    seconds: float


class RequestDesk:
    """Answers limit requests against a prepared view of the book, in milliseconds.

    Built once (it reads the lake and the latest published scores); each request then runs
    the limit engine on the buyer's pairs only. Grants made through the desk count against
    the buyer's capacity for the next request at once; they reach the lake's book when
    `apply_decisions` runs (the CLI does it after each request, the daily run every day).
    """

    def __init__(self, ctx: RunContext, store: DecisionStore) -> None:
        self.ctx, self.store = ctx, store
        tables = ctx.lake.read_tables((*BOOK_TABLES, "country_risk"))
        self.buyers = set(tables["buyers"]["buyer_id"])
        self.policyholders = set(tables["policies"]["policyholder_id"])
        dates = [d for d in ctx.store.dates_with("scores.parquet") if d <= ctx.day]
        if not dates:
            raise RuntimeError("no published scores yet: run `solvency rescore` first")
        scores = ctx.store.read(dates[-1], "scores", ["buyer_id", "pd", "grade", "model_version"])
        previous = (
            ctx.store.read(dates[-2], "scores", ["buyer_id", "grade"]) if len(dates) > 1 else None
        )
        self.model_version = str(scores["model_version"].iat[0]) if len(scores) else ""
        features = _request_features(tables, ctx.timestamp)
        # the recommendations of the policy's no-increase window, the day's own run included:
        # a limit cut in that window gets no increase on request either
        _, _, history = ctx.store.previous_outputs(
            ctx.as_of + dt.timedelta(days=1), ctx.policy.hysteresis.no_increase_after_decrease_days
        )
        pairs = assemble_pairs(
            ctx.timestamp, tables, scores, features, previous, history,
            grace_days=ctx.policy.capacity.payment_grace_days,
            decisions=recent_decisions(store, ctx), requests=open_requests(store),
        )  # fmt: skip
        self.pairs = pairs.set_index("buyer_id", drop=False).sort_index()
        self.policies = tables["policies"].set_index("policyholder_id")[
            ["scheme", "indemnity_pct", "discretionary_limit"]
        ]
        # Buyer-level inputs for a first request on a pair without a limit.
        self.buyer_rows = _buyer_inputs(
            ctx, tables, scores, previous, features, recent_decisions(store, ctx)
        )

    def _pairs_of(self, buyer_id: str) -> pd.DataFrame:
        if buyer_id in self.pairs.index:
            return self.pairs.loc[[buyer_id]].reset_index(drop=True)
        return self.pairs.iloc[0:0].reset_index(drop=True)

    def request(
        self, policyholder_id: str, buyer_id: str, amount: float, requested_by: str,
        channel: str = "api",
    ) -> RequestAnswer:  # fmt: skip
        """Record the request and answer it (see the class docstring). Unknown ids and bad
        amounts raise `DecisionRefused` before anything is written."""
        started = time.perf_counter()
        if buyer_id not in self.buyers:
            raise DecisionRefused(f"unknown buyer_id {buyer_id!r}")
        if policyholder_id not in self.policyholders:
            raise DecisionRefused(f"unknown policyholder_id {policyholder_id!r}")
        if not np.isfinite(amount) or amount <= 0:
            raise DecisionRefused(f"the requested limit must be a positive amount, got {amount}")
        received = decision_clock(self.ctx)
        record = self.store.add_request(
            policyholder_id, buyer_id, float(amount), channel, requested_by, received_at=received
        )
        rows = self._with_request(policyholder_id, buyer_id, float(amount))
        recs = recommend_limits(rows, self.ctx.policy, self.model_version)
        rec = recs.loc[
            (recs["policyholder_id"] == policyholder_id) & (recs["buyer_id"] == buyer_id)
        ].iloc[0]
        previous = float(rec["limit_amount"])
        if rec["action"] == "refer":
            explanation = rec["explanation"]
            try:
                published = self.store.add_proposal(
                    self.ctx.as_of, proposals_to_publish(recs.loc[[rec.name]])
                )
                proposal_id: int | None = int(published["id"].iat[0])
            except ProposalNotOpenError:  # the pair was decided today: one proposal a day
                proposal_id = None
                explanation = (
                    f"{explanation} (the limit was decided today already: the request joins "
                    "the queue with the next daily run)"
                )
            self.store.set_request_status(record.id, "queued", reason=explanation)
            return RequestAnswer(
                record.id, "queued", amount, None, previous, explanation, None,
                proposal_id, None, time.perf_counter() - started,
            )  # fmt: skip
        granted = float(rec["recommended_amount"]) if rec["action"] == "increase" else previous
        action = "increase" if granted > previous else "maintain"
        effective = self.ctx.as_of
        explanation = rec["explanation"]
        covered = action == "maintain" and previous >= amount
        if covered:  # the limit in force already covers what is asked
            explanation = (
                f"Request for EUR {amount:,.0f} granted: the limit in force, EUR "
                f"{previous:,.0f}, already covers it"
            )
        elif action == "maintain":  # say it in the policyholder's terms: the request's answer
            why = explanation.split(": ", 1)[-1]
            explanation = f"Request for EUR {amount:,.0f} declined, the limit stays EUR {previous:,.0f}: {why}"
        decision = self.store.record_request_decision(
            record.id,
            outcome="automatic",
            decided_action=action,
            decided_amount=granted,
            decided_by="system",
            reason=explanation,
            effective_date=effective,
            notice_days=0,
            previous_amount=previous,
            model_version=self.model_version,
            policy_version=self.ctx.policy.version,
            recommended_action=rec["proposed_action"],
            recommended_amount=float(rec["recommended_amount"]),
            rule=rec["automatic_rule"]
            if action == "increase"
            else "request_covered"
            if covered
            else "request_declined",
            decided_at=received,
        )
        if granted > previous:
            self._grant(policyholder_id, buyer_id, granted)
        status = (
            "granted" if granted >= amount else "partially_granted" if granted > previous
            else "declined"
        )  # fmt: skip
        return RequestAnswer(
            record.id, status, amount, granted, previous, explanation, decision.id,
            None, effective, time.perf_counter() - started,
        )  # fmt: skip

    def _with_request(self, policyholder_id: str, buyer_id: str, amount: float) -> pd.DataFrame:
        rows = self._pairs_of(buyer_id)
        here = (rows["policyholder_id"] == policyholder_id).to_numpy()
        if not here.any():
            new = self.buyer_rows.loc[[buyer_id]].reset_index(drop=True)
            new["policyholder_id"] = policyholder_id
            policy = self.policies.loc[policyholder_id]
            for column in ("scheme", "indemnity_pct", "discretionary_limit"):
                new[column] = policy[column]
            rows = pd.concat([rows, new[rows.columns]], ignore_index=True)
            here = (rows["policyholder_id"] == policyholder_id).to_numpy()
        rows.loc[here, "requested_amount"] = amount
        rows.loc[here, "request_date"] = self.ctx.timestamp
        return rows

    def _grant(self, policyholder_id: str, buyer_id: str, amount: float) -> None:
        """A grant uses capacity at once: the desk's view of the book follows it."""
        if buyer_id not in self.pairs.index:
            return
        mask = (self.pairs["buyer_id"] == buyer_id) & (
            self.pairs["policyholder_id"] == policyholder_id
        )
        self.pairs.loc[mask, "limit_amount"] = amount
        self.pairs.loc[mask, "requested_amount"] = np.nan


def _request_features(tables: dict[str, pd.DataFrame], as_of: pd.Timestamp) -> pd.DataFrame:
    """The two features the limit engine reads, per buyer: political-risk class and the
    age of the oldest overdue invoice (computed directly: no full snapshot needed)."""
    buyers = tables["buyers"][["buyer_id", "country"]]
    risk = tables["country_risk"].set_index("country")["political_risk_class"]
    invoices = tables["invoices"]
    open_ = invoices.loc[
        (invoices["issue_date"] <= as_of)
        & ~(invoices["paid_date"] <= as_of)
        & (invoices["due_date"] < as_of)
    ]
    overdue = (as_of - open_.groupby("buyer_id")["due_date"].min()).dt.days
    return pd.DataFrame(
        {
            "buyer_id": buyers["buyer_id"].to_numpy(),
            "political_risk_class": buyers["country"].map(risk).to_numpy(dtype="float64"),
            "oldest_overdue_days": buyers["buyer_id"].map(overdue).fillna(0).to_numpy(),
        }
    )


def _buyer_inputs(
    ctx: RunContext, tables, scores, previous, features, decisions: pd.DataFrame
) -> pd.DataFrame:
    """One engine row per buyer (no policyholder yet): everything of a pair that depends on
    the buyer only, for a request on a pair that has no limit."""
    no_limits = pd.DataFrame(
        {
            "policyholder_id": "", "buyer_id": tables["buyers"]["buyer_id"].to_numpy(),
            "limit_amount": 0.0, "requested_amount": np.nan, "exposure": 0.0,
            "decision_date": ctx.timestamp, "effective_date": pd.NaT,
        }
    )  # fmt: skip
    rows = assemble_pairs(
        ctx.timestamp, {**tables, "limits": no_limits}, scores, features, previous, None,
        grace_days=ctx.policy.capacity.payment_grace_days, decisions=decisions,
    )  # fmt: skip
    return rows.set_index("buyer_id", drop=False)
