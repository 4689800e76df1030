"""The decision store: proposals, underwriting decisions, limit requests, users and the
append-only audit log, in one SQL database (SQLite by default, PostgreSQL in production).

    store = DecisionStore("sqlite:///data/decisions.db")
    store.upgrade()                      # migrate the schema (Alembic) to this code's revision
    store.publish_proposals(as_of, recommendations)
    store.record_decision(proposal_id, outcome="accepted", ...)

See `store.py` for the guarantees (one transaction per call, audit rows in the same
transaction, race-safe deciding) and `schema.py` for the tables.
"""

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
from data.decisions.store import PROPOSAL_COLUMNS, SYSTEM, DecisionStore

__all__ = [
    "PROPOSAL_COLUMNS",
    "SYSTEM",
    "AlreadyAppliedError",
    "AlreadyDecidedError",
    "DecisionRecord",
    "DecisionStore",
    "DecisionStoreError",
    "DuplicateRequestError",
    "DuplicateUserError",
    "NotMigratedError",
    "ProposalNotOpenError",
    "ProposalRecord",
    "RequestClosedError",
    "RequestRecord",
    "UnknownDecisionError",
    "UnknownProposalError",
    "UnknownRequestError",
    "UnknownUserError",
    "UserRecord",
]
