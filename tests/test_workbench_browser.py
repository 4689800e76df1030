"""The workbench in a real browser (Chromium headless, driven by Playwright): what an
underwriter, an analyst and a viewer see and can do, end to end through uvicorn.

Every test opens fresh browser contexts (no session leaks between tests) on the module's
`live_workbench`; the decisions one test takes stay in the module's book, so tests pick their
queue items from the decision store's open ones rather than by position. Every page of the
suite records JavaScript dialogs and script errors: the hostile buyer names of the generated
data (`<script>alert(1)</script> Holding 0`, ...) must render as text and never run.

Needs Debian's `chromium-headless-shell` (Playwright's own browsers cannot be downloaded
here): skipped when it is missing, except under CI, where a missing browser fails.
"""

from __future__ import annotations

import os
import re
from urllib.parse import parse_qs, urlparse

import pytest

from tests.web_fixtures import ACCOUNTS, HOSTILE_NAMES, PASSWORDS

CHROMIUM = "/usr/bin/chromium-headless-shell"
#: How long a page may take to answer (ms): generous for a loaded CI machine.
TIMEOUT = 20_000
DECIDE_BUTTON = "Record the decision"


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for the module."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        reason = (
            f"no browser at {CHROMIUM}: install Debian's chromium-headless-shell "
            "(apt-get install chromium-headless-shell) to run the workbench's browser tests"
        )
        if os.environ.get("CI"):
            pytest.fail(reason + " (under CI the browser tests may not be skipped)")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def store(workbench_book):
    from data.decisions import DecisionStore

    with DecisionStore(workbench_book["settings"].decision_db_url) as found:
        yield found


@pytest.fixture(scope="module")
def buyer_names(workbench_book) -> dict[str, str]:
    """buyer_id -> name, as the generated data has it (hostile names included)."""
    from data.lake import Lake

    buyers = Lake(workbench_book["lake"]).read("buyers")
    return dict(zip(buyers["buyer_id"].astype(str), buyers["name"].astype(str), strict=True))


class Pages:
    """Opens pages in fresh browser contexts on the live workbench and records, on every one,
    the JavaScript dialogs (an injected `alert`) and script errors it saw."""

    def __init__(self, browser, base_url: str) -> None:
        self.browser = browser
        self.base_url = base_url
        self.contexts: list = []
        self.dialogs: list[str] = []
        self.errors: list[str] = []

    def new(self, user: str | None = None):
        """A page in a new context, signed in as `user` through the form (if given)."""
        context = self.browser.new_context(base_url=self.base_url)
        context.set_default_timeout(TIMEOUT)
        self.contexts.append(context)
        page = context.new_page()
        page.on("dialog", self._dialog)
        page.on("pageerror", lambda exc: self.errors.append(f"{page.url}: {exc}"))
        page.on("console", lambda msg: self._console(page, msg))
        if user is not None:
            sign_in(page, user)
        return page

    def _dialog(self, dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message} on {dialog.page.url}")
        dialog.dismiss()

    def _console(self, page, msg) -> None:
        # A refused page (401, 403) logs "Failed to load resource": that is the test's point.
        if msg.type == "error" and "Failed to load resource" not in msg.text:
            self.errors.append(f"{page.url}: {msg.text}")

    def close(self) -> None:
        for context in self.contexts:
            context.close()


@pytest.fixture
def pages(browser, live_workbench):
    """Fresh contexts for one test; afterwards no page may have shown a dialog or run into
    a script error (a Content-Security-Policy violation included)."""
    opened = Pages(browser, live_workbench)
    yield opened
    opened.close()
    assert opened.dialogs == [], f"JavaScript dialogs fired: {opened.dialogs}"
    assert opened.errors == [], f"script errors or CSP violations: {opened.errors}"


def sign_in(page, user: str) -> None:
    page.goto("/login")
    page.locator("input[name=username]").fill(user)
    page.locator("input[name=password]").fill(PASSWORDS[user])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/queue")
    assert page.locator("#who").inner_text().startswith(f"{user} · {ACCOUNTS[user][0]}")


def path_of(page) -> str:
    return urlparse(page.url).path


def open_item(store, **filters) -> dict:
    """An open queue item a human must decide (the store's highest priority first)."""
    items = store.open_proposals(human_required=True, **filters)
    assert len(items), "the generated book has no open queue item left to test with"
    return items.iloc[0].to_dict()


def decide_response(page):
    """Waits for the answer to the decide form's POST (a redirect or the refused page)."""
    return page.expect_response(
        lambda r: r.request.method == "POST" and r.url.endswith("/decide"), timeout=TIMEOUT
    )


def csrf_on(page) -> str:
    """The session's CSRF token, from the page's sign-out form."""
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    assert token
    return token


# -- sign-in -----------------------------------------------------------------------------------


def test_sign_in_lands_on_the_queue_and_a_wrong_password_stays_on_login(pages):
    page = pages.new()
    response = page.goto("/queue")
    assert path_of(page) == "/login", "an anonymous visitor is sent to sign in"
    assert response is not None and response.ok
    assert parse_qs(urlparse(page.url).query)["next"] == ["/queue"]

    page.locator("input[name=username]").fill("uw")
    page.locator("input[name=password]").fill("not-the-password")
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.get_by_role("button", name="Sign in").click()
    assert answer.value.status == 401
    page.wait_for_load_state()
    assert path_of(page) == "/login"
    assert page.get_by_role("alert").inner_text() == "Unknown user name or wrong password."
    assert page.locator("input[name=username]").input_value() == "uw", "the name is kept"
    assert page.locator("input[name=password]").input_value() == "", "the password is not"
    assert page.locator("#who").count() == 0

    page.locator("input[name=password]").fill(PASSWORDS["uw"])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/queue")
    assert page.locator("h1").first.inner_text().startswith("Queue")
    who = page.locator("#who").inner_text()
    assert re.fullmatch(r"uw · underwriter · authority EUR 300\s?k", who), who
    assert page.get_by_role("link", name="Audit trail").is_visible()


# -- the queue ---------------------------------------------------------------------------------


def heading_count(page) -> int:
    """N of the queue's heading "Queue N item(s) [of M]"."""
    found = re.match(r"([\d,]+) item\(s\)", page.locator("h1 .muted").inner_text())
    assert found, page.locator("h1").inner_text()
    return int(found.group(1).replace(",", ""))


def test_filter_the_queue_by_action(pages, store):
    page = pages.new("uw")
    filters = page.locator("#filters")
    filters.get_by_label("also items the system may decide").check()
    filters.get_by_role("button", name="Apply").click()
    page.wait_for_url(re.compile(r"/queue\?.*human=all"))
    assert filters.get_by_label("also items the system may decide").is_checked()
    everything_open = store.open_proposals()
    assert heading_count(page) == len(everything_open)

    chips = page.locator(".counts a.chip")
    assert chips.count() >= 1, "the counts show the proposed actions of the open items"
    action, count = chips.first.inner_text().rsplit(" ", 1)
    filters.locator("select[name=action]").select_option(action)
    filters.get_by_role("button", name="Apply").click()
    page.wait_for_url(re.compile(rf"/queue\?.*action={action}"))

    query = parse_qs(urlparse(page.url).query)
    assert query["action"] == [action] and query["human"] == ["all"]
    assert filters.locator("select[name=action]").input_value() == action, "the choice is kept"
    assert filters.get_by_label("also items the system may decide").is_checked()
    rows = page.locator("#queue tbody tr")
    shown = [c.strip() for c in rows.locator("td:nth-child(7) .chip").all_inner_texts()]
    assert shown and set(shown) == {action}, shown
    total = heading_count(page)
    assert total == int(count.replace(",", ""))
    if total < 50:  # one page
        assert rows.count() == total
    expected = everything_open.loc[
        (everything_open["proposed_action"] == action) | (everything_open["action"] == action)
    ]
    assert sorted(int(i) for i in rows.evaluate_all("rs => rs.map(r => r.dataset.id)")) == sorted(
        expected["id"].astype(int)
    )

    # an action no open item proposes: nothing shown, and the page says so
    options = filters.locator("select[name=action] option").all_inner_texts()
    present = set(everything_open["action"]) | set(everything_open["proposed_action"])
    absent = [o for o in options if o != "any" and o not in present]
    assert absent, "every action has open items: pick another filter nothing matches"
    filters.locator("select[name=action]").select_option(absent[0])
    filters.get_by_role("button", name="Apply").click()
    page.wait_for_url(re.compile(rf"/queue\?.*action={absent[0]}"))
    assert heading_count(page) == 0
    assert page.get_by_text("Nothing to decide with these filters.").is_visible()
    assert page.locator("#queue").count() == 0

    page.get_by_role("link", name="reset").click()
    page.wait_for_url(re.compile(r"/queue$"))
    assert not filters.get_by_label("also items the system may decide").is_checked()


# -- the buyer page ----------------------------------------------------------------------------


def test_open_a_buyer_from_the_queue(pages, buyer_names):
    page = pages.new("uw")
    link = page.locator("#queue a.buyer").first
    name = link.inner_text()
    buyer_id = link.locator("xpath=..").locator(".muted").inner_text()
    assert name == buyer_names[buyer_id], "the queue shows the buyer's name as given"
    link.click()
    page.wait_for_url(f"**/buyers/{buyer_id}")
    assert page.locator("#buyer-name").inner_text() == name
    assert page.title().startswith(name)
    chart = page.locator("svg.chart")
    assert chart.is_visible()
    assert chart.locator("polyline.pd-line").get_attribute("points")
    assert chart.locator("circle.dot").count() >= 1
    limits = page.locator("section", has=page.get_by_role("heading", name="Limits across"))
    assert limits.locator("tbody tr").count() >= 1
    assert "EUR" in limits.locator("tbody tr").first.inner_text()
    assert page.get_by_role("heading", name="Open queue items").is_visible()


def test_hostile_buyer_names_render_as_text(pages, buyer_names):
    page = pages.new("uw")
    # In the queue: every buyer link's text is the name as given, whatever it contains.
    page.goto("/queue?human=all")
    for row in page.locator("#queue tbody tr").all():
        buyer_id = row.locator("td:nth-child(3) .muted").inner_text()
        assert row.locator("a.buyer").inner_text() == buyer_names[buyer_id]
    # On the buyer page: one buyer of each hostile name.
    hostile = {}
    for buyer_id, name in buyer_names.items():
        for bad in HOSTILE_NAMES:
            if name.startswith(bad):
                hostile.setdefault(bad, buyer_id)
    assert len(hostile) == len(HOSTILE_NAMES)
    for buyer_id in hostile.values():
        page.goto(f"/buyers/{buyer_id}")
        assert page.locator("#buyer-name").inner_text() == buyer_names[buyer_id]
        assert page.title().startswith(buyer_names[buyer_id])
        assert page.locator("script").count() == 0, "no script made it into the page"
        assert page.locator("img").count() == 0, "no element made it into the page"
        assert page.locator("#buyer-name *").count() == 0
    # The page fixture then checks that no dialog fired and no script error occurred.


# -- deciding ----------------------------------------------------------------------------------


def test_decide_within_authority_and_see_it_in_the_audit_trail(pages, store):
    item = open_item(store)
    before = len(store.decisions())
    page = pages.new("boss")
    row = page.locator(f'#queue tbody tr[data-id="{item["id"]}"]')
    row.get_by_role("link", name="Decide").click()
    page.wait_for_url(re.compile(rf"/proposals/{item['id']}\?back="))
    assert page.locator("h1").inner_text().startswith(f"Item {item['id']}:")
    assert page.locator("#authority").count() == 0, "boss holds the authority"
    form = page.locator("form#decide")
    form.get_by_label("Accept").check()
    form.locator("textarea[name=reason]").fill("payments back on terms; browser test")
    with decide_response(page) as answer:
        form.get_by_role("button", name=DECIDE_BUTTON).click()
    assert answer.value.status == 303
    page.wait_for_url(re.compile(r"/queue(\?|$)"))
    flash = page.get_by_role("status")
    found = re.match(r"Decision (\d+) recorded: accepted", flash.inner_text())
    assert found, flash.inner_text()
    decision_id = int(found.group(1))
    assert page.locator(f'#queue tbody tr[data-id="{item["id"]}"]').count() == 0

    record = store.decision(decision_id)
    assert record is not None
    assert record.decided_by == "boss" and record.outcome == "accepted"
    assert record.proposal_id == item["id"]
    assert record.decided_amount == pytest.approx(item["recommended_amount"], abs=0.01)
    assert record.reason == "payments back on terms; browser test"
    assert len(store.decisions()) == before + 1
    assert store.proposal(item["id"]).status != "open"

    page.get_by_role("link", name="Audit trail").click()
    page.wait_for_url("**/audit")
    first_cell = page.locator("td:first-child", has_text=re.compile(rf"^{decision_id}$"))
    audit_row = page.locator("#audit tbody tr", has=first_cell)
    assert audit_row.count() == 1
    cells = audit_row.locator("td").all_inner_texts()
    assert cells[2] == "boss" and cells[3] == "accepted"
    assert cells[4] == item["policyholder_id"] and cells[5] == item["buyer_id"]
    assert "payments back on terms" in cells[10]

    # the item's page now says it is decided, and offers no form
    page.goto(f"/proposals/{item['id']}")
    assert "accepted by boss" in page.locator("#decided").inner_text()
    assert page.locator("form#decide").count() == 0


def test_a_limit_above_authority_is_refused(pages, store):
    authority = ACCOUNTS["uw"][1]
    above = store.open_proposals(human_required=True)
    above = above.loc[above["recommended_amount"] > authority]
    item = above.iloc[0].to_dict() if len(above) else open_item(store)
    before = len(store.decisions())
    page = pages.new("uw")
    page.goto(f"/proposals/{item['id']}")
    form = page.locator("form#decide")
    if item["recommended_amount"] > authority:
        assert "above your authority" in page.locator("#authority").inner_text()
        assert form.get_by_label("Accept").is_disabled()
    form.get_by_label("Modify").check()
    form.locator("input[name=amount]").fill("5,000,000")
    form.locator("textarea[name=reason]").fill("a larger limit, please")
    with decide_response(page) as answer:
        form.get_by_role("button", name=DECIDE_BUTTON).click()
    assert answer.value.status == 403
    page.wait_for_load_state()
    refusal = page.locator("#refusal")
    assert refusal.is_visible()
    assert "above your authority EUR 300,000" in refusal.inner_text()
    assert "Nothing was written" in refusal.inner_text()
    # the form keeps what was typed
    assert page.locator("form#decide").get_by_label("Modify").is_checked()
    assert page.locator("input[name=amount]").input_value() == "5,000,000"
    assert page.locator("textarea[name=reason]").input_value() == "a larger limit, please"
    assert len(store.decisions()) == before
    assert store.proposal(item["id"]).status == "open"


def test_a_post_without_the_csrf_token_is_refused(pages, store):
    item = open_item(store)
    before = len(store.decisions())
    page = pages.new("boss")
    page.goto(f"/proposals/{item['id']}")
    good = csrf_on(page)
    form = {"outcome": "reject", "reason": "forged", "back": "/queue"}
    for token in (None, "", good[::-1], "x"):
        data = form if token is None else {**form, "csrf_token": token}
        answer = page.request.post(f"/proposals/{item['id']}/decide", form=data, max_redirects=0)
        assert answer.status == 403, (token, answer.status)
        assert "Form refused" in answer.text()
    # the same from the page's own script context (what a forged form would do)
    status = page.evaluate(
        """async (url) => {
            const body = new URLSearchParams({outcome: "reject", reason: "forged"});
            const r = await fetch(url, {method: "POST", body, redirect: "manual"});
            return r.status;
        }""",
        f"/proposals/{item['id']}/decide",
    )
    assert status == 403
    assert len(store.decisions()) == before
    assert store.proposal(item["id"]).status == "open"
    # the session is still good: the proper form works
    assert page.locator("form#decide").is_visible()


# -- signing out, roles -----------------------------------------------------------------------


def test_sign_out(pages):
    page = pages.new("uw")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/login")
    assert page.get_by_role("status").inner_text() == "You are signed out."
    assert page.locator("#who").count() == 0
    page.goto("/queue")
    assert path_of(page) == "/login"
    assert page.get_by_role("button", name="Sign in").is_visible()
    page.goto("/audit")
    assert path_of(page) == "/login"


def test_a_viewer_reads_but_cannot_decide(pages, store):
    item = open_item(store)
    before = len(store.decisions())
    page = pages.new("vic")
    assert page.locator("#who").inner_text() == "vic · viewer"
    rows = page.locator("#queue tbody tr")
    assert rows.count() >= 1, "a viewer sees the queue"
    assert page.get_by_role("link", name="Decide").count() == 0
    assert page.get_by_role("link", name="view").count() == rows.count()
    assert page.get_by_role("link", name="Model").count() == 0
    assert page.get_by_label("assigned to me").count() == 0

    page.goto(f"/proposals/{item['id']}")
    assert page.locator("h1").inner_text().startswith(f"Item {item['id']}:")
    assert page.locator("form#decide").count() == 0
    assert page.get_by_role("button", name=DECIDE_BUTTON).count() == 0

    answer = page.request.post(
        f"/proposals/{item['id']}/decide",
        form={"csrf_token": csrf_on(page), "outcome": "reject", "reason": "not mine to"},
        max_redirects=0,
    )
    assert answer.status == 403
    assert "does not allow" in answer.text()
    assert len(store.decisions()) == before
    response = page.goto("/model")
    assert response is not None and response.status == 403


def test_an_analyst_sees_the_model_page(pages):
    page = pages.new("ana")
    assert page.get_by_role("link", name="Decide").count() == 0
    page.get_by_role("link", name="Model").click()
    page.wait_for_url("**/model")
    assert page.locator("h1").inner_text() == "PD model versions"
    models = page.locator("#models tbody tr")
    assert models.count() >= 1
    assert models.first.locator("td").first.inner_text() == "champion"
    assert page.locator(".flash.error").count() == 0

    underwriter = pages.new("uw")
    assert underwriter.get_by_role("link", name="Model").count() == 0
    response = underwriter.goto("/model")
    assert response is not None and response.status == 403
