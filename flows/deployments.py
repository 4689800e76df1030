"""Scheduled deployments served by `solvency serve` (Prefect 3 `serve`, no worker needed).

- daily-rescore: every day at the configured local time (default 06:00 UTC);
- monthly-retrain: 03:00 on the 1st, registers a challenger (promotes only if configured);
- monitoring-report: Mondays 07:00, the monitoring history across all published dates.
"""

from __future__ import annotations

import re
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.deployments.runner import RunnerDeployment
from prefect.schedules import Cron

from flows.daily import monitoring_history_flow, rescore_flow_for
from flows.settings import Settings

RETRAIN_CRON = "0 3 1 * *"
MONITORING_CRON = "0 7 * * 1"


def daily_cron(time: str) -> str:
    """'06:00' -> '0 6 * * *' (a clear error for anything else)."""
    match = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", time.strip())
    if not match:
        raise ValueError(f"daily time must be HH:MM (24 h), got '{time}'")
    hour, minute = (int(g) for g in match.groups())
    return f"{minute} {hour} * * *"


@flow(name="monthly-retrain")
def retrain_flow(
    lake_dir: Path, mlflow_uri: str, mlflow_artifacts: Path | None, auto_promote: bool = False
) -> str:
    """Retrain on everything the lake knows, register the challenger, promote if allowed."""
    from flows.train import promote_flow, train_flow

    logger = get_run_logger()
    result = train_flow(lake_dir, mlflow_uri, mlflow_artifacts)
    registered = [m for m in result.models if m.registered_version]
    version = registered[0].registered_version if registered else "?"
    if not auto_promote:
        logger.info("challenger v%s registered; promotion is an analyst's decision", version)
        return f"challenger v{version}"
    decision, move = promote_flow(mlflow_uri)
    logger.info(decision.summary())
    return f"champion v{move.version}" if move else f"challenger v{version} (gate refused)"


def build_deployments(settings: Settings) -> list[RunnerDeployment]:
    """The three deployments with their schedules and parameters (tested without serving).

    The daily rescoring runs its buyer partitions on the settings' task runner (threads,
    processes, or the Dask cluster at SOLVENCY_DASK_ADDRESS)."""
    common = {
        "lake_dir": str(settings.lake_dir),
        "mlflow_uri": settings.mlflow_uri,
        "mlflow_artifacts": str(settings.mlflow_artifacts) if settings.mlflow_artifacts else None,
    }
    daily_parameters = {**common, "as_of": None, "partition_buyers": settings.partition_buyers}
    if settings.drop_dir is not None:
        daily_parameters["drop_dir"] = str(settings.drop_dir)
    return [
        rescore_flow_for(settings).to_deployment(
            name="daily-rescore",
            schedules=[Cron(daily_cron(settings.daily_time), timezone=settings.timezone)],
            parameters=daily_parameters,
            description="Rescore every buyer, recommend limits, alert and monitor (today).",
            tags=["daily"],
        ),
        retrain_flow.to_deployment(
            name="monthly-retrain",
            schedules=[Cron(RETRAIN_CRON, timezone=settings.timezone)],
            parameters={**common, "auto_promote": settings.auto_promote},
            description="Retrain the PD models and register a challenger.",
            tags=["monthly"],
        ),
        monitoring_history_flow.to_deployment(
            name="monitoring-report",
            schedules=[Cron(MONITORING_CRON, timezone=settings.timezone)],
            parameters={"lake_dir": str(settings.lake_dir)},
            description="Monitoring history report across all published dates.",
            tags=["weekly"],
        ),
    ]
