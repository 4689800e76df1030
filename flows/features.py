"""Feature flows: point-in-time snapshots for one as-of date, and the labelled training set."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from features.snapshot import build_snapshots
from features.training import (
    assign_split,
    build_training_set,
    latest_known_date,
    monthly_as_of_dates,
    plan_training,
)
from flows.context import RunContext

#: Tables the features read from the lake.
FEATURE_INPUTS = ("buyers", "financials", "invoices", "events", "country_risk")


@task(name="read-lake", retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def read_inputs(ctx: RunContext) -> dict[str, pd.DataFrame]:
    if not ctx.lake.has_table("buyers"):
        raise RuntimeError(
            f"the lake at {ctx.lake.root} has no buyers: run `solvency ingest DIR` first"
        )
    return ctx.lake.read_tables(FEATURE_INPUTS)


@flow(name="features", flow_run_name="features {ctx.as_of}")
def features_flow(ctx: RunContext) -> Path:
    """Snapshot every buyer at the as-of date and publish it as the `features/<as_of>`
    extract of the lake (an analyst's file; the daily rescoring builds its own)."""
    logger = get_run_logger()
    tables = read_inputs(ctx)
    snapshot = task(build_snapshots, name="build-snapshots", cache_policy=NO_CACHE)(
        tables, [ctx.timestamp]
    )
    path = ctx.lake.write_output("features", ctx.day, snapshot)
    logger.info(
        "features as of %s: %d buyers, %d already in default, %d without statements -> %s",
        ctx.day,
        len(snapshot),
        int(snapshot["in_default_at_as_of"].sum()),
        int(snapshot["no_statement"].sum()),
        path,
    )
    return path


@flow(name="training-set", flow_run_name="training set from {ctx.settings.lake_dir}")
def training_set_flow(
    ctx: RunContext, start: pd.Timestamp | None = None, end: pd.Timestamp | None = None
) -> Path:
    """Monthly labelled snapshots with the latest validation fold's train / calibration /
    out-of-time test split (`features.training.plan_training`), as one output.

    `start` defaults to the first as-of date past the warm-up of the lookback windows,
    `end` to the last date the lake knows.
    """
    logger = get_run_logger()
    tables = read_inputs(ctx)
    observation_end = latest_known_date(tables)
    first = tables["invoices"]["issue_date"].min()
    month_ends = monthly_as_of_dates(first + pd.offsets.MonthEnd(0), observation_end)
    plan = plan_training(month_ends, observation_end, first)
    start = start if start is not None else plan.first_as_of
    end = end if end is not None else observation_end
    frame = task(build_training_set, name="build-training-set", cache_policy=NO_CACHE)(
        tables, start, end, observation_end
    )
    frame["split"] = assign_split(frame, plan.folds[-1])
    logger.info("training plan:\n%s", plan.describe())
    path = ctx.lake.write_output("training_set", f"{start.date()}_{end.date()}", frame)
    logger.info("training set: %d rows -> %s", len(frame), path)
    return path
