"""Tables of the decision store: users, proposals, decisions, limit requests, the audit log.

The models are the one definition of the schema; the Alembic migrations in `migrations/`
create exactly this (a test compares them on SQLite and PostgreSQL). Conventions:

- **Money** (`Money`): NUMERIC(18, 2) in the database, so PostgreSQL keeps exact cents and
  sums are exact; Python sees floats, like every amount in the pipeline's DataFrames, and
  values are rounded to the cent before they are written so SQLite (which has no decimal
  type) stores the same numbers as PostgreSQL.
- **Timestamps** (`UtcDateTime`): timezone-aware UTC in and out. PostgreSQL stores
  `timestamptz`; SQLite stores the UTC wall time as text. A naive datetime is refused: a
  decision time that may be local time is no audit trail.
- **Vocabularies** (roles, statuses, outcomes, channels, limit actions) are CHECK
  constraints, so a row with a misspelt status cannot exist whichever program wrote it.
- **Ids** only grow and are never reused, on SQLite too (AUTOINCREMENT).
- Constraint and index names follow one naming convention, so migrations address them by
  the same name on both backends.
"""

from __future__ import annotations

import datetime as dt
import math
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

#: Limit actions a proposal or decision may carry. The same tuple as
#: `models.limits.policy.ACTIONS` (the storage layer may not import the domain; a test
#: checks they agree).
LIMIT_ACTIONS = ("increase", "decrease", "maintain", "cancel", "refer")
ROLES = ("underwriter", "analyst", "viewer", "system")
PROPOSAL_STATUSES = ("open", "decided", "superseded")
OUTCOMES = ("accepted", "modified", "rejected", "automatic")
CHANNELS = ("api", "cli", "file")
REQUEST_STATUSES = ("received", "granted", "partially_granted", "declined", "queued", "withdrawn")
#: A request still waiting for a decision: only these count as duplicates of a new one.
OPEN_REQUEST_STATUSES = ("received", "queued")

ID_LENGTH = 64
NAME_LENGTH = 128
CODE_LENGTH = 32

#: SQLite would reuse the id of a deleted row (a proposal replaced by a rerun): an
#: underwriter's screen still showing the old id would then decide another limit. With
#: AUTOINCREMENT, ids only grow, as PostgreSQL's sequences do.
NEVER_REUSE_IDS = {"sqlite_autoincrement": True}

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def in_list(column: str, values: tuple[str, ...]) -> str:
    """SQL text of `column IN ('a', 'b')`: the CHECK of a vocabulary."""
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


CENT = Decimal("0.01")


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def to_cents(value: Any) -> float | None:
    """An amount rounded to the cent, halves away from zero (as PostgreSQL rounds NUMERIC),
    as the float callers see. Fast for the bulk paths: only a value that lies on a half
    cent goes through Decimal."""
    if value is None:
        return None
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{value!r} is not an amount")
    cents = round(number, 2)
    if abs(abs(number - cents) - 0.005) > 1e-9 * max(1.0, abs(number)):
        return cents
    return float(Decimal(repr(number)).quantize(CENT, rounding=ROUND_HALF_UP))


class Money(TypeDecorator[float]):
    """EUR amount: NUMERIC(18, 2) stored, float in Python, rounded to the cent on the way in."""

    impl = Numeric(18, 2, asdecimal=False)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> float | None:
        return to_cents(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> float | None:
        return None if value is None else float(value)


class UtcDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC timestamp on both backends; a naive datetime is refused."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if not isinstance(value, dt.datetime) or value.tzinfo is None:
            raise ValueError(f"timestamps must be timezone-aware datetimes, got {value!r}")
        value = value.astimezone(dt.UTC)
        # SQLite keeps text without an offset: store the UTC wall time.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class User(Base):
    """Who may decide: underwriters (up to their authority amount), analysts, viewers, and
    the `system` account under which automatic decisions are recorded."""

    __tablename__ = "users"
    __table_args__ = (CheckConstraint(in_list("role", ROLES), name="role"), NEVER_REUSE_IDS)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH), unique=True)
    role: Mapped[str] = mapped_column(String(CODE_LENGTH))
    #: The largest limit (EUR) this user may decide alone; NULL = no authority of their own.
    authority_amount: Mapped[float | None] = mapped_column(Money)
    password_hash: Mapped[str | None] = mapped_column(Text)
    api_token_hash: Mapped[str | None] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utc_now)


class Proposal(Base):
    """What the system proposes today for one (policyholder, buyer) limit. The review queue
    is the open ones; a rerun of the day replaces its open ones, a later day supersedes them."""

    __tablename__ = "proposals"
    __table_args__ = (
        UniqueConstraint("as_of_date", "policyholder_id", "buyer_id"),
        CheckConstraint(in_list("status", PROPOSAL_STATUSES), name="status"),
        CheckConstraint(in_list("action", LIMIT_ACTIONS), name="action"),
        CheckConstraint(in_list("proposed_action", LIMIT_ACTIONS), name="proposed_action"),
        CheckConstraint("priority >= 1", name="priority"),
        Index(None, "status", "priority"),
        Index(None, "policyholder_id", "buyer_id", "status"),
        NEVER_REUSE_IDS,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    as_of_date: Mapped[dt.date] = mapped_column(Date)
    policyholder_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    buyer_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    action: Mapped[str] = mapped_column(String(CODE_LENGTH))
    #: The policy's own proposal before hysteresis may turn it into `maintain`.
    proposed_action: Mapped[str] = mapped_column(String(CODE_LENGTH))
    #: The limit in force today.
    limit_amount: Mapped[float] = mapped_column(Money)
    recommended_amount: Mapped[float] = mapped_column(Money)
    requested_amount: Mapped[float | None] = mapped_column(Money)
    exposure: Mapped[float | None] = mapped_column(Money)
    grade: Mapped[int | None] = mapped_column(Integer)
    previous_grade: Mapped[int | None] = mapped_column(Integer)
    pd: Mapped[float | None] = mapped_column(Double)
    reason_codes: Mapped[str] = mapped_column(Text)
    explanation: Mapped[str] = mapped_column(Text)
    expected_loss_before: Mapped[float] = mapped_column(Money)
    expected_loss_after: Mapped[float] = mapped_column(Money)
    #: Review order, 1 = first.
    priority: Mapped[int] = mapped_column(Integer)
    human_required: Mapped[bool] = mapped_column(Boolean)
    #: The policy rule that lets the system decide this alone (NULL = a person decides).
    automatic_rule: Mapped[str | None] = mapped_column(Text)
    deadline: Mapped[dt.date | None] = mapped_column(Date)
    #: Not in yesterday's queue.
    new_today: Mapped[bool] = mapped_column(Boolean)
    model_version: Mapped[str] = mapped_column(String(NAME_LENGTH))
    policy_version: Mapped[str] = mapped_column(String(NAME_LENGTH))
    status: Mapped[str] = mapped_column(String(CODE_LENGTH), default="open")
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utc_now)


class Decision(Base):
    """One decision on a limit: on a proposal (at most one each) or on a policyholder's
    request decided at once. `applied_at` is set once the new limit is in the limit book."""

    __tablename__ = "decisions"
    __table_args__ = (
        CheckConstraint(in_list("outcome", OUTCOMES), name="outcome"),
        CheckConstraint(in_list("decided_action", LIMIT_ACTIONS), name="decided_action"),
        CheckConstraint("decided_amount >= 0", name="decided_amount"),
        CheckConstraint("notice_days >= 0", name="notice_days"),
        Index(None, "policyholder_id", "buyer_id"),
        Index(None, "decided_at"),
        Index(None, "applied_at"),
        NEVER_REUSE_IDS,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    proposal_id: Mapped[int | None] = mapped_column(ForeignKey("proposals.id"), unique=True)
    request_id: Mapped[int | None] = mapped_column(ForeignKey("limit_requests.id"), unique=True)
    policyholder_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    buyer_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    recommended_action: Mapped[str | None] = mapped_column(String(CODE_LENGTH))
    recommended_amount: Mapped[float | None] = mapped_column(Money)
    decided_action: Mapped[str] = mapped_column(String(CODE_LENGTH))
    decided_amount: Mapped[float] = mapped_column(Money)
    #: The limit before this decision.
    previous_amount: Mapped[float | None] = mapped_column(Money)
    outcome: Mapped[str] = mapped_column(String(CODE_LENGTH))
    #: The user's name (`system` for automatic decisions).
    decided_by: Mapped[str] = mapped_column(String(NAME_LENGTH))
    decided_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    reason: Mapped[str] = mapped_column(Text)
    effective_date: Mapped[dt.date] = mapped_column(Date)
    notice_days: Mapped[int] = mapped_column(Integer)
    model_version: Mapped[str] = mapped_column(String(NAME_LENGTH))
    policy_version: Mapped[str] = mapped_column(String(NAME_LENGTH))
    #: The policy rule that decided automatically.
    rule: Mapped[str | None] = mapped_column(Text)
    applied_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)


class LimitRequest(Base):
    """A policyholder's request for a limit on a buyer, as received, and what became of it.

    At most one open request (`received` or `queued`) per pair and amount: a partial unique
    index makes a duplicate impossible even when two arrive at the same moment."""

    __tablename__ = "limit_requests"
    __table_args__ = (
        CheckConstraint(in_list("channel", CHANNELS), name="channel"),
        CheckConstraint(in_list("status", REQUEST_STATUSES), name="status"),
        CheckConstraint("amount > 0", name="amount"),
        Index(None, "policyholder_id", "buyer_id"),
        Index(
            "uq_limit_requests_open_pair_amount",
            "policyholder_id",
            "buyer_id",
            "amount",
            unique=True,
            sqlite_where=text(in_list("status", OPEN_REQUEST_STATUSES)),
            postgresql_where=text(in_list("status", OPEN_REQUEST_STATUSES)),
        ),
        NEVER_REUSE_IDS,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    policyholder_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    buyer_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    amount: Mapped[float] = mapped_column(Money)
    received_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utc_now)
    channel: Mapped[str] = mapped_column(String(CODE_LENGTH))
    requested_by: Mapped[str] = mapped_column(String(NAME_LENGTH))
    status: Mapped[str] = mapped_column(String(CODE_LENGTH), default="received")
    # Requests and decisions point at each other: this side is added after both tables exist.
    decision_id: Mapped[int | None] = mapped_column(ForeignKey("decisions.id", use_alter=True))
    reason: Mapped[str | None] = mapped_column(Text)


class Assignment(Base):
    """Which underwriter looks after a (policyholder, buyer) limit: kept per pair, not per
    proposal, so the pair's items come back to the same person day after day."""

    __tablename__ = "assignments"
    __table_args__ = (UniqueConstraint("policyholder_id", "buyer_id"), NEVER_REUSE_IDS)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    policyholder_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    buyer_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    assigned_to: Mapped[str] = mapped_column(String(NAME_LENGTH), index=True)
    assigned_by: Mapped[str] = mapped_column(String(NAME_LENGTH))
    assigned_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utc_now)


class AuditEntry(Base):
    """Append-only: database triggers (installed by the migration) refuse UPDATE and DELETE
    (and TRUNCATE on PostgreSQL), whatever program connects."""

    __tablename__ = "audit_log"
    __table_args__ = (Index(None, "entity", "entity_id"), Index(None, "at"), NEVER_REUSE_IDS)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utc_now)
    actor: Mapped[str] = mapped_column(String(NAME_LENGTH))
    #: What happened: `decision.recorded`, `proposal.published`, `request.received`, ...
    action: Mapped[str] = mapped_column(String(NAME_LENGTH))
    entity: Mapped[str] = mapped_column(String(CODE_LENGTH))
    entity_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    #: JSON text.
    details: Mapped[str] = mapped_column(Text)
