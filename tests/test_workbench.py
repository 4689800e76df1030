"""The underwriters' workbench in-process (FastAPI TestClient): who may do what on every
route, the JSON API, the pages, safety (escaping, headers, cookies, redirects, CSRF), the
cookie-signing key, and the decision store's user and assignment methods on both backends.

The book (`workbench_book`) is shared by the module: every test picks or publishes the
queue items it needs when it runs (`fresh_items`) and derives what it expects from the
store and the book view at that moment, so the tests do not depend on their order.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
import re
import stat
import time
from typing import Any

import markupsafe
import pandas as pd
import pytest
import sqlalchemy as sa
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from starlette.routing import Mount

from data.decisions import DecisionStoreError, UnknownUserError
from data.decisions.store import PROPOSAL_COLUMNS, PROPOSALS, USERS
from tests.web_fixtures import ACCOUNTS, HOSTILE_NAMES, PASSWORDS, csrf_of

READ = frozenset({"underwriter", "analyst", "viewer"})
UNDERWRITER = frozenset({"underwriter"})
ANALYST = frozenset({"analyst"})
REQUEST = frozenset({"underwriter", "analyst"})
#: (method, path) -> the roles allowed; every route of the app but the public ones.
MATRIX: dict[tuple[str, str], frozenset[str]] = {
    ("GET", "/queue"): READ,
    ("GET", "/buyers/{buyer_id}"): READ,
    ("GET", "/proposals/{proposal_id}"): READ,
    ("POST", "/proposals/{proposal_id}/decide"): UNDERWRITER,
    ("POST", "/proposals/{proposal_id}/assign"): UNDERWRITER,
    ("GET", "/audit"): READ,
    ("GET", "/audit.csv"): READ,
    ("GET", "/model"): ANALYST,
    ("POST", "/api/limit-requests"): REQUEST,
    ("GET", "/api/buyers/{buyer_id}"): READ,
    ("GET", "/api/queue"): READ,
    ("POST", "/api/decisions"): UNDERWRITER,
}
#: Public by design (no sign-in): the API schema and its docs page, the health probe, the
#: home redirect; and signing in and out.
PUBLIC = {("GET", "/openapi.json"), ("GET", "/docs"), ("GET", "/healthz"), ("GET", "/")}
SIGN_IN = {("GET", "/login"), ("POST", "/login"), ("POST", "/logout")}
#: A signed-in user of each role (the anonymous caller is None).
ROLE_USERS = {"viewer": "vic", "analyst": "ana", "underwriter": "uw"}
RAW_HOSTILE = ("<script>alert(1)</script>", "<img src=x onerror")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


# -- helpers -------------------------------------------------------------------------------


def client_of(app) -> TestClient:
    """Another browser on the same app (its own cookies); redirects are not followed."""
    return TestClient(app, follow_redirects=False)


def bench_of(app):
    return app.state.workbench


def sign_in_as(client: TestClient, name: str, password: str | None = None):
    page = client.get("/login")
    return client.post(
        "/login",
        data={
            "username": name,
            "password": PASSWORDS[name] if password is None else password,
            "csrf_token": csrf_of(page.text),
        },
    )


def browser(app, name: str) -> TestClient:
    """A client signed in as `name` through the sign-in form."""
    client = client_of(app)
    answer = sign_in_as(client, name)
    assert answer.status_code == 303, answer.text
    return client


def bearer(book, name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {book['tokens'][name]}"}


def settle(store, timeout: float = 30.0) -> None:
    """Wait until granted limit requests have been written to the book in the background
    (that writes audit rows), so before/after counts compare only what a test did."""
    from flows.web.api import _APPLY_LOCK

    deadline = time.monotonic() + timeout
    quiet = 0
    while time.monotonic() < deadline:
        if not _APPLY_LOCK.locked() and store.unapplied_decisions().empty:
            quiet += 1
            if quiet >= 3:
                return
        else:
            quiet = 0
        time.sleep(0.05)


def written(store) -> dict[str, int]:
    """How many rows of each kind the store holds (after background writes settled)."""
    settle(store)
    return {
        "requests": len(store.requests()),
        "decisions": len(store.decisions()),
        "audit": len(store.audit()),
        "assignments": len(store.assignments()),
        "open": len(store.open_proposals()),
    }


def taken_pairs(store, today: dt.date) -> set[tuple[str, str]]:
    """Pairs with an open item, an item of today or a decision today: not for a new item."""
    with store.engine.connect() as connection:
        rows = connection.execute(
            sa.select(PROPOSALS.c.policyholder_id, PROPOSALS.c.buyer_id).where(
                sa.or_(PROPOSALS.c.status == "open", PROPOSALS.c.as_of_date == today)
            )
        ).all()
    decided = store.decisions(since=today)
    return {(r[0], r[1]) for r in rows} | set(
        zip(decided["policyholder_id"], decided["buyer_id"], strict=True)
    )


def book_pairs(view, buyers=None) -> list[tuple[str, str, float, float]]:
    """(policyholder, buyer, limit, exposure) of the book's limits, without a scheduled
    change, on scored buyers."""
    out = []
    for buyer_id in sorted(view.limits) if buyers is None else buyers:
        if buyer_id not in view.scores.index or buyer_id not in view.limits:
            continue
        for row in view.limits[buyer_id].itertuples():
            if pd.isna(row.scheduled_amount):
                out.append((row.policyholder_id, buyer_id, float(row.limit_amount),
                            float(row.exposure)))  # fmt: skip
    return out


def fresh_items(
    app,
    n: int = 1,
    *,
    recommended: float | None = None,
    max_limit: float | None = None,
    buyers: list[str] | None = None,
) -> list[int]:
    """Publish `n` new open queue items (a human must decide) on limits of the book that
    have no item yet today, the way the request desk adds one (`store.add_proposal`).
    Recommended: `recommended`, else the limit plus half. Returns their ids."""
    bench = bench_of(app)
    store, view, ctx = bench.decisions, bench.book.view(), bench.context()
    taken = taken_pairs(store, ctx.as_of)
    with store.engine.connect() as connection:  # any published proposal: its versions
        template = store.proposal(connection.scalar(sa.select(sa.func.min(PROPOSALS.c.id))))
    rows = []
    for policyholder, buyer, limit, exposure in book_pairs(view, buyers):
        if (policyholder, buyer) in taken or (max_limit is not None and limit > max_limit):
            continue
        target = recommended if recommended is not None else round(limit * 1.5 + 10_000, 2)
        score = view.scores.loc[buyer]
        k = len(rows)
        rows.append(
            {
                **{c: getattr(template, c) for c in PROPOSAL_COLUMNS},
                "policyholder_id": policyholder,
                "buyer_id": buyer,
                "action": "refer",
                "proposed_action": "increase" if target > limit else "decrease",
                "limit_amount": limit,
                "recommended_amount": float(target),
                "requested_amount": None,
                "exposure": exposure,
                "grade": int(score["grade"]),
                "previous_grade": int(score["grade"]),
                "pd": float(score["pd"]),
                "reason_codes": "TEST_ITEM",
                "explanation": f"refer: a test item {k} of the workbench tests",
                "expected_loss_before": round(float(score["pd"]) * exposure * 0.5, 2),
                "expected_loss_after": round(float(score["pd"]) * exposure * 0.4, 2),
                "priority": 2 + (k * 7) % 40,
                "human_required": True,
                "automatic_rule": None,
                "deadline": ctx.as_of + dt.timedelta(days=5 + k % 9),
                "new_today": True,
                "policy_version": ctx.policy.version,
            }
        )
        if len(rows) == n:
            break
    assert len(rows) == n, f"the book has only {len(rows)} free limits for new items"
    published = store.add_proposal(ctx.as_of, pd.DataFrame(rows))
    return [int(i) for i in published["id"]]


def page_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr data-id="(\d+)">', html)]


def expected_queue(app, user: str | None = None, **f: Any) -> pd.DataFrame:
    """The open items a queue filter should show, worked out from the store and the book
    (not through `flows.web.queue`), in priority order."""
    bench = bench_of(app)
    store, view = bench.decisions, bench.book.view()
    items = store.open_proposals()
    if f.get("human", "required") == "required":
        items = items.loc[items["human_required"]]
    items = items.assign(country=items["buyer_id"].map(view.buyers["country"]))
    if f.get("action"):
        items = items.loc[
            (items["action"] == f["action"]) | (items["proposed_action"] == f["action"])
        ]
    if f.get("country"):
        items = items.loc[items["country"] == f["country"]]
    if f.get("grade") is not None:
        items = items.loc[items["grade"] == f["grade"]]
    if f.get("new"):
        items = items.loc[items["new_today"]]
    if f.get("mine"):
        mine = store.assignments(assigned_to=user)
        keys = set(zip(mine["policyholder_id"], mine["buyer_id"], strict=True))
        items = items.loc[[k in keys for k in zip(items["policyholder_id"], items["buyer_id"],
                                                   strict=True)]]  # fmt: skip
    return items.sort_values(["priority", "id"])


def all_queue_ids(client: TestClient, query: str) -> list[int]:
    """The ids of every page of the queue page with this query, in page order."""
    ids: list[int] = []
    for page in range(1, 100):
        answer = client.get(f"/queue?{query}&page={page}")
        assert answer.status_code == 200
        shown = page_ids(answer.text)
        pages = int(re.search(r"page (\d+) of (\d+)", answer.text).group(2)) if shown else 1
        ids += shown
        if page >= pages:
            return ids
    raise AssertionError("the queue never ended")


def open_item(store, proposal_id: int) -> bool:
    return store.proposal(proposal_id).status == "open"


def hostile_buyers(view) -> dict[str, list[str]]:
    """Hostile name -> the buyers carrying it (as `web_fixtures.hostile_names` made them)."""
    return {
        name: sorted(view.buyers.index[view.buyers["name"].astype(str).str.startswith(name)])
        for name in HOSTILE_NAMES
    }


# -- 1. who may do what --------------------------------------------------------------------


def app_routes(app) -> set[tuple[str, str]]:
    found = set()
    for route in iter_route_contexts(app.routes):
        if isinstance(route.original_route, Mount):
            assert route.path == "/static", f"an unexpected mount {route.path}"
            continue
        for method in route.methods or ():
            if method != "HEAD":
                found.add((method, route.path))
    return found


def test_every_route_is_in_the_role_matrix_or_public_by_design(workbench_client):
    routes = app_routes(workbench_client.app)
    assert routes - set(MATRIX) == PUBLIC | SIGN_IN, "a route without a role-matrix entry"
    assert set(MATRIX) <= routes, "the matrix names a route the app does not have"
    # The matrix follows the one permission table.
    from flows.web.auth import PERMISSIONS

    assert PERMISSIONS["read"] == READ and PERMISSIONS["decide"] == UNDERWRITER
    assert PERMISSIONS["model"] == ANALYST and PERMISSIONS["request"] == REQUEST

    anonymous = client_of(workbench_client.app)
    assert anonymous.get("/healthz").json()["status"] == "ok"
    assert anonymous.get("/").headers["location"] == "/queue"
    assert anonymous.get("/docs").status_code == 200
    schema = anonymous.get("/openapi.json").json()
    assert set(schema["paths"]) == {p for _, p in MATRIX if p.startswith("/api/")}
    assert anonymous.get("/login").status_code == 200


def _call(client, method, path, book, name, ids, csrf):
    """One request on a matrix route: pages by session, the API by bearer token; allowed
    POSTs get a body that is refused (422/404) so they change nothing."""
    url = path.format(buyer_id=ids["buyer"], proposal_id=ids["proposal"])
    headers = bearer(book, name) if name and path.startswith("/api/") else {}
    if method == "GET":
        return client.get(url, headers=headers)
    if path == "/api/limit-requests":
        body = {"policyholder_id": ids["policyholder"], "buyer_id": ids["buyer"], "amount": -5}
        return client.post(url, json=body, headers=headers)
    if path == "/api/decisions":
        body = {"proposal_id": ids["proposal"], "outcome": "accepted"}  # no reason: 422
        return client.post(url, json=body, headers=headers)
    if path.endswith("/decide"):
        form = {"csrf_token": csrf, "outcome": "reject", "reason": ""}  # no reason: 422
        return client.post(url, data=form)
    if path.endswith("/assign"):
        url = path.format(proposal_id=10**9)  # unknown item: 404 once allowed
        return client.post(url, data={"csrf_token": csrf, "to": "me"})
    raise AssertionError(f"no call for {method} {path}")


def test_role_matrix_on_every_route(workbench_client, workbench_book):
    app = workbench_client.app
    store = bench_of(app).decisions
    (proposal,) = fresh_items(app, max_limit=200_000)
    item = store.proposal(proposal)
    ids = {"buyer": item.buyer_id, "policyholder": item.policyholder_id, "proposal": proposal}
    clients: dict[str | None, tuple[TestClient, str, str | None]] = {}
    anonymous = client_of(app)
    clients[None] = (anonymous, csrf_of(anonymous.get("/login").text), None)
    for role, name in ROLE_USERS.items():
        client = browser(app, name)
        clients[role] = (client, csrf_of(client.get("/queue").text), name)
    before = written(store)
    for (method, path), roles in MATRIX.items():
        for role, (client, csrf, name) in clients.items():
            answer = _call(client, method, path, workbench_book, name, ids, csrf)
            where = f"{method} {path} as {role or 'anonymous'}: {answer.status_code}"
            if role is None and path.startswith("/api/"):
                assert answer.status_code == 401, where
                assert answer.headers["www-authenticate"] == "Bearer", where
            elif role is None:
                assert answer.status_code in ((303,) if method == "GET" else (303, 403)), where
                if answer.status_code == 303:
                    assert answer.headers["location"].startswith("/login?next="), where
            elif role not in roles:
                assert answer.status_code == 403, where
            else:
                assert answer.status_code in (200, 303, 404, 409, 422), where
    assert written(store) == before, "a call of the matrix wrote something"
    assert open_item(store, proposal)


def test_api_takes_bearer_tokens_only(workbench_client, workbench_book):
    app = workbench_client.app
    store = bench_of(app).decisions
    signed_in = browser(app, "uw")
    assert signed_in.get("/queue").status_code == 200
    for path in ("/api/queue", f"/api/buyers/{bench_of(app).book.view().buyers.index[0]}"):
        assert signed_in.get(path).status_code == 401  # the session cookie is not a credential
    body = {"proposal_id": 1, "outcome": "rejected", "reason": "cookie only"}
    assert signed_in.post("/api/decisions", json=body).status_code == 401
    for header in ("Bearer sv_not-a-token", "Bearer ", "Basic dXc6dXctcGFzc3dvcmQtMQ==",
                   workbench_book["tokens"]["uw"]):  # fmt: skip
        assert signed_in.get("/api/queue", headers={"Authorization": header}).status_code == 401
    # A revoked token stops working at once; a new one works.
    from flows.web.auth import new_api_token

    store.add_user("rex", "underwriter", authority_amount=1_000.0)
    token, digest = new_api_token()
    store.set_api_token_hash("rex", digest)
    headers = {"Authorization": f"Bearer {token}"}
    assert signed_in.get("/api/queue", headers=headers).status_code == 200
    store.set_api_token_hash("rex", None)
    assert signed_in.get("/api/queue", headers=headers).status_code == 401


# -- 2. the JSON API -----------------------------------------------------------------------


def test_limit_request_answered_and_recorded(workbench_client, workbench_book):
    app = workbench_client.app
    store, view = bench_of(app).decisions, bench_of(app).book.view()
    taken = taken_pairs(store, bench_of(app).context().as_of)
    policyholder, buyer, limit, _ = next(
        p for p in book_pairs(view) if (p[0], p[1]) not in taken and p[2] > 0
    )
    before = written(store)
    answer = client_of(app).post(
        "/api/limit-requests",
        json={"policyholder_id": policyholder, "buyer_id": buyer, "amount": limit + 20_000},
        headers=bearer(workbench_book, "ana"),
    )
    assert answer.status_code == 200, answer.text
    got = answer.json()
    assert got["status"] in ("granted", "partially_granted", "declined", "queued")
    assert got["requested"] == limit + 20_000 and got["previous"] == pytest.approx(limit)
    requests = store.requests()
    row = requests.loc[requests["id"] == got["request_id"]].iloc[0]
    assert (row["policyholder_id"], row["buyer_id"]) == (policyholder, buyer)
    assert row["amount"] == limit + 20_000
    assert (row["status"], row["channel"], row["requested_by"]) == (got["status"], "api", "ana")
    assert len(requests) == before["requests"] + 1
    if got["status"] == "queued":
        assert got["decision_id"] is None and open_item(store, got["queued_as"])
    else:
        decision = store.decision(got["decision_id"])
        assert decision.request_id == got["request_id"]
        assert decision.decided_amount == pytest.approx(got["granted"])
        if got["status"] == "granted":
            assert got["granted"] >= got["requested"]
        elif got["status"] == "partially_granted":
            assert got["previous"] < got["granted"] < got["requested"]
        else:
            assert got["granted"] == pytest.approx(got["previous"])


def _raw(body: dict[str, Any], amount: str) -> bytes:
    """JSON text with the amount as written (1e400, Infinity: not what json.dumps gives)."""
    text = json.dumps({**body, "amount": "@@"})
    return text.replace('"@@"', amount).encode()


def test_limit_request_bad_bodies_are_422_naming_the_field(workbench_client, workbench_book):
    app = workbench_client.app
    store, view = bench_of(app).decisions, bench_of(app).book.view()
    policyholder, buyer, _, _ = book_pairs(view)[0]
    ok = {"policyholder_id": policyholder, "buyer_id": buyer}
    client, headers = client_of(app), bearer(workbench_book, "uw")
    json_headers = {**headers, "Content-Type": "application/json"}
    before = written(store)
    cases = [
        (ok, "amount"),  # missing
        ({"buyer_id": buyer, "amount": 10_000}, "policyholder_id"),
        ({**ok, "amount": -10_000}, "amount"),
        ({**ok, "amount": 0}, "amount"),
        ({**ok, "amount": "abc"}, "amount"),
        ({**ok, "amount": "Infinity"}, "amount"),
        ({**ok, "amount": "NaN"}, "amount"),
        ({**ok, "amount": 0.001}, "amount"),  # rounds to no cent at all
        ({**ok, "amount": 1e16}, "amount"),  # more than the store's NUMERIC(18, 2) holds
        ({**ok, "amount": 1e300}, "amount"),
        ({**ok, "buyer_id": "", "amount": 10_000}, "buyer_id"),
        ({**ok, "policyholder_id": "P" * 65, "amount": 10_000}, "policyholder_id"),
    ]
    for body, field in cases:
        answer = client.post("/api/limit-requests", json=body, headers=headers)
        assert answer.status_code == 422, (body, answer.text)
        assert answer.json()["detail"][0]["loc"] == ["body", field], (body, answer.text)
    for amount in ("1e400", "-1e400", "Infinity", "NaN"):
        answer = client.post("/api/limit-requests", content=_raw(ok, amount), headers=json_headers)
        assert answer.status_code == 422, (amount, answer.text)
        assert answer.json()["detail"][0]["loc"] == ["body", "amount"], (amount, answer.text)
    unknown = [
        ({**ok, "buyer_id": "B-NOT-IN-BOOK", "amount": 10_000}, "B-NOT-IN-BOOK"),
        ({**ok, "policyholder_id": "P-NOT-A-CLIENT", "amount": 10_000}, "P-NOT-A-CLIENT"),
    ]
    for body, name in unknown:
        answer = client.post("/api/limit-requests", json=body, headers=headers)
        assert answer.status_code == 404, answer.text
        assert name in answer.json()["detail"]
    assert written(store) == before


def test_api_buyer(workbench_client, workbench_book):
    app = workbench_client.app
    view = bench_of(app).book.view()
    client, headers = client_of(app), bearer(workbench_book, "vic")
    buyer = next(b for b in sorted(view.limits) if b in view.scores.index)
    answer = client.get(f"/api/buyers/{buyer}", headers=headers)
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    got = answer.json()
    assert got["buyer_id"] == buyer and got["name"] == view.buyers.loc[buyer, "name"]
    assert got["grade"] == int(view.scores.loc[buyer, "grade"])
    assert got["pd"] == pytest.approx(float(view.scores.loc[buyer, "pd"]))
    limits = view.limits[buyer]
    assert sorted((x["policyholder_id"], x["limit_amount"]) for x in got["limits"]) == sorted(
        zip(limits["policyholder_id"], limits["limit_amount"].astype(float), strict=True)
    )
    assert got["as_of"] == view.as_of.isoformat()
    json.dumps(got, allow_nan=False)  # strict JSON: no NaN slipped through
    assert client.get("/api/buyers/B-NOT-IN-BOOK", headers=headers).status_code == 404


def test_api_queue_sorted_filtered_and_paged(workbench_client, workbench_book):
    app = workbench_client.app
    client, headers = client_of(app), bearer(workbench_book, "vic")
    fresh_items(app, 3)

    def get(query: str):
        answer = client.get(f"/api/queue?{query}", headers=headers)
        assert answer.status_code == 200, answer.text
        return answer.json()

    everything = get("page_size=1000")
    expected = expected_queue(app)
    assert [i["id"] for i in everything["items"]] == expected["id"].tolist()
    assert everything["total"] == len(expected)
    priorities = [(i["priority"], i["id"]) for i in everything["items"]]
    assert priorities == sorted(priorities)
    for action in sorted(set(expected["action"]) | set(expected["proposed_action"])):
        got = get(f"action={action}&page_size=1000")
        assert [i["id"] for i in got["items"]] == expected_queue(app, action=action)["id"].tolist()
        assert all(action in (i["action"], i["proposed_action"]) for i in got["items"])
    assert get("human=all&page_size=1000")["total"] == len(expected_queue(app, human="all"))
    one = get("page_size=1&page=2")
    assert one["pages"] == everything["total"] and one["page"] == 2
    assert [i["id"] for i in one["items"]] == [everything["items"][1]["id"]]
    limited = get("sort=limit&page_size=1000")["items"]
    amounts = [i["limit_amount"] for i in limited]
    assert amounts == sorted(amounts, reverse=True) and len(limited) == everything["total"]
    for query in ("page_size=0", "page_size=5000", "page=0", "sort=name", "human=some",
                  "grade=abc"):  # fmt: skip
        answer = client.get(f"/api/queue?{query}", headers=headers)
        assert answer.status_code == 422, (query, answer.text)
        assert answer.json()["detail"][0]["loc"][0] == "query"


def test_api_decisions(workbench_client, workbench_book):
    app = workbench_client.app
    store = bench_of(app).decisions
    client = client_of(app)
    big, other, third = fresh_items(app, 3, recommended=400_000.0)
    uw_authority = ACCOUNTS["uw"][1]
    assert store.proposal(big).recommended_amount > uw_authority

    def post(name: str, **body):
        return client.post("/api/decisions", json=body, headers=bearer(workbench_book, name))

    # Above the underwriter's authority: refused, nothing written.
    before = written(store)
    answer = post("uw", proposal_id=big, outcome="accepted", reason="fine by me")
    assert answer.status_code == 403 and "authority" in answer.json()["detail"]
    answer = post("uw", proposal_id=other, outcome="modified", amount=5_000_000, reason="more")
    assert answer.status_code == 403
    # Refused for other reasons: nothing written either.
    assert post("uw", proposal_id=other, outcome="modified", reason="how much?").status_code == 422
    assert post("uw", proposal_id=other, outcome="accepted", reason="   ").status_code == 422
    assert post("uw", proposal_id=other, outcome="accepted", amount=1.0,
                reason="with amount").status_code == 422  # fmt: skip
    for unknown in (10**9, 2**31, 2**63, 10**20):
        answer = post("uw", proposal_id=unknown, outcome="rejected", reason="who?")
        assert answer.status_code == 404, (unknown, answer.text)
    assert post("boss", proposal_id=other, outcome="modified", amount=1e16,
                reason="too much to store").status_code == 422  # fmt: skip
    assert post("vic", proposal_id=big, outcome="rejected", reason="viewer").status_code == 403
    assert post("ana", proposal_id=big, outcome="rejected", reason="analyst").status_code == 403
    for amount in ("1e400", "NaN", "-Infinity"):
        answer = client.post(
            "/api/decisions",
            content=_raw({"proposal_id": other, "outcome": "modified", "reason": "r"}, amount),
            headers={**bearer(workbench_book, "boss"), "Content-Type": "application/json"},
        )
        assert answer.status_code == 422 and answer.json()["detail"][0]["loc"] == ["body", "amount"]
    for bad in ({"outcome": "automatic"}, {"proposal_id": 0}, {"amount": -1.0},
                {"reason": "x" * 2001}):  # fmt: skip
        body = {"proposal_id": big, "outcome": "modified", "amount": 1.0, "reason": "r", **bad}
        assert post("boss", **body).status_code == 422, bad
    assert written(store) == before
    assert open_item(store, big) and open_item(store, other)

    # Within authority: recorded under the caller.
    answer = post("boss", proposal_id=big, outcome="accepted", reason="strong payer")
    assert answer.status_code == 200, answer.text
    got = answer.json()
    decisions = store.decisions()
    mine = decisions.loc[decisions["proposal_id"] == big]
    assert len(mine) == 1 and mine["id"].iat[0] == got["id"]
    assert (mine["decided_by"].iat[0], mine["outcome"].iat[0]) == ("boss", "accepted")
    assert mine["decided_amount"].iat[0] == pytest.approx(400_000.0)
    assert mine["reason"].iat[0] == "strong payer"
    assert store.proposal(big).status == "decided"
    audit = store.audit(entity="decision", entity_id=got["id"], action="decision.recorded")
    assert audit["actor"].tolist() == ["boss"]
    assert json.loads(audit["details"].iat[0])["reason"] == "strong payer"

    # The same item again: 409, nothing written.
    before = written(store)
    answer = post("boss", proposal_id=big, outcome="rejected", reason="changed my mind")
    assert answer.status_code == 409
    assert written(store) == before

    # A modification within the authority of the smaller underwriter.
    answer = post("uw", proposal_id=third, outcome="modified", amount=1_250.5, reason="less")
    assert answer.status_code == 200, answer.text
    assert store.decision(answer.json()["id"]).decided_amount == pytest.approx(1_250.5)


# -- 3. the pages --------------------------------------------------------------------------


def test_sign_in_refused_with_a_wrong_password(workbench_client):
    app = workbench_client.app
    store = bench_of(app).decisions
    client = client_of(app)
    before = len(store.audit(action="user.sign_in_refused"))
    for name, password in (("uw", "not-the-password"), ("nobody", "whatever-1"),
                           ("uw", PASSWORDS["boss"]), ("", "")):  # fmt: skip
        answer = sign_in_as(client, name, password)
        assert answer.status_code == 401, name
        assert "Unknown user name or wrong password." in answer.text
        assert client.get("/queue").status_code == 303  # still nobody signed in
    assert len(store.audit(action="user.sign_in_refused")) == before + 4
    # A form without the CSRF token of the sign-in page is refused.
    answer = client.post("/login", data={"username": "uw", "password": PASSWORDS["uw"]})
    assert answer.status_code == 403
    assert client.get("/queue").status_code == 303
    # The right password signs in.
    assert sign_in_as(client, "uw").status_code == 303
    assert client.get("/queue").status_code == 200


def test_queue_page_filters_sort_and_pages(workbench_client):
    from flows.web.queue import PAGE_SIZE

    app = workbench_client.app
    missing = PAGE_SIZE + 5 - len(expected_queue(app))
    if missing > 0:
        fresh_items(app, missing)
    client = browser(app, "vic")
    expected = expected_queue(app)
    assert len(expected) > PAGE_SIZE
    first = client.get("/queue")
    assert page_ids(first.text) == expected["id"].tolist()[:PAGE_SIZE]
    second = client.get("/queue?page=2")
    assert page_ids(second.text) == expected["id"].tolist()[PAGE_SIZE : 2 * PAGE_SIZE]
    last = -(-len(expected) // PAGE_SIZE)
    beyond = client.get("/queue?page=999")  # the last page
    assert page_ids(beyond.text) == expected["id"].tolist()[(last - 1) * PAGE_SIZE :]
    assert all_queue_ids(client, "") == expected["id"].tolist()

    view = bench_of(app).book.view()
    countries = sorted(set(view.buyers.loc[expected["buyer_id"], "country"].dropna()))
    checks = [
        ("human=all", {"human": "all"}),
        ("new=1", {"new": True}),
        *((f"action={a}", {"action": a}) for a in sorted(set(expected["proposed_action"]))),
        ("action=refer", {"action": "refer"}),
        *((f"country={c}", {"country": c}) for c in countries[:3]),
        *((f"grade={g}", {"grade": g}) for g in sorted(set(expected["grade"].dropna()))[:3]),
        ("action=refer&new=1&human=all", {"action": "refer", "new": True, "human": "all"}),
        ("action=nonsense&grade=99&sort=nonsense&page=-4", {}),  # ignored, not an error
    ]
    for query, filters in checks:
        want = expected_queue(app, **filters)["id"].tolist()
        assert all_queue_ids(client, query) == want, query
    # Largest limit first.
    by_limit = all_queue_ids(client, "sort=limit")
    amounts = expected.set_index("id").loc[by_limit, "limit_amount"].tolist()
    assert sorted(by_limit) == sorted(expected["id"]) and amounts == sorted(amounts, reverse=True)
    assert client.get("/queue?sort=limit").status_code == 200


def _decide_form(client, proposal_id: int, **fields):
    csrf = csrf_of(client.get(f"/proposals/{proposal_id}").text)
    return client.post(f"/proposals/{proposal_id}/decide", data={"csrf_token": csrf, **fields})


def test_decide_through_the_form(workbench_client):
    app = workbench_client.app
    store = bench_of(app).decisions
    accept, modify, reject = fresh_items(app, 3, max_limit=200_000)
    client = browser(app, "uw")
    cases = [
        (accept, {"outcome": "accept", "reason": "good payer"}, "accepted"),
        (modify, {"outcome": "modify", "amount": "12,500", "reason": "half"}, "modified"),
        (reject, {"outcome": "reject", "reason": "keep as is"}, "rejected"),
    ]
    for proposal_id, form, outcome in cases:
        item = store.proposal(proposal_id)
        answer = _decide_form(client, proposal_id, **form)
        assert answer.status_code == 303, answer.text
        assert answer.headers["location"] == "/queue"
        found = store.decisions(policyholder_id=item.policyholder_id, buyer_id=item.buyer_id)
        found = found.loc[found["proposal_id"] == proposal_id]
        assert len(found) == 1, outcome
        decision = found.iloc[0]
        assert (decision["outcome"], decision["decided_by"]) == (outcome, "uw")
        assert decision["reason"] == form["reason"]
        amount = {"accepted": item.recommended_amount, "modified": 12_500.0,
                  "rejected": item.limit_amount}[outcome]  # fmt: skip
        assert decision["decided_amount"] == pytest.approx(amount)
        assert f"Decision {decision['id']} recorded" in client.get("/queue").text
        assert store.proposal(proposal_id).status == "decided"
    # Decided already: 409, nothing written.
    before = written(store)
    answer = _decide_form(client, accept, outcome="reject", reason="again")
    assert answer.status_code == 409
    assert written(store) == before


def test_decide_form_refusals_write_nothing(workbench_client):
    app = workbench_client.app
    store = bench_of(app).decisions
    (big,) = fresh_items(app, recommended=400_000.0, max_limit=250_000)
    (item,) = fresh_items(app, max_limit=100_000)
    client, other = browser(app, "uw"), browser(app, "boss")
    before = written(store)
    page = client.get(f"/proposals/{big}")
    assert "is above your authority" in page.text
    answer = _decide_form(client, big, outcome="accept", reason="fine")
    assert answer.status_code == 403 and "above your authority" in answer.text
    answer = _decide_form(client, item, outcome="modify", amount="5000000", reason="much more")
    assert answer.status_code == 403 and "above your authority" in answer.text
    answer = _decide_form(client, item, outcome="accept", reason="")
    assert answer.status_code == 422 and "reason is required" in answer.text
    for amount in ("", "abc", "-5", "inf", "nan", "1e400"):
        answer = _decide_form(client, item, outcome="modify", amount=amount, reason="r")
        assert answer.status_code == 422, amount
    answer = _decide_form(client, item, outcome="maybe", reason="r")
    assert answer.status_code == 422
    url = f"/proposals/{item}/decide"
    answer = client.post(url, data={"outcome": "reject", "reason": "no token"})
    assert answer.status_code == 403 and "CSRF" in answer.text
    answer = client.post(url, data={"csrf_token": "forged", "outcome": "reject", "reason": "x"})
    assert answer.status_code == 403
    # Another browser's token is not this session's.
    stolen = csrf_of(other.get(f"/proposals/{item}").text)
    answer = client.post(url, data={"csrf_token": stolen, "outcome": "reject", "reason": "x"})
    assert answer.status_code == 403
    assert written(store) == before
    assert open_item(store, big) and open_item(store, item)


def test_unknown_items_are_404_on_every_item_route(workbench_client):
    app = workbench_client.app
    store = bench_of(app).decisions
    client = browser(app, "uw")
    csrf = csrf_of(client.get("/queue").text)
    before = written(store)
    for unknown in (0, 10**9, 2**31, 2**63, 10**20):
        assert client.get(f"/proposals/{unknown}").status_code == 404, unknown
        answer = client.post(f"/proposals/{unknown}/decide",
                             data={"csrf_token": csrf, "outcome": "reject", "reason": "r"})  # fmt: skip
        assert answer.status_code == 404, unknown
        answer = client.post(f"/proposals/{unknown}/assign", data={"csrf_token": csrf, "to": "me"})
        assert answer.status_code == 404, unknown
    assert client.get("/buyers/B-NOT-IN-BOOK").status_code == 404
    assert written(store) == before


def test_assign_to_me_and_back(workbench_client):
    app = workbench_client.app
    store = bench_of(app).decisions
    (item,) = fresh_items(app)
    proposal = store.proposal(item)
    client = browser(app, "uw")
    assert item not in page_ids(client.get("/queue?mine=1").text)
    page = client.get(f"/proposals/{item}")
    answer = client.post(f"/proposals/{item}/assign",
                         data={"csrf_token": csrf_of(page.text), "to": "me"})  # fmt: skip
    assert answer.status_code == 303
    owners = store.assignments(policyholder_id=proposal.policyholder_id,
                               buyer_id=proposal.buyer_id)  # fmt: skip
    assert owners["assigned_to"].tolist() == ["uw"]
    assert all_queue_ids(client, "mine=1") == expected_queue(app, "uw", mine=True)["id"].tolist()
    assert item in all_queue_ids(client, "mine=1")
    assert item not in all_queue_ids(browser(app, "boss"), "mine=1")
    assert "Hand this limit back to the common queue" in client.get(f"/proposals/{item}").text
    assert "(now with uw)" in browser(app, "boss").get(f"/proposals/{item}").text
    # Without a CSRF token nothing changes.
    before = written(store)
    assert client.post(f"/proposals/{item}/assign", data={"to": ""}).status_code == 403
    assert written(store) == before
    answer = client.post(f"/proposals/{item}/assign",
                         data={"csrf_token": csrf_of(page.text), "to": ""})  # fmt: skip
    assert answer.status_code == 303
    assert item not in all_queue_ids(client, "mine=1")
    log = store.audit(entity="limit", entity_id=f"{proposal.policyholder_id}/{proposal.buyer_id}")
    assert log["action"].tolist()[-2:] == ["assignment.set", "assignment.removed"]
    assert log["actor"].tolist()[-2:] == ["uw", "uw"]


def _audit_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r"<tr><td>(\d+)</td><td>", html)]


def _audit_total(html: str) -> int:
    found = re.search(r"Audit trail <span class=\"muted\">([\d,]+) decision", html)
    return int(found.group(1).replace(",", ""))


def test_audit_page_filters(workbench_client, workbench_book):
    from flows.web.pages import AUDIT_PAGE

    app = workbench_client.app
    store = bench_of(app).decisions
    (item,) = fresh_items(app)
    answer = client_of(app).post(
        "/api/decisions", headers=bearer(workbench_book, "boss"),
        json={"proposal_id": item, "outcome": "rejected", "reason": "for the audit page"},
    )  # fmt: skip
    assert answer.status_code == 200
    client = browser(app, "vic")
    decisions = store.decisions()
    today = bench_of(app).context().as_of
    checks = [
        ("", {}),
        ("outcome=automatic", {"outcome": "automatic"}),
        ("outcome=rejected&user=boss", {"outcome": "rejected", "decided_by": "boss"}),
        (f"buyer={decisions['buyer_id'].iat[0]}", {"buyer_id": decisions["buyer_id"].iat[0]}),
        ("policyholder=P000002", {"policyholder_id": "P000002"}),
        (f"since={today}", {"since": today}),
        (f"until={today - dt.timedelta(days=1)}", {"until": today - dt.timedelta(days=1)}),
    ]
    for query, filters in checks:
        page = client.get(f"/audit?{query}")
        assert page.status_code == 200, query
        want = store.decisions(**filters)["id"].tolist()[::-1]
        assert _audit_total(page.text) == len(want), query
        assert _audit_ids(page.text) == want[:AUDIT_PAGE], query
    assert answer.json()["id"] in _audit_ids(client.get("/audit?user=boss").text)
    # Malformed filters are said and ignored, never an error.
    page = client.get("/audit?outcome=<b>bold</b>&since=yesterday")
    assert page.status_code == 200
    assert "unknown outcome" in page.text and "is not a date" in page.text
    assert "<b>bold</b>" not in page.text
    assert _audit_total(page.text) == len(store.decisions())
    # The full log, newest first.
    log = client.get("/audit?log=1")
    assert log.status_code == 200
    newest = store.audit()["id"].iat[-1]
    assert f"<tr><td>{newest}</td>" in log.text


def test_audit_csv_is_spreadsheet_safe(workbench_client, workbench_book):
    app = workbench_client.app
    store = bench_of(app).decisions
    reasons = ['=HYPERLINK("http://evil.example","click")', "@SUM(A1:A9)", "+cmd|' /C calc'!A0",
               "-2+3", "\tplain after a tab", "a fair, \"quoted\" reason"]  # fmt: skip
    items = fresh_items(app, len(reasons))
    ids = {}
    for item, reason in zip(items, reasons, strict=True):
        answer = client_of(app).post(
            "/api/decisions", headers=bearer(workbench_book, "boss"),
            json={"proposal_id": item, "outcome": "rejected", "reason": reason},
        )  # fmt: skip
        assert answer.status_code == 200, answer.text
        ids[answer.json()["id"]] = store.decision(answer.json()["id"]).reason
    client = browser(app, "vic")
    answer = client.get("/audit.csv?user=boss")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert answer.headers["content-disposition"].startswith("attachment;")
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert sorted(int(r["id"]) for r in rows) == sorted(store.decisions(decided_by="boss")["id"])
    by_id = {int(r["id"]): r for r in rows}
    for decision_id, reason in ids.items():
        shown = by_id[decision_id]["reason"]
        if reason.startswith(FORMULA_START):
            assert shown == "'" + reason
        else:
            assert shown == reason
    everything = client.get("/audit.csv").text
    for row in csv.reader(io.StringIO(everything)):
        for cell in row:
            if cell.startswith(FORMULA_START):
                float(cell)  # only a number may start so (a negative amount)
    assert len(list(csv.reader(io.StringIO(everything)))) == len(store.decisions()) + 1


def test_model_page_shows_the_champion(workbench_client, workbench_book):
    from models.registry import CHAMPION, ModelRegistry

    settings = workbench_book["settings"]
    champion = ModelRegistry(settings.mlflow_uri, settings.mlflow_artifacts).version_by_alias(
        CHAMPION
    )
    page = browser(workbench_client.app, "ana").get("/model")
    assert page.status_code == 200
    found = re.search(r"<td><strong>champion</strong></td><td>v(\w+)</td>", page.text)
    assert found and found.group(1) == str(champion.version)
    assert 'href="/model"' in page.text  # the analyst's navigation has it
    assert 'href="/model"' not in browser(workbench_client.app, "vic").get("/queue").text


# -- 4. safety -----------------------------------------------------------------------------


def test_hostile_names_are_escaped_everywhere(workbench_client, workbench_book):
    app = workbench_client.app
    view = bench_of(app).book.view()
    hostile = hostile_buyers(view)
    assert all(hostile.values()), "the book lost its hostile names"
    with_limits = [b for buyers in hostile.values() for b in buyers if b in view.limits]
    items = fresh_items(app, 3, buyers=with_limits)
    client = browser(app, "uw")
    pages = {}
    for query in ("human=all", "human=all&sort=limit"):
        for page in range(1, 20):
            answer = client.get(f"/queue?{query}&page={page}")
            pages[f"/queue?{query}&page={page}"] = answer
            if f"page {page} of {page}" in answer.text:
                break
    for buyers in hostile.values():
        for buyer in buyers:
            pages[f"/buyers/{buyer}"] = client.get(f"/buyers/{buyer}")
    for item in items:
        pages[f"/proposals/{item}"] = client.get(f"/proposals/{item}")
    for url in ("/audit", "/audit?log=1", f"/audit?buyer={with_limits[0]}"):
        pages[url] = client.get(url)
    for url, answer in pages.items():
        assert answer.status_code == 200, url
        assert answer.headers["content-type"].startswith("text/html"), url
        for raw in RAW_HOSTILE:
            assert raw not in answer.text, f"{url} shows {raw!r} unescaped"
    for buyers in hostile.values():
        for buyer in buyers:
            full = str(view.buyers.loc[buyer, "name"])
            assert str(markupsafe.escape(full)) in pages[f"/buyers/{buyer}"].text, buyer
    script = hostile[HOSTILE_NAMES[0]][0]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pages[f"/buyers/{script}"].text
    queue_text = "".join(a.text for u, a in pages.items() if u.startswith("/queue"))
    for item in items:
        buyer = bench_of(app).decisions.proposal(item).buyer_id
        assert str(markupsafe.escape(view.buyers.loc[buyer, "name"])) in queue_text
        assert (
            str(markupsafe.escape(view.buyers.loc[buyer, "name"]))
            in pages[f"/proposals/{item}"].text
        )
    # The API gives the name as data, as JSON (never rendered as a page).
    headers = bearer(workbench_book, "vic")
    for buyers in hostile.values():
        answer = client_of(app).get(f"/api/buyers/{buyers[0]}", headers=headers)
        assert answer.headers["content-type"] == "application/json"
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.json()["name"] == view.buyers.loc[buyers[0], "name"]
    queue = client_of(app).get("/api/queue?human=all&page_size=1000", headers=headers).json()
    names = {i["buyer_id"]: i["buyer_name"] for i in queue["items"]}
    for item in items:
        buyer = bench_of(app).decisions.proposal(item).buyer_id
        assert names[buyer] == view.buyers.loc[buyer, "name"]


def test_templates_autoescape():
    from flows.web.app import templates

    env = templates().env
    for name in ("queue.html", "buyer.html", "proposal.html", "audit.html", "message.html"):
        assert env.autoescape(name) if callable(env.autoescape) else env.autoescape
    rendered = env.get_template("message.html").render(
        request=None, title="<i>t</i>", message="<script>x</script>", user=None, csrf="c",
        messages=[], as_of=None, can=lambda p: False,
    )  # fmt: skip
    assert "<script>x</script>" not in rendered and "&lt;script&gt;x&lt;/script&gt;" in rendered


def test_security_headers_on_every_kind_of_response(workbench_client, workbench_book):
    app = workbench_client.app
    anonymous, signed_in = client_of(app), browser(app, "vic")
    view = bench_of(app).book.view()
    responses = {
        "login": anonymous.get("/login"),
        "redirect": anonymous.get("/queue"),
        "queue": signed_in.get("/queue"),
        "buyer": signed_in.get(f"/buyers/{view.buyers.index[0]}"),
        "unknown buyer": signed_in.get("/buyers/NOPE"),
        "refused": signed_in.get("/model"),
        "csv": signed_in.get("/audit.csv"),
        "api": anonymous.get("/api/queue", headers=bearer(workbench_book, "vic")),
        "api 401": anonymous.get("/api/queue"),
        "api 422": anonymous.get("/api/queue?page_size=0", headers=bearer(workbench_book, "vic")),
        "static": anonymous.get("/static/style.css"),
        "docs": anonymous.get("/docs"),
        "not found": anonymous.get("/no-such-page"),
        "health": anonymous.get("/healthz"),
    }
    for what, answer in responses.items():
        csp = answer.headers.get("content-security-policy", "")
        directives = dict([*d.strip().split(" ", 1), ""][:2] for d in csp.split(";") if d.strip())
        assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp, what
        assert directives.get("script-src") == "'self'", what
        assert directives.get("frame-ancestors") == "'none'", what
        assert directives.get("object-src") == "'none'", what
        assert answer.headers.get("x-content-type-options") == "nosniff", what
        assert answer.headers.get("x-frame-options") == "DENY", what
    for what in ("login", "queue", "buyer", "csv", "api"):
        assert responses[what].headers.get("cache-control") == "no-store", what
    for template in ("queue", "buyer"):  # nothing inline for the CSP to refuse
        text = responses[template].text
        assert "<script>" not in text and " style=" not in text and " onclick" not in text


def test_session_cookie_flags(workbench_client, workbench_book):
    client = client_of(workbench_client.app)
    answer = sign_in_as(client, "vic")
    assert answer.status_code == 303
    cookies = [v for k, v in answer.headers.multi_items() if k == "set-cookie"]
    (session,) = [c for c in cookies if c.startswith("workbench_session=")]
    flags = {part.strip().split("=", 1)[0].lower(): part.strip() for part in session.split(";")}
    assert "httponly" in flags
    assert flags["samesite"].lower() == "samesite=lax"
    assert "max-age" in flags and int(flags["max-age"].split("=")[1]) <= 12 * 3600
    assert "secure" not in flags  # plain HTTP in the tests: web_https_only is off
    # The password is not in the (signed, not encrypted) cookie.
    assert PASSWORDS["vic"] not in session


def test_secure_cookie_when_https_only(workbench_book):
    import dataclasses

    from flows.web.app import create_app

    settings = dataclasses.replace(workbench_book["settings"], web_https_only=True)
    with TestClient(create_app(settings, build_in_background=False),
                    base_url="https://testserver", follow_redirects=False) as client:  # fmt: skip
        answer = sign_in_as(client, "vic")
        assert answer.status_code == 303
        session = next(v for k, v in answer.headers.multi_items()
                       if k == "set-cookie" and v.startswith("workbench_session="))  # fmt: skip
        assert "secure" in [p.strip().lower() for p in session.split(";")]


def test_no_open_redirect_after_sign_in(workbench_client):
    app = workbench_client.app
    hostile = ["//evil.example", "https://evil.example", "http://evil.example/queue",
               "/\\evil.example", "\\\\evil.example", "/\t/evil.example", "/\n/evil.example",
               "javascript:alert(1)", "evil.example", ""]  # fmt: skip
    for target in hostile:
        client = client_of(app)
        page = client.get("/login", params={"next": target})
        assert page.status_code == 200
        answer = client.post(
            "/login",
            data={"username": "vic", "password": PASSWORDS["vic"], "next": target,
                  "csrf_token": csrf_of(page.text)},
        )  # fmt: skip
        assert answer.status_code == 303, target
        location = answer.headers["location"]
        stripped = re.sub(r"[\t\n\r]", "", location)  # browsers drop these in URLs
        assert stripped.startswith("/") and not stripped.startswith("//"), (target, location)
        assert "\\" not in location, (target, location)
        if not target.startswith("/") or target.startswith("//") or "\\" in target:
            assert location == "/queue", target
        # Signed in already: the sign-in page sends on, on this site only.
        again = client.get("/login", params={"next": target})
        assert again.status_code == 303 and not again.headers["location"].startswith("//")
    client = client_of(app)
    page = client.get("/login?next=/audit%3Foutcome%3Drejected")
    answer = client.post(
        "/login",
        data={"username": "vic", "password": PASSWORDS["vic"], "next": "/audit?outcome=rejected",
              "csrf_token": csrf_of(page.text)},
    )  # fmt: skip
    assert answer.headers["location"] == "/audit?outcome=rejected"
    # An anonymous visit remembers where it was going.
    redirect = client_of(app).get("/audit?outcome=rejected")
    assert redirect.headers["location"] == "/login?next=%2Faudit%3Foutcome%3Drejected"


def test_deactivated_user_is_signed_out_at_the_next_request(workbench_client, workbench_book):
    from flows.web.auth import hash_password, new_api_token

    app = workbench_client.app
    store = bench_of(app).decisions
    store.add_user("dee", "underwriter", authority_amount=10_000.0,
                   password_hash=hash_password("dee-password-1"))  # fmt: skip
    token, digest = new_api_token()
    store.set_api_token_hash("dee", digest)
    client = client_of(app)
    assert sign_in_as(client, "dee", "dee-password-1").status_code == 303
    assert client.get("/queue").status_code == 200
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/queue", headers=headers).status_code == 200
    with store.engine.begin() as connection:
        connection.execute(sa.update(USERS).where(USERS.c.name == "dee").values(active=False))
    answer = client.get("/queue")
    assert answer.status_code == 303 and answer.headers["location"].startswith("/login")
    assert client.get("/audit").status_code == 303
    assert client.get("/api/queue", headers=headers).status_code == 401
    assert sign_in_as(client, "dee", "dee-password-1").status_code == 401
    # And the cookie of the session is no use either when the user comes back.
    with store.engine.begin() as connection:
        connection.execute(sa.update(USERS).where(USERS.c.name == "dee").values(active=True))
    assert client.get("/queue").status_code == 303


def test_sign_out_ends_the_session(workbench_client):
    client = browser(workbench_client.app, "vic")
    page = client.get("/queue")
    assert page.status_code == 200
    assert client.post("/logout", data={}).status_code == 403  # needs the CSRF token
    assert client.get("/queue").status_code == 200
    answer = client.post("/logout", data={"csrf_token": csrf_of(page.text)})
    assert answer.status_code == 303 and answer.headers["location"] == "/login"
    assert client.get("/queue").status_code == 303


# -- 5. the cookie-signing key ---------------------------------------------------------------


def test_secret_key_generated_once_and_kept_private(tmp_path):
    from flows.web.auth import secret_key

    path = tmp_path / "nested" / "workbench-secret.key"
    key, generated = secret_key(None, path)
    assert generated and path.exists() and len(key) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().strip() == key
    again, generated_again = secret_key(None, path)
    assert again == key and generated_again
    other, _ = secret_key(None, tmp_path / "other.key")
    assert other != key
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left


def test_configured_secret_key_is_used_as_is(tmp_path):
    from flows.web.auth import secret_key

    configured = "k" * 40
    path = tmp_path / "workbench-secret.key"
    assert secret_key(configured, path) == (configured, False)
    assert not path.exists() and not list(tmp_path.iterdir())


def test_secret_key_setting():
    from flows.settings import Settings, SettingsError

    with pytest.raises(SettingsError, match="web_secret_key"):
        Settings(web_secret_key="short")
    secret = "s3cr3t-" + "z" * 40
    settings = Settings(web_secret_key=secret)
    mapping = settings.to_mapping()
    assert "web_secret_key" not in mapping
    assert secret not in json.dumps(mapping, default=str)
    assert secret not in repr(settings)
    assert "web_secret_key" not in Settings().to_mapping()
    with pytest.raises(SettingsError):
        Settings.from_env({"SOLVENCY_WEB_SECRET_KEY": "short"})
    assert Settings.from_env({"SOLVENCY_WEB_SECRET_KEY": secret}).web_secret_key == secret


# -- 6. the decision store's users and assignments (both backends) ------------------------


def _audit_rows(store, **filters) -> list[dict[str, Any]]:
    found = store.audit(**filters)
    return [{**row, "details": json.loads(row["details"])} for row in found.to_dict("records")]


def test_store_assignments(decision_store):
    store = decision_store
    store.add_user("ulla", "underwriter", authority_amount=100_000.0)
    store.add_user("otto", "underwriter", authority_amount=900_000.0)
    store.add_user("vera", "viewer")
    assert store.assignments().empty
    store.assign("P1", "B1", "ulla", actor="otto")
    store.assign("P1", "B2", "ulla", actor="ulla")
    store.assign("P2", "B1", "otto", actor="otto")
    found = store.assignments()
    assert list(zip(found["policyholder_id"], found["buyer_id"], found["assigned_to"],
                    found["assigned_by"], strict=True)) == [
        ("P1", "B1", "ulla", "otto"), ("P1", "B2", "ulla", "ulla"), ("P2", "B1", "otto", "otto"),
    ]  # fmt: skip
    assert found["assigned_at"].notna().all()
    # Replaced: still one assignment for the pair.
    store.assign("P1", "B1", "otto", actor="otto")
    pair = store.assignments(policyholder_id="P1", buyer_id="B1")
    assert pair["assigned_to"].tolist() == ["otto"]
    assert len(store.assignments()) == 3
    assert sorted(store.assignments(assigned_to="ulla")["buyer_id"]) == ["B2"]
    assert sorted(store.assignments(buyer_id="B1")["policyholder_id"]) == ["P1", "P2"]
    # Removed.
    store.assign("P1", "B2", None, actor="ulla")
    assert store.assignments(assigned_to="ulla").empty and len(store.assignments()) == 2
    # Refused: not an underwriter, no such user; nothing written.
    audit_before, kept = len(store.audit()), store.assignments()
    for who in ("nobody", "vera", "system"):
        with pytest.raises(UnknownUserError):
            store.assign("P1", "B1", who, actor="otto")
    with pytest.raises(DecisionStoreError):
        store.assign("", "B1", "otto", actor="otto")
    with pytest.raises(DecisionStoreError):
        store.assignments(nonsense="x")
    assert len(store.audit()) == audit_before
    pd.testing.assert_frame_equal(store.assignments(), kept)
    log = _audit_rows(store, entity="limit")
    assert [(r["action"], r["entity_id"], r["actor"], r["details"]["assigned_to"]) for r in log] == [
        ("assignment.set", "P1/B1", "otto", "ulla"),
        ("assignment.set", "P1/B2", "ulla", "ulla"),
        ("assignment.set", "P2/B1", "otto", "otto"),
        ("assignment.set", "P1/B1", "otto", "otto"),
        ("assignment.removed", "P1/B2", "ulla", None),
    ]  # fmt: skip


def test_store_password_hash(decision_store):
    store = decision_store
    store.add_user("pia", "analyst")
    assert store.user("pia").password_hash is None
    secret_hash = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"
    store.set_password_hash("pia", secret_hash, actor="admin")
    assert store.user("pia").password_hash == secret_hash
    assert secret_hash not in repr(store.user("pia"))
    (entry,) = _audit_rows(store, action="user.password_set")
    assert (entry["actor"], entry["entity"], entry["entity_id"]) == (
        "admin", "user", str(store.user("pia").id),
    )  # fmt: skip
    assert entry["details"] == {"name": "pia"}
    assert secret_hash not in store.audit().to_json(date_format="iso")
    audit_before = len(store.audit())
    with pytest.raises(UnknownUserError):
        store.set_password_hash("nobody", secret_hash)
    assert len(store.audit()) == audit_before


def test_store_user_by_token_hash(decision_store):
    store = decision_store
    store.add_user("tom", "underwriter", authority_amount=1.0)
    store.add_user("tim", "viewer")
    store.set_api_token_hash("tom", "hash-of-tom")
    store.set_api_token_hash("tim", "hash-of-tim")
    assert store.user_by_token_hash("hash-of-tom").name == "tom"
    assert store.user_by_token_hash("hash-of-tim").name == "tim"
    assert store.user_by_token_hash("hash-of-nobody") is None
    assert store.user_by_token_hash("") is None
    assert "hash-of-tom" not in store.audit().to_json(date_format="iso")
    with store.engine.begin() as connection:
        connection.execute(sa.update(USERS).where(USERS.c.name == "tom").values(active=False))
    assert store.user_by_token_hash("hash-of-tom") is None
    assert store.user("tom").active is False
    store.set_api_token_hash("tim", None)
    assert store.user_by_token_hash("hash-of-tim") is None
    assert [r["action"] for r in _audit_rows(store, entity="user")][-1] == "user.api_token_revoked"


def test_store_proposal_ids_beyond_the_key_type_are_unknown(decision_store):
    for unknown in (0, -1, 2**31 - 1, 2**31, 2**63 - 1, 2**63, 10**20):
        assert decision_store.proposal(unknown) is None, unknown
    with pytest.raises(DecisionStoreError):
        decision_store.proposal("1")


def test_store_log_event(decision_store):
    store = decision_store
    store.log_event("someone", "user.sign_in_refused", "user", None, {"client": "1.2.3.4"})
    (entry,) = _audit_rows(store, action="user.sign_in_refused")
    assert (entry["actor"], entry["entity_id"], entry["details"]) == (
        "someone", None, {"client": "1.2.3.4"},
    )  # fmt: skip
    with pytest.raises(DecisionStoreError):
        store.log_event("  ", "x", "user", None, {})


# -- pure units: queue, charts, auth, spreadsheet_safe -------------------------------------


def _items() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [1, 2, 3, 4, 5],
            "priority": [3, 1, 2, 5, 4],
            "policyholder_id": ["P1", "P1", "P2", "P2", "P3"],
            "buyer_id": ["B1", "B2", "B3", "B4", "B5"],
            "action": ["refer", "decrease", "refer", "cancel", "refer"],
            "proposed_action": ["increase", "decrease", "decrease", "cancel", "increase"],
            "human_required": [True, False, True, True, True],
            "country": ["DE", "FR", "DE", None, "PL"],
            "grade": [5, 7, 5, 10, 3],
            "new_today": [True, False, False, True, True],
            "limit_amount": [100.0, 500.0, 300.0, 300.0, 50.0],
            "el_change": [5.0, -40.0, -10.0, -300.0, 1.0],
            "deadline": pd.to_datetime(
                ["2026-12-05", "2026-12-01", None, "2026-12-02", "2026-12-03"]
            ),
            "assigned_to": ["uw", None, "boss", "uw", None],
        }
    )


def test_queue_filters_from_query_fall_back_to_defaults():
    from flows.web.queue import QueueFilters

    assert QueueFilters.from_query({}) == QueueFilters()
    junk = {"action": "drop table", "grade": "11", "page": "-3", "sort": "name", "human": "x",
            "new": "maybe", "mine": "0", "country": "de" * 50}  # fmt: skip
    parsed = QueueFilters.from_query(junk)
    assert (parsed.action, parsed.grade, parsed.page, parsed.sort, parsed.human) == (
        "", None, 1, "priority", "required",
    )  # fmt: skip
    assert not parsed.new and not parsed.mine and len(parsed.country) == 64
    assert parsed.country == parsed.country.upper()
    for grade in ("0", "abc", "1.5", "-1"):
        assert QueueFilters.from_query({"grade": grade}).grade is None
    assert QueueFilters.from_query({"grade": "10"}).grade == 10
    chosen = QueueFilters.from_query({"action": "cancel", "grade": "3", "new": "on",
                                      "mine": "true", "human": "all", "sort": "limit",
                                      "page": "4", "policyholder": " P1 ", "country": "pl"})  # fmt: skip
    assert chosen == QueueFilters("cancel", "P1", "PL", 3, "all", True, True, "limit", 4)
    assert QueueFilters.from_query(chosen.query()) == chosen  # links keep the filters
    assert QueueFilters().query() == {}
    assert chosen.query(page=1)["sort"] == "limit" and "page" not in chosen.query(page=1)


def test_filter_queue():
    from flows.web.queue import QueueFilters, filter_queue

    items = _items()

    def ids(**f) -> list[int]:
        return filter_queue(items, QueueFilters(**f), "uw")["id"].tolist()

    assert ids() == [3, 1, 5, 4]  # human decisions only, by priority
    assert ids(human="all") == [2, 3, 1, 5, 4]
    assert ids(action="refer") == [3, 1, 5]
    assert ids(action="decrease", human="all") == [2, 3]  # the proposal or the action
    assert ids(country="DE") == [3, 1]
    assert ids(grade=5) == [3, 1]
    assert ids(new=True) == [1, 5, 4]
    assert ids(mine=True) == [1, 4]
    assert ids(policyholder="P2") == [3, 4]
    assert ids(sort="limit", human="all") == [2, 3, 4, 1, 5]  # largest first, then priority
    assert ids(sort="el_change") == [4, 3, 5, 1]
    assert ids(sort="deadline") == [4, 5, 1, 3]  # no deadline last
    assert ids(action="refer", country="DE", grade=5, new=True, mine=True) == [1]
    assert filter_queue(items.iloc[0:0], QueueFilters(), "uw").empty


def test_page_of_and_counts():
    from flows.web.queue import counts_by_action, page_of

    frame = pd.DataFrame({"x": range(7)})
    rows, pages = page_of(frame, 1, 3)
    assert rows["x"].tolist() == [0, 1, 2] and pages == 3
    assert page_of(frame, 3, 3)[0]["x"].tolist() == [6]
    assert page_of(frame, 99, 3)[0]["x"].tolist() == [6]  # past the end: the last page
    assert page_of(frame.iloc[0:0], 1, 3)[1] == 1
    assert page_of(frame, 1, 7)[1] == 1 and page_of(frame, 1, 6)[1] == 2
    assert counts_by_action(_items()) == {"decrease": 2, "cancel": 1, "increase": 2}


def test_who_may_decide():
    from flows.web.queue import who_may_decide

    people = [("uw", 300_000.0), ("boss", 50_000_000.0), ("mid", 1_000_000.0), ("x", None)]
    assert who_may_decide(300_000, people) == ["boss", "mid", "uw"]  # equal authority suffices
    assert who_may_decide(300_000.01, people) == ["boss", "mid"]
    assert who_may_decide(60_000_000, people) == []
    assert who_may_decide(0, []) == []


def test_history_chart():
    from flows.web import charts

    assert charts.history_chart([]) is None
    points = [
        {"date": dt.date(2026, 11, d), "pd": pd_, "grade": g}
        for d, pd_, g in ((26, 0.01, 4), (27, 0.02, 5), (28, 0.005, 3), (29, 0.2, 9))
    ]
    chart = charts.history_chart(points)
    assert len(chart.dots) == len(points)
    xs = [d["x"] for d in chart.dots]
    ys = [d["y"] for d in chart.dots]
    assert xs == sorted(xs) and xs[0] == charts.LEFT and xs[-1] == charts.WIDTH - charts.RIGHT
    order = sorted(range(len(points)), key=lambda i: points[i]["pd"])
    assert [ys[i] for i in order] == sorted(ys, reverse=True)  # higher PD: higher on the chart
    assert all(charts.TOP <= y <= charts.HEIGHT - charts.BOTTOM for y in ys)
    # Log scale: equal ratios, equal distances.
    low, high = chart.pd_ticks[0], chart.pd_ticks[1]
    assert low["label"] == "0.03 %" and high["label"] == "0.1 %"
    assert len(chart.pd_line.split()) == len(points)
    assert len(chart.grade_line.split()) == 2 * len(points) - 1  # a step per change
    # Both lines rise with the risk: grade 10 at the top, grade 1 at the bottom.
    grade_y = {t["label"]: t["y"] for t in chart.grade_ticks}
    assert grade_y["10"] == charts.TOP and grade_y["1"] == charts.HEIGHT - charts.BOTTOM
    steps = [tuple(map(float, xy.split(","))) for xy in chart.grade_line.split()]
    at_points = [steps[0], *steps[2::2]]  # each point's own corner, after the step into it
    assert [x for x, _ in at_points] == pytest.approx(xs, abs=0.1)
    by_grade = sorted(range(len(points)), key=lambda i: points[i]["grade"])
    assert [at_points[i][1] for i in by_grade] == sorted((y for _, y in at_points), reverse=True)
    assert "PD 0.50 %, grade 3" in chart.dots[2]["label"]
    single = charts.history_chart(points[:1])
    assert single.dots[0]["x"] == round(charts.LEFT + (charts.WIDTH - charts.LEFT
                                                       - charts.RIGHT) / 2, 1)  # fmt: skip
    extreme = charts.history_chart([{**points[0], "pd": 1.0}, {**points[1], "pd": 1e-9}])
    assert all(math.isfinite(d["y"]) for d in extreme.dots)


def test_passwords_tokens_and_permissions():
    from flows.web import auth

    hashed = auth.hash_password("correct horse")
    assert hashed.startswith("$argon2id$") and "correct horse" not in hashed
    assert auth.verify_password(hashed, "correct horse")
    assert not auth.verify_password(hashed, "correct horsE")
    assert not auth.verify_password(None, "correct horse")
    assert not auth.verify_password("not a hash", "correct horse")
    with pytest.raises(ValueError):
        auth.hash_password("short")
    token, digest = auth.new_api_token()
    assert token.startswith("sv_") and len(token) > 40 and digest == auth.token_hash(token)
    assert len(digest) == 64 and token not in digest
    assert auth.new_api_token()[0] != token
    assert auth.same_token("abc", "abc") and not auth.same_token("abc", "abd")
    assert not auth.same_token(None, None) and not auth.same_token("", "")
    assert not auth.same_token("abc", None)
    for role in auth.WEB_ROLES:
        assert auth.allowed(role, "read")
    assert [r for r in auth.WEB_ROLES if auth.allowed(r, "decide")] == ["underwriter"]
    assert [r for r in auth.WEB_ROLES if auth.allowed(r, "model")] == ["analyst"]
    assert not auth.allowed(None, "read") and not auth.allowed("system", "read")
    with pytest.raises(KeyError):
        auth.allowed("underwriter", "no such permission")


def test_sign_in_throttle(monkeypatch):
    from flows.web import auth

    clock = [1000.0]
    monkeypatch.setattr(auth.time, "monotonic", lambda: clock[0])
    throttle = auth.SignInThrottle(attempts=3, window=60.0)
    for _ in range(2):
        throttle.failed("Uw")
    assert throttle.blocked_for("uw") == 0.0
    throttle.failed("UW")
    assert throttle.blocked_for("uw") == pytest.approx(60.0)
    assert throttle.blocked_for("boss") == 0.0
    clock[0] += 30
    assert throttle.blocked_for("uw") == pytest.approx(30.0)
    clock[0] += 31
    assert throttle.blocked_for("uw") == 0.0  # the window has passed
    for _ in range(3):
        throttle.failed("uw")
    throttle.succeeded("uw")
    assert throttle.blocked_for("uw") == 0.0


def test_sign_in_throttle_in_the_app(workbench_client):
    from flows.web.auth import SignInThrottle

    app = workbench_client.app
    attempts = SignInThrottle().attempts
    client = client_of(app)
    for _ in range(attempts):
        assert sign_in_as(client, "ana", "wrong-password").status_code == 401
    answer = sign_in_as(client, "ana")  # the right password, too late
    assert answer.status_code == 429 and "Too many failed sign-ins" in answer.text
    assert client.get("/queue").status_code == 303
    assert sign_in_as(client_of(app), "vic").status_code == 303  # others are not locked out


def test_spreadsheet_safe():
    from data.lake import spreadsheet_safe

    frame = pd.DataFrame(
        {
            "text": ["=1+1", "+1", "-cmd", "@SUM(A1)", "\tx", "\rx", "plain", None, "a=b"],
            "number": [-1.5, 2.0, -3.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0],
            "typed": pd.array(["=x", "y", None, "-z", "ok", "@", "", "+", "q"], dtype="string"),
        }
    )
    original = frame.copy()
    safe = spreadsheet_safe(frame)
    pd.testing.assert_frame_equal(frame, original)  # the input is left alone
    for column in ("text", "typed"):
        for before, after in zip(frame[column], safe[column], strict=True):
            if isinstance(before, str) and before.startswith(FORMULA_START):
                assert after == "'" + before
            elif pd.isna(before):
                assert pd.isna(after)
            else:
                assert after == before
    pd.testing.assert_series_equal(safe["number"], frame["number"])
    assert spreadsheet_safe(pd.DataFrame({"a": []})).empty


# -- answers that must agree with what was recorded ----------------------------------------


def test_request_below_the_limit_answer_is_consistent(workbench_client, workbench_book):
    app = workbench_client.app
    store, view = bench_of(app).decisions, bench_of(app).book.view()
    taken = taken_pairs(store, bench_of(app).context().as_of)
    policyholder, buyer, limit, _ = next(
        p for p in book_pairs(view) if (p[0], p[1]) not in taken and p[2] >= 20_000
    )
    answer = client_of(app).post(
        "/api/limit-requests", headers=bearer(workbench_book, "uw"),
        json={"policyholder_id": policyholder, "buyer_id": buyer, "amount": limit / 2},
    )  # fmt: skip
    assert answer.status_code == 200, answer.text
    got = answer.json()
    decision = store.decision(got["decision_id"])
    said_declined = "declined" in got["explanation"] or decision.rule == "request_declined"
    assert (got["status"] == "declined") == said_declined, (got, decision.rule)
    assert (got["status"], decision.rule) == ("granted", "request_covered")


def test_decision_recorded_while_another_applies_is_reported_recorded(
    workbench_client, monkeypatch
):
    from flows.underwriting import apply_decisions

    app = workbench_client.app
    bench = bench_of(app)
    store = bench.decisions
    (item,) = fresh_items(app, max_limit=200_000)
    client = browser(app, "uw")
    read_pending = store.unapplied_decisions
    interleaved = []

    def another_request_applies_meanwhile():
        pending = read_pending()
        if not interleaved and len(pending):
            interleaved.append(True)
            apply_decisions(bench.context(), store)  # e.g. a granted request's background apply
        return pending

    monkeypatch.setattr(store, "unapplied_decisions", another_request_applies_meanwhile)
    answer = _decide_form(client, item, outcome="reject", reason="keep the limit")
    assert interleaved and store.proposal(item).status == "decided"  # it was recorded...
    assert answer.status_code == 303, answer.text[:300]  # ...so the page must not say otherwise


def test_book_view_follows_a_newly_published_run(workbench_client):
    import os

    app = workbench_client.app
    bench = bench_of(app)
    first = bench.book.view()
    ctx = bench.context()
    pointer = ctx.store.pointer_path(ctx.store.dates_with("scores.parquet")[-1])
    stamp = pointer.stat().st_mtime_ns
    os.utime(pointer, ns=(stamp + 10**9, stamp + 10**9))  # as a rerun of the day does
    client = browser(app, "vic")
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline and bench.book.view() is first:
        assert client.get("/queue").status_code == 200
        time.sleep(0.2)
    assert bench.book.view() is not first
