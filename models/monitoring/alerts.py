"""Daily alerts: the buyers an underwriter should look at today, and why.

`build_alerts` is a pure function of one run's inputs (scores, the previous run's scores,
the lake's events, a few features and the limits) and the monitoring configuration
(`config/monitoring.yaml`). One row per buyer and alert type:

- `downgrade` (medium): the grade worsened by at least `downgrade_notches` since the
  previous run (a fall into default counts);
- `watch_list` (medium): the grade crossed into `watch_list_grade` or worse (performing
  grades only) since the previous run; a buyer already there does not alert again;
- one alert per configured event type (`insolvency`, `liquidation`, `claim_filed`: high;
  `overdue_notification`: medium): events dated after the previous run (`since`) and no
  later than as-of; several events of one type on one buyer make one alert with the count;
- `stale_statement` (low): the latest financial statement is older than
  `stale_statement_months` (or there is none) on a buyer whose aggregate limit (all
  policyholders) is at least `large_cover`.

Without a previous run (first run) there are no downgrade or watch-list alerts, and events
count from `event_lookback_days` before as-of. Each row carries the buyer's cover (number
of limits, their sum, the policyholders) so alerts can be routed and prioritised; the
frame is sorted by severity, then cover (largest first), then buyer. Everything is
vectorised (groupby / merge): a portfolio of a million buyers takes seconds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.master_scale import MASTER_SCALE
from models.monitoring.config import MonitoringConfig
from models.reports.format import money_series

ALERT_COLUMNS = [
    "as_of_date",
    "buyer_id",
    "alert",
    "severity",
    "reason",
    "grade",
    "previous_grade",
    "pd",
    "limits",
    "aggregate_limit",
    "policyholders",
]
#: Alert types, in the order risk managers read them (also the last sort key).
ALERT_TYPES: tuple[str, ...] = (
    "insolvency",
    "liquidation",
    "claim_filed",
    "downgrade",
    "overdue_notification",
    "watch_list",
    "stale_statement",
)
SEVERITIES: tuple[str, ...] = ("high", "medium", "low")
#: Severity of each alert type; an event type not listed here (e.g. legal_dispute when it
#: is configured) is medium.
SEVERITY: dict[str, str] = {
    "insolvency": "high",
    "liquidation": "high",
    "claim_filed": "high",
    "downgrade": "medium",
    "watch_list": "medium",
    "overdue_notification": "medium",
    "legal_dispute": "medium",
    "stale_statement": "low",
}
_DEFAULT_SEVERITY = "medium"
#: Reason wording per event type: (one event, several events).
_EVENT_WORDS: dict[str, tuple[str, str]] = {
    "insolvency": ("insolvency filed", "insolvency filings"),
    "liquidation": ("liquidation opened", "liquidation notices"),
    "claim_filed": ("claim filed", "claims filed"),
    "overdue_notification": ("overdue notification", "overdue notifications"),
    "legal_dispute": ("legal dispute", "legal disputes"),
}


def build_alerts(
    as_of: pd.Timestamp,
    scores: pd.DataFrame,
    previous_scores: pd.DataFrame | None,
    events: pd.DataFrame,
    features: pd.DataFrame,
    limits: pd.DataFrame,
    config: MonitoringConfig,
    since: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """The day's alerts, one row per buyer and alert type, columns `ALERT_COLUMNS`.

    - `scores`: buyer_id, pd, grade (10 = in default) of this run;
    - `previous_scores`: buyer_id, grade (and pd, used in the reason when present) of the
      previous run, or None on the first run (no downgrade / watch-list alerts);
    - `events`: the lake's events (buyer_id, event_date, event_type, amount); an event
      alerts when its type is configured and `since < event_date <= as_of`;
    - `features`: buyer_id, statement_age_months (NaN without statement), no_statement;
    - `limits`: policyholder_id, buyer_id, limit_amount;
    - `since`: the previous run's date; None -> as_of - `alerts.event_lookback_days`.

    `grade` / `previous_grade` are nullable integers (NA for a buyer not scored in that
    run), `limits` is 0 and `policyholders` "" for a buyer without limits.
    """
    rules = config.alerts
    if since is None or pd.isna(since):
        since = as_of - pd.Timedelta(days=rules.event_lookback_days)

    state = _state(scores, previous_scores)
    cover = _cover(limits)
    parts = [
        _event_alerts(events, rules.events, since, as_of),
        _stale_alerts(features, cover, rules.stale_statement_months, rules.large_cover),
    ]
    if previous_scores is not None:
        parts = [*_grade_alerts(state, rules.downgrade_notches, rules.watch_list_grade), *parts]
    parts = [p for p in parts if len(p)]
    if not parts:
        return _empty()
    alerts = pd.concat(parts, ignore_index=True)

    alerts = alerts.merge(state[["buyer_id", "grade", "previous_grade", "pd"]], "left", "buyer_id")
    alerts = alerts.merge(cover, "left", "buyer_id")
    alerts = alerts.merge(_policyholders(limits, alerts["buyer_id"]), "left", "buyer_id")
    alerts["limits"] = alerts["limits"].fillna(0).astype("int64")
    alerts["aggregate_limit"] = alerts["aggregate_limit"].fillna(0.0).astype("float64")
    alerts["policyholders"] = alerts["policyholders"].fillna("").astype(object)
    alerts["severity"] = alerts["alert"].map(SEVERITY).fillna(_DEFAULT_SEVERITY)
    alerts["as_of_date"] = as_of
    return order_alerts(alerts)


def order_alerts(alerts: pd.DataFrame) -> pd.DataFrame:
    """Alerts in reading order: most severe first, then the largest cover, then the buyer
    and the alert type (a total order: one alert per buyer and type, so reruns agree)."""
    kind_rank = {kind: i for i, kind in enumerate(ALERT_TYPES)}
    alerts = alerts.assign(
        _severity=alerts["severity"].map({s: i for i, s in enumerate(SEVERITIES)}),
        _kind=alerts["alert"].map(kind_rank).fillna(len(kind_rank)),
    ).sort_values(
        ["_severity", "aggregate_limit", "buyer_id", "_kind", "alert"],
        ascending=[True, False, True, True, True],
        kind="stable",
    )
    return _typed(alerts[ALERT_COLUMNS].reset_index(drop=True))


def combine_alerts(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """The alerts of several buyer partitions as one table, ordered as `build_alerts` does."""
    filled = [p for p in parts if len(p)]
    if not filled:
        return parts[0] if parts else _empty()
    return order_alerts(pd.concat(filled, ignore_index=True))


def alert_summary(alerts: pd.DataFrame) -> dict[str, int]:
    """Alerts per type (every type of `ALERT_TYPES`, zeros included, plus any other type
    present) and "total"."""
    counts = alerts["alert"].value_counts() if len(alerts) else pd.Series(dtype="int64")
    kinds = [*ALERT_TYPES, *sorted(str(k) for k in counts.index if k not in ALERT_TYPES)]
    summary = {kind: int(counts.get(kind, 0)) for kind in kinds}
    summary["total"] = len(alerts)
    return summary


# --- the alert rules -----------------------------------------------------------------------
def _state(scores: pd.DataFrame, previous_scores: pd.DataFrame | None) -> pd.DataFrame:
    """buyer_id, grade, pd (this run), previous_grade, previous_pd (NA when unknown)."""
    current = scores[["buyer_id", "grade", "pd"]].drop_duplicates("buyer_id", keep="last")
    current = current.assign(
        grade=pd.array(current["grade"], dtype="Int64"),
        pd=current["pd"].astype("float64"),
    )
    if previous_scores is None:
        return current.assign(
            previous_grade=pd.array([pd.NA] * len(current), dtype="Int64"),
            previous_pd=np.nan,
        )
    columns = ["buyer_id", "grade", *(["pd"] if "pd" in previous_scores.columns else [])]
    previous = (
        previous_scores[columns]
        .drop_duplicates("buyer_id", keep="last")
        .rename(columns={"grade": "previous_grade", "pd": "previous_pd"})
    )
    state = current.merge(previous, "left", "buyer_id")
    state["previous_grade"] = pd.array(state["previous_grade"], dtype="Int64")
    if "previous_pd" not in state:
        state["previous_pd"] = np.nan
    state["previous_pd"] = state["previous_pd"].astype("float64")
    return state


def _grade_alerts(state: pd.DataFrame, notches: int, watch_grade: int) -> list[pd.DataFrame]:
    default = MASTER_SCALE.default_grade
    both = state.loc[state["grade"].notna() & state["previous_grade"].notna()]
    grade = both["grade"].astype("int64")
    previous = both["previous_grade"].astype("int64")
    down = (grade - previous) >= notches
    crossed = (previous < watch_grade) & (grade >= watch_grade) & (grade < default)
    # Texts only for the buyers that alert (a few among a portfolio).
    moving = both.loc[down | crossed]
    if moving.empty:
        return []
    grade, previous = grade[down | crossed], previous[down | crossed]
    down, crossed = down[down | crossed], crossed[down | crossed]
    moved = previous.astype(str) + " -> " + grade.astype(str)
    pd_now, pd_before = _pct(moving["pd"]), _pct(moving["previous_pd"])
    has_before = moving["previous_pd"].notna()
    pd_text = pd.Series(
        np.where(has_before, " (PD " + pd_before + " -> " + pd_now + ")", " (PD " + pd_now + ")"),
        index=moving.index,
    )
    in_default = pd.Series(
        np.where(has_before, " (in default; PD was " + pd_before + ")", " (in default)"),
        index=moving.index,
    )
    pd_text = pd_text.where(grade < default, in_default)
    downgrades = pd.DataFrame(
        {
            "buyer_id": moving.loc[down, "buyer_id"],
            "alert": "downgrade",
            "reason": "downgraded " + moved[down] + pd_text[down],
        }
    )
    watch = pd.DataFrame(
        {
            "buyer_id": moving.loc[crossed, "buyer_id"],
            "alert": "watch_list",
            "reason": f"entered the watch list (grade {watch_grade} or worse): grade "
            + moved[crossed]
            + pd_text[crossed],
        }
    )
    return [downgrades, watch]


def _event_alerts(
    events: pd.DataFrame, kinds: tuple[str, ...], since: pd.Timestamp, as_of: pd.Timestamp
) -> pd.DataFrame:
    frame = events.loc[events["event_type"].isin(list(kinds))]
    dates = pd.to_datetime(frame["event_date"])
    frame = frame.loc[(dates > since) & (dates <= as_of)].assign(event_date=dates)
    if frame.empty:
        return pd.DataFrame(columns=["buyer_id", "alert", "reason"])
    amount = frame["amount"] if "amount" in frame else pd.Series(np.nan, index=frame.index)
    grouped = (
        frame.assign(amount=pd.to_numeric(amount, errors="coerce"))
        .groupby(["buyer_id", "event_type"], sort=False)
        .agg(
            count=("event_date", "size"),
            first=("event_date", "min"),
            last=("event_date", "max"),
            amount=("amount", "sum"),
        )
        .reset_index()
    )
    kind = grouped["event_type"].astype(str)
    words = kind.map(_EVENT_WORDS)
    one = words.str[0].fillna(kind.str.replace("_", " "))
    many = words.str[1].fillna(kind.str.replace("_", " ") + " events")
    first = grouped["first"].dt.strftime("%Y-%m-%d")
    last = grouped["last"].dt.strftime("%Y-%m-%d")
    single = grouped["count"] == 1
    reason = pd.Series(
        np.where(
            single,
            one + " on " + last,
            grouped["count"].astype(str) + " " + many + " between " + first + " and " + last,
        ),
        index=grouped.index,
    )
    amount_text = ", " + money_series(grouped["amount"], terse=True)
    amount_text = amount_text + np.where(single, "", " in total")
    reason = reason + amount_text.where(grouped["amount"] > 0, "")
    return pd.DataFrame({"buyer_id": grouped["buyer_id"], "alert": kind, "reason": reason})


def _stale_alerts(
    features: pd.DataFrame, cover: pd.DataFrame, months: int, large_cover: float
) -> pd.DataFrame:
    frame = features[["buyer_id", "statement_age_months", "no_statement"]].drop_duplicates(
        "buyer_id", keep="last"
    )
    frame = frame.merge(cover[["buyer_id", "aggregate_limit"]], "left", "buyer_id")
    aggregate = frame["aggregate_limit"].fillna(0.0)
    age = pd.to_numeric(frame["statement_age_months"], errors="coerce")
    none = (pd.to_numeric(frame["no_statement"], errors="coerce").fillna(0) >= 0.5) | age.isna()
    hit = (none | (age > months)) & (aggregate >= large_cover)
    if not hit.any():
        return pd.DataFrame(columns=["buyer_id", "alert", "reason"])
    age, none = age[hit], none[hit]
    statement = pd.Series(
        np.where(
            none,
            "no financial statement known",
            "latest statement " + age.map("{:.1f}".format) + f" months old (limit {months})",
        ),
        index=age.index,
    )
    return pd.DataFrame(
        {
            "buyer_id": frame.loc[hit, "buyer_id"],
            "alert": "stale_statement",
            "reason": statement + ", cover " + money_series(aggregate[hit], terse=True),
        }
    )


# --- cover -------------------------------------------------------------------------------
def _cover(limits: pd.DataFrame) -> pd.DataFrame:
    """buyer_id, limits (count), aggregate_limit (sum) of every buyer with a limit."""
    return (
        limits.groupby("buyer_id", sort=False)
        .agg(limits=("limit_amount", "size"), aggregate_limit=("limit_amount", "sum"))
        .reset_index()
    )


def _policyholders(limits: pd.DataFrame, buyers: pd.Series) -> pd.DataFrame:
    """buyer_id, policyholders ("A,B", sorted) for the given buyers only (the alerting few)."""
    # A semi-join by merge: Series.isin with many string values is slow on Arrow strings.
    wanted = pd.DataFrame({"buyer_id": pd.unique(buyers)})
    frame = limits[["buyer_id", "policyholder_id"]].merge(wanted, "inner", "buyer_id")
    frame = (
        frame.dropna()
        .astype({"policyholder_id": str})
        .drop_duplicates()
        .sort_values(["buyer_id", "policyholder_id"])
    )
    if frame.empty:
        return pd.DataFrame({"buyer_id": [], "policyholders": []}, dtype=object)
    # String concatenation per buyer as one ufunc reduction over the sorted rows: a
    # groupby(...).agg(",".join) costs a Python call per buyer (minutes on a portfolio).
    buyer = frame["buyer_id"].to_numpy()
    starts = np.flatnonzero(np.r_[True, buyer[1:] != buyer[:-1]])
    joined = np.add.reduceat(frame["policyholder_id"].to_numpy(dtype=object) + ",", starts)
    return pd.DataFrame(
        {"buyer_id": buyer[starts], "policyholders": pd.Series(joined).str[:-1].to_numpy()}
    )


# --- formatting --------------------------------------------------------------------------
def _pct(values: pd.Series) -> pd.Series:
    """PDs as percentages with two decimals ("6.10%"), "n/a" when missing."""
    return values.map("{:.2%}".format).astype(object).where(values.notna(), "n/a")


def _typed(alerts: pd.DataFrame) -> pd.DataFrame:
    return alerts.astype(
        {
            "as_of_date": "datetime64[ns]",
            "buyer_id": object,
            "alert": object,
            "severity": object,
            "reason": object,
            "grade": "Int64",
            "previous_grade": "Int64",
            "pd": "float64",
            "limits": "int64",
            "aggregate_limit": "float64",
            "policyholders": object,
        }
    )


def _empty() -> pd.DataFrame:
    return _typed(pd.DataFrame({c: [] for c in ALERT_COLUMNS}))
