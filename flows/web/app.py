"""The underwriters' workbench: a FastAPI app serving server-rendered pages (Jinja2, work
without JavaScript) and a JSON API for the systems around the insurer.

    app = create_app(settings)          # what `solvency ui` serves with uvicorn

The app adds no business rule of its own: the queue, decisions and limit requests go
through the decision loop (`flows/underwriting.py`) and the decision store, exactly as the
command line does. What it adds is who may do it (`auth.py`), what a page shows about a
buyer (`book.py`, read once from the lake) and how (`templates/`).

Safety: templates autoescape every value; forms carry a CSRF token; the session cookie is
signed, HttpOnly and SameSite=Lax; a Content-Security-Policy allows the app's own scripts
and styles only (nothing inline, nothing from elsewhere); every route checks its permission
on the server; the API takes bearer tokens only.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import math
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.middleware.sessions import SessionMiddleware

from data.decisions import DecisionStore
from flows.context import RunContext
from flows.settings import Settings
from flows.web.auth import SignInThrottle, secret_key
from flows.web.book import BookCache, BookNotReady
from flows.web.queue import queue_items

LOG = logging.getLogger("solvency.workbench")
HERE = Path(__file__).resolve().parent
#: Signed-in sessions last a working day.
SESSION_SECONDS = 10 * 3600
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def secret_key_file(settings: Settings) -> Path:
    """Where the embedded default keeps its generated cookie-signing key (beside the lake)."""
    return Path(settings.lake_dir).parent / "workbench-secret.key"


@dataclass
class Workbench:
    """What every request works with: the settings and policy (one run context), the
    decision store, the cached book view and the limit-request desk."""

    base: RunContext
    decisions: DecisionStore
    book: BookCache
    desk_lock: threading.Lock
    throttle: SignInThrottle
    desk: object | None = None
    desk_built_at: dt.datetime | None = None
    desk_day: str | None = None
    desk_error: str | None = None

    def context(self) -> RunContext:
        """The run context of a request: today in the settings' time zone."""
        return self.base.on(self.base.settings.today())

    def request_desk(self):
        """The request desk, built on first use and again when a newer run is published
        (call with `desk_lock` held: the desk is not shared between threads)."""
        from flows.underwriting import RequestDesk

        view = self.book.view()
        if self.desk is None or self.desk_day != view.published[-1]:
            self.desk_built_at = dt.datetime.now(dt.UTC)
            self.desk = RequestDesk(self.context(), self.decisions)
            self.desk_day = view.published[-1]
        return self.desk

    def open_queue(self, human: str) -> pd.DataFrame:
        """The open items (`human`: 'required' = a person's only, 'all') with what the queue
        shows beside them: buyer name, country, EL change, who looks after the limit."""
        view = self.book.view()
        proposals = self.decisions.open_proposals(
            human_required=True if human == "required" else None
        )
        buyers = proposals["buyer_id"]
        return queue_items(
            proposals, view.names_of(buyers), view.countries_of(buyers),
            self.decisions.assignments(),
        )  # fmt: skip

    def forget_desk(self) -> None:
        self.desk = None

    def warm_up(self) -> None:
        """Read the book, then prepare the request desk, so the first request is quick."""
        if self.book.build_now() is None:
            return
        try:
            with self.desk_lock:
                self.request_desk()
        except Exception as exc:  # the API will say so on its first request
            self.desk_error = str(exc)
            LOG.exception("the limit-request desk could not be prepared")

    @property
    def ready(self) -> bool:
        return self.book.ready and (self.desk is not None or self.desk_error is not None)


def create_app(settings: Settings, *, build_in_background: bool = True) -> FastAPI:
    """The workbench on these settings. The book view is read at start-up (in a background
    thread unless told otherwise); `/healthz` answers 503 until it is ready."""
    from flows.web import api, pages

    base = RunContext.build(settings)
    store = DecisionStore(settings.decision_db_url)
    if store.url.get_backend_name() == "sqlite":
        store.upgrade()
    key, generated = secret_key(settings.web_secret_key, secret_key_file(settings))
    if generated:
        LOG.warning(
            "no SOLVENCY_WEB_SECRET_KEY set: session cookies are signed with a random key kept "
            "in %s; set one in production (all instances must share it)",
            secret_key_file(settings),
        )
    book = BookCache(lambda: base.on(settings.today()))
    workbench = Workbench(base, store, book, threading.Lock(), SignInThrottle())

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if build_in_background:
            threading.Thread(target=workbench.warm_up, name="warm-up", daemon=True).start()
        else:
            workbench.warm_up()
        yield
        store.close()

    app = FastAPI(
        title="Buyer solvency workbench",
        description="Underwriters' queue, buyer pages and decisions; the JSON API for the "
        "systems around the insurer (bearer tokens from `solvency users token NAME`).",
        version="1",
        lifespan=lifespan,
        docs_url=None,  # served by `pages.docs` with the vendored Swagger UI (no CDN)
        redoc_url=None,
    )
    app.state.workbench = workbench
    app.state.templates = templates()
    app.add_middleware(
        SessionMiddleware,
        secret_key=key,
        session_cookie="workbench_session",
        max_age=SESSION_SECONDS,
        same_site="lax",
        https_only=settings.web_https_only,
    )

    @app.middleware("http")
    async def timing_and_headers(request: Request, call_next):
        started = time.perf_counter()
        workbench.book.refresh_if_stale()
        response = await call_next(request)
        elapsed = 1000 * (time.perf_counter() - started)
        response.headers["Server-Timing"] = f"app;dur={elapsed:.1f}"
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["X-Frame-Options"] = "DENY"
        if request.url.path.startswith(("/api/", "/login", "/queue", "/buyers", "/proposals",
                                        "/audit", "/model")):  # fmt: skip
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.exception_handler(BookNotReady)
    async def not_ready(request: Request, exc: BookNotReady):
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": str(exc)}, status_code=503)
        return pages.render(request, "message.html", {"title": "Not ready", "message": str(exc)},
                            status_code=503)  # fmt: skip

    app.add_exception_handler(pages.PageRefused, lambda request, exc: exc.response)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError):
        # FastAPI's own handler echoes the input, which cannot be JSON when it is not finite
        # (`"amount": 1e400` parses as inf): it answered 500. The same 422, the input as text.
        detail = jsonable_encoder(
            exc.errors(), custom_encoder={float: lambda v: v if math.isfinite(v) else str(v)}
        )
        return JSONResponse({"detail": detail}, status_code=422)

    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(pages.router)
    app.include_router(api.router)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> JSONResponse:
        book = workbench.book
        if workbench.ready:
            view = book.view()
            return JSONResponse({"status": "ok", "as_of": view.as_of.isoformat(),
                                 "buyers": len(view.buyers)})  # fmt: skip
        return JSONResponse({"status": "loading", "error": book.error}, status_code=503)

    @app.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse("/queue", status_code=303)

    return app


def templates() -> Jinja2Templates:
    """The page templates; Jinja2Templates autoescapes .html (checked by a test)."""
    from flows.web import filters

    found = Jinja2Templates(directory=HERE / "templates")
    found.env.filters.update(filters.FILTERS)
    found.env.globals.update(filters.GLOBALS)
    return found
