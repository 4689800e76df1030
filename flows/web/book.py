"""The workbench's read model: what an underwriter looks at about buyers, built once from the
lake and the published daily runs, then answered from memory in microseconds.

A page request must not read the lake: a 100,000-buyer book has millions of invoice rows.
`BookView.build` reads every input once (as of the latest published run), computes the
buyer-level facts the pages show (the pipeline's own feature snapshot for payment behaviour,
the latest statement, the limits in force, events, alerts, the grade and PD history over
the published runs) and indexes them by buyer. `BookCache` rebuilds it when a new daily run
is published, in the background, while the previous view keeps serving.

The decision store is not cached here: the queue, decisions and assignments change with
every click and are read from it per request.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from flows.context import RunContext
from models.limits.book import limits_as_of

LOG = logging.getLogger("solvency.workbench")

#: Published daily runs the grade and PD chart goes back over.
HISTORY_RUNS = 120
#: Payment behaviour and statement figures shown on a buyer page (catalogue names).
PAYMENT_FIGURES = (
    "dbt_3m", "dbt_12m", "dbt_trend", "paydex", "open_amount", "overdue_amount",
    "overdue_share", "oldest_overdue_days", "late30_share_12m", "invoices_12m",
    "paid_amount_12m", "policyholders_reporting_12m", "overdue_notifications_12m",
    "legal_disputes_12m",
)  # fmt: skip
STATEMENT_FIGURES = (
    "period_end", "filing_date", "currency", "revenue", "operating_income", "net_income",
    "total_assets", "current_assets", "cash", "total_liabilities", "current_liabilities",
    "equity",
)  # fmt: skip
SIZE_NAMES = {0: "micro", 1: "small", 2: "medium", 3: "large"}
#: The latest run's scores the pages show (the reasons come from `score_history`: the
#: latest computed, which may be of an earlier run).
SCORE_COLUMNS = ["buyer_id", "pd", "grade", "model_version"]


class BookNotReady(RuntimeError):
    """No daily run has been published yet: there is nothing to show."""


def _grouped(frame: pd.DataFrame, key: str = "buyer_id") -> dict[str, pd.DataFrame]:
    """Rows per buyer, for O(1) lookups."""
    if frame.empty:
        return {}
    return {k: g.reset_index(drop=True) for k, g in frame.groupby(key, sort=False)}


def latest_statements(financials: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """Per buyer, the latest statement filed by `as_of` (the figures the model saw)."""
    known = financials.loc[financials["filing_date"] <= as_of]
    latest = known.sort_values(["buyer_id", "period_end", "filing_date"], kind="stable")
    return latest.drop_duplicates("buyer_id", keep="last").set_index("buyer_id")


REASON_COLUMNS = [*(f"reason_{k}" for k in (1, 2, 3)), *(f"reason_{k}_text" for k in (1, 2, 3))]


def score_history(store, dates: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Grade and PD of every buyer on each published run (date, buyer_id, pd, grade), and
    per buyer the latest run's reason codes that were computed (a run recomputes them only
    for buyers that need it: changed grade or action, alerts, the weekly refresh)."""
    parts, reasons = [], []
    for day in dates[-HISTORY_RUNS:]:
        when = dt.date.fromisoformat(day)
        part = store.read(day, "scores", ["buyer_id", "pd", "grade", *REASON_COLUMNS])
        parts.append(part[["buyer_id", "pd", "grade"]].assign(date=when))
        reasons.append(part.loc[part["reason_1"].notna(), ["buyer_id", *REASON_COLUMNS]]
                       .assign(reasons_date=when))  # fmt: skip
    if not parts:
        empty = pd.DataFrame(columns=["buyer_id", "pd", "grade", "date"])
        return empty, pd.DataFrame(columns=["buyer_id", *REASON_COLUMNS, "reasons_date"])
    latest = pd.concat(reasons, ignore_index=True).drop_duplicates("buyer_id", keep="last")
    return pd.concat(parts, ignore_index=True), latest.set_index("buyer_id")


@dataclass
class BookView:
    """Everything the pages show about buyers as of the latest published run."""

    as_of: dt.date
    buyers: pd.DataFrame  # indexed by buyer_id: name, country, sector, legal_form, ...
    scores: pd.DataFrame  # indexed by buyer_id: pd, grade, reasons (latest run)
    features: pd.DataFrame  # indexed by buyer_id: PAYMENT_FIGURES, size_class
    statements: pd.DataFrame  # indexed by buyer_id: STATEMENT_FIGURES
    limits: dict[str, pd.DataFrame]  # buyer_id -> limits in force or scheduled
    events: dict[str, pd.DataFrame]
    alerts: dict[str, pd.DataFrame]
    history: dict[str, pd.DataFrame]  # buyer_id -> date, pd, grade
    reasons: pd.DataFrame  # indexed by buyer_id: the latest reason codes computed
    policyholders: list[str]
    countries: list[str]
    published: list[str] = field(default_factory=list)
    built_in: float = 0.0

    @classmethod
    def build(cls, ctx: RunContext) -> BookView:
        """Read the lake and the published runs up to `ctx.as_of` once (see module doc)."""
        from data.contracts import CONTRACTS, empty_table
        from features.snapshot import build_snapshots

        started = time.perf_counter()
        dates = [d for d in ctx.store.dates_with("scores.parquet") if d <= ctx.day]
        if not dates:
            raise BookNotReady(
                "no daily run has been published yet: run `solvency rescore` (or `make demo`)"
            )
        as_of = dt.date.fromisoformat(dates[-1])
        stamp = pd.Timestamp(as_of)
        names = ("buyers", "financials", "invoices", "events", "country_risk", "limits")
        tables = {
            t: ctx.lake.read(t) if ctx.lake.has_table(t) else empty_table(CONTRACTS[t])
            for t in (*names, "policies")
        }
        snapshot = build_snapshots({t: tables[t] for t in names}, [stamp])
        features = snapshot.set_index("buyer_id")[[*PAYMENT_FIGURES, "size_class"]]
        buyers = tables["buyers"].set_index("buyer_id")
        scores = ctx.store.read(dates[-1], "scores", SCORE_COLUMNS).set_index("buyer_id")
        events = tables["events"].loc[tables["events"]["event_date"] <= stamp]
        alerts = (
            ctx.store.read(dates[-1], "alerts")
            if ctx.store.has(dates[-1], "alerts.parquet")
            else pd.DataFrame(columns=["buyer_id"])
        )
        history, reasons = score_history(ctx.store, dates)
        view = cls(
            as_of=as_of,
            buyers=buyers,
            scores=scores,
            features=features,
            statements=latest_statements(tables["financials"], stamp)[list(STATEMENT_FIGURES)],
            limits=_grouped(limits_as_of(tables["limits"], stamp)),
            events=_grouped(events.sort_values("event_date", ascending=False)),
            alerts=_grouped(alerts),
            history=_grouped(history),
            reasons=reasons,
            policyholders=sorted(tables["policies"]["policyholder_id"].astype(str)),
            countries=sorted(buyers["country"].dropna().astype(str).unique()),
            published=dates,
        )
        view.built_in = time.perf_counter() - started
        return view

    def has_buyer(self, buyer_id: str) -> bool:
        return buyer_id in self.buyers.index

    def buyer(self, buyer_id: str) -> dict[str, Any]:
        """One buyer's page data (KeyError for an unknown buyer)."""
        row = self.buyers.loc[buyer_id]
        score = self.scores.loc[buyer_id] if buyer_id in self.scores.index else None
        figures = self.features.loc[buyer_id] if buyer_id in self.features.index else None
        statement = self.statements.loc[buyer_id] if buyer_id in self.statements.index else None
        size = (
            None
            if figures is None or pd.isna(figures["size_class"])
            else int(figures["size_class"])
        )
        empty = pd.DataFrame()
        return {
            "buyer_id": buyer_id,
            "name": str(row["name"]),
            "country": row["country"],
            "sector": row["sector"],
            "legal_form": row.get("legal_form"),
            "incorporation_date": row.get("incorporation_date"),
            "size": SIZE_NAMES.get(size, "unknown") if size is not None else "unknown",
            "score": score,
            "reasons": _reasons(self.reasons.loc[buyer_id])
            if buyer_id in self.reasons.index
            else [],
            "reasons_date": self.reasons["reasons_date"].get(buyer_id),
            "payment": figures,
            "statement": statement,
            "limits": self.limits.get(buyer_id, empty),
            "events": self.events.get(buyer_id, empty),
            "alerts": self.alerts.get(buyer_id, empty),
            "history": self.history.get(buyer_id, empty),
        }

    def names_of(self, buyer_ids: pd.Series) -> pd.Series:
        return buyer_ids.map(self.buyers["name"])

    def countries_of(self, buyer_ids: pd.Series) -> pd.Series:
        return buyer_ids.map(self.buyers["country"])


def _reasons(score: pd.Series | None) -> list[tuple[str, str]]:
    """The model's reason codes with their words, strongest first."""
    if score is None:
        return []
    out = []
    for k in (1, 2, 3):
        code, text = score.get(f"reason_{k}"), score.get(f"reason_{k}_text")
        if isinstance(code, str) and code:
            out.append((code, text if isinstance(text, str) else code))
    return out


class BookCache:
    """The current `BookView`, rebuilt in the background when a newer daily run is
    published; requests keep the previous view until the new one is ready, so a rebuild
    never makes a page wait."""

    def __init__(self, context: Callable[[], RunContext]) -> None:
        self._context = context
        self._view: BookView | None = None
        self._error: str | None = None
        self._stamp: tuple[Any, ...] | None = None
        self._lock = threading.Lock()
        self._building = False
        self._checked = 0.0

    def _current_stamp(self, ctx: RunContext) -> tuple[Any, ...]:
        """The latest published run and when it was published (a rerun replaces it).

        Not the lake's manifest: every decision written into the book changes it, and a
        page shows a buyer's decisions from the decision store anyway."""
        dates = ctx.store.dates_with("scores.parquet")
        if not dates:
            return (None, None)
        pointer = ctx.store.pointer_path(dates[-1])
        return (dates[-1], pointer.stat().st_mtime_ns if pointer.exists() else None)

    def build_now(self) -> BookView | None:
        """Build (or rebuild) the view in this thread; the error is kept for the pages."""
        ctx = self._context()
        stamp = self._current_stamp(ctx)
        try:
            view = BookView.build(ctx)
        except BookNotReady as exc:
            self._error, view = str(exc), None
        except Exception as exc:  # shown on every page instead of a blank 500
            LOG.exception("the workbench could not read the book")
            self._error, view = f"the book could not be read: {exc}", None
        else:
            self._error = None
            LOG.info(
                "book view as of %s: %s buyers, built in %.1f s",
                view.as_of, f"{len(view.buyers):,}", view.built_in,
            )  # fmt: skip
        with self._lock:
            self._view, self._stamp, self._building = view, stamp, False
        return view

    def refresh_if_stale(self, every: float = 30.0) -> None:
        """Start a background rebuild when a newer run was published (checked at most every
        `every` seconds)."""
        now = time.monotonic()
        with self._lock:
            if self._building or self._stamp is None or now - self._checked < every:
                return
            self._checked = now
            try:
                stale = self._current_stamp(self._context()) != self._stamp
            except OSError:
                return
            if not stale:
                return
            self._building = True
        threading.Thread(target=self.build_now, name="book-view", daemon=True).start()

    @property
    def ready(self) -> bool:
        return self._view is not None

    @property
    def error(self) -> str | None:
        return self._error

    def view(self) -> BookView:
        if self._view is None:
            raise BookNotReady(self._error or "the workbench is still reading the book")
        return self._view


def history_points(history: pd.DataFrame) -> list[dict[str, Any]]:
    """The chart's points, oldest first: date, pd, grade."""
    if history.empty:
        return []
    ordered = history.sort_values("date")
    return [
        {"date": d, "pd": float(p), "grade": int(g)}
        for d, p, g in zip(ordered["date"], ordered["pd"], ordered["grade"], strict=True)
        if not (pd.isna(p) or pd.isna(g))
    ]
