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

Like `models.limits.report`, the page is a template of `models.reports` (`monitoring.html.j2`)
with no external resources (inline CSS, plots as base64 PNG drawn on an explicit Agg canvas,
never pyplot); every text from the data is escaped by the template engine, and the same
input gives the same bytes. PSI thresholds and lights are those of `models.pd.validation`,
so the report and the model validation cannot disagree on what counts as drift.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from data.daily_store import DailyStore
from models.limits.report import ACTIONS
from models.master_scale import MASTER_SCALE
from models.monitoring.alerts import ALERT_TYPES, SEVERITIES
from models.pd.validation import (
    GREEN,
    JEFFREYS_RED,
    JEFFREYS_YELLOW,
    NOT_APPLICABLE,
    PSI_SHIFT,
    PSI_WATCH,
    RED,
    YELLOW,
    psi_light,
)
from models.reports.format import MISSING, count, grade_move, label, money
from models.reports.render import Cell, Plot, Table, plot, render

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
_LIGHT_COLOURS = {GREEN: "#2e8b57", YELLOW: "#d4a017", RED: "#c0392b"}
_NA_COLOUR = "#9aa7b4"
_PD_COLOUR, _RATE_COLOUR = "#1f5f8b", "#c0392b"


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
    10) included (only the `grade` column is read; NaN when the date has no scores file).
    An empty store gives an empty frame with the same fixed columns. `current` = (date,
    summary, grades) adds the run being published (its pointer is not written yet),
    replacing that date's published row.
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
        for kind, number in _alert_counts_of(summary).items():
            if kind not in alert_types:
                alert_types.append(kind)
            row[f"alerts_{kind}"] = _number(number)
        for action, number in (summary.get("actions") or {}).items():
            if action not in actions:
                actions.append(str(action))
            row[f"action_{action}"] = _number(number)
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
    return MISSING if not np.isfinite(number) else f"{number:.{digits}f}"


def _share(value: Any, digits: int = 2) -> str:
    number = _number(value)
    return MISSING if not np.isfinite(number) else f"{100 * number:.{digits}f}%"


def _int(value: Any) -> str:
    number = _number(value)
    return MISSING if not np.isfinite(number) else count(number)


def _light_name(value: Any) -> str:
    """A light as one of green/yellow/red/na: the only values allowed into a class name."""
    text = str(value).strip().lower()
    return text if text in _LIGHT_COLOURS else "na"


def _light_text(value: Any) -> str:
    light = _light_name(value)
    return NOT_APPLICABLE if light == "na" else light


def _light_cell(value: Any) -> tuple[str, str]:
    return _light_text(value), f"light light-{_light_name(value)}"


def _cohorts(values: pd.Series) -> str:
    """Cohort date(s) of a backtest: timestamps as YYYY-MM-DD, text (e.g. a list) as is."""
    items = []
    for value in values.dropna().unique():
        text = value.date().isoformat() if isinstance(value, pd.Timestamp) else str(value)
        items.append(text)
    return ", ".join(sorted(items)) or MISSING


def _grade_text(value: Any) -> str:
    number = _number(value)
    if not np.isfinite(number):
        return MISSING
    grade = int(number)
    return MASTER_SCALE.label(grade) if grade in GRADES else str(grade)


def _frame_or_none(frame: pd.DataFrame | None) -> pd.DataFrame | None:
    return frame if frame is not None and len(frame) else None


# --------------------------------------------------------------------------- plots


def _new_figure(width: float = 6.4, height: float = 3.4) -> tuple[Figure, Any]:
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.spines[["top", "right"]].set_visible(False)
    return fig, ax


def _img(fig: Figure, title: str) -> Plot:
    """A finished figure as an embedded plot (the figure is cleared once encoded)."""
    fig.tight_layout()
    return plot(fig, title)


def _date_axis(ax: Any, dates: pd.Series) -> None:
    """Whole-day ticks: each date when there are few, else an automatic calendar locator."""
    days = pd.DatetimeIndex(dates.dropna().unique()).sort_values()
    if len(days) <= 10:
        ax.set_xticks(list(days), [d.strftime("%Y-%m-%d") for d in days])
        ax.tick_params(axis="x", labelrotation=30, labelsize=8)
        for tick in ax.get_xticklabels():
            tick.set_horizontalalignment("right")
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
    ax.axvline(PSI_WATCH, color=_LIGHT_COLOURS[YELLOW], linestyle="--", linewidth=1)
    ax.axvline(PSI_SHIFT, color=_LIGHT_COLOURS[RED], linestyle="--", linewidth=1)
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
    for (i, j), buyers in np.ndenumerate(values):
        if buyers:
            colour = "white" if shares[i, j] > 0.6 else "#1d2733"
            ax.text(j, i, f"{int(buyers):,}", ha="center", va="center", fontsize=7, color=colour)
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
    ax.axhline(PSI_WATCH, color=_LIGHT_COLOURS[YELLOW], linestyle=":", linewidth=1)
    ax.axhline(PSI_SHIFT, color=_LIGHT_COLOURS[RED], linestyle=":", linewidth=1)
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


def _headline(summary: Mapping[str, Any], backtest: pd.DataFrame | None) -> dict[str, Any]:
    """The headline cards' figures, as text."""
    score_psi = _number(summary.get("score_psi"))
    top_alerts = sorted(
        ((k, int(v)) for k, v in _alert_counts_of(summary).items() if v > 0),
        key=lambda kv: (-kv[1], str(kv[0])),
    )[:3]
    cohort = ""
    if backtest is not None and "cohort_date" in backtest and len(backtest):
        cohort = f"cohort of {_cohorts(backtest['cohort_date'])}"
    bt_light = summary.get("backtest_light")
    quarantined = _number(summary.get("quarantined_rows"))
    return {
        "model": label(summary.get("model_version", MISSING)),
        "policy": label(summary.get("policy_version", MISSING)),
        "buyers": _int(summary.get("buyers")),
        "scored": _int(summary.get("scored")),
        "in_default": _int(summary.get("in_default")),
        "alerts": _int(summary.get("alerts_total")),
        "top_alerts": ", ".join(f"{k} {v:,}" for k, v in top_alerts),
        "score_psi": _float(score_psi),
        "psi_light": psi_light(score_psi),
        "psi_css": _light_name(psi_light(score_psi)),
        "max_feature_psi": _float(summary.get("max_feature_psi")),
        "features_red": _int(summary.get("features_red")),
        "auc": _float(summary.get("backtest_auc")),
        "cohort": cohort,
        "backtest_light": _light_text(bt_light) if bt_light else "",
        "backtest_css": _light_name(bt_light),
        "inputs_missing": bool(summary.get("inputs_missing")),
        "quarantined": _int(quarantined) if np.isfinite(quarantined) else None,
    }


def _psi_section(psi: pd.DataFrame | None) -> dict[str, Any] | None:
    """The score first, then features by PSI, with the largest ones plotted."""
    if psi is None:
        return None
    frame = psi.assign(psi=pd.to_numeric(psi["psi"], errors="coerce"))
    is_score = frame["name"].astype(str) == "score"
    features = frame[~is_score].sort_values(
        ["psi", "name"], ascending=[False, True], na_position="last"
    )
    frame = pd.concat([frame[is_score], features])
    header = ["name", "PSI", "light", "missing (reference)", "missing (now)"]
    rows = [
        [
            label(r.get("name")),
            _float(r.get("psi")),
            _light_cell(r.get("light", psi_light(_number(r.get("psi"))))),
            _share(r.get("missing_share_reference"), 1),
            _share(r.get("missing_share_now"), 1),
        ]
        for r in frame.to_dict("records")
    ]
    classes = ["total" if n == "score" else "" for n in frame["name"].astype(str)]
    return {
        "table": Table(header, rows, numeric=(1, 3, 4), classes=classes),
        "plot": _img(psi_figure(frame), "Largest PSI"),
    }


def _migration_section(migration: pd.DataFrame | None) -> dict[str, Any] | None:
    """The migration matrix with totals, and how many buyers moved which way."""
    if migration is None:
        return None
    matrix = migration_matrix(migration)
    grades = [g for g in matrix.index if g != _NEW]
    rows: list[list[Cell]] = []
    for previous in matrix.index:
        cells: list[Cell] = [str(previous)]
        for now in matrix.columns:
            value = int(matrix.loc[previous, now])
            css = "diag" if previous == now else ("zero" if value == 0 else "")
            cells.append((count(value), css) if css else count(value))
        cells.append(count(matrix.loc[previous].sum()))
        rows.append(cells)
    rows.append(
        [_TOTAL, *(count(matrix[c].sum()) for c in matrix.columns), count(matrix.values.sum())]
    )
    header = ["previous \\ now", *(str(c) for c in matrix.columns), _TOTAL]
    graded = matrix.loc[grades, grades].to_numpy()
    return {
        "down": int(np.triu(graded, 1).sum()),
        "up": int(np.tril(graded, -1).sum()),
        "same": int(np.trace(graded)),
        "new": int(matrix.loc[_NEW].sum()),
        "gone": int(matrix[_GONE].sum()),
        "table": Table(
            header,
            rows,
            numeric=range(1, len(header)),
            classes=[""] * len(matrix.index) + ["total"],
        ),
        "plot": _img(migration_figure(matrix), "Grade migration (share of previous grade)"),
    }


def _backtest_section(backtest: pd.DataFrame | None) -> dict[str, Any] | None:
    """Observed default rates against the mean PD, per grade of the matured cohort."""
    if backtest is None:
        return None
    frame = backtest.sort_values("grade", kind="stable")
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
    count = pd.to_numeric(frame["count"], errors="coerce")
    predicted = float((count * pd.to_numeric(frame["mean_pd"], errors="coerce")).sum())
    observed = float(pd.to_numeric(frame["defaults"], errors="coerce").sum())
    ratio = observed / predicted if predicted > 0 else float("nan")
    advice = ""
    if RED in set(frame["light"].astype(str)) and np.isfinite(ratio):
        advice = (
            f"Observed / predicted defaults {ratio:.2f}: if the ranking holds (AUC), "
            "`solvency recalibrate` refits only the champion's intercept on these cohorts "
            "and registers it as the challenger for the gate; if not, retrain."
        )
    return {
        "cohort": _cohorts(frame["cohort_date"]) if "cohort_date" in frame else "",
        "observed_to_predicted": _float(ratio, 2),
        "advice": advice,
        "table": Table(header, rows, numeric=(1, 2, 3, 4, 5)),
        "plot": _img(backtest_figure(frame), "Observed default rate vs mean PD by grade"),
    }


def _alert_counts(alerts: pd.DataFrame | None, summary: Mapping[str, Any]) -> Table | None:
    """Alerts per type (and severity when the alerts file is there); None when there are none."""
    if alerts is None:
        counts = {k: int(v) for k, v in _alert_counts_of(summary).items() if np.isfinite(v)}
        if not any(counts.values()):
            return None
        order = [k for k in ALERT_TYPES if k in counts]
        order += sorted((k for k in counts if k not in ALERT_TYPES), key=str)
        rows = [[label(k), count(counts[k])] for k in order]
        rows.append([_TOTAL, count(sum(counts.values()))])
        return Table(["alert", "buyers"], rows, numeric=(1,), classes=[""] * len(order) + ["total"])
    table = pd.crosstab(alerts["alert"].astype(str), alerts["severity"].astype(str))
    severities = [*SEVERITIES, *sorted(c for c in table.columns if c not in SEVERITIES)]
    table = table.reindex(columns=severities, fill_value=0)
    order = [k for k in ALERT_TYPES if k in table.index]
    order += sorted(k for k in table.index if k not in ALERT_TYPES)
    table = table.loc[order]
    rows = [[label(k), *(count(v) for v in r), count(sum(r))] for k, r in table.iterrows()]
    rows.append([_TOTAL, *(count(table[c].sum()) for c in severities), count(len(alerts))])
    return Table(
        ["alert", *severities, _TOTAL],
        rows,
        numeric=range(1, len(severities) + 2),
        classes=[""] * len(order) + ["total"],
    )


def _top_alerts(alerts: pd.DataFrame, top: int = _TOP_ALERTS) -> dict[str, Any]:
    """High, then medium alerts, largest cover on the buyer first (table None if none)."""
    frame = alerts[alerts["severity"].astype(str).isin(["high", "medium"])]
    total = len(frame)
    if not total:
        return {"shown": 0, "total": 0, "table": None}
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
            label(r.get("severity")),
            label(r.get("alert")),
            label(r.get("buyer_id")),
            grade_move(r.get("previous_grade"), r.get("grade")),
            _share(r.get("pd")),
            label(r.get("limits")),
            money(_number(r.get("aggregate_limit"))),
            label(r.get("policyholders")),
            label(r.get("reason")) if r.get("reason") is not None else "",
        ]
        for r in frame.to_dict("records")
    ]
    classes = [f"sev-{s}" for s in frame["severity"].astype(str)]
    return {
        "shown": min(total, top),
        "total": total,
        "table": Table(header, rows, numeric=(4, 5, 6, 7), classes=classes),
    }


def _history_section(history: pd.DataFrame | None, as_of: str) -> dict[str, Any] | None:
    """Trends up to `as_of` (a report regenerated for a past date shows no later runs)."""
    if history is None or "date" not in history:
        return None
    history = history[history["date"].astype(str).str[:10] <= str(as_of)[:10]]
    if not len(history):
        return None
    history = history.sort_values("date", kind="stable").reset_index(drop=True)
    plots: list[Plot] = []
    if any(f"grade_{g}" in history for g in GRADES):
        plots.append(_img(grade_mix_figure(history), "Grade mix over time"))
    if "score_psi" in history:
        plots.append(_img(psi_history_figure(history), "Score PSI over time"))
    if any(c.startswith("alerts_") and c != "alerts_total" for c in history.columns):
        plots.append(_img(alerts_history_figure(history), "Alerts per day"))
    return {
        "runs": len(history),
        "first": label(history["date"].iloc[0]),
        "last": label(history["date"].iloc[-1]),
        "plots": plots,
    }


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
    facts = [
        f"model {label(summary.get('model_version', MISSING))}",
        f"policy {label(summary.get('policy_version', MISSING))}",
        f"{_int(summary.get('buyers'))} buyers",
    ]
    return render(
        "monitoring.html.j2",
        title=f"Portfolio monitoring as of {as_of}",
        facts=facts,
        headline=_headline(summary, backtest),
        thresholds={
            "psi_watch": f"{PSI_WATCH:.2f}",
            "psi_shift": f"{PSI_SHIFT:.2f}",
            "jeffreys_red": f"{JEFFREYS_RED:g}",
            "jeffreys_yellow": f"{JEFFREYS_YELLOW:g}",
            "default_grade": MASTER_SCALE.default_grade,
        },
        psi=_psi_section(psi),
        migration=_migration_section(migration),
        backtest=_backtest_section(backtest),
        alert_counts=_alert_counts(alerts, summary),
        top_alerts=_top_alerts(alerts) if alerts is not None else None,
        summary_counts=any(_alert_counts_of(summary).values()),
        history=_history_section(history, as_of),
    )
