"""Credit-limit recommendations as summary tables and one self-contained HTML page.

Underwriters review the limit engine's output, not its code: they need the totals (how much
cover moves, how much expected loss it saves), where it moves (by action, grade, country) and
a short queue of the pairs that need a human, with the engine's reasons. Everything here is a
pure function of the recommendations frame (one row per policyholder/buyer pair): DataFrames
or an HTML string come out and the caller decides where to write them.

The page is the template `recommendations.html.j2` rendered by `models.reports.render`:
no external resources (inline CSS, plots embedded as base64 PNG), so it opens offline,
survives being mailed or attached to a case, and cannot leak data through requests; every
text from the data is escaped by the template engine. Plots use `matplotlib.figure.Figure`
on an explicit Agg canvas, never pyplot: no global figure registry to leak into, no GUI
backend, safe in worker threads; each figure is cleared as soon as it is encoded.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from models.master_scale import MASTER_SCALE
from models.reports.format import MISSING, count, grade_move, label, money, scaled
from models.reports.render import Plot, Table, plot, render

#: Every action of the limit engine, in the order underwriters read them.
ACTIONS: tuple[str, ...] = ("increase", "decrease", "cancel", "refer", "maintain")
#: Actions that always go to the review queue (besides rows flagged `human_required`).
REVIEW_ACTIONS: tuple[str, ...] = ("cancel", "decrease", "refer")
TOTAL = "total"
SUMMARY_COLUMNS: tuple[str, ...] = (
    "pairs",
    "buyers",
    "limit_before",
    "limit_after",
    "change",
    "expected_loss_before",
    "expected_loss_after",
    "human_required",
)
QUEUE_COLUMNS: tuple[str, ...] = (
    "priority",
    "policyholder_id",
    "buyer_id",
    "country",
    "grade",
    "previous_grade",
    "action",
    "proposed_action",
    "human_required",
    "limit_amount",
    "recommended_amount",
    "change",
    "reason_codes",
    "explanation",
    "expected_loss_before",
    "expected_loss_after",
)
_SUMMARY_INPUTS = (
    "buyer_id",
    "limit_amount",
    "recommended_amount",
    "change",
    "expected_loss_before",
    "expected_loss_after",
    "human_required",
)
_HEADER_INPUTS = ("as_of_date", "model_version", "policy_version", "policyholder_id")
_TOP_COUNTRIES = 20
_BEFORE_COLOUR, _AFTER_COLOUR = "#9bb7cc", "#1f5f8b"


# --------------------------------------------------------------------------- tables


def _require(recs: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Fail early on a frame from the wrong producer; an empty frame just gets the columns."""
    missing = [c for c in dict.fromkeys(columns) if c not in recs.columns]
    if not missing:
        return recs
    if len(recs):
        raise ValueError(f"recommendations frame lacks columns: {missing}")
    return recs.reindex(columns=[*recs.columns, *missing])


def _flag(values: pd.Series) -> pd.Series:
    """`human_required` as plain bool: a missing flag counts as 'no human needed'."""
    return values.astype("boolean").fillna(False).astype(bool)


def _totals(frame: pd.DataFrame) -> dict[str, float]:
    """The total row: distinct buyers over the whole frame, not the sum over groups."""
    return {
        "pairs": len(frame),
        "buyers": frame["buyer_id"].nunique(),
        "limit_before": frame["limit_amount"].sum(),
        "limit_after": frame["recommended_amount"].sum(),
        "change": frame["change"].sum(),
        "expected_loss_before": frame["expected_loss_before"].sum(),
        "expected_loss_after": frame["expected_loss_after"].sum(),
        "human_required": frame["human_required"].sum(),
    }


def summary_by(recs: pd.DataFrame, by: str) -> pd.DataFrame:
    """Pairs, buyers, cover and expected loss before/after per value of `by`, plus a total.

    Indexed by `by` (sorted; for "action" always the five actions in `ACTIONS` order, zeros
    for absent ones, unknown actions after them) with a last row labelled "total". Columns
    are `SUMMARY_COLUMNS`; money in EUR, `human_required` is a count of flagged pairs.
    """
    frame = _require(recs, [by, *_SUMMARY_INPUTS])
    frame = frame.assign(human_required=_flag(frame["human_required"]))
    groups = frame.groupby(by, sort=True, dropna=False)
    table = pd.DataFrame(
        {
            "pairs": groups.size(),
            "buyers": groups["buyer_id"].nunique(),
            "limit_before": groups["limit_amount"].sum(),
            "limit_after": groups["recommended_amount"].sum(),
            "change": groups["change"].sum(),
            "expected_loss_before": groups["expected_loss_before"].sum(),
            "expected_loss_after": groups["expected_loss_after"].sum(),
            "human_required": groups["human_required"].sum(),
        },
        columns=list(SUMMARY_COLUMNS),
    )
    if by == "action":
        extra = sorted((a for a in table.index if a not in ACTIONS), key=str)
        table = table.reindex([*ACTIONS, *extra], fill_value=0)
    rows = [*table.index, TOTAL]
    out = pd.DataFrame([*table.to_dict("records"), _totals(frame)], columns=list(SUMMARY_COLUMNS))
    out.index = pd.Index(rows, name=by)
    counts = {"pairs": "int64", "buyers": "int64", "human_required": "int64"}
    return out.astype({**counts, **dict.fromkeys(SUMMARY_COLUMNS[2:7], "float64")})


def review_queue(recs: pd.DataFrame, top: int = 50) -> pd.DataFrame:
    """The first `top` pairs an underwriter must look at, most urgent first.

    A pair is in the queue when it is flagged `human_required` or its action takes cover
    away or defers to a human (cancel, decrease, refer); a plain maintain or increase is not.
    Sorted by `priority` (1 first), ties by policyholder and buyer so reruns agree.
    """
    frame = _require(recs, QUEUE_COLUMNS)
    needs_review = _flag(frame["human_required"]) | frame["action"].isin(REVIEW_ACTIONS)
    queue = frame.loc[needs_review, list(QUEUE_COLUMNS)].assign(
        human_required=lambda q: _flag(q["human_required"])
    )
    queue = queue.sort_values(["priority", "policyholder_id", "buyer_id"], kind="stable")
    return queue.head(max(top, 0)).reset_index(drop=True)


# --------------------------------------------------------------------------- formatting


def _pct(part: float, whole: float, signed: bool = False) -> str:
    """Share as '12.3%' ('+12.3%' when signed); a dash when there is no base to divide by."""
    if pd.isna(part) or pd.isna(whole) or whole == 0:
        return MISSING
    text = f"{100 * part / whole:{'+' if signed else ''}.1f}%"
    return "0.0%" if text in ("+0.0%", "-0.0%") else text


def _distinct(values: pd.Series, limit: int = 5) -> str:
    """Distinct values, sorted; a long list is cut so the header stays one line."""
    items = sorted({str(v) for v in values.dropna().unique()})
    if not items:
        return MISSING
    if len(items) > limit:
        return f"{', '.join(items[:limit])} … (+{len(items) - limit} more)"
    return ", ".join(items)


def _dates(values: pd.Series) -> str:
    """As-of dates as YYYY-MM-DD (a run normally has one)."""
    return _distinct(pd.to_datetime(values).dt.strftime("%Y-%m-%d"))


def _action_text(action: object, proposed: object) -> str:
    """'refer (engine: decrease)' shows what the engine would have done without a human."""
    if action == "refer" and isinstance(proposed, str) and proposed not in ("", "refer"):
        return f"refer (engine: {proposed})"
    return label(action)


def _summary_table(summary: pd.DataFrame, key: str) -> Table:
    """A `summary_by` result, with change and expected-loss change as shares."""
    header = [key, "pairs", "buyers", "cover before", "cover after", "change", "change %"]
    header += ["EL before", "EL after", "EL change %", "need a human"]
    rows = [
        [
            label(name),
            count(r.pairs),
            count(r.buyers),
            money(r.limit_before),
            money(r.limit_after),
            money(r.change, signed=True),
            _pct(r.change, r.limit_before, signed=True),
            money(r.expected_loss_before),
            money(r.expected_loss_after),
            _pct(r.expected_loss_after - r.expected_loss_before, r.expected_loss_before, True),
            count(r.human_required),
        ]
        for name, r in zip(summary.index, summary.itertuples(index=False), strict=True)
    ]
    classes = ["total" if name == TOTAL else "" for name in summary.index]
    return Table(header, rows, numeric=range(1, len(header)), classes=classes)


def _queue_table(queue: pd.DataFrame) -> Table:
    """The review queue: who, what the engine says, how much, and why."""
    header = ["#", "policyholder", "buyer", "country", "grade", "action", "limit"]
    header += ["recommended", "change", "EL before → after", "reasons", "explanation"]
    rows = [
        [
            label(r.priority),
            label(r.policyholder_id),
            label(r.buyer_id),
            label(r.country),
            grade_move(r.previous_grade, r.grade),
            _action_text(r.action, r.proposed_action) + (" ⚑" if r.human_required else ""),
            money(r.limit_amount),
            money(r.recommended_amount),
            money(r.change, signed=True),
            f"{money(r.expected_loss_before)} → {money(r.expected_loss_after)}",
            str(r.reason_codes).replace("|", ", ") if isinstance(r.reason_codes, str) else "",
            r.explanation if isinstance(r.explanation, str) else "",
        ]
        for r in queue.itertuples(index=False)
    ]
    classes = [f"act-{a}" if a in ACTIONS else "" for a in queue["action"]]
    return Table(header, rows, numeric=(0, 6, 7, 8), classes=classes)


# --------------------------------------------------------------------------- plots


def _tick(value: float, _position: float) -> str:
    """Axis ticks in the same short money style as the tables."""
    return ("-" if value < 0 else "") + scaled(value)


def _before_after_figure(
    categories: Sequence[str], before: np.ndarray, after: np.ndarray, title: str, xlabel: str
) -> Figure:
    """Grouped bars, before next to after, one pair per category."""
    fig = Figure(figsize=(6.4, 3.4))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    x = np.arange(len(categories))
    ax.bar(x - 0.2, before, 0.4, label="before", color=_BEFORE_COLOUR)
    ax.bar(x + 0.2, after, 0.4, label="after", color=_AFTER_COLOUR)
    ax.set_xticks(x, list(categories))
    ax.yaxis.set_major_formatter(FuncFormatter(_tick))
    ax.set(xlabel=xlabel, ylabel="EUR", title=title)
    ax.legend(frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return fig


def _plot(summary: pd.DataFrame, before: str, after: str, title: str, xlabel: str) -> Plot:
    """One before/after plot of a summary (total row and empty groups left out)."""
    groups = summary.drop(index=TOTAL)
    groups = groups[groups["pairs"] > 0]
    categories = [label(name) for name in groups.index]
    fig = _before_after_figure(
        categories, groups[before].to_numpy(), groups[after].to_numpy(), title, xlabel
    )
    return plot(fig, title)


# --------------------------------------------------------------------------- page


def _facts(recs: pd.DataFrame) -> list[str]:
    """What the numbers belong to: dates, versions and how many pairs."""
    return [
        f"as of {_dates(recs['as_of_date'])}",
        f"model {_distinct(recs['model_version'])}",
        f"policy {_distinct(recs['policy_version'])}",
        f"{count(len(recs))} pairs",
        f"{count(recs['buyer_id'].nunique())} buyers",
        f"{count(recs['policyholder_id'].nunique())} policyholders",
    ]


def _body(recs: pd.DataFrame, top: int) -> dict[str, Any]:
    """The template context of a non-empty frame: headline, tables, queue and plots."""
    by_action = summary_by(recs, "action")
    by_grade = summary_by(recs, "grade")
    by_country = summary_by(recs, "country")
    countries = by_country.drop(index=TOTAL)
    biggest = countries.sort_values("limit_before", ascending=False, kind="stable")
    total = by_action.loc[TOTAL].to_dict()
    el_change = total["expected_loss_after"] - total["expected_loss_before"]
    queue = review_queue(recs, top=top)
    grades = MASTER_SCALE.grades
    return {
        "total": total,
        "el_change": el_change,
        "shares": {
            "cover": _pct(total["change"], total["limit_before"], signed=True),
            "expected_loss": _pct(el_change, total["expected_loss_before"], signed=True),
            "human": _pct(total["human_required"], total["pairs"]),
        },
        "by_action": _summary_table(by_action, "action"),
        "action_plot": _plot(by_action, "limit_before", "limit_after", "Cover by action", "action"),
        "queue": _queue_table(queue),
        "queue_shown": len(queue),
        "queue_total": len(review_queue(recs, top=len(recs))),
        "by_grade": _summary_table(by_grade, "grade"),
        "grade_scale": (grades[0], MASTER_SCALE.default_grade - 1, MASTER_SCALE.default_grade),
        "grade_plots": [
            _plot(by_grade, "limit_before", "limit_after", "Cover by grade", "grade"),
            _plot(
                by_grade,
                "expected_loss_before",
                "expected_loss_after",
                "Expected loss by grade",
                "grade",
            ),
        ],
        "by_country": _summary_table(
            pd.concat([biggest.head(_TOP_COUNTRIES), by_country.loc[[TOTAL]]]), "country"
        ),
        "countries_shown": min(len(countries), _TOP_COUNTRIES),
        "countries_total": len(countries),
    }


def recommendations_html(recs: pd.DataFrame, title: str | None = None, top: int = 50) -> str:
    """The underwriters' report of one run of the limit engine, as one HTML document.

    Self-contained (inline CSS, base64 PNG plots, no scripts or links) so it opens offline
    and can be stored with the run. `top` caps the review queue. An empty frame gives a page
    that says there are no recommendations. The caller writes the string (UTF-8) to a file.
    """
    frame = _require(recs, [*QUEUE_COLUMNS, *_SUMMARY_INPUTS, *_HEADER_INPUTS])
    if title is None:
        title = "Credit-limit recommendations"
        if frame["as_of_date"].nunique() == 1:
            title += f" as of {_dates(frame['as_of_date'])}"
    body = _body(frame, top) if len(frame) else {}
    return render(
        "recommendations.html.j2", title=title, facts=_facts(frame), empty=not len(frame), **body
    )
