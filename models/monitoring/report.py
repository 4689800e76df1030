"""Daily portfolio monitoring: one self-contained HTML page per as-of date, and its history.

The daily rescoring publishes, per date, the scores, alerts, score/feature stability (PSI),
the grade migration against the previous run, a backtest of a matured cohort and the limit
recommendations, plus a summary in the date's pointer (see `data.daily_store`). Risk
managers read them together: has the population drifted, who moved grade, is the model
still calibrated where the defaults are now observable, and which buyers raised alerts.

- `monitoring_html` turns one date's frames into one HTML page. Any frame may be missing
  (first run: no migration; no matured cohort yet: no backtest): its section says so.
- `history_frame` collects the pointers' summaries of every published date, with the grade
  mix of each date's scores, so trends (grade drift, PSI, alert volume) can be plotted.
- `psi_history` collects every date's PSI table (long format) for drift over time.

Like `models.limits.report`, the page has no external resources (inline CSS, plots as base64
PNG drawn on an explicit Agg canvas, never pyplot), every text from the data is
HTML-escaped, and the same input gives the same bytes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from data.daily_store import DailyStore
from models.limits.report import (
    _CSS,
    _MISSING,
    ACTIONS,
    _card,
    _count,
    _e,
    _grade_move,
    _label,
    _money,
    _note,
    _png,
    _section,
)
from models.master_scale import MASTER_SCALE
from models.monitoring.alerts import ALERT_TYPES, SEVERITIES

#: PSI thresholds and light names of `models.pd.validation` (same values, checked by a test),
#: repeated here because importing that module loads scipy and scikit-learn (seconds) for
#: three constants: reports and the monitoring notebook stay light.
PSI_WATCH = 0.10
PSI_SHIFT = 0.25
NOT_APPLICABLE = "n/a"

#: Grades of the master scale (1 best .. 10 in default).
GRADES: tuple[int, ...] = tuple(MASTER_SCALE.grades)
#: Summary fields copied into `history_frame` (missing ones become NA).
HISTORY_FIELDS: tuple[str, ...] = (
    "model_version",
    "policy_version",
    "buyers",
    "scored",
    "in_default",
    "score_psi",
    "max_feature_psi",
    "features_red",
    "backtest_auc",
    "alerts_total",
    "inputs_missing",
    "quarantined_rows",
)
_TOP_PSI = 15
_TOP_ALERTS = 30
_NEW, _GONE, _TOTAL = "new", "gone", "total"
_LIGHT_COLOURS = {"green": "#2e8b57", "yellow": "#d4a017", "red": "#c0392b"}
_NA_COLOUR = "#9aa7b4"
_PD_COLOUR, _RATE_COLOUR = "#1f5f8b", "#c0392b"

_EXTRA_CSS = """
td.light,span.light{font-weight:600}.light-green{color:#2e8b57}.light-yellow{color:#b8860b}
.light-red{color:#c0392b}.light-na{color:#9aa7b4}
.card.light-red{border-color:#c0392b}.card.light-yellow{border-color:#d4a017}
td.zero{color:#c3ccd5}td.diag{background:#eef3f8}
tr.sev-high td:first-child{color:#c0392b;font-weight:600}
tr.sev-medium td:first-child{color:#b35c00}
.warn{color:#a61b1b;font-weight:600}
"""


# --------------------------------------------------------------------------- history


def _number(value: Any) -> float:
    """A summary figure as float; None, text and other non-numbers become NaN."""
    if isinstance(value, bool):
        return float(value)
    try:
        out = float(value)
    except (TypeError, ValueError):
        return float("nan")
    return out


def _alert_counts_of(summary: Mapping[str, Any]) -> dict[str, float]:
    """Alerts per type from a run summary, without its "total" entry (that is alerts_total)."""
    counts = summary.get("alerts") or {}
    return {str(k): _number(v) for k, v in counts.items() if str(k) != _TOTAL}


def _grade_shares(store: DailyStore, date: str) -> dict[str, float]:
    """Share of the date's buyers in each grade (NaN when no scores were published)."""
    try:
        grades = store.read(date, "scores", columns=["grade"])["grade"]
    except (KeyError, FileNotFoundError):
        return {f"grade_{g}": float("nan") for g in GRADES}
    return _shares_of(grades)


def _shares_of(grades: pd.Series) -> dict[str, float]:
    grades = pd.to_numeric(grades, errors="coerce").dropna().astype("int64")
    counts = grades.value_counts()
    total = len(grades)
    return {
        f"grade_{g}": (float(counts.get(g, 0)) / total if total else float("nan")) for g in GRADES
    }


def history_frame(
    store: DailyStore, current: tuple[str, Mapping[str, Any], pd.Series] | None = None
) -> pd.DataFrame:
    """One row per published date (oldest first) from the pointers' summaries.

    Columns: `date` (ISO text, the store's key), the summary fields `HISTORY_FIELDS`
    (buyers, in_default, score_psi, max_feature_psi, backtest_auc, alerts_total, ...;
    NA when a date's summary lacks one), `alerts_<type>` per alert type (every type of
    `ALERT_TYPES` plus any other seen; 0 when absent), `action_<action>` per action of the
    limit engine (`ACTIONS` plus any other seen; 0 when absent) and `grade_1`..`grade_10`,
    the share of the buyers in the date's `scores` file per grade, defaulted ones (grade
    10) included (only the `grade` column is read; NaN when the date has no scores file). An empty store gives an empty frame
    with the same fixed columns. `current` = (date, summary, grades) adds the run being
    published (its pointer is not written yet), replacing that date's published row.
    """
    rows: list[dict[str, Any]] = []
    alert_types = list(ALERT_TYPES)
    actions = list(ACTIONS)
    entries = [
        (d, (store.pointer(d) or {}).get("summary") or {}, None)
        for d in store.dates()
        if current is None or d != current[0]
    ]
    if current is not None:
        entries.append(current)
    for date, summary, grades in sorted(entries, key=lambda e: e[0]):
        row: dict[str, Any] = {"date": date}
        for name in HISTORY_FIELDS:
            value = summary.get(name)
            row[name] = value if name.endswith("_version") else _number(value)
        for kind, count in _alert_counts_of(summary).items():
            if kind not in alert_types:
                alert_types.append(kind)
            row[f"alerts_{kind}"] = _number(count)
        for action, count in (summary.get("actions") or {}).items():
            if action not in actions:
                actions.append(str(action))
            row[f"action_{action}"] = _number(count)
        row.update(_grade_shares(store, date) if grades is None else _shares_of(grades))
        rows.append(row)
    counts = [f"alerts_{k}" for k in alert_types] + [f"action_{a}" for a in actions]
    columns = ["date", *HISTORY_FIELDS, *counts, *(f"grade_{g}" for g in GRADES)]
    frame = pd.DataFrame(rows, columns=columns)
    frame[counts] = frame[counts].fillna(0).astype("int64")
    numeric = [c for c in HISTORY_FIELDS if not c.endswith("_version")]
    for name in numeric:
        frame[name] = frame[name].astype("float64")
    whole = ("buyers", "scored", "in_default", "features_red", "alerts_total", "quarantined_rows")
    for name in whole:
        frame[name] = frame[name].astype("Int64")
    shares = [f"grade_{g}" for g in GRADES]
    frame[shares] = frame[shares].astype("float64")
    frame["inputs_missing"] = frame["inputs_missing"].astype("boolean")
    frame["date"] = frame["date"].astype(str)
    return frame.reset_index(drop=True)


def psi_history(store: DailyStore) -> pd.DataFrame:
    """Every published PSI table stacked: date, name, psi, light (dates without one skipped)."""
    parts = []
    for date in store.dates():
        try:
            table = store.read(date, "psi")
        except (KeyError, FileNotFoundError):
            continue
        parts.append(table.assign(date=date))
    columns = ["date", "name", "psi", "light"]
    if not parts:
        return pd.DataFrame(columns=columns)
    frame = pd.concat(parts, ignore_index=True)
    return frame.reindex(columns=[*columns, *(c for c in frame.columns if c not in columns)])


# --------------------------------------------------------------------------- formatting


def _float(value: Any, digits: int = 3) -> str:
    number = _number(value)
    return _MISSING if not np.isfinite(number) else f"{number:.{digits}f}"


def _share(value: Any, digits: int = 2) -> str:
    number = _number(value)
    return _MISSING if not np.isfinite(number) else f"{100 * number:.{digits}f}%"


def _int(value: Any) -> str:
    number = _number(value)
    return _MISSING if not np.isfinite(number) else _count(number)


def psi_light(value: float) -> str:
    """green < PSI_WATCH <= yellow < PSI_SHIFT <= red; n/a when there is no PSI."""
    number = _number(value)
    if not np.isfinite(number):
        return NOT_APPLICABLE
    return "green" if number < PSI_WATCH else ("yellow" if number < PSI_SHIFT else "red")


def _light_name(value: Any) -> str:
    """A light as one of green/yellow/red/na: the only values allowed into a class name."""
    text = str(value).strip().lower()
    return text if text in _LIGHT_COLOURS else "na"


def _light_text(value: Any) -> str:
    light = _light_name(value)
    return NOT_APPLICABLE if light == "na" else light


def _cohorts(values: pd.Series) -> str:
    """Cohort date(s) of a backtest: timestamps as YYYY-MM-DD, text (e.g. a list) as is."""
    items = []
    for value in values.dropna().unique():
        text = value.date().isoformat() if isinstance(value, pd.Timestamp) else str(value)
        items.append(text)
    return ", ".join(sorted(items)) or _MISSING


def _grade_text(value: Any) -> str:
    number = _number(value)
    if not np.isfinite(number):
        return _MISSING
    grade = int(number)
    return MASTER_SCALE.label(grade) if grade in GRADES else str(grade)


Cell = str | tuple[str, str]


def _table(
    header: Sequence[str],
    rows: Sequence[Sequence[Cell]],
    numeric: Sequence[int] = (),
    classes: Sequence[str] | None = None,
) -> str:
    """An HTML table of formatted cells; a cell may be (text, css class); all text escaped.

    Classes come from this module (never from the data), e.g. `light light-red`.
    """
    right = set(numeric)

    def cell(value: Cell, i: int, tag: str) -> str:
        text, css = value if isinstance(value, tuple) else (value, "")
        css = " ".join(c for c in ("num" if i in right else "", css) if c)
        attr = f' class="{_e(css)}"' if css else ""
        return f"<{tag}{attr}>{_e(text)}</{tag}>"

    head = "".join(cell(h, i, "th") for i, h in enumerate(header))
    body = "".join(
        (f'<tr class="{_e(classes[r])}">' if classes and classes[r] else "<tr>")
        + "".join(cell(v, i, "td") for i, v in enumerate(row))
        + "</tr>"
        for r, row in enumerate(rows)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _light_cell(value: Any) -> tuple[str, str]:
    return _light_text(value), f"light light-{_light_name(value)}"


def _empty(text: str) -> str:
    return f"<p class='note'>{_e(text)}</p>"


def _frame_or_none(frame: pd.DataFrame | None) -> pd.DataFrame | None:
    return frame if frame is not None and len(frame) else None


# --------------------------------------------------------------------------- plots


def _new_figure(width: float = 6.4, height: float = 3.4) -> tuple[Figure, Any]:
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.spines[["top", "right"]].set_visible(False)
    return fig, ax


def _img(fig: Figure, title: str) -> str:
    """A finished figure as an inline <figure> (the figure is cleared once encoded)."""
    fig.tight_layout()
    return (
        f'<figure><img src="data:image/png;base64,{_png(fig)}" alt="{_e(title)}">'
        f"<figcaption>{_e(title)}</figcaption></figure>"
    )


def _plots(*figures: str) -> str:
    return "<div class='plots'>" + "".join(figures) + "</div>"


def _date_axis(ax: Any, dates: pd.Series) -> None:
    """Whole-day ticks: each date when there are few, else an automatic calendar locator."""
    days = pd.DatetimeIndex(dates.dropna().unique()).sort_values()
    if len(days) <= 10:
        ax.set_xticks(list(days), [d.strftime("%Y-%m-%d") for d in days])
        ax.tick_params(axis="x", labelrotation=30, labelsize=8)
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("right")
        return
    locator = mdates.AutoDateLocator(minticks=3, maxticks=8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def psi_figure(psi: pd.DataFrame, top: int = _TOP_PSI) -> Figure:
    """Horizontal bars of the `top` largest PSIs, coloured by light, thresholds marked."""
    frame = psi.assign(psi=pd.to_numeric(psi["psi"], errors="coerce"))
    frame = frame.dropna(subset=["psi"]).sort_values(["psi", "name"], ascending=[False, True])
    frame = frame.head(top).iloc[::-1]
    fig, ax = _new_figure(6.4, max(2.4, 0.6 + 0.28 * len(frame)))
    lights = frame["light"] if "light" in frame else frame["psi"].map(psi_light)
    colours = [_LIGHT_COLOURS.get(_light_name(x), _NA_COLOUR) for x in lights]
    y = np.arange(len(frame))
    ax.barh(y, frame["psi"].to_numpy(dtype=float), color=colours)
    ax.set_yticks(y, [str(n) for n in frame["name"]])
    ax.axvline(PSI_WATCH, color=_LIGHT_COLOURS["yellow"], linestyle="--", linewidth=1)
    ax.axvline(PSI_SHIFT, color=_LIGHT_COLOURS["red"], linestyle="--", linewidth=1)
    ax.set(xlabel="PSI", title=f"Largest PSI (top {min(top, len(frame))})")
    return fig


def migration_matrix(migration: pd.DataFrame) -> pd.DataFrame:
    """Counts with previous grade rows (+ 'new') x current grade columns (+ 'gone')."""
    frame = migration.assign(
        previous_grade=pd.to_numeric(migration["previous_grade"], errors="coerce"),
        grade=pd.to_numeric(migration["grade"], errors="coerce"),
        buyers=pd.to_numeric(migration["buyers"], errors="coerce").fillna(0),
    )
    seen = set(frame["previous_grade"].dropna().astype(int)) | set(
        frame["grade"].dropna().astype(int)
    )
    grades = sorted(set(GRADES) | seen)
    rows = frame["previous_grade"].map(lambda g: _NEW if pd.isna(g) else int(g))
    cols = frame["grade"].map(lambda g: _GONE if pd.isna(g) else int(g))
    counts = frame.groupby([rows.rename("previous"), cols.rename("now")])["buyers"].sum()
    matrix = pd.DataFrame(0, index=[*grades, _NEW], columns=[*grades, _GONE], dtype="int64")
    for (previous, now), value in counts.items():
        matrix.loc[previous, now] += int(value)
    return matrix


def migration_figure(matrix: pd.DataFrame) -> Figure:
    """Heatmap of the migration matrix: colour = share of the previous grade's buyers."""
    values = matrix.to_numpy(dtype=float)
    totals = values.sum(axis=1, keepdims=True)
    shares = np.divide(values, totals, out=np.zeros_like(values), where=totals > 0)
    fig, ax = _new_figure(6.4, 5.6)
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(matrix.columns)), [str(c) for c in matrix.columns])
    ax.set_yticks(range(len(matrix.index)), [str(r) for r in matrix.index])
    for (i, j), count in np.ndenumerate(values):
        if count:
            colour = "white" if shares[i, j] > 0.6 else "#1d2733"
            ax.text(j, i, f"{int(count):,}", ha="center", va="center", fontsize=7, color=colour)
    ax.set(xlabel="grade now", ylabel="previous grade", title="Grade migration")
    fig.colorbar(image, ax=ax, label="share of previous grade", fraction=0.046, pad=0.04)
    return fig


def backtest_figure(backtest: pd.DataFrame) -> Figure:
    """Observed default rate vs mean PD per grade, log scale; zero rates at the bottom."""
    frame = backtest.assign(
        grade=pd.to_numeric(backtest["grade"], errors="coerce"),
        mean_pd=pd.to_numeric(backtest["mean_pd"], errors="coerce"),
        default_rate=pd.to_numeric(backtest["default_rate"], errors="coerce"),
    )
    frame = frame.dropna(subset=["grade"]).sort_values("grade")
    fig, ax = _new_figure()
    positive = pd.concat([frame["mean_pd"], frame["default_rate"]])
    positive = positive[positive > 0]
    floor = max(float(positive.min()) / 3, 1e-5) if len(positive) else 1e-4
    x = frame["grade"].to_numpy(dtype=float)
    ax.plot(x, frame["mean_pd"].clip(lower=floor), marker="o", color=_PD_COLOUR, label="mean PD")
    rate = frame["default_rate"].to_numpy(dtype=float)
    lights = frame["light"] if "light" in frame else pd.Series(NOT_APPLICABLE, index=frame.index)
    edge = [_LIGHT_COLOURS.get(_light_name(x), _NA_COLOUR) for x in lights]
    observed = rate > 0
    ax.scatter(
        x[observed],
        rate[observed],
        color=_RATE_COLOUR,
        edgecolors=np.asarray(edge, dtype=object)[observed],
        linewidths=2,
        s=45,
        zorder=3,
        label="observed default rate",
    )
    if (~observed).any():
        ax.scatter(
            x[~observed],
            np.full((~observed).sum(), floor),
            facecolors="none",
            edgecolors=_RATE_COLOUR,
            s=45,
            zorder=3,
            label="no default observed",
        )
    ax.set_yscale("log")
    ax.set_xticks(x, [str(int(g)) for g in x])
    ax.set(xlabel="grade", ylabel="rate", title="Backtest: default rate vs mean PD")
    ax.legend(frameon=False, fontsize=8)
    return fig


def _dates(history: pd.DataFrame) -> pd.Series:
    return pd.to_datetime(history["date"])


def grade_mix_figure(history: pd.DataFrame) -> Figure:
    """Share of buyers per grade over time (stacked; grade 1 at the bottom, 10 on top)."""
    columns = [f"grade_{g}" for g in GRADES if f"grade_{g}" in history]
    frame = history.assign(date=_dates(history)).dropna(subset=columns, how="all")
    fig, ax = _new_figure(7.2, 3.6)
    colours = [_cmap_colour("RdYlGn_r", i / max(len(columns) - 1, 1)) for i in range(len(columns))]
    values = [frame[c].fillna(0).to_numpy(dtype=float) for c in columns]
    labels = [c.removeprefix("grade_") for c in columns]
    if len(frame) >= 2:
        ax.stackplot(frame["date"], *values, labels=labels, colors=colours)
    else:
        bottom = np.zeros(len(frame))
        for value, label, colour in zip(values, labels, colours, strict=True):
            ax.bar(frame["date"], value, 0.8, bottom=bottom, label=label, color=colour)
            bottom += value
    ax.set_ylim(0, 1)
    ax.yaxis.set_major_formatter(lambda v, _pos: f"{100 * v:.0f}%")
    _date_axis(ax, frame["date"])
    ax.set(ylabel="share of buyers", title="Grade mix over time")
    handles, names = ax.get_legend_handles_labels()  # worst grade on top, as stacked
    ax.legend(
        handles[::-1],
        names[::-1],
        title="grade",
        frameon=False,
        fontsize=7,
        loc="center left",
        bbox_to_anchor=(1, 0.5),
    )
    return fig


def _cmap_colour(name: str, position: float) -> tuple[float, float, float, float]:
    return colormaps[name](position)


def psi_history_figure(history: pd.DataFrame) -> Figure:
    """Score PSI (and the largest feature PSI) over time, with the watch/shift thresholds."""
    dates = _dates(history)
    fig, ax = _new_figure()
    ax.plot(dates, history["score_psi"].astype(float), marker="o", color=_PD_COLOUR, label="score")
    if "max_feature_psi" in history:
        ax.plot(
            dates,
            history["max_feature_psi"].astype(float),
            marker=".",
            linestyle="--",
            color="#7a8793",
            label="largest feature",
        )
    ax.axhline(PSI_WATCH, color=_LIGHT_COLOURS["yellow"], linestyle=":", linewidth=1)
    ax.axhline(PSI_SHIFT, color=_LIGHT_COLOURS["red"], linestyle=":", linewidth=1)
    ax.set_ylim(bottom=0)
    _date_axis(ax, dates)
    ax.set(ylabel="PSI", title="Stability over time")
    ax.legend(frameon=False, fontsize=8)
    return fig


def alerts_history_figure(history: pd.DataFrame) -> Figure:
    """Alerts per date and type, stacked bars."""
    columns = [c for c in history.columns if c.startswith("alerts_") and c != "alerts_total"]
    dates = _dates(history)
    fig, ax = _new_figure(7.2, 3.6)
    bottom = np.zeros(len(history))
    for i, column in enumerate(columns):
        values = pd.to_numeric(history[column], errors="coerce").fillna(0).to_numpy(float)
        if not values.any():
            continue
        colour = _cmap_colour("tab10", (i % 10) / 10 + 0.05)
        label = column.removeprefix("alerts_")
        ax.bar(dates, values, 0.8, bottom=bottom, label=label, color=colour)
        bottom += values
    _date_axis(ax, dates)
    ax.set(ylabel="alerts", title="Alerts per day by type")
    if bottom.any():
        ax.legend(frameon=False, fontsize=7, loc="center left", bbox_to_anchor=(1, 0.5))
    return fig


# --------------------------------------------------------------------------- sections


def _headline(summary: Mapping[str, Any], backtest: pd.DataFrame | None) -> str:
    score_psi = _number(summary.get("score_psi"))
    light = psi_light(score_psi) if np.isfinite(score_psi) else NOT_APPLICABLE
    top_alerts = sorted(
        ((k, int(v)) for k, v in _alert_counts_of(summary).items() if v > 0),
        key=lambda kv: (-kv[1], str(kv[0])),
    )[:3]
    cohort = ""
    if backtest is not None and "cohort_date" in backtest and len(backtest):
        cohort = f"cohort of {_cohorts(backtest['cohort_date'])}"
    bt_light = summary.get("backtest_light")
    inputs = "inputs missing" if summary.get("inputs_missing") else "inputs complete"
    quarantined = _number(summary.get("quarantined_rows"))
    cards = [
        _card(
            "model",
            _label(summary.get("model_version", _MISSING)),
            f"policy {_label(summary.get('policy_version', _MISSING))}",
        ),
        _card(
            "buyers",
            _int(summary.get("buyers")),
            f"{_int(summary.get('scored'))} scored · {_int(summary.get('in_default'))} in default",
        ),
        _card(
            "alerts",
            _int(summary.get("alerts_total")),
            ", ".join(f"{k} {v:,}" for k, v in top_alerts) or "none",
        ),
        _card(
            "score PSI",
            f"{_float(score_psi)} ({light})",
            f"largest feature {_float(summary.get('max_feature_psi'))}, "
            f"{_int(summary.get('features_red'))} features red",
        ).replace("<div class='card'>", f"<div class='card light-{_light_name(light)}'>", 1),
        _card(
            "backtest AUC",
            _float(summary.get("backtest_auc")),
            (cohort or "no matured cohort")
            + (f", worst grade {_light_text(bt_light)}" if bt_light else ""),
        ).replace("<div class='card'>", f"<div class='card light-{_light_name(bt_light)}'>", 1),
        _card(
            "data",
            inputs,
            f"{_int(quarantined)} rows quarantined" if np.isfinite(quarantined) else _MISSING,
        ),
    ]
    warn = ""
    if summary.get("inputs_missing"):
        warn = "<p class='warn'>Some inputs were missing for this run: read with care.</p>"
    return f"<section class='cards'>{''.join(cards)}</section>{warn}"


def _psi_section(psi: pd.DataFrame | None) -> str:
    title = "Stability (PSI)"
    thresholds = (
        f"PSI < {PSI_WATCH:.2f} stable (green), {PSI_WATCH:.2f}–{PSI_SHIFT:.2f} watch (yellow), "
        f">= {PSI_SHIFT:.2f} shifted (red), against the model's reference sample."
    )
    if psi is None:
        return _section(title, _empty("No PSI published for this date."))
    frame = psi.assign(psi=pd.to_numeric(psi["psi"], errors="coerce"))
    is_score = frame["name"].astype(str) == "score"
    features = frame[~is_score].sort_values(
        ["psi", "name"], ascending=[False, True], na_position="last"
    )
    frame = pd.concat([frame[is_score], features])
    header = ["name", "PSI", "light", "missing (reference)", "missing (now)"]
    rows = [
        [
            _label(r.get("name")),
            _float(r.get("psi")),
            _light_cell(r.get("light", psi_light(_number(r.get("psi"))))),
            _share(r.get("missing_share_reference"), 1),
            _share(r.get("missing_share_now"), 1),
        ]
        for r in frame.to_dict("records")
    ]
    classes = ["total" if n == "score" else "" for n in frame["name"].astype(str)]
    return _section(
        title,
        _note(thresholds + " The score first, then features by PSI."),
        _table(header, rows, numeric=(1, 3, 4), classes=classes),
        _plots(_img(psi_figure(frame), "Largest PSI")),
    )


def _migration_section(migration: pd.DataFrame | None) -> str:
    title = "Grade migration"
    if migration is None:
        return _section(title, _empty("No migration: no previous run to compare with."))
    matrix = migration_matrix(migration)
    grades = [g for g in matrix.index if g != _NEW]
    table_rows: list[list[Cell]] = []
    for previous in matrix.index:
        cells: list[Cell] = [str(previous)]
        for now in matrix.columns:
            value = int(matrix.loc[previous, now])
            css = "diag" if previous == now else ("zero" if value == 0 else "")
            cells.append((_count(value), css) if css else _count(value))
        cells.append(_count(matrix.loc[previous].sum()))
        table_rows.append(cells)
    table_rows.append(
        [_TOTAL, *(_count(matrix[c].sum()) for c in matrix.columns), _count(matrix.values.sum())]
    )
    header = ["previous \\ now", *(str(c) for c in matrix.columns), _TOTAL]
    graded = matrix.loc[grades, grades].to_numpy()
    down = int(np.triu(graded, 1).sum())
    up = int(np.tril(graded, -1).sum())
    same = int(np.trace(graded))
    note = (
        f"{down:,} buyers downgraded, {up:,} upgraded, {same:,} unchanged, "
        f"{int(matrix.loc[_NEW].sum()):,} new, {int(matrix[_GONE].sum()):,} gone. "
        "Rows: grade at the previous run ('new' = not scored then); columns: grade now "
        "('gone' = no longer scored). Higher grade = worse; 10 = in default."
    )
    classes = [""] * len(matrix.index) + ["total"]
    return _section(
        title,
        _note(note),
        _table(header, table_rows, numeric=range(1, len(header)), classes=classes),
        _plots(_img(migration_figure(matrix), "Grade migration (share of previous grade)")),
    )


def _backtest_section(backtest: pd.DataFrame | None) -> str:
    title = "Backtest of a matured cohort"
    if backtest is None:
        return _section(title, _empty("No matured cohort to backtest for this date."))
    frame = backtest.sort_values("grade", kind="stable")
    cohort = ""
    if "cohort_date" in frame:
        cohort = f"Cohort scored on {_cohorts(frame['cohort_date'])}; "
    header = ["grade", "buyers", "defaults", "mean PD", "default rate", "Jeffreys p", "light"]
    rows = [
        [
            _grade_text(r.get("grade")),
            _int(r.get("count")),
            _int(r.get("defaults")),
            _share(r.get("mean_pd")),
            _share(r.get("default_rate")),
            _float(r.get("p_value")),
            _light_cell(r.get("light")),
        ]
        for r in frame.to_dict("records")
    ]
    if "conservative" in frame:  # the other tail: PD too high (informative, never red)
        header.append("conservative")
        flags = frame["conservative"].astype("boolean").fillna(False)
        for row, flag in zip(rows, flags, strict=True):
            row.append("yes" if flag else "")
    note = (
        cohort + "defaults observed over the following 12 months. Jeffreys p-value: how "
        "plausible a true default rate no higher than the mean PD is (red < 0.01, "
        "yellow < 0.05: PD too low); conservative = PD significantly too high."
    )
    return _section(
        title,
        _note(note),
        _table(header, rows, numeric=(1, 2, 3, 4, 5)),
        _plots(_img(backtest_figure(frame), "Observed default rate vs mean PD by grade")),
    )


def _alert_counts(alerts: pd.DataFrame | None, summary: Mapping[str, Any]) -> str:
    if alerts is None:
        counts = {k: int(v) for k, v in _alert_counts_of(summary).items() if np.isfinite(v)}
        if not any(counts.values()):
            return _empty("No alerts for this date.")
        order = [k for k in ALERT_TYPES if k in counts]
        order += sorted((k for k in counts if k not in ALERT_TYPES), key=str)
        rows = [[_label(k), _count(counts[k])] for k in order]
        rows.append([_TOTAL, _count(sum(counts.values()))])
        return _table(
            ["alert", "buyers"], rows, numeric=(1,), classes=[""] * len(order) + ["total"]
        )
    table = pd.crosstab(alerts["alert"].astype(str), alerts["severity"].astype(str))
    severities = [*SEVERITIES, *sorted(c for c in table.columns if c not in SEVERITIES)]
    table = table.reindex(columns=severities, fill_value=0)
    order = [k for k in ALERT_TYPES if k in table.index]
    order += sorted(k for k in table.index if k not in ALERT_TYPES)
    table = table.loc[order]
    rows = [[_label(k), *(_count(v) for v in r), _count(sum(r))] for k, r in table.iterrows()]
    rows.append([_TOTAL, *(_count(table[c].sum()) for c in severities), _count(len(alerts))])
    return _table(
        ["alert", *severities, _TOTAL],
        rows,
        numeric=range(1, len(severities) + 2),
        classes=[""] * len(order) + ["total"],
    )


def _top_alerts(alerts: pd.DataFrame, top: int = _TOP_ALERTS) -> tuple[str, int]:
    frame = alerts[alerts["severity"].astype(str).isin(["high", "medium"])]
    if not len(frame):
        return _empty("No high or medium alerts."), 0
    if "aggregate_limit" in frame:
        cover = pd.to_numeric(frame["aggregate_limit"], errors="coerce").fillna(0)
    else:
        cover = pd.Series(0.0, index=frame.index)
    kind = frame["alert"].map({k: i for i, k in enumerate(ALERT_TYPES)})
    frame = (
        frame.assign(
            _rank=frame["severity"].map({"high": 0, "medium": 1}),
            _cover=-cover,
            _buyer=frame["buyer_id"].astype(str),
            _kind=kind.fillna(len(ALERT_TYPES)),
        )
        .sort_values(["_rank", "_cover", "_buyer", "_kind"], kind="stable")
        .head(top)
    )
    header = ["severity", "alert", "buyer", "grade", "PD", "limits", "cover", "policyholders"]
    header.append("reason")
    rows = [
        [
            _label(r.get("severity")),
            _label(r.get("alert")),
            _label(r.get("buyer_id")),
            _grade_move(r.get("previous_grade"), r.get("grade")),
            _share(r.get("pd")),
            _label(r.get("limits")),
            _money(_number(r.get("aggregate_limit"))),
            _label(r.get("policyholders")),
            _label(r.get("reason")) if r.get("reason") is not None else "",
        ]
        for r in frame.to_dict("records")
    ]
    classes = [f"sev-{s}" for s in frame["severity"].astype(str)]
    total = int((alerts["severity"].astype(str).isin(["high", "medium"])).sum())
    return _table(header, rows, numeric=(4, 5, 6, 7), classes=classes), total


def _alerts_section(alerts: pd.DataFrame | None, summary: Mapping[str, Any]) -> str:
    title = "Alerts"
    parts = [_alert_counts(alerts, summary)]
    if alerts is not None:
        table, total = _top_alerts(alerts)
        shown = min(total, _TOP_ALERTS)
        parts += [
            "<h3>High and medium alerts</h3>",
            _note(
                f"{shown:,} of {total:,}, high first, then by aggregate cover on the buyer "
                "(largest first)."
            ),
            table,
        ]
    elif any(_alert_counts_of(summary).values()):
        parts.append(_note("The alerts file was not published: counts from the run summary."))
    return _section(title, *parts)


def _history_section(history: pd.DataFrame | None, as_of: str) -> str:
    if history is None or "date" not in history:
        return ""
    # a report regenerated for a past date shows the history up to that date only
    history = history[history["date"].astype(str).str[:10] <= str(as_of)[:10]]
    if not len(history):
        return ""
    history = history.sort_values("date", kind="stable").reset_index(drop=True)
    figures = []
    if any(f"grade_{g}" in history for g in GRADES):
        figures.append(_img(grade_mix_figure(history), "Grade mix over time"))
    if "score_psi" in history:
        figures.append(_img(psi_history_figure(history), "Score PSI over time"))
    if any(c.startswith("alerts_") and c != "alerts_total" for c in history.columns):
        figures.append(_img(alerts_history_figure(history), "Alerts per day"))
    first, last = _label(history["date"].iloc[0]), _label(history["date"].iloc[-1])
    note = f"{len(history):,} published runs from {first} to {last}."
    return _section("Over time", _note(note), _plots(*figures))


def monitoring_html(
    as_of: str,
    summary: Mapping[str, Any],
    psi: pd.DataFrame | None,
    migration: pd.DataFrame | None,
    backtest: pd.DataFrame | None,
    alerts: pd.DataFrame | None,
    history: pd.DataFrame | None = None,
) -> str:
    """The daily monitoring report of one as-of date as one self-contained HTML document.

    `summary` is the pointer's summary dict (missing keys shown as a dash); `psi`,
    `migration`, `backtest`, `alerts` are the date's published frames, or None (an empty
    frame counts as None) when the date has none; `history` is `history_frame(store)`
    (optional: adds the plots over time, using its dates up to `as_of`). No scripts, links
    or remote images; every data text is escaped; deterministic for the same input. The
    caller writes the string (UTF-8) wherever it wants.
    """
    summary = summary or {}
    psi, migration = _frame_or_none(psi), _frame_or_none(migration)
    backtest, alerts = _frame_or_none(backtest), _frame_or_none(alerts)
    title = f"Portfolio monitoring as of {as_of}"
    facts = [
        f"model {_label(summary.get('model_version', _MISSING))}",
        f"policy {_label(summary.get('policy_version', _MISSING))}",
        f"{_int(summary.get('buyers'))} buyers",
    ]
    header = f"<header><h1>{_e(title)}</h1><p class='meta'>{_e(' · '.join(facts))}</p></header>"
    body = "".join(
        [
            _headline(summary, backtest),
            _psi_section(psi),
            _migration_section(migration),
            _backtest_section(backtest),
            _alerts_section(alerts, summary),
            _history_section(history, as_of),
        ]
    )
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{_e(title)}</title><style>{_CSS}{_EXTRA_CSS}</style></head>"
        f"<body>{header}{body}</body></html>\n"
    )
