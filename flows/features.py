"""Feature flows: point-in-time snapshots for one as-of date, and the labelled training set."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from data.lake import Lake
from features.snapshot import as_of_index, build_snapshots
from features.training import (
    assign_split,
    build_training_set,
    latest_known_date,
    monthly_as_of_dates,
    plan_time_split,
)

#: Tables the features read from the lake.
FEATURE_INPUTS = ("buyers", "financials", "invoices", "events", "country_risk")


@task(name="read-lake", retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def read_inputs(lake_dir: Path) -> dict[str, pd.DataFrame]:
    lake = Lake(lake_dir)
    if not lake.has_table("buyers"):
        raise RuntimeError(f"the lake at {lake_dir} has no buyers: run `solvency ingest DIR` first")
    return lake.read_tables(FEATURE_INPUTS)


@flow(name="features", flow_run_name="features {as_of}")
def features_flow(lake_dir: Path, as_of: str) -> Path:
    """Snapshot every buyer at `as_of` and publish it as the `features/<as_of>` output."""
    logger = get_run_logger()
    tables = read_inputs(lake_dir)
    (date,) = as_of_index([as_of])
    snapshot = task(build_snapshots, name="build-snapshots", cache_policy=NO_CACHE)(tables, [date])
    path = Lake(lake_dir).write_output("features", date.date().isoformat(), snapshot)
    logger.info(
        "features as of %s: %d buyers, %d already in default, %d without statements -> %s",
        date.date(),
        len(snapshot),
        int(snapshot["in_default_at_as_of"].sum()),
        int(snapshot["no_statement"].sum()),
        path,
    )
    return path


@flow(name="training-set")
def training_set_flow(lake_dir: Path, start: str | None = None, end: str | None = None) -> Path:
    """Monthly labelled snapshots with their train / calibration / test split, as one output."""
    logger = get_run_logger()
    tables = read_inputs(lake_dir)
    observation_end = latest_known_date(tables)
    first = tables["invoices"]["issue_date"].min()
    start = pd.Timestamp(start) if start else first + pd.offsets.MonthEnd(0)
    end = pd.Timestamp(end) if end else observation_end
    frame = task(build_training_set, name="build-training-set", cache_policy=NO_CACHE)(
        tables, start, end, observation_end
    )
    split = plan_time_split(monthly_as_of_dates(start, end), observation_end)
    frame["split"] = assign_split(frame, split)
    logger.info("time split: %s", split.describe())
    path = Lake(lake_dir).write_output("training_set", f"{start.date()}_{end.date()}", frame)
    logger.info("training set: %d rows -> %s", len(frame), path)
    return path
