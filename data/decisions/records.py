"""Plain frozen values the decision store returns: safe to keep after the transaction, to
pass between threads and to print, unlike live ORM objects."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field


@dataclass(frozen=True)
class UserRecord:
    id: int
    name: str
    role: str
    authority_amount: float | None
    active: bool
    created_at: dt.datetime
    password_hash: str | None = field(default=None, repr=False)
    api_token_hash: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class ProposalRecord:
    id: int
    as_of_date: dt.date
    policyholder_id: str
    buyer_id: str
    action: str
    proposed_action: str
    limit_amount: float
    recommended_amount: float
    requested_amount: float | None
    exposure: float | None
    grade: int | None
    previous_grade: int | None
    pd: float | None
    reason_codes: str
    explanation: str
    expected_loss_before: float
    expected_loss_after: float
    priority: int
    human_required: bool
    automatic_rule: str | None
    deadline: dt.date | None
    new_today: bool
    model_version: str
    policy_version: str
    status: str
    created_at: dt.datetime


@dataclass(frozen=True)
class DecisionRecord:
    id: int
    proposal_id: int | None
    request_id: int | None
    policyholder_id: str
    buyer_id: str
    recommended_action: str | None
    recommended_amount: float | None
    decided_action: str
    decided_amount: float
    previous_amount: float | None
    outcome: str
    decided_by: str
    decided_at: dt.datetime
    reason: str
    effective_date: dt.date
    notice_days: int
    model_version: str
    policy_version: str
    rule: str | None
    applied_at: dt.datetime | None


@dataclass(frozen=True)
class RequestRecord:
    id: int
    policyholder_id: str
    buyer_id: str
    amount: float
    received_at: dt.datetime
    channel: str
    requested_by: str
    status: str
    decision_id: int | None
    reason: str | None
