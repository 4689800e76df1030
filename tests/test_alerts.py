"""Daily alerts: each rule on hand-built buyers, the cover columns, the order, the config."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from models.monitoring.alerts import ALERT_COLUMNS, ALERT_TYPES, alert_summary, build_alerts
from models.monitoring.config import (
    MONITORING_PATH,
    MonitoringConfig,
    MonitoringConfigError,
    load_monitoring_config,
    parse_monitoring_config,
)

AS_OF = pd.Timestamp("2026-12-01")
SINCE = pd.Timestamp("2026-11-30")
CONFIG = load_monitoring_config()
DEFAULT: dict[str, Any] = yaml.safe_load(MONITORING_PATH.read_text(encoding="utf-8"))


def scores(**grades: tuple[int, float]) -> pd.DataFrame:
    """buyer=(grade, pd) -> a scores frame."""
    return pd.DataFrame(
        {
            "buyer_id": list(grades),
            "grade": [g for g, _ in grades.values()],
            "pd": [p for _, p in grades.values()],
        }
    )


def events(*rows: tuple[str, str, str]) -> pd.DataFrame:
    """(buyer, date, type) -> an events frame like the lake's."""
    return pd.DataFrame(
        {
            "buyer_id": pd.Series([r[0] for r in rows], dtype=object),
            "event_date": pd.to_datetime([r[1] for r in rows]),
            "event_type": pd.Series([r[2] for r in rows], dtype=object),
            "policyholder_id": None,
            "amount": np.nan,
        }
    )


def features(buyers: list[str], age: float = 6.0) -> pd.DataFrame:
    return pd.DataFrame({"buyer_id": buyers, "statement_age_months": age, "no_statement": 0.0})


NO_EVENTS = events()
NO_LIMITS = pd.DataFrame({"policyholder_id": [], "buyer_id": [], "limit_amount": []})


def alerts_for(
    current: pd.DataFrame,
    previous: pd.DataFrame | None = None,
    evts: pd.DataFrame = NO_EVENTS,
    feats: pd.DataFrame | None = None,
    limits: pd.DataFrame = NO_LIMITS,
    config: MonitoringConfig = CONFIG,
    since: pd.Timestamp | None = SINCE,
) -> pd.DataFrame:
    feats = features(list(current["buyer_id"])) if feats is None else feats
    return build_alerts(AS_OF, current, previous, evts, feats, limits, config, since)


# --- grade alerts --------------------------------------------------------------------------
def test_a_downgrade_of_two_notches_alerts_with_both_pds():
    out = alerts_for(scores(A=(7, 0.061)), scores(A=(4, 0.008)))
    assert list(out.columns) == ALERT_COLUMNS
    row = out.iloc[0]
    assert (row.alert, row.severity, row.grade, row.previous_grade) == ("downgrade", "medium", 7, 4)
    assert row.reason == "downgraded 4 -> 7 (PD 0.80% -> 6.10%)"
    assert row.pd == pytest.approx(0.061)
    assert row.as_of_date == AS_OF


def test_a_one_notch_downgrade_or_an_upgrade_does_not_alert():
    out = alerts_for(scores(A=(5, 0.02), B=(2, 0.002)), scores(A=(4, 0.01), B=(6, 0.03)))
    assert out.empty and list(out.columns) == ALERT_COLUMNS


def test_previous_pd_is_optional_in_the_reason():
    previous = scores(A=(3, 0.004)).drop(columns="pd")
    out = alerts_for(scores(A=(6, 0.03)), previous)
    assert out["reason"].tolist() == ["downgraded 3 -> 6 (PD 3.00%)"]


def test_a_fall_into_default_is_a_downgrade_but_not_a_watch_list_entry():
    out = alerts_for(scores(A=(10, 1.0)), scores(A=(5, 0.02)))
    assert out["alert"].tolist() == ["downgrade"]
    assert out["reason"].iat[0] == "downgraded 5 -> 10 (in default; PD was 2.00%)"


def test_crossing_into_the_watch_list_alerts_once_and_staying_there_does_not():
    current = scores(A=(8, 0.12), B=(9, 0.3), C=(8, 0.12))
    previous = scores(A=(7, 0.07), B=(8, 0.12), C=(6, 0.04))
    out = alerts_for(current, previous)
    watch = out.loc[out["alert"] == "watch_list"]
    assert sorted(watch["buyer_id"]) == ["A", "C"]  # B was already on the watch list
    assert watch.set_index("buyer_id").loc["A", "reason"] == (
        "entered the watch list (grade 8 or worse): grade 7 -> 8 (PD 7.00% -> 12.00%)"
    )
    # C fell two grades: downgrade and watch list are separate alerts
    assert sorted(out.loc[out["buyer_id"] == "C", "alert"]) == ["downgrade", "watch_list"]
    assert (out["alert"] == "watch_list").sum() == 2 and len(out) == 3


def test_the_first_run_has_no_downgrade_or_watch_list_alerts():
    out = alerts_for(scores(A=(9, 0.3), B=(10, 1.0)), None)
    assert out.empty


def test_a_buyer_new_since_the_previous_run_has_no_grade_alert():
    out = alerts_for(scores(A=(9, 0.3)), scores(B=(1, 0.001)))
    assert out.empty


# --- events ------------------------------------------------------------------------------
def test_events_alert_only_inside_the_window_since_the_previous_run():
    evts = events(
        ("A", "2026-11-30", "insolvency"),  # on `since`: reported by the previous run
        ("B", "2026-12-01", "insolvency"),  # on as-of: counts
        ("C", "2026-12-02", "insolvency"),  # after as-of: not known yet
        ("D", "2026-12-01", "legal_dispute"),  # not a configured alert event
    )
    out = alerts_for(scores(A=(3, 0.01), B=(3, 0.01), C=(3, 0.01), D=(3, 0.01)), evts=evts)
    assert out["buyer_id"].tolist() == ["B"]
    row = out.iloc[0]
    assert (row.alert, row.severity) == ("insolvency", "high")
    assert row.reason == "insolvency filed on 2026-12-01"
    assert pd.isna(row.previous_grade) and row.grade == 3


def test_without_since_events_count_from_the_lookback():
    evts = events(("A", "2026-11-25", "liquidation"), ("B", "2026-11-24", "liquidation"))
    out = alerts_for(scores(A=(3, 0.01), B=(3, 0.01)), evts=evts, since=None)
    # since = as-of - 7 days = 2026-11-24, excluded: the 7 days 2026-11-25 .. 2026-12-01
    assert out["buyer_id"].tolist() == ["A"] and out["alert"].tolist() == ["liquidation"]


def test_several_events_of_one_type_make_one_alert_with_the_count():
    evts = events(
        ("A", "2026-11-26", "claim_filed"),
        ("A", "2026-11-28", "claim_filed"),
        ("A", "2026-11-29", "overdue_notification"),
    ).assign(amount=[10_000.0, 35_000.0, np.nan])
    out = alerts_for(scores(A=(4, 0.01)), evts=evts, since=pd.Timestamp("2026-11-20"))
    by_type = out.set_index("alert")
    assert sorted(out["alert"]) == ["claim_filed", "overdue_notification"]
    assert by_type.loc["claim_filed", "reason"] == (
        "2 claims filed between 2026-11-26 and 2026-11-28, EUR 45k in total"
    )
    assert by_type.loc["claim_filed", "severity"] == "high"
    assert by_type.loc["overdue_notification", "reason"] == "overdue notification on 2026-11-29"
    assert by_type.loc["overdue_notification", "severity"] == "medium"


def test_an_event_on_a_buyer_without_a_score_still_alerts():
    out = alerts_for(scores(A=(3, 0.01)), evts=events(("Z", "2026-12-01", "claim_filed")))
    assert out["buyer_id"].tolist() == ["Z"]
    assert pd.isna(out["grade"].iat[0]) and np.isnan(out["pd"].iat[0])


# --- stale statements and cover ----------------------------------------------------------
LIMITS = pd.DataFrame(
    {
        "policyholder_id": ["P2", "P1", "P1", "P3", "P4"],
        "buyer_id": ["A", "A", "B", "C", "D"],
        "limit_amount": [400_000.0, 350_000.0, 600_000.0, 100_000.0, 499_999.0],
    }
)


def test_stale_statements_alert_only_on_large_cover():
    feats = pd.DataFrame(
        {
            "buyer_id": ["A", "B", "C", "D", "E"],
            "statement_age_months": [26.4, np.nan, 30.0, 40.0, 18.0],
            "no_statement": [0.0, 1.0, 0.0, 0.0, 0.0],
        }
    )
    current = scores(A=(3, 0.01), B=(3, 0.01), C=(3, 0.01), D=(3, 0.01), E=(3, 0.01))
    big = LIMITS.assign(limit_amount=LIMITS["limit_amount"].where(LIMITS["buyer_id"] != "E"))
    out = alerts_for(current, feats=feats, limits=big)
    # C (EUR 100k) and D (just below EUR 500k) are stale but small; E has no limit.
    assert out["buyer_id"].tolist() == ["A", "B"]  # sorted by cover, largest first
    assert (out["alert"] == "stale_statement").all() and (out["severity"] == "low").all()
    reasons = out.set_index("buyer_id")["reason"]
    assert reasons["A"] == "latest statement 26.4 months old (limit 18), cover EUR 750k"
    assert reasons["B"] == "no financial statement known, cover EUR 600k"


def test_a_statement_exactly_at_the_limit_is_not_stale():
    feats = pd.DataFrame({"buyer_id": ["B"], "statement_age_months": [18.0], "no_statement": [0.0]})
    assert alerts_for(scores(B=(3, 0.01)), feats=feats, limits=LIMITS).empty


def test_cover_columns_count_sum_and_join_the_policyholders():
    evts = events(*[(b, "2026-12-01", "claim_filed") for b in ["A", "B", "Z"]])
    out = alerts_for(scores(A=(3, 0.01), B=(3, 0.01)), evts=evts, limits=LIMITS)
    cover = out.set_index("buyer_id")[["limits", "aggregate_limit", "policyholders"]]
    assert cover.loc["A"].tolist() == [2, 750_000.0, "P1,P2"]
    assert cover.loc["B"].tolist() == [1, 600_000.0, "P1"]
    assert cover.loc["Z"].tolist() == [0, 0.0, ""]  # buyers without limits still alert
    assert out["limits"].dtype == "int64"


def test_alerts_are_sorted_by_severity_then_cover_then_buyer():
    current = scores(A=(7, 0.06), B=(7, 0.06), C=(3, 0.01), D=(3, 0.01), E=(3, 0.01))
    previous = scores(A=(4, 0.01), B=(4, 0.01), C=(3, 0.01), D=(3, 0.01), E=(3, 0.01))
    evts = events(
        ("C", "2026-12-01", "claim_filed"),
        ("E", "2026-12-01", "insolvency"),
        ("D", "2026-12-01", "claim_filed"),
        ("B", "2026-12-01", "overdue_notification"),
    )
    feats = features(list("ABCDE")).assign(statement_age_months=[40.0, 6, 6, 6, 6])
    limits = pd.DataFrame(
        {
            "policyholder_id": ["P1", "P1", "P2", "P1"],
            "buyer_id": ["A", "B", "C", "D"],
            "limit_amount": [900_000.0, 200_000.0, 200_000.0, 100_000.0],
        }
    )
    out = alerts_for(current, previous, evts, feats, limits)
    assert list(zip(out["severity"], out["buyer_id"], out["alert"], strict=True)) == [
        ("high", "C", "claim_filed"),  # EUR 200k
        ("high", "D", "claim_filed"),  # EUR 100k
        ("high", "E", "insolvency"),  # no cover
        ("medium", "A", "downgrade"),  # EUR 900k
        ("medium", "B", "downgrade"),  # EUR 200k, same buyer: downgrade before overdue
        ("medium", "B", "overdue_notification"),
        ("low", "A", "stale_statement"),
    ]


# --- summary ------------------------------------------------------------------------------
def test_alert_summary_counts_every_type_and_the_total():
    evts = events(("A", "2026-12-01", "insolvency"), ("B", "2026-12-01", "insolvency"))
    out = alerts_for(scores(A=(7, 0.06), B=(3, 0.01)), scores(A=(4, 0.01), B=(3, 0.01)), evts)
    summary = alert_summary(out)
    assert list(summary) == [*ALERT_TYPES, "total"]
    assert summary["insolvency"] == 2 and summary["downgrade"] == 1
    assert summary["watch_list"] == 0 and summary["total"] == 3
    empty = alert_summary(alerts_for(scores(A=(3, 0.01))))
    assert set(empty.values()) == {0}


# --- the configuration ---------------------------------------------------------------------
def write_config(tmp_path: Path, change) -> Path:
    config = copy.deepcopy(DEFAULT)
    change(config)
    path = tmp_path / "monitoring.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def test_the_default_config_loads_with_its_version():
    assert CONFIG.version == "2026.12-2" and len(CONFIG.fingerprint) == 64
    assert CONFIG.alerts.downgrade_notches == 2 and CONFIG.alerts.watch_list_grade == 8
    assert CONFIG.alerts.large_cover == 500_000 and CONFIG.backtest.cohorts == 1
    assert CONFIG.reasons.refresh_days == 7


@pytest.mark.parametrize(
    ("change", "path", "message"),
    [
        (lambda c: c["alerts"].update(large_cover=-1), "alerts.large_cover", "greater than"),
        (
            lambda c: c["alerts"].update(events=["insolvency", "bankruptcy"]),
            "alerts.events",
            "unknown event types ['bankruptcy']",
        ),
        (lambda c: c["alerts"].update(colour="red"), "alerts.colour", "Extra inputs"),
        (lambda c: c.update(psi_shift=0.3), "psi_shift", "Extra inputs"),
        (lambda c: c["alerts"].update(watch_list_grade=10), "alerts.watch_list_grade", "less"),
        (lambda c: c.pop("version"), "version", "Field required"),
        (lambda c: c["reasons"].update(refresh_days=0), "reasons.refresh_days", "greater"),
    ],
)
def test_config_errors_name_the_field_path(tmp_path, change, path, message):
    with pytest.raises(MonitoringConfigError) as error:
        load_monitoring_config(write_config(tmp_path, change))
    lines = str(error.value).splitlines()
    assert any(line.strip().startswith(f"{path}:") and message in line for line in lines), lines


def test_config_that_is_not_a_mapping_or_not_yaml(tmp_path):
    with pytest.raises(MonitoringConfigError, match="expected a mapping"):
        parse_monitoring_config(["alerts"])
    broken = tmp_path / "broken.yaml"
    broken.write_text("alerts: [", encoding="utf-8")
    with pytest.raises(MonitoringConfigError, match="not valid YAML"):
        load_monitoring_config(broken)
    with pytest.raises(MonitoringConfigError, match="cannot read"):
        load_monitoring_config(tmp_path / "absent.yaml")
