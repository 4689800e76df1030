"""Scheduled deployments served by `solvency serve` (Prefect 3 `serve`, no worker needed).

- daily-rescore: every day at the configured local time (default 06:00 UTC);
- monthly-retrain: 03:00 on the 1st, registers a challenger (promotes only if configured);
- monitoring-report: Mondays 07:00, the monitoring history across all published dates.

Each deployment records the settings it was served with as its `settings` parameter (plain
values: paths, URLs, the policy and monitoring files), and each scheduled run builds its run
context from them at its start — the deployment is the run's boundary, like a command.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.deployments.runner import RunnerDeployment
from prefect.schedules import Cron

from flows.context import RunContext, parse_date
from flows.daily import monitoring_history_flow, scheduled_rescore_flow
from flows.runtime import build_task_runner
from flows.settings import Settings, parse_hhmm

RETRAIN_CRON = "0 3 1 * *"
MONITORING_CRON = "0 7 * * 1"


def daily_cron(time: str) -> str:
    """'06:00' -> '0 6 * * *' (a clear error for anything else)."""
    try:
        hour, minute = parse_hhmm(time)
    except ValueError as exc:
        raise ValueError(f"daily time {exc}") from None
    return f"{minute} {hour} * * *"


def _context(settings: dict[str, Any] | None, as_of: str | None = None) -> RunContext:
    resolved = Settings.from_mapping(settings) if settings else Settings.from_env()
    return RunContext.build(resolved, parse_date(as_of, "as_of"))


@flow(name="monthly-retrain", flow_run_name="monthly retrain")
def retrain_flow(settings: dict[str, Any] | None = None) -> str:
    """Retrain on everything the lake knows, register the challenger, promote if allowed."""
    from flows.train import promote_flow, train_flow

    logger = get_run_logger()
    ctx = _context(settings)
    result = train_flow(ctx)
    registered = [m for m in result.models if m.registered_version]
    version = registered[0].registered_version if registered else "?"
    if not ctx.settings.auto_promote:
        logger.info("challenger v%s registered; promotion is an analyst's decision", version)
        return f"challenger v{version}"
    decision, move = promote_flow(ctx.registry)
    logger.info(decision.summary())
    return f"champion v{move.version}" if move else f"challenger v{version} (gate refused)"


@flow(name="monitoring-report", flow_run_name="weekly monitoring history")
def scheduled_monitoring_flow(settings: dict[str, Any] | None = None) -> Path:
    """The monitoring history page across every published date."""
    return monitoring_history_flow(_context(settings))


def build_deployments(settings: Settings) -> list[RunnerDeployment]:
    """The three deployments with their schedules and parameters (tested without serving).

    The daily rescoring runs its buyer partitions on the settings' task runner (threads,
    processes, or the Dask cluster at SOLVENCY_DASK_ADDRESS)."""
    parameters = {"settings": settings.to_mapping()}
    return [
        scheduled_rescore_flow.with_options(task_runner=build_task_runner(settings)).to_deployment(
            name="daily-rescore",
            schedules=[Cron(daily_cron(settings.daily_time), timezone=settings.timezone)],
            parameters={**parameters, "as_of": None},
            description="Rescore every buyer, recommend limits, alert and monitor (today).",
            tags=["daily"],
        ),
        retrain_flow.to_deployment(
            name="monthly-retrain",
            schedules=[Cron(RETRAIN_CRON, timezone=settings.timezone)],
            parameters=parameters,
            description="Retrain the PD models and register a challenger.",
            tags=["monthly"],
        ),
        scheduled_monitoring_flow.to_deployment(
            name="monitoring-report",
            schedules=[Cron(MONITORING_CRON, timezone=settings.timezone)],
            parameters=parameters,
            description="Monitoring history report across all published dates.",
            tags=["weekly"],
        ),
    ]
