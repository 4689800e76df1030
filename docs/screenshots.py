"""The README's screenshots of the workbench, taken from the demo book.

    make demo                              # once: the demo lake, model, decision store
    uv run python docs/screenshots.py      # writes docs/workbench-queue.png, -buyer.png

Starts the workbench on the configured settings (as `solvency ui` would, read against this
checkout) with uvicorn on a free local port, signs the demo underwriter in with Chromium
headless (Debian's `chromium-headless-shell`) and saves the queue (one screen, 1440x900) and
the buyer page of the queue's first item (the whole page, cut at `MAX_HEIGHT`).

The demo underwriter (`demo-underwriter`) is made when missing, with a random password that
is never printed. When it already has a password (the one `make demo` showed once), the
script does not change it: it signs in through a one-off address of its own instance of the
app (a random path, on 127.0.0.1, for this run only) instead of the sign-in form.
"""

import secrets
import socket
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CHROMIUM = "/usr/bin/chromium-headless-shell"
UNDERWRITER = "demo-underwriter"
VIEWPORT = {"width": 1440, "height": 900}
#: The buyer page is cut here (px): the README shows its top, not every table.
MAX_HEIGHT = 2600
QUEUE_PNG = ROOT / "docs" / "workbench-queue.png"
BUYER_PNG = ROOT / "docs" / "workbench-buyer.png"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def demo_account(store) -> str | None:
    """The demo underwriter's password when this script set it (the account had none),
    else None (it keeps the password it has)."""
    from flows.cli.demo import workbench_account

    return workbench_account(store)


def add_one_off_sign_in(app, user: str) -> str:
    """A secret path on this process's app that signs `user` in (for when the script does
    not know the password); it exists only in this script's instance of the app. (No
    `from __future__ import annotations` in this file: FastAPI must see `Request` itself.)"""
    from fastapi import Request
    from fastapi.responses import RedirectResponse

    from flows.web.auth import new_csrf_token

    path = f"/_screenshots/{secrets.token_urlsafe(24)}"

    @app.get(path, include_in_schema=False)
    def sign_in(request: Request) -> RedirectResponse:
        request.session.clear()
        request.session["user"] = user
        request.session["csrf"] = new_csrf_token()
        return RedirectResponse("/queue", status_code=303)

    return path


def serve(app):
    """uvicorn serving `app` in a thread: (server, base URL)."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 300  # the book view of a large demo takes a while
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise SystemExit("the workbench did not start (see the messages above)")
        time.sleep(0.1)
    return server, thread, f"http://127.0.0.1:{port}"


def main() -> None:
    from playwright.sync_api import sync_playwright

    from data.decisions import DecisionStore
    from flows.settings import Settings
    from flows.web.app import create_app

    if not Path(CHROMIUM).exists():
        raise SystemExit(f"no browser at {CHROMIUM}: apt-get install chromium-headless-shell")
    settings = Settings.from_env().anchored(ROOT)
    if not Path(settings.lake_dir).exists():
        raise SystemExit(f"no lake at {settings.lake_dir}: run `make demo` first")
    with DecisionStore(settings.decision_db_url) as store:
        if store.url.get_backend_name() == "sqlite":
            store.upgrade()
        password = demo_account(store)

    app = create_app(settings, build_in_background=False)
    one_off = None if password else add_one_off_sign_in(app, UNDERWRITER)
    server, thread, base = serve(app)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM)
            context = browser.new_context(base_url=base, viewport=VIEWPORT)
            page = context.new_page()
            if password:
                page.goto("/login")
                page.locator("input[name=username]").fill(UNDERWRITER)
                page.locator("input[name=password]").fill(password)
                page.get_by_role("button", name="Sign in").click()
            else:
                page.goto(one_off)
            page.wait_for_url("**/queue")
            if page.locator("#who").count() == 0:
                raise SystemExit(f"could not sign {UNDERWRITER} in")

            page.screenshot(path=QUEUE_PNG, full_page=False)
            print(f"wrote {QUEUE_PNG.relative_to(ROOT)}")

            first = page.locator("#queue a.buyer").first
            if first.count() == 0:
                raise SystemExit("the queue is empty: no buyer page to show")
            first.click()
            page.wait_for_url("**/buyers/**")
            height = page.evaluate("document.documentElement.scrollHeight")
            page.screenshot(
                path=BUYER_PNG,
                full_page=True,
                clip={
                    "x": 0,
                    "y": 0,
                    "width": VIEWPORT["width"],
                    "height": min(height, MAX_HEIGHT),
                },
            )
            print(f"wrote {BUYER_PNG.relative_to(ROOT)}")
            browser.close()
    finally:
        server.should_exit = True
        thread.join(timeout=30)


if __name__ == "__main__":
    main()
