"""The decision store: what the system proposes on each credit limit, what was decided on it,
by whom, when and why, the policyholders' limit requests, and the audit log of all of it.

One database, reached by a SQLAlchemy URL: an embedded SQLite file by default, PostgreSQL
(`postgresql+psycopg://…`) in production. Every method is one transaction that writes its
audit rows together with the change, so the log never misses a change and never records one
that did not happen. Methods return frozen records or DataFrames, never live ORM objects.

Deciding is race-safe: a proposal moves from `open` to `decided` with a conditional UPDATE
(`WHERE status = 'open'`), so of two underwriters deciding the same item at once exactly one
succeeds; the other gets :class:`AlreadyDecidedError` and nothing of theirs is written.

This layer stores; it does not judge. Which proposals the system may decide alone, whose
authority covers which amount and how a decision reaches the limit book are the rules'
business, which call this API.

SQLite runs in WAL mode (readers do not block the writer), with foreign keys enforced and a
busy timeout, on every connection. Write transactions start with `BEGIN IMMEDIATE`, so two
writers queue for the lock instead of failing half-way with "database is locked".

The daily bulk paths (`publish_proposals`, `record_automatic`, `mark_applied`) handle
hundreds of thousands of rows in one transaction: rows go in column by column through one
executemany (SQLite) or COPY (PostgreSQL), and id lists travel as one array parameter on
PostgreSQL (`benchmarks/bench_decision_store.py` measures them).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import numbers
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
from sqlalchemy import (
    ARRAY,
    Boolean,
    Column,
    ColumnElement,
    Date,
    Double,
    Engine,
    Integer,
    Select,
    Table,
    any_,
    bindparam,
    create_engine,
    delete,
    event,
    exists,
    insert,
    select,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from data.decisions import migrate
from data.decisions.errors import (
    AlreadyAppliedError,
    AlreadyDecidedError,
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
from data.decisions.records import DecisionRecord, ProposalRecord, RequestRecord, UserRecord
from data.decisions.schema import (
    CHANNELS,
    LIMIT_ACTIONS,
    OPEN_REQUEST_STATUSES,
    OUTCOMES,
    REQUEST_STATUSES,
    ROLES,
    Assignment,
    AuditEntry,
    Decision,
    LimitRequest,
    Money,
    Proposal,
    User,
    UtcDateTime,
    to_cents,
    utc_now,
)

PROPOSALS: Table = Proposal.__table__  # type: ignore[assignment]
DECISIONS: Table = Decision.__table__  # type: ignore[assignment]
REQUESTS: Table = LimitRequest.__table__  # type: ignore[assignment]
AUDIT: Table = AuditEntry.__table__  # type: ignore[assignment]
USERS: Table = User.__table__  # type: ignore[assignment]
ASSIGNMENTS: Table = Assignment.__table__  # type: ignore[assignment]

#: The account automatic decisions and scheduled publications are recorded under.
SYSTEM = "system"
#: Columns of a published proposal the caller provides (the store adds id, status, created_at).
PROPOSAL_COLUMNS = tuple(
    c.name for c in PROPOSALS.columns if c.name not in ("id", "as_of_date", "status", "created_at")
)
#: Of those, the ones that may be missing from the frame (NULL); `new_today` is worked out
#: by the store when missing.
OPTIONAL_PROPOSAL_COLUMNS = tuple(
    c for c in PROPOSAL_COLUMNS if PROPOSALS.c[c].nullable or c == "new_today"
)
AUTOMATIC_COLUMNS = (
    "proposal_id",
    "decided_action",
    "decided_amount",
    "rule",
    "effective_date",
    "notice_days",
)
AUTOMATIC_OPTIONAL_COLUMNS = ("reason", "decided_by", "decided_at")
#: What the audit log keeps of each decision (besides who and when).
DECISION_AUDIT_KEYS = (
    "proposal_id",
    "request_id",
    "policyholder_id",
    "buyer_id",
    "outcome",
    "recommended_action",
    "recommended_amount",
    "decided_action",
    "decided_amount",
    "previous_amount",
    "effective_date",
    "notice_days",
    "rule",
    "reason",
    "model_version",
    "policy_version",
)
#: Statuses a request gets when it is decided at once.
ANSWERED_REQUEST_STATUSES = ("granted", "partially_granted", "declined")
#: Ids per statement in IN lists (not PostgreSQL's, which take one array): far below
#: SQLite's parameter limit.
CHUNK = 5_000
#: The largest id an `Integer` key holds: SQLite's 64-bit rowid, PostgreSQL's 32-bit integer.
MAX_SQLITE_ID, MAX_POSTGRES_ID = 2**63 - 1, 2**31 - 1
#: Rows converted and sent at a time by the bulk inserts.
BULK_ROWS = 50_000
#: How long a SQLite writer waits for another writer's lock before giving up.
SQLITE_BUSY_TIMEOUT_MS = 30_000
_WRITE = "decision_store_write"

Record = TypeVar("Record")


class DecisionStore:
    """The decision database at `url` (a SQLAlchemy URL).

    Creating the object connects to nothing; `upgrade()` migrates the schema to the current
    revision, and every other method refuses a database that is not at that revision.
    """

    def __init__(self, url: str) -> None:
        self.url = make_url(url)
        if self.url.drivername == "postgresql":  # SQLAlchemy's default would be psycopg2
            self.url = self.url.set(drivername="postgresql+psycopg")
        self._sqlite = self.url.get_backend_name() == "sqlite"
        if self._sqlite:
            _make_sqlite_folder(self.url.database)
            self._engine = create_engine(self.url)
            _configure_sqlite(self._engine)
        else:  # a server may restart: test pooled connections before use
            self._engine = create_engine(self.url, pool_pre_ping=True)
        self._checked = False

    # -- the database itself ------------------------------------------------------------

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine, for administration and tests; use the methods for data."""
        return self._engine

    def __repr__(self) -> str:
        return f"DecisionStore({self.location!r})"

    @property
    def location(self) -> str:
        """The URL without its password, as messages show it."""
        return self.url.render_as_string(hide_password=True)

    def close(self) -> None:
        """Close the pooled connections."""
        self._engine.dispose()

    def __enter__(self) -> DecisionStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def revision(self) -> str | None:
        """The schema revision the database is at (None: never migrated)."""
        with self._engine.connect() as connection:
            return migrate.current_revision(connection)

    def upgrade(self) -> None:
        """Migrate the schema to the revision this code expects (creates it if empty)."""
        with self._engine.connect() as connection:
            connection.execution_options(**{_WRITE: True})
            with connection.begin():
                migrate.upgrade(connection)
        self._checked = False
        self._require_migrated()

    # -- users ----------------------------------------------------------------------------

    def add_user(
        self,
        name: str,
        role: str,
        authority_amount: float | None = None,
        password_hash: str | None = None,
        *,
        actor: str = SYSTEM,
    ) -> UserRecord:
        """Add a user; `authority_amount` is the largest limit (EUR) they may decide alone."""
        name = _text(name, "user name")
        _one_of(role, ROLES, "role")
        authority = None if authority_amount is None else _amount(authority_amount, "authority")
        with self._transaction() as session:
            if session.scalar(select(USERS.c.id).where(USERS.c.name == name)) is not None:
                raise DuplicateUserError(f"a user named {name!r} exists already")
            user = User(
                name=name,
                role=role,
                authority_amount=authority,
                password_hash=password_hash,
                active=True,
                created_at=utc_now(),
            )
            session.add(user)
            try:
                session.flush()
            except IntegrityError as exc:  # added by someone else at the same moment
                raise DuplicateUserError(f"a user named {name!r} exists already") from exc
            _audit(
                session,
                actor,
                "user.added",
                "user",
                user.id,
                {"name": name, "role": role, "authority_amount": authority},
            )
            return _record(UserRecord, user)

    def user(self, name: str) -> UserRecord | None:
        with self._transaction(write=False) as session:
            user = session.scalar(select(User).where(User.name == name))
            return None if user is None else _record(UserRecord, user)

    def users(self) -> list[UserRecord]:
        with self._transaction(write=False) as session:
            return [
                _record(UserRecord, u) for u in session.scalars(select(User).order_by(User.name))
            ]

    def set_api_token_hash(self, name: str, token_hash: str | None, *, actor: str = SYSTEM) -> None:
        """Store the hash of a user's API token (None revokes it); the hash is not logged."""
        with self._transaction() as session:
            changed = session.execute(
                update(USERS).where(USERS.c.name == name).values(api_token_hash=token_hash)
            ).rowcount
            if not changed:
                raise UnknownUserError(f"no user named {name!r}")
            user_id = session.scalar(select(USERS.c.id).where(USERS.c.name == name))
            action = "user.api_token_revoked" if token_hash is None else "user.api_token_set"
            _audit(session, actor, action, "user", user_id, {"name": name})

    def set_password_hash(self, name: str, password_hash: str, *, actor: str = SYSTEM) -> None:
        """Store the hash of a user's new password (never the password; the hash is not
        logged either)."""
        with self._transaction() as session:
            user_id = session.scalar(select(USERS.c.id).where(USERS.c.name == name))
            if user_id is None:
                raise UnknownUserError(f"no user named {name!r}")
            session.execute(
                update(USERS).where(USERS.c.id == user_id).values(password_hash=password_hash)
            )
            _audit(session, actor, "user.password_set", "user", user_id, {"name": name})

    def user_by_token_hash(self, token_hash: str) -> UserRecord | None:
        """The active user holding the API token with this hash (None: no such token)."""
        with self._transaction(write=False) as session:
            user = session.scalar(
                select(User).where(User.api_token_hash == token_hash, User.active.is_(True))
            )
            return None if user is None else _record(UserRecord, user)

    def log_event(
        self, actor: str, action: str, entity: str, entity_id: Any, details: Mapping[str, Any]
    ) -> None:
        """An entry in the audit log for something that changes no table (a sign-in, a
        refused sign-in)."""
        with self._transaction() as session:
            _audit(session, _text(actor, "actor"), action, entity, entity_id, details)

    # -- assignments ----------------------------------------------------------------------

    def assign(
        self, policyholder_id: str, buyer_id: str, assigned_to: str | None, *, actor: str
    ) -> None:
        """Give a limit (policyholder, buyer) to an underwriter, or take it back (None)."""
        policyholder_id, buyer_id = (
            _text(policyholder_id, "policyholder_id"),
            _text(buyer_id, "buyer_id"),
        )
        pair = (ASSIGNMENTS.c.policyholder_id == policyholder_id) & (
            ASSIGNMENTS.c.buyer_id == buyer_id
        )
        with self._transaction() as session:
            if assigned_to is not None:
                holder = session.scalar(select(USERS.c.role).where(USERS.c.name == assigned_to))
                if holder != "underwriter":
                    raise UnknownUserError(f"no underwriter named {assigned_to!r}")
            session.execute(delete(ASSIGNMENTS).where(pair))
            if assigned_to is not None:
                session.execute(
                    insert(ASSIGNMENTS).values(
                        policyholder_id=policyholder_id, buyer_id=buyer_id,
                        assigned_to=assigned_to, assigned_by=actor, assigned_at=utc_now(),
                    )
                )  # fmt: skip
            _audit(
                session, actor, "assignment.set" if assigned_to else "assignment.removed",
                "limit", f"{policyholder_id}/{buyer_id}", {"assigned_to": assigned_to},
            )  # fmt: skip

    def assignments(self, **filters: Any) -> pd.DataFrame:
        """Who looks after which limit. Filters: policyholder_id, buyer_id, assigned_to."""
        query = _equal_filters(
            select(ASSIGNMENTS), ASSIGNMENTS, filters,
            ("policyholder_id", "buyer_id", "assigned_to"), timed=False,
        )  # fmt: skip
        return self._frame(query.order_by(ASSIGNMENTS.c.id), ASSIGNMENTS)

    # -- proposals ------------------------------------------------------------------------

    def publish_proposals(
        self, as_of: dt.date, proposals: pd.DataFrame, *, actor: str = SYSTEM
    ) -> pd.DataFrame:
        """Publish the proposals of `as_of` (one row per policyholder and buyer, the columns
        of `PROPOSAL_COLUMNS`); returns the frame with each row's `id` and `status`.

        A rerun of the same day replaces that day's open proposals and keeps the decided ones
        (their new row is dropped: the pair was decided today already). Open proposals of
        earlier days become `superseded`, those of the same pairs and those the day no
        longer proposes alike: the queue holds one item per limit, as of the latest run. Publishing a day older than one already published stores its rows as
        `superseded` at once. Without a `new_today` column, a proposal is new today when no
        earlier proposal of its pair was still open (in the queue) when the day was first
        published.
        """
        as_of = _date(as_of, "as_of")
        columns = _proposal_columns(as_of, proposals)
        keys = list(zip(columns["policyholder_id"], columns["buyer_id"], strict=True))
        compute_new_today = "new_today" not in proposals.columns
        now = utc_now()
        pair = (PROPOSALS.c.policyholder_id, PROPOSALS.c.buyer_id)
        with self._transaction() as session:
            new_before: dict[tuple[str, str], bool] = {}
            earlier_open: set[tuple[str, str]] = set()
            if compute_new_today:
                # A rerun keeps what the day's first run saw: by now that run has
                # superseded the earlier open proposals it replaced.
                new_before = {
                    (ph, b): new
                    for ph, b, new in session.execute(
                        select(*pair, PROPOSALS.c.new_today).where(
                            PROPOSALS.c.as_of_date == as_of, PROPOSALS.c.status == "open"
                        )
                    )
                }
                earlier_open = {
                    (ph, b)
                    for ph, b in session.execute(
                        select(*pair)
                        .where(PROPOSALS.c.status == "open", PROPOSALS.c.as_of_date < as_of)
                        .distinct()
                    )
                }
            replaced = session.execute(
                delete(PROPOSALS).where(
                    PROPOSALS.c.as_of_date == as_of, PROPOSALS.c.status == "open"
                )
            ).rowcount
            kept = {
                (ph, b)
                for ph, b in session.execute(select(*pair).where(PROPOSALS.c.as_of_date == as_of))
            }
            later = {
                (ph, b)
                for ph, b in session.execute(
                    select(*pair).where(PROPOSALS.c.as_of_date > as_of).distinct()
                )
            }
            chosen = [k for k, key in enumerate(keys) if key not in kept]
            if len(chosen) < len(keys):
                columns = {name: [values[k] for k in chosen] for name, values in columns.items()}
            chosen_keys = [keys[k] for k in chosen]
            status = ["superseded" if key in later else "open" for key in chosen_keys]
            if compute_new_today:
                columns["new_today"] = [
                    new_before.get(key, key not in earlier_open) for key in chosen_keys
                ]
            _bulk_insert(
                session,
                PROPOSALS,
                {**columns, "as_of_date": as_of, "status": status, "created_at": now},
                len(chosen),
            )
            today = PROPOSALS.alias("today")
            superseded = session.execute(
                update(PROPOSALS)
                .where(
                    PROPOSALS.c.status == "open",
                    PROPOSALS.c.as_of_date < as_of,
                    exists().where(
                        today.c.as_of_date == as_of,
                        today.c.policyholder_id == PROPOSALS.c.policyholder_id,
                        today.c.buyer_id == PROPOSALS.c.buyer_id,
                    ),
                )
                .values(status="superseded")
            ).rowcount
            # The rest of the earlier open items: today's run no longer proposes anything
            # on their limit (the grade recovered, the exposure fell): not worth deciding.
            withdrawn = session.execute(
                update(PROPOSALS)
                .where(PROPOSALS.c.status == "open", PROPOSALS.c.as_of_date < as_of)
                .values(status="superseded")
            ).rowcount
            ids = {
                (ph, b): (pid, status)
                for pid, ph, b, status in session.execute(
                    select(PROPOSALS.c.id, *pair, PROPOSALS.c.status).where(
                        PROPOSALS.c.as_of_date == as_of
                    )
                )
            }
            _audit(
                session,
                actor,
                "proposal.published",
                "proposals",
                as_of.isoformat(),
                {
                    "as_of": as_of,
                    "published": len(chosen),
                    "replaced_open": replaced,
                    "kept_decided": len(keys) - len(chosen),
                    "superseded_earlier": superseded,
                    "no_longer_proposed": withdrawn,
                    "superseded_on_arrival": status.count("superseded"),
                },
            )
        result = proposals.copy()
        found = [ids[key] for key in keys]
        result["id"] = pd.array([f[0] for f in found], dtype="int64")
        result["status"] = [f[1] for f in found]
        return result

    def add_proposal(
        self, as_of: dt.date, proposals: pd.DataFrame, *, actor: str = SYSTEM
    ) -> pd.DataFrame:
        """Add proposals of `as_of` to the queue without touching the day's others (a limit
        request answered between daily runs). An open proposal of the same pair, that day
        or earlier, is replaced (that day) or superseded (earlier); a pair already decided
        that day is refused with `ProposalNotOpenError`. Returns the frame with `id`."""
        as_of = _date(as_of, "as_of")
        columns = _proposal_columns(as_of, proposals)
        keys = list(zip(columns["policyholder_id"], columns["buyer_id"], strict=True))
        with self._transaction() as session:
            ids = []
            for k, (policyholder, buyer) in enumerate(keys):
                same = (
                    PROPOSALS.c.policyholder_id == policyholder,
                    PROPOSALS.c.buyer_id == buyer,
                )
                decided = session.execute(
                    select(PROPOSALS.c.id).where(
                        *same, PROPOSALS.c.as_of_date == as_of, PROPOSALS.c.status != "open"
                    )
                ).first()
                if decided is not None:
                    raise ProposalNotOpenError(
                        f"the limit of {policyholder} on {buyer} was decided on {as_of} already "
                        f"(proposal {decided.id})"
                    )
                session.execute(
                    delete(PROPOSALS).where(
                        *same, PROPOSALS.c.as_of_date == as_of, PROPOSALS.c.status == "open"
                    )
                )
                session.execute(
                    update(PROPOSALS)
                    .where(*same, PROPOSALS.c.as_of_date < as_of, PROPOSALS.c.status == "open")
                    .values(status="superseded")
                )
                row = {name: values[k] for name, values in columns.items()}
                row.setdefault("new_today", True)
                if row.get("new_today") is None:
                    row["new_today"] = True
                new_id = session.execute(
                    insert(PROPOSALS)
                    .values(**row, as_of_date=as_of, status="open", created_at=utc_now())
                    .returning(PROPOSALS.c.id)
                ).scalar_one()
                ids.append(new_id)
            _audit(
                session, actor, "proposal.published", "proposals", as_of.isoformat(),
                {"as_of": as_of, "published": len(ids), "added": True},
            )  # fmt: skip
        result = proposals.copy()
        result["id"] = pd.array(ids, dtype="int64")
        result["status"] = "open"
        return result

    def proposal_grades(self, ids: Iterable[int]) -> pd.Series:
        """The buyer's grade on each of these proposals (index: proposal id), for the engine
        to tell whether the grade moved since an underwriter decided."""
        wanted = list(dict.fromkeys(int(i) for i in ids))
        grades: dict[int, Any] = {}
        if wanted:
            with self._transaction(write=False) as session:
                for among in _id_batches(session, PROPOSALS.c.id, wanted):
                    for pid, grade in session.execute(
                        select(PROPOSALS.c.id, PROPOSALS.c.grade).where(among)
                    ):
                        grades[pid] = grade
        return pd.Series(grades, dtype="float64", name="grade").rename_axis("proposal_id")

    def open_proposals(self, as_of: dt.date | None = None, **filters: Any) -> pd.DataFrame:
        """The review queue (of `as_of`, or all days), highest priority first. Filters:
        policyholder_id, buyer_id, action, human_required, new_today."""
        query = select(PROPOSALS).where(PROPOSALS.c.status == "open")
        if as_of is not None:
            query = query.where(PROPOSALS.c.as_of_date == _date(as_of, "as_of"))
        query = _equal_filters(
            query,
            PROPOSALS,
            filters,
            ("policyholder_id", "buyer_id", "action", "human_required", "new_today"),
            timed=False,
        )
        return self._frame(query.order_by(PROPOSALS.c.priority, PROPOSALS.c.id), PROPOSALS)

    def proposal(self, proposal_id: int) -> ProposalRecord | None:
        proposal_id = _id(proposal_id, "proposal id")
        if not 0 < proposal_id <= (MAX_SQLITE_ID if self._sqlite else MAX_POSTGRES_ID):
            return None  # no such id can exist (the database would refuse to compare it)
        with self._transaction(write=False) as session:
            found = session.get(Proposal, proposal_id)
            return None if found is None else _record(ProposalRecord, found)

    # -- decisions --------------------------------------------------------------------------

    def record_decision(
        self,
        proposal_id: int,
        *,
        outcome: str,
        decided_action: str,
        decided_amount: float,
        decided_by: str,
        reason: str,
        effective_date: dt.date,
        notice_days: int,
        rule: str | None = None,
        decided_at: dt.datetime | None = None,
    ) -> DecisionRecord:
        """Record the decision on one open proposal and take it out of the queue.

        Raises :class:`AlreadyDecidedError` if someone decided it first (naming who),
        :class:`ProposalNotOpenError` if a later proposal superseded it,
        :class:`UnknownProposalError` for an unknown id; in every case nothing is written.
        """
        proposal_id = _id(proposal_id, "proposal id")
        values = _decision_values(
            outcome=outcome,
            decided_action=decided_action,
            decided_amount=decided_amount,
            decided_by=decided_by,
            reason=reason,
            effective_date=effective_date,
            notice_days=notice_days,
            rule=rule,
            decided_at=decided_at,
        )
        with self._transaction() as session:
            taken = session.execute(
                update(PROPOSALS)
                .where(PROPOSALS.c.id == proposal_id, PROPOSALS.c.status == "open")
                .values(status="decided")
                .returning(
                    PROPOSALS.c.policyholder_id,
                    PROPOSALS.c.buyer_id,
                    PROPOSALS.c.action,
                    PROPOSALS.c.recommended_amount,
                    PROPOSALS.c.limit_amount,
                    PROPOSALS.c.model_version,
                    PROPOSALS.c.policy_version,
                )
            ).one_or_none()
            if taken is None:
                _refuse_closed_proposals(session, [proposal_id])
            values.update(
                proposal_id=proposal_id,
                request_id=None,
                policyholder_id=taken.policyholder_id,
                buyer_id=taken.buyer_id,
                recommended_action=taken.action,
                recommended_amount=taken.recommended_amount,
                previous_amount=taken.limit_amount,
                model_version=taken.model_version,
                policy_version=taken.policy_version,
                applied_at=None,
            )
            return self._insert_decision(session, values)

    def record_automatic(self, as_of: dt.date, decisions: pd.DataFrame) -> pd.DataFrame:
        """Record, in one transaction, the decisions the system takes alone on open proposals
        of `as_of`: columns proposal_id, decided_action, decided_amount, rule, effective_date,
        notice_days (optional: reason, decided_by, decided_at). Returns the frame with each
        row's `decision_id`. If any proposal is unknown, of another day or no longer open,
        nothing is recorded.
        """
        as_of = _date(as_of, "as_of")
        columns = _automatic_columns(decisions)
        proposal_ids: list[int] = columns["proposal_id"]
        n = len(proposal_ids)
        if n == 0:
            return decisions.assign(decision_id=pd.array([], dtype="int64"))
        with self._transaction() as session:
            # Take the proposals out of the queue and read them in one pass; if any could
            # not be taken, say why and roll the whole batch back.
            taken: dict[int, Any] = {}
            for among in _id_batches(session, PROPOSALS.c.id, proposal_ids):
                taken.update(
                    (r.id, r)
                    for r in session.execute(
                        update(PROPOSALS)
                        .where(
                            among,
                            PROPOSALS.c.status == "open",
                            PROPOSALS.c.as_of_date == as_of,
                        )
                        .values(status="decided")
                        .returning(
                            PROPOSALS.c.id,
                            PROPOSALS.c.policyholder_id,
                            PROPOSALS.c.buyer_id,
                            PROPOSALS.c.action,
                            PROPOSALS.c.recommended_amount,
                            PROPOSALS.c.limit_amount,
                            PROPOSALS.c.model_version,
                            PROPOSALS.c.policy_version,
                        )
                    )
                )
            if len(taken) != n:
                _refuse_untaken_proposals(
                    session, as_of, [i for i in proposal_ids if i not in taken]
                )
            # The proposals' fields as columns, in the frame's order.
            of_proposal = dict(
                zip(
                    taken[proposal_ids[0]]._fields,
                    map(list, zip(*(taken[i] for i in proposal_ids), strict=True)),
                    strict=True,
                )
            )

            now = utc_now()
            rules: list[str] = columns["rule"]
            decided = {
                **columns,
                "decided_by": [by or SYSTEM for by in columns.get("decided_by", [None] * n)],
                "decided_at": [at or now for at in columns.get("decided_at", [None] * n)],
                "reason": [
                    reason or f"decided automatically under rule {rule}"
                    for reason, rule in zip(columns.get("reason", [None] * n), rules, strict=True)
                ],
                "outcome": ["automatic"] * n,
                "request_id": [None] * n,
                "policyholder_id": of_proposal["policyholder_id"],
                "buyer_id": of_proposal["buyer_id"],
                "recommended_action": of_proposal["action"],
                "recommended_amount": of_proposal["recommended_amount"],
                "previous_amount": of_proposal["limit_amount"],
                "model_version": of_proposal["model_version"],
                "policy_version": of_proposal["policy_version"],
            }
            _bulk_insert(session, DECISIONS, decided, n)
            by_proposal: dict[int, int] = {}
            for among in _id_batches(session, DECISIONS.c.proposal_id, proposal_ids):
                by_proposal.update(
                    (r.proposal_id, r.id)
                    for r in session.execute(
                        select(DECISIONS.c.proposal_id, DECISIONS.c.id).where(among)
                    )
                )
            decision_ids = [by_proposal[i] for i in proposal_ids]
            _bulk_insert(
                session,
                AUDIT,
                {
                    "at": now,
                    "actor": decided["decided_by"],
                    "action": "decision.recorded",
                    "entity": "decision",
                    "entity_id": [str(i) for i in decision_ids],
                    "details": [
                        _details({key: decided[key][k] for key in DECISION_AUDIT_KEYS})
                        for k in range(n)
                    ],
                },
                n,
            )
        result = decisions.copy()
        result["decision_id"] = pd.array(decision_ids, dtype="int64")
        return result

    def record_request_decision(
        self,
        request_id: int,
        *,
        outcome: str,
        decided_action: str,
        decided_amount: float,
        decided_by: str,
        reason: str,
        effective_date: dt.date,
        notice_days: int,
        previous_amount: float | None,
        model_version: str,
        policy_version: str,
        recommended_action: str | None = None,
        recommended_amount: float | None = None,
        rule: str | None = None,
        decided_at: dt.datetime | None = None,
        request_status: str | None = None,
    ) -> DecisionRecord:
        """Record the decision on a policyholder's request decided at once (no proposal) and
        answer the request. Its status is `request_status`, or by default `granted` (decided
        amount at least the requested one), `partially_granted` (above the previous limit) or
        `declined`."""
        request_id = _id(request_id, "request id")
        values = _decision_values(
            outcome=outcome,
            decided_action=decided_action,
            decided_amount=decided_amount,
            decided_by=decided_by,
            reason=reason,
            effective_date=effective_date,
            notice_days=notice_days,
            rule=rule,
            decided_at=decided_at,
        )
        if recommended_action is not None:
            _one_of(recommended_action, LIMIT_ACTIONS, "recommended action")
        if request_status is not None:
            _one_of(request_status, ANSWERED_REQUEST_STATUSES, "request status")
        previous = None if previous_amount is None else _amount(previous_amount, "previous limit")
        recommended = (
            None if recommended_amount is None else _amount(recommended_amount, "recommended")
        )
        with self._transaction() as session:
            request = _open_request(session, request_id)
            values.update(
                proposal_id=None,
                request_id=request_id,
                policyholder_id=request.policyholder_id,
                buyer_id=request.buyer_id,
                recommended_action=recommended_action,
                recommended_amount=recommended,
                previous_amount=previous,
                model_version=_text(model_version, "model version"),
                policy_version=_text(policy_version, "policy version"),
                applied_at=None,
            )
            record = self._insert_decision(session, values)
            if request_status is None:
                decided = values["decided_amount"]
                request_status = (
                    "granted"
                    if decided >= request.amount
                    else "partially_granted"
                    if decided > (previous or 0.0)
                    else "declined"
                )
            session.execute(
                update(REQUESTS)
                .where(REQUESTS.c.id == request_id)
                .values(status=request_status, decision_id=record.id)
            )
            _audit(
                session,
                values["decided_by"],
                "request.status_changed",
                "request",
                request_id,
                {"from": request.status, "to": request_status, "decision_id": record.id},
            )
            return record

    def decisions(self, **filters: Any) -> pd.DataFrame:
        """Decisions, oldest first. Filters: policyholder_id, buyer_id, outcome, decided_by,
        since / until (on decided_at; a date `until` includes that day)."""
        query = _time_filters(select(DECISIONS), DECISIONS.c.decided_at, filters)
        query = _equal_filters(
            query, DECISIONS, filters, ("policyholder_id", "buyer_id", "outcome", "decided_by")
        )
        return self._frame(query.order_by(DECISIONS.c.decided_at, DECISIONS.c.id), DECISIONS)

    def decision(self, decision_id: int) -> DecisionRecord | None:
        with self._transaction(write=False) as session:
            found = session.get(Decision, _id(decision_id, "decision id"))
            return None if found is None else _record(DecisionRecord, found)

    def unapplied_decisions(self) -> pd.DataFrame:
        """Decisions whose new limit is not yet in the limit book, oldest first."""
        query = select(DECISIONS).where(DECISIONS.c.applied_at.is_(None))
        return self._frame(query.order_by(DECISIONS.c.decided_at, DECISIONS.c.id), DECISIONS)

    def mark_applied(
        self, ids: Iterable[int], at: dt.datetime | None = None, *, actor: str = SYSTEM
    ) -> int:
        """Record that these decisions' new limits were written to the limit book at `at`.
        All or nothing: an unknown or already applied decision refuses the whole batch."""
        decision_ids = list(dict.fromkeys(_id(i, "decision id") for i in ids))
        at = utc_now() if at is None else _timestamp(at, "applied at")
        if not decision_ids:
            return 0
        with self._transaction() as session:
            applied: dict[int, dt.datetime | None] = {}
            for among in _id_batches(session, DECISIONS.c.id, decision_ids):
                query = (
                    select(DECISIONS.c.id, DECISIONS.c.applied_at).where(among).with_for_update()
                )
                applied.update((r.id, r.applied_at) for r in session.execute(query))
            unknown = [i for i in decision_ids if i not in applied]
            if unknown:
                raise UnknownDecisionError(f"no decision with id {_some(unknown)}")
            done = [i for i in decision_ids if applied[i] is not None]
            if done:
                raise AlreadyAppliedError(
                    f"decision {done[0]} was applied to the limit book already at "
                    f"{applied[done[0]]:%Y-%m-%d %H:%M:%S} UTC"
                    + (f" (and {len(done) - 1} more of this batch)" if len(done) > 1 else "")
                )
            for among in _id_batches(session, DECISIONS.c.id, decision_ids):
                session.execute(
                    update(DECISIONS)
                    .where(among, DECISIONS.c.applied_at.is_(None))
                    .values(applied_at=at)
                )
            _bulk_insert(
                session,
                AUDIT,
                {
                    "at": utc_now(),
                    "actor": actor,
                    "action": "decision.applied",
                    "entity": "decision",
                    "entity_id": [str(i) for i in decision_ids],
                    "details": _details({"applied_at": at}),
                },
                len(decision_ids),
            )
        return len(decision_ids)

    # -- limit requests -----------------------------------------------------------------

    def add_request(
        self,
        policyholder_id: str,
        buyer_id: str,
        amount: float,
        channel: str,
        requested_by: str,
        received_at: dt.datetime | None = None,
    ) -> RequestRecord:
        """Record a policyholder's request for a limit of `amount` EUR on a buyer. Refuses a
        second open request for the same pair and amount (:class:`DuplicateRequestError`).
        That the policyholder and buyer exist is the caller's check."""
        policyholder_id = _text(policyholder_id, "policyholder id")
        buyer_id = _text(buyer_id, "buyer id")
        requested = _amount(amount, "requested limit")
        if requested <= 0:
            raise DecisionStoreError(f"a requested limit must be a positive amount, got {amount!r}")
        _one_of(channel, CHANNELS, "channel")
        requested_by = _text(requested_by, "requested by")
        received = utc_now() if received_at is None else _timestamp(received_at, "received at")
        duplicate = (
            f"policyholder {policyholder_id} has already asked for EUR {requested:,.2f} on "
            f"buyer {buyer_id}, and that request is still waiting for a decision"
        )
        with self._transaction() as session:
            waiting = session.scalar(
                select(REQUESTS.c.id).where(
                    REQUESTS.c.policyholder_id == policyholder_id,
                    REQUESTS.c.buyer_id == buyer_id,
                    REQUESTS.c.amount == requested,
                    REQUESTS.c.status.in_(OPEN_REQUEST_STATUSES),
                )
            )
            if waiting is not None:
                raise DuplicateRequestError(f"{duplicate} (request {waiting})")
            request = LimitRequest(
                policyholder_id=policyholder_id,
                buyer_id=buyer_id,
                amount=requested,
                received_at=received,
                channel=channel,
                requested_by=requested_by,
                status="received",
            )
            session.add(request)
            try:
                session.flush()
            except IntegrityError as exc:  # the same request arrived at the same moment
                raise DuplicateRequestError(duplicate) from exc
            _audit(
                session,
                requested_by,
                "request.received",
                "request",
                request.id,
                {
                    "policyholder_id": policyholder_id,
                    "buyer_id": buyer_id,
                    "amount": requested,
                    "channel": channel,
                },
            )
            return _record(RequestRecord, request)

    def set_request_status(
        self,
        request_id: int,
        status: str,
        decision_id: int | None = None,
        reason: str | None = None,
        *,
        actor: str = SYSTEM,
    ) -> RequestRecord:
        """Move a waiting request on (queued for an underwriter, answered, withdrawn). A
        request already answered or withdrawn is not reopened. With `decision_id`, the
        decision is linked to the request both ways."""
        _one_of(status, REQUEST_STATUSES, "request status")
        request_id = _id(request_id, "request id")
        decision_id = None if decision_id is None else _id(decision_id, "decision id")
        with self._transaction() as session:
            request = _open_request(session, request_id)
            changes: dict[str, Any] = {"status": status}
            if reason is not None:
                changes["reason"] = reason
            if decision_id is not None:
                linked = session.execute(
                    select(DECISIONS.c.request_id).where(DECISIONS.c.id == decision_id)
                ).one_or_none()
                if linked is None:
                    raise UnknownDecisionError(f"no decision with id {decision_id}")
                if linked.request_id not in (None, request_id):
                    raise DecisionStoreError(
                        f"decision {decision_id} answers request {linked.request_id} already"
                    )
                session.execute(
                    update(DECISIONS)
                    .where(DECISIONS.c.id == decision_id)
                    .values(request_id=request_id)
                )
                changes["decision_id"] = decision_id
            session.execute(update(REQUESTS).where(REQUESTS.c.id == request_id).values(changes))
            _audit(
                session,
                actor,
                "request.status_changed",
                "request",
                request_id,
                {
                    "from": request.status,
                    "to": status,
                    "decision_id": decision_id,
                    "reason": reason,
                },
            )
            updated = session.get(LimitRequest, request_id, populate_existing=True)
            assert updated is not None
            return _record(RequestRecord, updated)

    def request(self, request_id: int) -> RequestRecord | None:
        with self._transaction(write=False) as session:
            found = session.get(LimitRequest, _id(request_id, "request id"))
            return None if found is None else _record(RequestRecord, found)

    def requests(self, **filters: Any) -> pd.DataFrame:
        """Limit requests, oldest first. Filters: policyholder_id, buyer_id, status, channel,
        since / until (on received_at)."""
        query = _time_filters(select(REQUESTS), REQUESTS.c.received_at, filters)
        query = _equal_filters(
            query, REQUESTS, filters, ("policyholder_id", "buyer_id", "status", "channel")
        )
        return self._frame(query.order_by(REQUESTS.c.received_at, REQUESTS.c.id), REQUESTS)

    # -- audit ------------------------------------------------------------------------------

    def audit(self, **filters: Any) -> pd.DataFrame:
        """The audit log, oldest first. Filters: actor, entity, entity_id, action, since /
        until (on the time of the entry). `details` is JSON text."""
        query = _time_filters(select(AUDIT), AUDIT.c.at, filters)
        if "entity_id" in filters and filters["entity_id"] is not None:
            filters = {**filters, "entity_id": str(filters["entity_id"])}
        query = _equal_filters(query, AUDIT, filters, ("actor", "entity", "entity_id", "action"))
        return self._frame(query.order_by(AUDIT.c.id), AUDIT)

    # -- plumbing ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def _transaction(self, write: bool = True) -> Iterator[Session]:
        """One transaction; on SQLite a writing one takes the write lock at once."""
        self._require_migrated()
        try:
            with self._engine.connect() as connection:
                if write:
                    connection.execution_options(**{_WRITE: True})
                with (
                    Session(bind=connection, expire_on_commit=False) as session,
                    session.begin(),
                ):
                    yield session
        except OperationalError as exc:
            if self._sqlite and "locked" in str(exc):
                raise DecisionStoreError(
                    f"the decision store at {self.location} stayed locked by another writer "
                    f"for {SQLITE_BUSY_TIMEOUT_MS // 1000} s: try again"
                ) from exc
            raise

    def _require_migrated(self) -> None:
        if self._checked:
            return
        current = self.revision()
        expected = migrate.head_revision()
        if current != expected:
            raise NotMigratedError(
                f"decision store at {self.location} is at revision {current or 'none'}, "
                f"expected {expected}: run `solvency db upgrade`"
            )
        self._checked = True

    def _frame(self, query: Select, table: Table) -> pd.DataFrame:
        with self._transaction(write=False) as session:
            rows = session.execute(query).all()
        return _typed_frame(rows, table)

    @staticmethod
    def _insert_decision(session: Session, values: dict[str, Any]) -> DecisionRecord:
        decision = Decision(**values)
        session.add(decision)
        session.flush()
        _audit_many(session, [_decision_audit(decision.id, values)])
        return _record(DecisionRecord, decision)


# -- connections --------------------------------------------------------------------------


def _make_sqlite_folder(database: str | None) -> None:
    """SQLite creates the file but not its folder. Both are created here, owner-only unless
    the `shared_files` setting says otherwise (`data.permissions`): an empty file is an
    empty SQLite database, and SQLite gives its journal and WAL files the database's mode."""
    from data.permissions import create_file, make_dirs

    if database and database != ":memory:" and not database.startswith("file:"):
        path = Path(database).expanduser()
        make_dirs(path.parent)
        with contextlib.suppress(FileExistsError):  # an existing database keeps its mode
            os.close(create_file(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL))


def _configure_sqlite(engine: Engine) -> None:
    """WAL, foreign keys and a busy timeout on every connection; SQLAlchemy emits BEGIN
    itself (pysqlite's own transaction handling would not start one before a SELECT)."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        write = connection.get_execution_options().get(_WRITE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _bulk_insert(session: Session, table: Table, columns: Mapping[str, Any], size: int) -> None:
    """Insert `size` rows given column by column (a list per column, or one value for every
    row) at the driver's speed, in the session's transaction.

    SQLAlchemy's executemany builds and converts a parameter dict per row, which is most of
    the time for 100k rows. Here the columns are converted slice by slice with their types'
    own bind processors (the same conversion SQLAlchemy applies, so memory stays bounded
    for a million rows), then SQLite gets an executemany per slice and PostgreSQL one COPY
    (several times faster than its executemany).
    """
    if size == 0:
        return
    connection = session.connection()
    dialect = connection.dialect
    names = [c.name for c in table.columns if c.name in columns]  # the table's order
    assert len(names) == len(columns), f"not columns of {table.name}: {set(columns) - set(names)}"
    processors = [table.c[name].type.bind_processor(dialect) for name in names]

    def slices() -> Iterator[list[tuple[Any, ...]]]:
        for start in range(0, size, BULK_ROWS):
            stop = min(size, start + BULK_ROWS)
            values: list[list[Any]] = []
            for name, processor in zip(names, processors, strict=True):
                given = columns[name]
                if isinstance(given, list):
                    part = given[start:stop]
                    values.append(part if processor is None else [processor(v) for v in part])
                else:
                    one = given if processor is None else processor(given)
                    values.append([one] * (stop - start))
            yield list(zip(*values, strict=True))

    try:
        if dialect.name == "postgresql":
            quote = dialect.identifier_preparer.quote
            copy_sql = f"COPY {quote(table.name)} ({', '.join(map(quote, names))}) FROM STDIN"
            dbapi_connection = connection.connection.dbapi_connection
            assert dbapi_connection is not None
            with dbapi_connection.cursor() as cursor, cursor.copy(copy_sql) as copy:
                for rows in slices():
                    for row in rows:
                        copy.write_row(row)
        elif dialect.name == "sqlite":
            compiled = insert(table).compile(dialect=dialect, column_keys=names)
            if list(compiled.positiontup or ()) != names:
                raise AssertionError(f"unexpected parameter order {compiled.positiontup}")
            for rows in slices():
                connection.exec_driver_sql(str(compiled), rows)
        else:  # any other backend: SQLAlchemy's own executemany
            for rows in slices():
                session.execute(insert(table), [dict(zip(names, r, strict=True)) for r in rows])
    except (IntegrityError, dialect.loaded_dbapi.IntegrityError) as exc:
        raise DecisionStoreError(
            f"another writer stored the same {table.name} at the same moment: run again ({exc})"
        ) from exc


# -- validation -------------------------------------------------------------------------


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise DecisionStoreError(f"{what} must be a non-empty text, got {value!r}")
    return value.strip()


def _id(value: Any, what: str) -> int:
    """An id as a Python int (ids often come out of a DataFrame as numpy integers)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise DecisionStoreError(f"{what} must be a whole number, got {value!r}")
    return int(value)


def _one_of(value: Any, allowed: Sequence[str], what: str) -> None:
    if value not in allowed:
        raise DecisionStoreError(f"{what} must be one of {', '.join(allowed)}; got {value!r}")


def _amount(value: Any, what: str) -> float:
    """A finite, non-negative EUR amount rounded to the cent."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise DecisionStoreError(f"{what} must be an amount in EUR, got {value!r}") from None
    if not math.isfinite(number) or number < 0:
        raise DecisionStoreError(f"{what} must be a non-negative amount in EUR, got {value!r}")
    return to_cents(number)  # type: ignore[return-value]


def _date(value: Any, what: str) -> dt.date:
    if isinstance(value, dt.datetime):  # pd.Timestamp included
        return value.date()
    if isinstance(value, dt.date):
        return value
    raise DecisionStoreError(f"{what} must be a date, got {value!r}")


def _timestamp(value: Any, what: str) -> dt.datetime:
    if not isinstance(value, dt.datetime) or value.tzinfo is None:
        raise DecisionStoreError(
            f"{what} must be a timezone-aware date and time (UTC), got {value!r}"
        )
    return pd.Timestamp(value).to_pydatetime().astimezone(dt.UTC)


def _decision_values(
    *,
    outcome: str,
    decided_action: str,
    decided_amount: float,
    decided_by: str,
    reason: str,
    effective_date: dt.date,
    notice_days: int,
    rule: str | None,
    decided_at: dt.datetime | None,
) -> dict[str, Any]:
    """The checked fields every decision has, whatever it decides on."""
    _one_of(outcome, OUTCOMES, "outcome")
    _one_of(decided_action, LIMIT_ACTIONS, "decided action")
    if outcome == "automatic" and not (isinstance(rule, str) and rule.strip()):
        raise DecisionStoreError("an automatic decision must name the rule that decided it")
    if (
        isinstance(notice_days, bool)
        or not isinstance(notice_days, numbers.Integral)
        or notice_days < 0
    ):
        raise DecisionStoreError(f"notice days must be a whole number >= 0, got {notice_days!r}")
    return {
        "outcome": outcome,
        "decided_action": decided_action,
        "decided_amount": _amount(decided_amount, "decided amount"),
        "decided_by": _text(decided_by, "decided by"),
        "decided_at": utc_now() if decided_at is None else _timestamp(decided_at, "decided at"),
        "reason": _text(reason, "the reason for the decision"),
        "effective_date": _date(effective_date, "effective date"),
        "notice_days": int(notice_days),
        "rule": rule,
    }


def _refuse_closed_proposals(session: Session, proposal_ids: Sequence[int]) -> None:
    """Raise the error that says why these proposals cannot be decided (first one named)."""
    first = proposal_ids[0]
    others = len(proposal_ids) - 1
    more = f" (and {others} more of this batch cannot be decided)" if others else ""
    status = session.scalar(select(PROPOSALS.c.status).where(PROPOSALS.c.id == first))
    if status is None:
        raise UnknownProposalError(
            f"no proposal with id {first}: it was never published, or a rerun of its day "
            f"replaced it{more}"
        )
    if status == "decided":
        decision = session.execute(
            select(DECISIONS.c.decided_by, DECISIONS.c.decided_at).where(
                DECISIONS.c.proposal_id == first
            )
        ).one()
        raise AlreadyDecidedError(first, decision.decided_by, decision.decided_at, more)
    raise ProposalNotOpenError(
        f"proposal {first} was superseded by a later proposal for the same limit: decide "
        f"that one{more}"
    )


def _refuse_untaken_proposals(session: Session, as_of: dt.date, untaken: list[int]) -> None:
    """Raise the error that says why these proposals of an automatic batch could not be
    decided: unknown or no longer open first, then of another day."""
    states: dict[int, tuple[str, dt.date]] = {}
    for among in _id_batches(session, PROPOSALS.c.id, untaken):
        query = select(PROPOSALS.c.id, PROPOSALS.c.status, PROPOSALS.c.as_of_date).where(among)
        states.update((r.id, (r.status, r.as_of_date)) for r in session.execute(query))
    closed = [i for i in untaken if i not in states or states[i][0] != "open"]
    if closed:
        _refuse_closed_proposals(session, closed)
    first = untaken[0]
    raise DecisionStoreError(
        f"{len(untaken)} proposals are not of {as_of}: proposal {first} is of {states[first][1]}"
    )


def _open_request(session: Session, request_id: int) -> Any:
    """The request, locked, if it still waits for an answer."""
    request = session.execute(
        select(REQUESTS).where(REQUESTS.c.id == request_id).with_for_update()
    ).one_or_none()
    if request is None:
        raise UnknownRequestError(f"no limit request with id {request_id}")
    if request.status not in OPEN_REQUEST_STATUSES:
        raise RequestClosedError(
            f"limit request {request_id} is {request.status.replace('_', ' ')} already"
        )
    return request


# -- DataFrames in and out ----------------------------------------------------------------


def _proposal_columns(as_of: dt.date, frame: pd.DataFrame) -> dict[str, list[Any]]:
    missing = [
        c for c in PROPOSAL_COLUMNS if c not in frame.columns and c not in OPTIONAL_PROPOSAL_COLUMNS
    ]
    if missing:
        raise DecisionStoreError(f"the proposals lack the columns {', '.join(missing)}")
    if "as_of_date" in frame.columns and len(frame):
        dates = pd.to_datetime(frame["as_of_date"]).dt.date.unique()
        if len(dates) != 1 or dates[0] != as_of:
            raise DecisionStoreError(
                f"the proposals are of {', '.join(map(str, sorted(dates)))}, not of {as_of}"
            )
    pairs = frame["policyholder_id"].astype(str) + " / " + frame["buyer_id"].astype(str)
    if pairs.duplicated().any():
        raise DecisionStoreError(
            "one proposal per policyholder and buyer: "
            f"{_some(pairs[pairs.duplicated()].unique())} appear more than once"
        )
    columns = [c for c in PROPOSAL_COLUMNS if c in frame.columns]
    checks: dict[str, Callable[[pd.Series], pd.Series]] = {
        "action": lambda s: s.isin(LIMIT_ACTIONS),
        "proposed_action": lambda s: s.isin(LIMIT_ACTIONS),
        "priority": lambda s: s >= 1,
        "pd": lambda s: s.isna() | s.between(0, 1),
        **{
            c: (lambda s: s.isna() | (s >= 0))
            for c in columns
            if isinstance(PROPOSALS.c[c].type, Money)
        },
    }
    return _columns(frame, PROPOSALS, columns, pairs, checks)


def _automatic_columns(frame: pd.DataFrame) -> dict[str, list[Any]]:
    missing = [c for c in AUTOMATIC_COLUMNS if c not in frame.columns]
    if missing:
        raise DecisionStoreError(f"the automatic decisions lack the columns {', '.join(missing)}")
    labels = "proposal " + frame["proposal_id"].astype(str)
    if frame["proposal_id"].duplicated().any():
        raise DecisionStoreError(
            f"one decision per proposal: {_some(labels[frame['proposal_id'].duplicated()])} "
            "appear more than once"
        )
    columns = [*AUTOMATIC_COLUMNS, *(c for c in AUTOMATIC_OPTIONAL_COLUMNS if c in frame.columns)]
    checks: dict[str, Callable[[pd.Series], pd.Series]] = {
        "decided_action": lambda s: s.isin(LIMIT_ACTIONS),
        "decided_amount": lambda s: s >= 0,
        "notice_days": lambda s: s >= 0,
        "rule": lambda s: s.astype(str).str.strip() != "",
    }
    return _columns(frame, DECISIONS, columns, labels, checks, required=("rule",))


def _columns(
    frame: pd.DataFrame,
    table: Table,
    columns: Sequence[str],
    labels: pd.Series,
    checks: Mapping[str, Callable[[pd.Series], pd.Series]],
    required: Sequence[str] = (),
) -> dict[str, list[Any]]:
    """The frame's columns as lists of plain Python values for a bulk insert; a value that
    does not fit its column is named with the row it is in (`labels`) before anything is
    written."""
    values: dict[str, list[Any]] = {}
    for name in columns:
        column = table.c[name]
        series = _typed_series(frame[name], column, labels)
        missing = series.isna()
        if (not column.nullable or name in required) and missing.any():
            raise DecisionStoreError(f"{name} is missing for {_some(labels[missing])}")
        if name in checks:
            bad = ~checks[name](series).fillna(False).astype(bool) & ~missing
            if bad.any():
                raise DecisionStoreError(
                    f"{name} has invalid values for {_some(labels[bad])}: "
                    f"{_some(series[bad].astype(str).unique())}"
                )
        out = series.tolist()  # Python ints, floats, bools, dates and strings
        if missing.any():
            out = [None if m else v for v, m in zip(out, missing.tolist(), strict=True)]
        values[name] = out
    return values


def _typed_series(series: pd.Series, column: Column, labels: pd.Series) -> pd.Series:
    """The series in the pandas type of its column: dates (objects), UTC datetimes,
    float64, Int64, bool or text; missing values stay missing."""
    kind = column.type
    present = series.notna()
    try:
        if isinstance(kind, Date):
            days = pd.Series(pd.to_datetime(series).dt.date, index=series.index)
            return days.where(present, None)
        if isinstance(kind, UtcDateTime):
            stamps = pd.to_datetime(series)
            if stamps.dt.tz is None:
                raise DecisionStoreError(f"{column.name} must be timezone-aware (UTC)")
            utc = pd.Series(stamps.dt.tz_convert("UTC").dt.to_pydatetime(), index=series.index)
            return utc.where(present, None)
        if isinstance(kind, Money | Double):
            numbers = pd.to_numeric(series).astype("float64")
            if numbers.isin([math.inf, -math.inf]).any():
                raise ValueError("infinite values")
            # Amounts in cents now, so what is stored is what the audit log says.
            return _cents(numbers) if isinstance(kind, Money) else numbers
        if isinstance(kind, Integer):
            numbers = pd.to_numeric(series)
            if (numbers.dropna() % 1 != 0).any():
                raise ValueError("not whole numbers")
            return numbers.astype("Int64")
        if isinstance(kind, Boolean):
            if series.dtype != bool and not series.dropna().isin([True, False]).all():
                raise ValueError("not true/false")
            return series.map(lambda v: None if pd.isna(v) else bool(v))
        return series.astype(str).where(present)
    except DecisionStoreError:
        raise
    except (TypeError, ValueError) as exc:
        raise DecisionStoreError(
            f"{column.name} does not hold {_kind_name(column)} values: {exc}"
        ) from None


def _cents(amounts: pd.Series) -> pd.Series:
    """`to_cents` for a whole column: numpy rounding, and `to_cents` itself for the few
    amounts that lie on a half cent (where binary rounding could go the wrong way)."""
    rounded = amounts.round(2)
    half = ((amounts - rounded).abs() - 0.005).abs() <= 1e-9 * amounts.abs().clip(lower=1.0)
    if half.any():
        rounded[half] = [to_cents(v) for v in amounts[half]]
    return rounded


def _kind_name(column: Column) -> str:
    kind = column.type
    if isinstance(kind, Date):
        return "date"
    if isinstance(kind, Money | Double):
        return "numeric"
    if isinstance(kind, Integer):
        return "whole-number"
    if isinstance(kind, Boolean):
        return "true/false"
    return "text"


def _typed_frame(rows: Sequence[Any], table: Table) -> pd.DataFrame:
    """Rows as a DataFrame with pandas types: dates as datetime64, timestamps in UTC,
    amounts as floats, nullable ids and grades as Int64."""
    frame = pd.DataFrame.from_records(
        [tuple(r) for r in rows], columns=[c.name for c in table.columns]
    )
    for column in table.columns:
        name, kind = column.name, column.type
        if isinstance(kind, Date):
            frame[name] = pd.to_datetime(frame[name]).astype("datetime64[ns]")
        elif isinstance(kind, UtcDateTime):
            frame[name] = pd.to_datetime(frame[name], utc=True)
        elif isinstance(kind, Money | Double):
            frame[name] = frame[name].astype("float64")
        elif isinstance(kind, Integer):
            frame[name] = frame[name].astype("Int64" if column.nullable else "int64")
        elif isinstance(kind, Boolean):
            frame[name] = frame[name].astype(bool)
    return frame


def _equal_filters(
    query: Select,
    table: Table,
    filters: Mapping[str, Any],
    allowed: Sequence[str],
    *,
    timed: bool = True,
) -> Select:
    """`column = value` for each filter given (None: not filtered); `timed` allows the
    `since` / `until` filters too (applied by `_time_filters`)."""
    known = [*allowed, *(("since", "until") if timed else ())]
    unknown = set(filters) - set(known)
    if unknown:
        raise DecisionStoreError(
            f"unknown filter {', '.join(sorted(unknown))}: use {', '.join(known)}"
        )
    for name in allowed:
        value = filters.get(name)
        if value is not None:
            query = query.where(table.c[name] == value)
    return query


def _time_filters(query: Select, column: ColumnElement, filters: Mapping[str, Any]) -> Select:
    """`since` (inclusive) and `until` (exclusive; a date means to the end of that day)."""
    since, until = filters.get("since"), filters.get("until")
    if since is not None:
        query = query.where(column >= _bound(since, "since", end=False))
    if until is not None:
        query = query.where(column < _bound(until, "until", end=True))
    return query


def _bound(value: Any, what: str, *, end: bool) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return _timestamp(value, what)
    day = _date(value, what)
    midnight = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    return midnight + dt.timedelta(days=1) if end else midnight


# -- audit ----------------------------------------------------------------------------------


def _audit_row(
    actor: str, action: str, entity: str, entity_id: Any, details: Mapping[str, Any]
) -> dict[str, Any]:
    return {
        "at": utc_now(),
        "actor": actor,
        "action": action,
        "entity": entity,
        "entity_id": None if entity_id is None else str(entity_id),
        "details": _details(details),
    }


def _audit(
    session: Session,
    actor: str,
    action: str,
    entity: str,
    entity_id: Any,
    details: Mapping[str, Any],
) -> None:
    _audit_many(session, [_audit_row(actor, action, entity, entity_id, details)])


def _audit_many(session: Session, rows: list[dict[str, Any]]) -> None:
    if rows:
        session.execute(insert(AUDIT), rows)


def _decision_audit(decision_id: int, values: Mapping[str, Any]) -> dict[str, Any]:
    return _audit_row(
        values["decided_by"],
        "decision.recorded",
        "decision",
        decision_id,
        {k: values[k] for k in DECISION_AUDIT_KEYS},
    )


def _details(details: Mapping[str, Any]) -> str:
    return _JSON.encode(details)


def _json_value(value: Any) -> Any:
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return str(value)


#: One encoder for every audit row: `json.dumps` with options builds a new one per call.
_JSON = json.JSONEncoder(sort_keys=True, default=_json_value)


# -- small helpers --------------------------------------------------------------------------


def _record(kind: Callable[..., Record], obj: Any) -> Record:
    return kind(**{f.name: getattr(obj, f.name) for f in fields(kind)})  # type: ignore[arg-type]


def _id_batches(
    session: Session, column: ColumnElement[int], ids: Sequence[int]
) -> Iterator[ColumnElement[bool]]:
    """`column IN ids` as the backend takes it best for up to a million ids: one array
    parameter on PostgreSQL (`= ANY(...)`), batches of bound parameters elsewhere."""
    if session.get_bind().dialect.name == "postgresql":
        yield column == any_(bindparam(None, list(ids), type_=ARRAY(Integer)))
        return
    for start in range(0, len(ids), CHUNK):
        yield column.in_(ids[start : start + CHUNK])


def _some(items: Iterable[Any], shown: int = 5) -> str:
    """A few of `items` for a message: 'a, b, c and 12 more'."""
    items = list(items)
    head = ", ".join(str(i) for i in items[:shown])
    return head + (f" and {len(items) - shown} more" if len(items) > shown else "")
