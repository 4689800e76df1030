"""The workbench on a small generated book, for the web tests (in-process and in a browser).

`workbench_book` (one per module): the generated book of `book_fixtures` with hostile buyer
names put into the generated data (script tags, attribute breakers, a spreadsheet formula),
four daily runs with their proposals and automatic decisions, and four accounts:

| name | role | authority (EUR) |
|---|---|---|
| uw | underwriter | 300,000 |
| boss | underwriter | 50,000,000 |
| ana | analyst | – |
| vic | viewer | – |

each with the password `PASSWORDS[name]` and an API token in `book["tokens"][name]`.
`workbench_client` signs nobody in; `sign_in(client, name)` does it through the form.
`live_workbench` serves the app with uvicorn on a free local port (for Playwright).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import socket
import threading
import time

import pytest

from tests.book_fixtures import BASE, END, context_for, make_book

HOSTILE_NAMES = (
    "<script>alert(1)</script> Holding",
    '"><img src=x onerror=alert(2)> Trading',
    '=HYPERLINK("http://evil.example","click") GmbH',
)
PASSWORDS = {"uw": "uw-password-1", "boss": "boss-password-1", "ana": "ana-password-1",
             "vic": "vic-password-1"}  # fmt: skip
ACCOUNTS = {"uw": ("underwriter", 300_000.0), "boss": ("underwriter", 50_000_000.0),
            "ana": ("analyst", None), "vic": ("viewer", None)}  # fmt: skip
SECRET = "test-secret-key-" + "x" * 32


def hostile_names(tables) -> None:
    """Every fifth generated buyer gets a hostile name (as a source system could send)."""
    buyers = tables["buyers"]
    names = buyers["name"].astype(object).copy()
    for k, i in enumerate(range(0, len(buyers), 5)):
        names.iat[i] = f"{HOSTILE_NAMES[k % len(HOSTILE_NAMES)]} {i}"
    buyers["name"] = names


@pytest.fixture(scope="module")
def workbench_book(tmp_path_factory):
    from data.decisions import DecisionStore
    from flows.daily import daily_rescore_flow
    from flows.web.auth import hash_password, new_api_token

    book = make_book(tmp_path_factory.mktemp("workbench"), edit=hostile_names)
    day = BASE + dt.timedelta(days=1)
    while day <= END:
        daily_rescore_flow(context_for(book, day))
        day += dt.timedelta(days=1)
    settings = dataclasses.replace(book["settings"], web_secret_key=SECRET)
    tokens = {}
    with DecisionStore(settings.decision_db_url) as store:
        for name, (role, authority) in ACCOUNTS.items():
            store.add_user(name, role, authority_amount=authority,
                           password_hash=hash_password(PASSWORDS[name]))  # fmt: skip
            token, digest = new_api_token()
            store.set_api_token_hash(name, digest)
            tokens[name] = token
    return {**book, "settings": settings, "tokens": tokens}


@pytest.fixture
def workbench_client(workbench_book):
    """A TestClient on the workbench (the book view read before the first request)."""
    from fastapi.testclient import TestClient

    from flows.web.app import create_app

    app = create_app(workbench_book["settings"], build_in_background=False)
    with TestClient(app) as client:
        yield client


def csrf_of(html: str) -> str:
    """The CSRF token of the first form on a page."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


def sign_in(client, name: str) -> None:
    page = client.get("/login")
    answer = client.post(
        "/login",
        data={"username": name, "password": PASSWORDS[name], "csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def live_workbench(workbench_book):
    """The workbench served by uvicorn in a thread: its base URL."""
    import uvicorn

    from flows.web.app import create_app

    app = create_app(workbench_book["settings"], build_in_background=False)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the workbench did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
