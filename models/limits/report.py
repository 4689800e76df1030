"""Credit-limit recommendations as summary tables and one self-contained HTML page.

Underwriters review the limit engine's output, not its code: they need the totals (how much
cover moves, how much expected loss it saves), where it moves (by action, grade, country) and
a short queue of the pairs that need a human, with the engine's reasons. Everything here is a
pure function of the recommendations frame (one row per policyholder/buyer pair): DataFrames
or an HTML string come out and the caller decides where to write them.

The HTML has no external resources (inline CSS, plots embedded as base64 PNG), so it opens
offline, survives being mailed or attached to a case, and cannot leak data through requests.
Every text taken from the data is HTML-escaped. Plots use `matplotlib.figure.Figure` on an
explicit Agg canvas, never pyplot: no global figure registry to leak into, no GUI backend,
safe in worker threads; each figure is cleared as soon as it is encoded.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

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
_MISSING = "–"
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


def _short(amount: float) -> str:
    """1_234_567 -> '1.2 M', 350_000 -> '350 k': readable at a glance, unsigned."""
    size = abs(amount)
    for scale, unit, digits in ((1e9, "bn", 1), (1e6, "M", 1), (1e3, "k", 0)):
        if round(size / scale, digits) >= 1:
            return f"{size / scale:,.{digits}f} {unit}"
    return f"{size:,.0f}"


def _money(amount: float | None, signed: bool = False) -> str:
    """'EUR 1.2 M'; with `signed`, changes read 'EUR +350 k' / 'EUR -1.2 M'."""
    if amount is None or pd.isna(amount):
        return _MISSING
    text = _short(amount)
    sign = "-" if amount < 0 else "+" if signed and amount > 0 else ""
    return f"EUR {'' if text == '0' else sign}{text}"


def _pct(part: float, whole: float, signed: bool = False) -> str:
    """Share as '12.3%' ('+12.3%' when signed); a dash when there is no base to divide by."""
    if pd.isna(part) or pd.isna(whole) or whole == 0:
        return _MISSING
    text = f"{100 * part / whole:{'+' if signed else ''}.1f}%"
    return "0.0%" if text in ("+0.0%", "-0.0%") else text


def _count(value: float) -> str:
    """Counts with thousands separators."""
    return f"{int(value):,}"


def _label(value: object) -> str:
    """A group key as text: whole floats as ints (grades after NA), missing as a dash."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return _MISSING
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _grade_move(previous: object, grade: object) -> str:
    """'4 → 6' when the grade moved, '6' when it did not or there was no previous grade."""
    now = _label(grade)
    before = _label(previous)
    return now if before in (_MISSING, now) else f"{before} → {now}"


def _distinct(values: pd.Series, limit: int = 5) -> str:
    """Distinct values, sorted; a long list is cut so the header stays one line."""
    items = sorted({str(v) for v in values.dropna().unique()})
    if not items:
        return _MISSING
    if len(items) > limit:
        return f"{', '.join(items[:limit])} … (+{len(items) - limit} more)"
    return ", ".join(items)


def _dates(values: pd.Series) -> str:
    """As-of dates as YYYY-MM-DD (a run normally has one)."""
    return _distinct(pd.to_datetime(values).dt.strftime("%Y-%m-%d"))


# --------------------------------------------------------------------------- html pieces


def _e(text: object) -> str:
    """Escape anything that ends up in the page: data must never become markup."""
    return html.escape(str(text), quote=True)


def _table(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    numeric: Sequence[int] = (),
    classes: Sequence[str] | None = None,
) -> str:
    """An HTML table of already formatted cells; `numeric` column positions align right."""
    right = set(numeric)

    def cells(values: Sequence[str], tag: str) -> str:
        return "".join(
            f'<{tag} class="num">{_e(v)}</{tag}>' if i in right else f"<{tag}>{_e(v)}</{tag}>"
            for i, v in enumerate(values)
        )

    body = "".join(
        (f'<tr class="{_e(classes[i])}">' if classes and classes[i] else "<tr>")
        + f"{cells(row, 'td')}</tr>"
        for i, row in enumerate(rows)
    )
    return f"<table><thead><tr>{cells(header, 'th')}</tr></thead><tbody>{body}</tbody></table>"


def _summary_table(summary: pd.DataFrame, key: str) -> str:
    """A `summary_by` result as HTML, with change and expected-loss change as shares."""
    header = [key, "pairs", "buyers", "cover before", "cover after", "change", "change %"]
    header += ["EL before", "EL after", "EL change %", "need a human"]
    rows = [
        [
            _label(name),
            _count(r.pairs),
            _count(r.buyers),
            _money(r.limit_before),
            _money(r.limit_after),
            _money(r.change, signed=True),
            _pct(r.change, r.limit_before, signed=True),
            _money(r.expected_loss_before),
            _money(r.expected_loss_after),
            _pct(r.expected_loss_after - r.expected_loss_before, r.expected_loss_before, True),
            _count(r.human_required),
        ]
        for name, r in zip(summary.index, summary.itertuples(index=False), strict=True)
    ]
    classes = ["total" if name == TOTAL else "" for name in summary.index]
    return _table(header, rows, numeric=range(1, len(header)), classes=classes)


def _action_text(action: object, proposed: object) -> str:
    """'refer (engine: decrease)' shows what the engine would have done without a human."""
    if action == "refer" and isinstance(proposed, str) and proposed not in ("", "refer"):
        return f"refer (engine: {proposed})"
    return _label(action)


def _queue_table(queue: pd.DataFrame) -> str:
    """The review queue as HTML: who, what the engine says, how much, and why."""
    header = ["#", "policyholder", "buyer", "country", "grade", "action", "limit"]
    header += ["recommended", "change", "EL before → after", "reasons", "explanation"]
    rows = [
        [
            _label(r.priority),
            _label(r.policyholder_id),
            _label(r.buyer_id),
            _label(r.country),
            _grade_move(r.previous_grade, r.grade),
            _action_text(r.action, r.proposed_action) + (" ⚑" if r.human_required else ""),
            _money(r.limit_amount),
            _money(r.recommended_amount),
            _money(r.change, signed=True),
            f"{_money(r.expected_loss_before)} → {_money(r.expected_loss_after)}",
            str(r.reason_codes).replace("|", ", ") if isinstance(r.reason_codes, str) else "",
            r.explanation if isinstance(r.explanation, str) else "",
        ]
        for r in queue.itertuples(index=False)
    ]
    classes = [f"act-{a}" if a in ACTIONS else "" for a in queue["action"]]
    return _table(header, rows, numeric=(0, 6, 7, 8), classes=classes)


# --------------------------------------------------------------------------- plots


def _png(fig: Figure) -> str:
    """Encode a figure as base64 PNG (no metadata, so identical data gives identical bytes)."""
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=96, metadata={"Software": None})
    finally:
        fig.clear()
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _tick(value: float, _position: float) -> str:
    """Axis ticks in the same short money style as the tables."""
    return ("-" if value < 0 else "") + _short(value)


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


def _plot(summary: pd.DataFrame, before: str, after: str, title: str, xlabel: str) -> str:
    """One before/after plot of a summary (total row and empty groups left out) as <figure>."""
    groups = summary.drop(index=TOTAL)
    groups = groups[groups["pairs"] > 0]
    categories = [_label(name) for name in groups.index]
    fig = _before_after_figure(
        categories, groups[before].to_numpy(), groups[after].to_numpy(), title, xlabel
    )
    return (
        f'<figure><img src="data:image/png;base64,{_png(fig)}" alt="{_e(title)}">'
        f"<figcaption>{_e(title)}</figcaption></figure>"
    )


# --------------------------------------------------------------------------- page


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;margin:24px;
color:#1d2733;background:#fff;font-size:14px;line-height:1.4}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;
border-bottom:1px solid #d5dde5;padding-bottom:4px}
.meta{color:#5a6876;margin:0}.note{color:#5a6876;font-size:12px}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin-top:16px}
.card{border:1px solid #d5dde5;border-radius:6px;padding:10px 14px;min-width:200px}
.card .label{color:#5a6876;font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.card .value{font-size:18px;font-weight:600}.card .sub{color:#5a6876}
table{border-collapse:collapse;margin:6px 0;font-size:13px}
th,td{border-bottom:1px solid #e3e8ee;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f3f6f9;position:sticky;top:0}.num{text-align:right;white-space:nowrap}
tbody tr:nth-child(even){background:#fafbfc}tr.total td{font-weight:600;
border-top:2px solid #9aa7b4}
tr.act-cancel td:nth-child(6){color:#a61b1b;font-weight:600}
tr.act-decrease td:nth-child(6){color:#b35c00}tr.act-refer td:nth-child(6){color:#5b3fa0}
.plots{display:flex;flex-wrap:wrap;gap:16px}figure{margin:0}
figcaption{color:#5a6876;font-size:12px}img{max-width:100%}
.empty{font-size:16px;padding:16px;border:1px dashed #9aa7b4;border-radius:6px}
@media print{th{position:static}body{margin:8mm}}
"""


def _header(recs: pd.DataFrame, title: str) -> str:
    """Title line plus what the numbers belong to: dates, versions and how many pairs."""
    facts = [
        f"as of {_dates(recs['as_of_date'])}",
        f"model {_distinct(recs['model_version'])}",
        f"policy {_distinct(recs['policy_version'])}",
        f"{_count(len(recs))} pairs",
        f"{_count(recs['buyer_id'].nunique())} buyers",
        f"{_count(recs['policyholder_id'].nunique())} policyholders",
    ]
    return f"<header><h1>{_e(title)}</h1><p class='meta'>{_e(' · '.join(facts))}</p></header>"


def _card(label: str, value: str, sub: str) -> str:
    """One headline figure."""
    return (
        f"<div class='card'><div class='label'>{_e(label)}</div>"
        f"<div class='value'>{_e(value)}</div><div class='sub'>{_e(sub)}</div></div>"
    )


def _headline(total: pd.Series) -> str:
    """The four numbers a head of underwriting asks for first."""
    el_before, el_after = total["expected_loss_before"], total["expected_loss_after"]
    return (
        "<section class='cards'>"
        + "".join(
            [
                _card(
                    "cover",
                    f"{_money(total['limit_before'])} → {_money(total['limit_after'])}",
                    f"{_pct(total['change'], total['limit_before'], signed=True)} of current cover",
                ),
                _card(
                    "change in cover",
                    _money(total["change"], signed=True),
                    f"over {_count(total['pairs'])} pairs",
                ),
                _card(
                    "expected loss",
                    f"{_money(el_before)} → {_money(el_after)}",
                    f"{_pct(el_after - el_before, el_before, signed=True)} "
                    f"({_money(el_after - el_before, signed=True)})",
                ),
                _card(
                    "need a human",
                    _count(total["human_required"]),
                    f"{_pct(total['human_required'], total['pairs'])} of pairs",
                ),
            ]
        )
        + "</section>"
    )


def _section(title: str, *parts: str) -> str:
    """A titled block of the page."""
    return f"<section><h2>{_e(title)}</h2>{''.join(parts)}</section>"


def _note(text: str) -> str:
    """A small grey line under a table."""
    return f"<p class='note'>{_e(text)}</p>"


def _country_section(recs: pd.DataFrame) -> str:
    """Largest countries by current cover; the total row still covers every country."""
    by_country = summary_by(recs, "country")
    countries = by_country.drop(index=TOTAL)
    top = countries.sort_values("limit_before", ascending=False, kind="stable")
    shown = pd.concat([top.head(_TOP_COUNTRIES), by_country.loc[[TOTAL]]])
    note = f"Top {min(len(countries), _TOP_COUNTRIES)} of {len(countries)} countries by cover"
    return _section(
        "By country", _summary_table(shown, "country"), _note(note + "; total is all countries.")
    )


def _body(recs: pd.DataFrame, top: int) -> str:
    """Headline, tables, review queue and plots of a non-empty frame."""
    by_action = summary_by(recs, "action")
    by_grade = summary_by(recs, "grade")
    queue = review_queue(recs, top=top)
    in_queue = len(review_queue(recs, top=len(recs)))
    return "".join(
        [
            _headline(by_action.loc[TOTAL]),
            _section(
                "By action",
                _summary_table(by_action, "action"),
                "<div class='plots'>",
                _plot(by_action, "limit_before", "limit_after", "Cover by action", "action"),
                "</div>",
            ),
            _section(
                "Review queue",
                _note(
                    f"{_count(len(queue))} of {_count(in_queue)} pairs needing review, by "
                    "priority (1 first). ⚑ = a human must decide; refer shows the engine's "
                    "own proposal."
                ),
                _queue_table(queue),
            ),
            _section(
                "By grade",
                _summary_table(by_grade, "grade"),
                _note("Grades: 1 best … 9 worst performing, 10 in default."),
                "<div class='plots'>",
                _plot(by_grade, "limit_before", "limit_after", "Cover by grade", "grade"),
                _plot(
                    by_grade,
                    "expected_loss_before",
                    "expected_loss_after",
                    "Expected loss by grade",
                    "grade",
                ),
                "</div>",
            ),
            _country_section(recs),
        ]
    )


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
    body = (
        _body(frame, top)
        if len(frame)
        else "<p class='empty'>Nothing to review: no recommendations in this frame.</p>"
    )
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{_e(title)}</title><style>{_CSS}</style></head>"
        f"<body>{_header(frame, title)}{body}</body></html>\n"
    )
