"""The JSON API for the systems around the insurer: policyholders' limit requests, buyer
facts, the queue, decisions. Authenticated by per-user bearer tokens (`solvency users token
NAME`; only their SHA-256 is stored), never by the browser's session cookie.

Bodies are validated by pydantic: a bad one gets 422 naming the field; an unknown buyer,
policyholder or item gets 404; a decision above the caller's authority 403, on an item
already decided 409. In every refused case nothing is written (the decision loop checks
before it writes, in one transaction).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import threading
from typing import Annotated, Any, Literal

import pandas as pd
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from data.decisions import (
    AlreadyDecidedError,
    DecisionStoreError,
    ProposalNotOpenError,
    UnknownProposalError,
    UserRecord,
)
from flows.web.auth import WEB_ROLES, allowed, token_hash
from flows.web.queue import QueueFilters, filter_queue, page_of

router = APIRouter(prefix="/api", tags=["api"])
bearer = HTTPBearer(auto_error=False, description="A token from `solvency users token NAME`.")
_APPLY_LOCK = threading.Lock()
#: Amounts are kept to the cent in NUMERIC(18, 2): below 10^16 EUR.
MAX_AMOUNT = 1e16


def _workbench(request: Request):
    return request.app.state.workbench


def caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> UserRecord:
    """The token's holder (401 without a valid token)."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(401, "a bearer token is required",
                            headers={"WWW-Authenticate": "Bearer"})  # fmt: skip
    user = _workbench(request).decisions.user_by_token_hash(token_hash(credentials.credentials))
    if user is None or user.role not in WEB_ROLES:
        raise HTTPException(401, "unknown or revoked token", headers={"WWW-Authenticate": "Bearer"})
    return user


def permitted(permission: str):
    def check(user: Annotated[UserRecord, Depends(caller)]) -> UserRecord:
        if not allowed(user.role, permission):
            raise HTTPException(403, f"a {user.role} may not do this ({permission})")
        return user

    return check


def plain(value: Any) -> Any:
    """A JSON value: NaN/NaT -> null, timestamps and dates -> ISO text, numpy -> Python."""
    if value is None:
        return None
    if isinstance(value, pd.Timestamp | dt.datetime | dt.date):
        return None if pd.isna(value) else value.isoformat()
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):
        return plain(value.item())
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return value


def records(frame: pd.DataFrame, columns: list[str] | None = None) -> list[dict[str, Any]]:
    if frame is None or frame.empty:
        return []
    frame = frame[columns] if columns else frame
    return [{k: plain(v) for k, v in row.items()} for row in frame.to_dict("records")]


# -- limit requests ----------------------------------------------------------------------------


class LimitRequestIn(BaseModel):
    policyholder_id: str = Field(min_length=1, max_length=64, description="Who asks.")
    buyer_id: str = Field(min_length=1, max_length=64, description="On which buyer.")
    amount: float = Field(
        ge=0.01, lt=MAX_AMOUNT, allow_inf_nan=False, description="The limit asked for (EUR)."
    )


class LimitRequestOut(BaseModel):
    request_id: int
    status: Literal["granted", "partially_granted", "declined", "queued"]
    requested: float
    granted: float | None
    previous: float
    effective_date: dt.date | None
    decision_id: int | None
    queued_as: int | None = Field(description="The queue item's id when queued.")
    explanation: str


def _apply_in_background(bench) -> None:
    """Write granted limits into the lake's book after the answer went out (a daily run
    holding the lake does it itself)."""
    from data.decisions import AlreadyAppliedError
    from data.lake import LakeBusyError
    from flows.underwriting import apply_decisions

    if not _APPLY_LOCK.acquire(blocking=False):
        return  # one is running; the next request or the daily run picks the rest up
    try:
        with contextlib.suppress(LakeBusyError, AlreadyAppliedError):
            apply_decisions(bench.context(), bench.decisions)
    finally:
        _APPLY_LOCK.release()


@router.post("/limit-requests", response_model=LimitRequestOut)
def limit_request(
    body: LimitRequestIn,
    request: Request,
    user: Annotated[UserRecord, Depends(permitted("request"))],
) -> LimitRequestOut:
    """A policyholder's request: answered at once when the policy allows it (granted, partly
    granted or declined, with the reason), else queued for an underwriter."""
    from models.limits.decisions import DecisionRefused

    bench = _workbench(request)
    with bench.desk_lock:
        desk = bench.request_desk()
        if body.buyer_id not in desk.buyers:
            raise HTTPException(404, f"unknown buyer_id {body.buyer_id!r}")
        if body.policyholder_id not in desk.policyholders:
            raise HTTPException(404, f"unknown policyholder_id {body.policyholder_id!r}")
        changed = bench.decisions.decisions(
            policyholder_id=body.policyholder_id, buyer_id=body.buyer_id,
            since=bench.desk_built_at,
        )  # fmt: skip
        if len(changed):  # decided since the desk read the book: read it again
            bench.forget_desk()
            desk = bench.request_desk()
        try:
            answer = desk.request(body.policyholder_id, body.buyer_id, body.amount,
                                  requested_by=user.name, channel="api")  # fmt: skip
        except DecisionRefused as exc:
            raise HTTPException(422, str(exc)) from None
        except DecisionStoreError as exc:  # e.g. the same request is open already
            raise HTTPException(409, str(exc)) from None
    if answer.decision_id is not None:
        threading.Thread(target=_apply_in_background, args=(bench,), daemon=True).start()
    return LimitRequestOut(
        request_id=answer.request_id, status=answer.status, requested=answer.requested,
        granted=answer.granted, previous=answer.previous, effective_date=answer.effective_date,
        decision_id=answer.decision_id, queued_as=answer.proposal_id,
        explanation=answer.explanation,
    )  # fmt: skip


# -- buyers and the queue ----------------------------------------------------------------------


@router.get("/buyers/{buyer_id}")
def buyer(
    buyer_id: str,
    request: Request,
    user: Annotated[UserRecord, Depends(permitted("read"))],
) -> dict[str, Any]:
    """What the workbench knows about a buyer: grade and PD with the model's reasons,
    payment behaviour, latest statement, limits across policyholders, alerts, events,
    decisions."""
    bench = _workbench(request)
    view = bench.book.view()
    if not view.has_buyer(buyer_id):
        raise HTTPException(404, f"unknown buyer_id {buyer_id!r}")
    b = view.buyer(buyer_id)
    score = b["score"]
    return {
        "buyer_id": buyer_id,
        "name": b["name"],
        "country": plain(b["country"]),
        "sector": plain(b["sector"]),
        "size": b["size"],
        "as_of": view.as_of.isoformat(),
        "grade": None if score is None else plain(score["grade"]),
        "pd": None if score is None else plain(score["pd"]),
        "model_version": None if score is None else plain(score["model_version"]),
        "reasons": [{"code": c, "text": t} for c, t in b["reasons"]],
        "payment": {} if b["payment"] is None else {k: plain(v) for k, v in b["payment"].items()},
        "statement": {}
        if b["statement"] is None
        else {k: plain(v) for k, v in b["statement"].items()},
        "limits": records(b["limits"]),
        "alerts": records(b["alerts"]),
        "events": records(b["events"]),
        "history": records(b["history"]),
        "decisions": records(bench.decisions.decisions(buyer_id=buyer_id)),
    }


QUEUE_FIELDS = [
    "id", "priority", "deadline", "new_today", "policyholder_id", "buyer_id", "buyer_name",
    "country", "grade", "pd", "action", "proposed_action", "limit_amount", "recommended_amount",
    "requested_amount", "exposure", "expected_loss_before", "expected_loss_after", "el_change",
    "human_required", "automatic_rule", "reason_codes", "explanation", "assigned_to",
    "as_of_date", "model_version", "policy_version",
]  # fmt: skip


@router.get("/queue")
def queue(
    request: Request,
    user: Annotated[UserRecord, Depends(permitted("read"))],
    action: str = "",
    policyholder: str = "",
    country: str = "",
    grade: int | None = None,
    human: Literal["required", "all"] = "required",
    new: bool = False,
    mine: bool = False,
    sort: Literal["priority", "el_change", "limit", "deadline"] = "priority",
    page: Annotated[int, Query(ge=1)] = 1,
    page_size: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Open queue items, filtered and sorted as on the queue page, one page at a time."""
    bench = _workbench(request)
    filters = QueueFilters(
        action=action, policyholder=policyholder, country=country.upper(), grade=grade,
        human=human, new=new, mine=mine, sort=sort, page=page,
    )  # fmt: skip
    chosen = filter_queue(bench.open_queue(human), filters, user.name)
    rows, pages = page_of(chosen, page, page_size)
    return {
        "total": len(chosen),
        "page": min(page, pages),
        "pages": pages,
        "items": records(rows, QUEUE_FIELDS),
    }


# -- decisions ---------------------------------------------------------------------------------


class DecisionIn(BaseModel):
    proposal_id: int = Field(ge=1, description="The queue item's id.")
    outcome: Literal["accepted", "modified", "rejected"]
    amount: float | None = Field(
        None, ge=0, lt=MAX_AMOUNT, allow_inf_nan=False,
        description="The new limit (EUR), with `modified` only.",
    )  # fmt: skip
    reason: str = Field(min_length=1, max_length=2000, description="Kept with the decision.")


@router.post("/decisions")
def post_decision(
    body: DecisionIn,
    request: Request,
    user: Annotated[UserRecord, Depends(permitted("decide"))],
) -> dict[str, Any]:
    """An underwriter's decision on one queue item, within their authority."""
    from flows.underwriting import decide
    from models.limits.decisions import AboveAuthority, DecisionRefused

    bench = _workbench(request)
    try:
        record = decide(
            bench.context(), bench.decisions, body.proposal_id, outcome=body.outcome,
            user=user.name, reason=body.reason, amount=body.amount,
        )  # fmt: skip
    except AboveAuthority as exc:
        raise HTTPException(403, str(exc)) from None
    except (AlreadyDecidedError, ProposalNotOpenError) as exc:
        raise HTTPException(409, str(exc)) from None
    except UnknownProposalError as exc:
        raise HTTPException(404, str(exc)) from None
    except DecisionRefused as exc:
        raise HTTPException(422, str(exc)) from None
    except DecisionStoreError as exc:
        raise HTTPException(409, str(exc)) from None
    return {k: plain(v) for k, v in vars(record).items()}
