"""The daily run's key figures: one flat, strict-JSON record per as-of date.

Operations read it in the run log and the pointer of the date; MLflow keeps it as the
day's metrics; the monitoring history plots it over time. Built from the day's tables only.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from models.limits.policy import ACTIONS
from models.master_scale import MASTER_SCALE
from models.monitoring.alerts import alert_summary
from models.monitoring.drift import (
    SCORE,
    grade_migration,
    migration_summary,
    psi_against_reference,
)


def plain(value: Any) -> Any:
    """NaN/inf -> None and numpy scalars -> Python numbers, so the record is strict JSON."""
    if isinstance(value, float | np.floating) and not np.isfinite(value):
        return None
    return value.item() if isinstance(value, np.generic) else value


def portfolio_drift(
    features: pd.DataFrame,
    scores: pd.DataFrame,
    previous_scores: pd.DataFrame | None,
    reference: dict | None,
) -> dict[str, Any]:
    """Drift of the performing buyers against the model's training reference (None without
    a stored reference) and the grade migration against the previous run."""
    scored = scores["grade"] < MASTER_SCALE.default_grade
    # the calendar month of the day: seasonal features compare with the same month
    month = (
        int(features["as_of_date"].iloc[0].month)
        if "as_of_date" in features.columns and len(features)
        else None
    )
    psi = (
        psi_against_reference(
            reference,
            features.loc[scored.to_numpy()],
            scores.loc[scored, "pd"].to_numpy(),
            month,
        )
        if reference is not None
        else None
    )
    migration = grade_migration(previous_scores, scores[["buyer_id", "grade"]])
    return {"psi": psi, "migration": migration, "migration_summary": migration_summary(migration)}


def daily_summary(
    day: str,
    scores: pd.DataFrame,
    recommendations: pd.DataFrame | None,
    alerts: pd.DataFrame | None,
    drift: dict[str, Any] | None,
    backtest: tuple[dict[str, Any], pd.DataFrame] | None,
    versions: dict[str, str],
) -> dict[str, Any]:
    """Counts, drift and backtest headline figures of one run; steps switched off give None.

    `versions`: model_version, policy_version, monitoring_version.
    """
    psi = drift["psi"] if drift else None
    features_psi = psi.loc[psi["name"] != SCORE] if psi is not None else None
    actions = recommendations["action"].value_counts() if recommendations is not None else None
    summary = {
        "as_of": day,
        "buyers": len(scores),
        "scored": int((scores["grade"] < MASTER_SCALE.default_grade).sum()),
        "in_default": int((scores["grade"] == MASTER_SCALE.default_grade).sum()),
        **versions,
        "score_psi": float(psi.loc[psi["name"] == SCORE, "psi"].iat[0])
        if psi is not None
        else None,
        "max_feature_psi": float(features_psi["psi"].max()) if features_psi is not None else None,
        "features_red": int((features_psi["light"] == "red").sum())
        if features_psi is not None
        else None,
        "backtest_auc": float(backtest[0]["auc"]) if backtest else None,
        "backtest_light": backtest[0].get("worst_light") if backtest else None,
        "alerts_total": len(alerts) if alerts is not None else None,
        "alerts": alert_summary(alerts) if alerts is not None else {},
        "actions": {a: int(actions.get(a, 0)) for a in ACTIONS} if actions is not None else {},
        "limits": len(recommendations) if recommendations is not None else None,
        "migration": {k: plain(v) for k, v in drift["migration_summary"].items()} if drift else {},
    }
    return {k: plain(v) for k, v in summary.items()}
