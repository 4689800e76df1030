"""Backtest of matured cohorts: how the model's PDs of a year ago compare with what happened.

A cohort is every buyer as known at a month end whose whole outcome window (the default
definition's horizon) is over by the as-of date. Scoring the cohort point in time and
comparing with the defaults seen since gives the model's realised discrimination (AUC) and
calibration per grade — the monitoring's answer to "were the PDs right?".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from features.labels import (
    DEFAULT_DEFINITION,
    DefaultDefinition,
    first_default_dates,
    label_snapshots,
)
from features.snapshot import as_of_index, build_snapshots
from models.master_scale import MASTER_SCALE
from models.monitoring.drift import cohort_backtest


def matured_cohort_dates(
    as_of: pd.Timestamp, cohorts: int, definition: DefaultDefinition = DEFAULT_DEFINITION
) -> list[pd.Timestamp]:
    """The latest `cohorts` month ends whose outcome window (the horizon) ended by `as_of`."""
    horizon = definition.horizon
    latest = (as_of - horizon) - pd.offsets.MonthEnd(0)
    if latest > as_of - horizon:
        latest = latest - pd.offsets.MonthEnd(1)
    return [latest - pd.offsets.MonthEnd(k) for k in range(cohorts)]


def matured_cohort_rows(
    tables: Mapping[str, pd.DataFrame],
    as_of: pd.Timestamp,
    cohorts: int,
    definition: DefaultDefinition = DEFAULT_DEFINITION,
) -> pd.DataFrame | None:
    """Point-in-time snapshots of the matured cohorts with their observed 12-month label.

    Cohorts less than one horizon after the first invoice are skipped (their payment
    history would be cut short by the start of the data); None when nothing is left or no
    buyer of the cohorts has a known outcome.
    """
    first = tables["invoices"]["issue_date"].min()
    dates = [
        d
        for d in matured_cohort_dates(as_of, cohorts, definition)
        if pd.notna(first) and d >= first + definition.horizon
    ]
    if not dates:
        return None
    rows = build_snapshots(tables, as_of_index(dates))
    defaults = first_default_dates(tables["events"], tables["invoices"], definition, known_by=as_of)
    labelled = label_snapshots(rows, defaults, as_of, definition)
    labelled = labelled.loc[labelled["label"].notna()]
    return None if labelled.empty else labelled


def matured_cohort_backtest(
    tables: Mapping[str, pd.DataFrame],
    model: Any,
    as_of: pd.Timestamp,
    cohorts: int,
    definition: DefaultDefinition = DEFAULT_DEFINITION,
) -> tuple[dict[str, Any], pd.DataFrame] | None:
    """AUC and observed vs predicted default rate per grade of the matured cohorts
    (`matured_cohort_rows`; None when there are none)."""
    labelled = matured_cohort_rows(tables, as_of, cohorts, definition)
    if labelled is None:
        return None
    pd_ = model.predict_pd(labelled)
    y = labelled["label"].astype(int).to_numpy()
    metrics, table = cohort_backtest(y, pd_, MASTER_SCALE.grade_of(pd_))
    dates = labelled["as_of_date"].drop_duplicates().sort_values()
    table = table.assign(cohort_date=", ".join(d.date().isoformat() for d in dates))
    return metrics, table
