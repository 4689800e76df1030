"""The monitoring configuration: one versioned YAML file, validated on load.

`load_monitoring_config(path)` returns a frozen `MonitoringConfig`; any wrong, missing or
unknown field raises `MonitoringConfigError` naming its path in the file (e.g.
`alerts.large_cover: Input should be greater than or equal to 0`), like the limit policy
(`models.limits.policy`). The alerting (`models/monitoring/alerts.py`) and the daily flow only read
this object.

The PSI thresholds are deliberately not part of the file: drift lights always use
`models.pd.validation.PSI_WATCH` / `PSI_SHIFT`, the same as the model validation report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator

from config import packaged
from data.reference import EVENT_TYPES
from models.config_files import StrictModel, load_config, validate_config
from models.master_scale import MASTER_SCALE

MONITORING_PATH = packaged("monitoring.yaml")


class MonitoringConfigError(ValueError):
    """The monitoring file is missing, unreadable or invalid; the message names each bad field."""


class Alerts(StrictModel):
    """Alert rules; see config/monitoring.yaml for what each means."""

    downgrade_notches: Annotated[int, Field(ge=1, le=MASTER_SCALE.default_grade - 1)] = 2
    # Grade 1 cannot be crossed into (nothing is better), so the watch list starts at 2.
    watch_list_grade: Annotated[int, Field(ge=2, le=MASTER_SCALE.n_performing)] = 8
    events: tuple[str, ...] = ("insolvency", "liquidation", "claim_filed", "overdue_notification")
    event_lookback_days: Annotated[int, Field(ge=0, le=366)] = 7
    stale_statement_months: Annotated[int, Field(ge=1, le=120)] = 18
    large_cover: Annotated[float, Field(ge=0)] = 500_000

    @field_validator("events")
    @classmethod
    def _known_events(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(value) - EVENT_TYPES)
        if unknown:
            raise ValueError(f"unknown event types {unknown}; known: {sorted(EVENT_TYPES)}")
        repeated = sorted({v for v in value if value.count(v) > 1})
        if repeated:
            raise ValueError(f"event types listed more than once: {repeated}")
        return value


class Backtest(StrictModel):
    cohorts: Annotated[int, Field(ge=1, le=24)] = 1


class Reasons(StrictModel):
    """How long reason codes of an unchanged buyer are carried before being recomputed."""

    refresh_days: Annotated[int, Field(ge=1, le=366)] = 7


class MonitoringConfig(StrictModel):
    """Everything the daily alerting and monitoring read from config/monitoring.yaml."""

    version: Annotated[str, Field(min_length=1)]
    alerts: Alerts = Alerts()
    backtest: Backtest = Backtest()
    reasons: Reasons = Reasons()
    #: SHA-256 of the file's bytes (set by load_monitoring_config), logged beside the version.
    fingerprint: str = ""


def parse_monitoring_config(config: object, source: str = "monitoring config") -> MonitoringConfig:
    """Validate an already-parsed mapping; errors list every bad field by its path."""
    return validate_config(MonitoringConfig, config, source, MonitoringConfigError)


def load_monitoring_config(path: str | Path = MONITORING_PATH) -> MonitoringConfig:
    """Read and validate the monitoring file; the result carries the file's fingerprint."""
    return load_config(MonitoringConfig, path, "monitoring config", MonitoringConfigError)
