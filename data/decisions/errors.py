"""What the decision store refuses, in words an underwriter or operator can act on.

Every error is a :class:`DecisionStoreError`; when one is raised the operation wrote nothing.
"""

from __future__ import annotations

import datetime as dt


class DecisionStoreError(Exception):
    """The decision store refused an operation; nothing was written."""


class NotMigratedError(DecisionStoreError):
    """The database is not at the schema revision this code expects."""


class DuplicateUserError(DecisionStoreError):
    """A user of that name exists already."""


class UnknownUserError(DecisionStoreError):
    """No user of that name."""


class UnknownProposalError(DecisionStoreError):
    """No proposal with that id (never published, or replaced by a rerun of its day)."""


class ProposalNotOpenError(DecisionStoreError):
    """The proposal is no longer in the queue."""


class AlreadyDecidedError(ProposalNotOpenError):
    """Someone decided the proposal first."""

    def __init__(
        self, proposal_id: int, decided_by: str, decided_at: dt.datetime, more: str = ""
    ) -> None:
        self.proposal_id = proposal_id
        self.decided_by = decided_by
        self.decided_at = decided_at
        super().__init__(
            f"proposal {proposal_id} was already decided by {decided_by} at "
            f"{decided_at:%Y-%m-%d %H:%M:%S} UTC{more}"
        )


class UnknownRequestError(DecisionStoreError):
    """No limit request with that id."""


class DuplicateRequestError(DecisionStoreError):
    """The same request (pair and amount) is already waiting for a decision."""


class RequestClosedError(DecisionStoreError):
    """The request has been answered or withdrawn already."""


class UnknownDecisionError(DecisionStoreError):
    """No decision with that id."""


class AlreadyAppliedError(DecisionStoreError):
    """The decision's new limit was written to the limit book already."""
