"""The workbench's pages: sign-in, queue, buyer, decide, audit trail, model.

Every route starts with `guard(request, permission)`: who is signed in, and may they? Forms
post a CSRF token, checked before anything else is read from them. Decisions go through
`flows.underwriting.decide`, the one way a decision is taken; its refusals come back to the
page as a message with nothing written.
"""

from __future__ import annotations

import datetime as dt
import io
from typing import Annotated, Any
from urllib.parse import urlencode

import pandas as pd
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from data.decisions import (
    AlreadyDecidedError,
    DecisionStoreError,
    ProposalNotOpenError,
    UnknownProposalError,
    UserRecord,
)
from data.lake import spreadsheet_safe
from flows.web.auth import (
    WEB_ROLES,
    allowed,
    new_csrf_token,
    same_token,
    verify_password,
)
from flows.web.book import history_points
from flows.web.charts import history_chart
from flows.web.queue import (
    ACTIONS,
    SORT_LABELS,
    QueueFilters,
    counts_by_action,
    filter_queue,
    page_of,
    who_may_decide,
)

router = APIRouter(include_in_schema=False)
AUDIT_PAGE = 100
OUTCOME_CHOICES = {"accept": "accepted", "modify": "modified", "reject": "rejected"}


class PageRefused(Exception):
    """A request answered with this response instead (sign in first, not allowed, ...)."""

    def __init__(self, response: Response) -> None:
        self.response = response


def workbench(request: Request):
    return request.app.state.workbench


# -- session, rendering, guards ----------------------------------------------------------------


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = request.session["csrf"] = new_csrf_token()
    return token


def signed_in(request: Request) -> UserRecord | None:
    """The signed-in user, read again from the store: a user deactivated since sign-in is
    signed out at their next click."""
    name = request.session.get("user")
    if not name:
        return None
    user = workbench(request).decisions.user(name)
    if user is None or not user.active or user.role not in WEB_ROLES:
        request.session.clear()
        return None
    return user


def flash(request: Request, message: str, kind: str = "ok") -> None:
    request.session.setdefault("flash", []).append([kind, message])


def render(
    request: Request, template: str, context: dict[str, Any], status_code: int = 200
) -> HTMLResponse:
    user = context.get("user", request.state.user if hasattr(request.state, "user") else None)
    book = workbench(request).book
    messages = request.session.pop("flash", []) if "session" in request.scope else []
    page = {
        "request": request,
        "user": user,
        "csrf": csrf_token(request),
        "messages": messages,
        "as_of": book.view().as_of if book.ready else None,
        "can": (lambda permission: user is not None and allowed(user.role, permission)),
        **context,
    }
    return request.app.state.templates.TemplateResponse(
        request, template, page, status_code=status_code
    )


def refuse(request: Request, status: int, title: str, message: str) -> PageRefused:
    return PageRefused(
        render(request, "message.html", {"title": title, "message": message}, status_code=status)
    )


def guard(request: Request, permission: str) -> UserRecord:
    """The signed-in user holding `permission`; else sign-in (anonymous) or 403."""
    user = signed_in(request)
    request.state.user = user
    if user is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise PageRefused(
            RedirectResponse(f"/login?{urlencode({'next': target})}", status_code=303)
        )
    if not allowed(user.role, permission):
        raise refuse(
            request, 403, "Not allowed",
            f"Your role ({user.role}) does not allow this page or action.",
        )  # fmt: skip
    return user


async def form_with_csrf(request: Request) -> dict[str, str]:
    """The posted form, after its CSRF token was checked against the session's."""
    form = await request.form()
    if not same_token(request.session.get("csrf"), form.get("csrf_token")):
        raise refuse(
            request, 403, "Form refused",
            "This form did not come from this workbench or has expired (no valid CSRF "
            "token). Reload the page and try again; nothing was changed.",
        )  # fmt: skip
    return {k: str(v) for k, v in form.items()}


def local_path(target: str | None, default: str) -> str:
    """A redirect target on this site only (no `//evil.example`, no scheme)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return default


# -- sign-in ---------------------------------------------------------------------------------


@router.get("/login")
def login_page(request: Request, next: str = "/queue"):
    if signed_in(request) is not None:
        return RedirectResponse(local_path(next, "/queue"), status_code=303)
    return render(request, "login.html", {"user": None, "next": local_path(next, "/queue")})


#: A posted form whose CSRF token was checked; the routes taking it are plain functions,
#: run in the thread pool (password hashing and database writes never hold the event loop).
CheckedForm = Annotated[dict[str, str], Depends(form_with_csrf)]


@router.post("/login")
def login(request: Request, form: CheckedForm):
    name, password = form.get("username", "").strip()[:128], form.get("password", "")
    bench = workbench(request)
    next_page = local_path(form.get("next"), "/queue")
    who = f"{name}|{_client(request)}"  # per name and address: no lock-out from elsewhere
    wait = bench.throttle.blocked_for(who)
    if wait:
        return render(
            request, "login.html",
            {"user": None, "next": next_page, "username": name,
             "error": f"Too many failed sign-ins for {name}: try again in "
                      f"{max(1, round(wait / 60))} minute(s)."},
            status_code=429,
        )  # fmt: skip
    store = bench.decisions
    user = store.user(name) if name else None
    ok = verify_password(user.password_hash if user else None, password)
    if not ok or user is None or not user.active or user.role not in WEB_ROLES:
        bench.throttle.failed(who)
        store.log_event(name or "(empty)", "user.sign_in_refused", "user", None,
                        {"name": name, "client": _client(request)})  # fmt: skip
        return render(
            request, "login.html",
            {"user": None, "next": next_page,
             "error": "Unknown user name or wrong password.", "username": name},
            status_code=401,
        )  # fmt: skip
    bench.throttle.succeeded(who)
    store.log_event(user.name, "user.signed_in", "user", user.id, {"client": _client(request)})
    request.session.clear()  # a new session: no fixation of an earlier cookie
    request.session["user"] = user.name
    request.session["csrf"] = new_csrf_token()
    return RedirectResponse(next_page, status_code=303)


def _client(request: Request) -> str:
    return request.client.host if request.client else ""


@router.post("/logout")
def logout(request: Request, form: CheckedForm):
    name = request.session.get("user")
    if name:
        workbench(request).decisions.log_event(name, "user.signed_out", "user", None, {})
    request.session.clear()
    flash(request, "You are signed out.")
    return RedirectResponse("/login", status_code=303)


# -- queue -----------------------------------------------------------------------------------


def _underwriters(store) -> list[tuple[str, float]]:
    return [
        (u.name, u.authority_amount)
        for u in store.users()
        if u.role == "underwriter" and u.active and u.authority_amount is not None
    ]


@router.get("/queue")
def queue_page(request: Request):
    user = guard(request, "read")
    bench = workbench(request)
    filters = QueueFilters.from_query(dict(request.query_params))
    store = bench.decisions
    items = bench.open_queue(filters.human)
    chosen = filter_queue(items, filters, user.name)
    rows, pages = page_of(chosen, filters.page)
    underwriters = _underwriters(store)
    can_decide = allowed(user.role, "decide")
    shown = []
    for item in rows.itertuples(index=False):
        within = can_decide and (user.authority_amount or 0) >= item.recommended_amount
        shown.append(
            {
                "item": item,
                "within": within,
                "deciders": [] if within else who_may_decide(item.recommended_amount,
                                                             underwriters)[:3],
            }
        )  # fmt: skip
    return render(
        request, "queue.html",
        {
            "user": user, "filters": filters, "rows": shown, "pages": pages,
            "total": len(chosen), "open_total": len(items),
            "counts": counts_by_action(chosen), "actions": ACTIONS, "sorts": SORT_LABELS,
            "policyholders": sorted(items["policyholder_id"].unique()) if len(items) else [],
            "countries": sorted(items["country"].dropna().unique()) if len(items) else [],
            "link": lambda **changes: "/queue?" + urlencode(filters.query(**changes)),
            "here": "/queue?" + urlencode(filters.query()),
        },
    )  # fmt: skip


# -- buyer -----------------------------------------------------------------------------------


@router.get("/buyers/{buyer_id}")
def buyer_page(request: Request, buyer_id: str):
    user = guard(request, "read")
    bench = workbench(request)
    view = bench.book.view()
    if not view.has_buyer(buyer_id):
        raise refuse(request, 404, "Unknown buyer", f"No buyer with id {buyer_id!r} in the book.")
    buyer = view.buyer(buyer_id)
    store = bench.decisions
    decisions = store.decisions(buyer_id=buyer_id)
    decisions = decisions.iloc[::-1] if len(decisions) else decisions
    items = store.open_proposals(buyer_id=buyer_id)
    owners = store.assignments(buyer_id=buyer_id)
    return render(
        request, "buyer.html",
        {
            "user": user, "b": buyer, "chart": history_chart(history_points(buyer["history"])),
            "decisions": decisions, "items": items,
            "owners": dict(zip(owners["policyholder_id"], owners["assigned_to"], strict=True))
            if len(owners) else {},
            "requests": store.requests(buyer_id=buyer_id),
        },
    )  # fmt: skip


# -- decide ----------------------------------------------------------------------------------


def _proposal_page(
    request: Request, user: UserRecord, proposal_id: int, *, error: str = "",
    status_code: int = 200, form: dict[str, str] | None = None,
) -> HTMLResponse:  # fmt: skip
    from flows.underwriting import notice_for

    bench = workbench(request)
    store = bench.decisions
    proposal = store.proposal(proposal_id)
    if proposal is None:
        raise refuse(request, 404, "Unknown item", f"No queue item with id {proposal_id}.")
    ctx = bench.context()
    notice = notice_for(proposal, ctx)
    view = bench.book.view()
    decided = store.decisions(buyer_id=proposal.buyer_id, policyholder_id=proposal.policyholder_id)
    decision = (
        decided.loc[decided["proposal_id"] == proposal_id].iloc[0]
        if len(decided) and (decided["proposal_id"] == proposal_id).any()
        else None
    )
    owner = store.assignments(policyholder_id=proposal.policyholder_id,
                              buyer_id=proposal.buyer_id)  # fmt: skip
    within = (
        allowed(user.role, "decide") and (user.authority_amount or 0) >= proposal.recommended_amount
    )
    return render(
        request, "proposal.html",
        {
            "user": user, "p": proposal, "decision": decision,
            "buyer_name": view.buyers["name"].get(proposal.buyer_id, proposal.buyer_id),
            "today": ctx.as_of, "notice": notice,
            "cut_effective": ctx.as_of + dt.timedelta(days=notice),
            "within": within,
            "deciders": who_may_decide(proposal.recommended_amount, _underwriters(store)),
            "owner": owner["assigned_to"].iat[0] if len(owner) else None,
            "error": error, "form": form or {},
            "back": local_path(request.query_params.get("back"), "/queue"),
        },
        status_code=status_code,
    )  # fmt: skip


@router.get("/proposals/{proposal_id}")
def proposal_page(request: Request, proposal_id: int):
    user = guard(request, "read")
    return _proposal_page(request, user, proposal_id)


def parse_amount(text: str) -> float | None:
    """'1,250,000', '1 250 000' or '1250000.50' -> a number; None when not one."""
    cleaned = text.replace(",", "").replace(" ", "").replace("\u202f", "").strip()
    try:
        value = float(cleaned)
    except ValueError:
        return None
    return value if value == value and abs(value) != float("inf") else None


@router.post("/proposals/{proposal_id}/decide")
def decide_item(request: Request, proposal_id: int, form: CheckedForm):
    from flows.underwriting import decide
    from models.limits.decisions import AboveAuthority, DecisionRefused

    user = guard(request, "decide")
    bench = workbench(request)
    outcome = OUTCOME_CHOICES.get(form.get("outcome", ""))
    amount = None
    problem, status = "", 422
    if outcome is None:
        problem = "Choose accept, modify or reject."
    elif outcome == "modified":
        amount = parse_amount(form.get("amount", ""))
        if amount is None or amount < 0:
            problem = f"The new limit must be an amount of 0 or more, got {form.get('amount')!r}."
    if not problem:
        try:
            record = decide(
                bench.context(), bench.decisions, proposal_id, outcome=outcome, user=user.name,
                reason=form.get("reason", ""), amount=amount,
            )  # fmt: skip
        except AboveAuthority as exc:
            problem, status = str(exc), 403
        except (AlreadyDecidedError, ProposalNotOpenError) as exc:
            problem, status = str(exc), 409
        except UnknownProposalError as exc:
            problem, status = str(exc), 404
        except (DecisionRefused, DecisionStoreError) as exc:
            problem, status = str(exc), 422
    if problem:
        return _proposal_page(request, user, proposal_id, error=problem, status_code=status,
                              form=form)  # fmt: skip
    note = f" ({record.notice_days} days' notice)" if record.notice_days else ""
    flash(
        request,
        f"Decision {record.id} recorded: {record.outcome}, limit of {record.policyholder_id} on "
        f"{record.buyer_id} EUR {record.previous_amount or 0:,.0f} → EUR "
        f"{record.decided_amount:,.0f}, effective {record.effective_date}{note}.",
    )
    return RedirectResponse(local_path(form.get("back"), "/queue"), status_code=303)


@router.post("/proposals/{proposal_id}/assign")
def assign_item(request: Request, proposal_id: int, form: CheckedForm):
    user = guard(request, "decide")
    store = workbench(request).decisions
    proposal = store.proposal(proposal_id)
    if proposal is None:
        raise refuse(request, 404, "Unknown item", f"No queue item with id {proposal_id}.")
    take = form.get("to") == "me"
    store.assign(proposal.policyholder_id, proposal.buyer_id, user.name if take else None,
                 actor=user.name)  # fmt: skip
    flash(
        request,
        f"The limit of {proposal.policyholder_id} on {proposal.buyer_id} is "
        + ("now yours." if take else "back in the common queue."),
    )
    return RedirectResponse(local_path(form.get("back"), f"/proposals/{proposal_id}"),
                            status_code=303)  # fmt: skip


# -- audit trail -----------------------------------------------------------------------------

AUDIT_FILTERS = ("outcome", "user", "policyholder", "buyer", "since", "until")


def _audit_filters(query: dict[str, str]) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    """(store filters, the form's values, problems) from the query string."""
    values = {k: str(query.get(k, "") or "").strip()[:64] for k in AUDIT_FILTERS}
    problems: list[str] = []
    filters: dict[str, Any] = {
        "outcome": values["outcome"] or None,
        "decided_by": values["user"] or None,
        "policyholder_id": values["policyholder"] or None,
        "buyer_id": values["buyer"] or None,
    }
    if filters["outcome"] not in (None, "accepted", "modified", "rejected", "automatic"):
        problems.append(f"unknown outcome {values['outcome']!r}: filter ignored")
        filters["outcome"] = values["outcome"] = None
    for name in ("since", "until"):
        if values[name]:
            try:
                filters[name] = dt.date.fromisoformat(values[name])
            except ValueError:
                problems.append(f"{name} {values[name]!r} is not a date (YYYY-MM-DD): ignored")
                values[name] = ""
    return {k: v for k, v in filters.items() if v is not None}, values, problems


AUDIT_COLUMNS = [
    "id", "decided_at", "decided_by", "outcome", "rule", "policyholder_id", "buyer_id",
    "recommended_action", "recommended_amount", "decided_action", "previous_amount",
    "decided_amount", "effective_date", "notice_days", "reason", "model_version",
    "policy_version", "proposal_id", "request_id", "applied_at",
]  # fmt: skip


@router.get("/audit")
def audit_page(request: Request, page: int = 1, log: int = 0):
    user = guard(request, "read")
    page = max(1, page)
    store = workbench(request).decisions
    filters, values, problems = _audit_filters(dict(request.query_params))
    if log:
        entries = store.audit()
        entries = entries.iloc[::-1]
        rows, pages = page_of(entries, page, AUDIT_PAGE)
        return render(request, "audit_log.html", {"user": user, "rows": rows, "pages": pages,
                                                  "page": page, "total": len(entries)})  # fmt: skip
    found = store.decisions(**filters)
    found = found.iloc[::-1]
    rows, pages = page_of(found, page, AUDIT_PAGE)
    query = {k: v for k, v in values.items() if v}
    return render(
        request, "audit.html",
        {
            "user": user, "rows": rows, "pages": pages, "page": min(page, pages),
            "total": len(found), "values": values, "problems": problems,
            "csv": "/audit.csv?" + urlencode(query),
            "link": lambda p: "/audit?" + urlencode({**query, "page": p}),
            "by_outcome": found["outcome"].value_counts().to_dict() if len(found) else {},
        },
    )  # fmt: skip


@router.get("/audit.csv")
def audit_csv(request: Request):
    guard(request, "read")
    filters, _, _ = _audit_filters(dict(request.query_params))
    found = workbench(request).decisions.decisions(**filters)
    buffer = io.StringIO()
    spreadsheet_safe(found[AUDIT_COLUMNS] if len(found) else found).to_csv(buffer, index=False)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M")
    return StreamingResponse(
        iter([buffer.getvalue()]),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="decisions-{stamp}.csv"'},
    )


# -- model -----------------------------------------------------------------------------------

HEADLINE = ("auc", "gini", "brier", "ece", "psi", "oracle_auc")


def model_versions(registry) -> list[dict[str, Any]]:
    """Champion, challenger and previous champion with their headline validation figures."""
    from models.registry import CHALLENGER, CHAMPION, PREVIOUS_CHAMPION

    out = []
    for alias in (CHAMPION, CHALLENGER, PREVIOUS_CHAMPION):
        version = registry.version_by_alias(alias)
        if version is None:
            continue
        run = registry.client.get_run(version.run_id)
        out.append(
            {
                "alias": alias,
                "version": version.version,
                "created": pd.Timestamp(int(version.creation_timestamp), unit="ms", tz="UTC"),
                "kind": version.tags.get("kind", ""),
                "tags": {k: v for k, v in version.tags.items() if k.startswith(alias)},
                "metrics": {k: run.data.metrics.get(k) for k in HEADLINE},
                "run_id": version.run_id,
            }
        )
    return out


@router.get("/model")
def model_page(request: Request):
    user = guard(request, "model")
    settings = workbench(request).base.settings
    registry = workbench(request).base.registry
    try:
        versions, problem = model_versions(registry), ""
    except Exception as exc:  # the registry is another system: say so, do not crash
        versions, problem = [], f"the model registry at {settings.mlflow_uri} answered: {exc}"
    server = settings.mlflow_uri.startswith(("http://", "https://"))
    return render(
        request, "model.html",
        {
            "user": user, "versions": versions, "problem": problem, "headline": HEADLINE,
            "mlflow_url": settings.mlflow_uri.rstrip("/") if server else "http://127.0.0.1:5000",
            "mlflow_command": None if server else
            f"uv run mlflow ui --backend-store-uri {settings.mlflow_uri}",
        },
    )  # fmt: skip


# -- API docs (vendored Swagger UI) ----------------------------------------------------------


@router.get("/docs")
def docs(request: Request):
    return render(request, "docs.html", {"user": signed_in(request)})
