"""Scoring with the champion: the one entry point the daily rescoring and the limit engine use.

`score_with_champion` is the task (load the champion from the registry, score a features
frame); `score_flow` scores the published features of one as-of date and publishes
`scores/<as_of>` in the lake.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from data.lake import Lake
from models import registry
from models.pd.scoring import score_buyers


@task(name="score-with-champion", retries=1, retry_delay_seconds=5, cache_policy=NO_CACHE)
def score_with_champion(
    features: pd.DataFrame,
    mlflow_uri: str,
    top_reasons: int = 3,
    explain: np.ndarray | None = None,
) -> pd.DataFrame:
    """PD, grade, reason codes and model version for each features row, by the champion.

    Raises `registry.NoChampionError` (telling the analyst to train and promote) when no
    model is champion yet.
    """
    registry.configure(mlflow_uri)
    model, version = registry.load_pd_model(registry.CHAMPION)
    return score_buyers(features, model, str(version.version), top_reasons, explain)


@flow(name="score", flow_run_name="score {as_of}")
def score_flow(lake_dir: Path, as_of: str, mlflow_uri: str) -> Path:
    """Score the features published for `as_of` (computing them first if missing)."""
    from flows.features import features_flow

    logger = get_run_logger()
    lake = Lake(lake_dir)
    date = pd.Timestamp(as_of).date().isoformat()
    if not lake.output_path("features", date).exists():
        logger.info("no features published for %s yet: building them", date)
        features_flow(lake_dir, date)
    features = lake.read_output("features", date)
    scores = score_with_champion(features, mlflow_uri)
    path = lake.write_output("scores", date, scores)
    counts = scores["grade"].value_counts().sort_index()
    logger.info(
        "scored %d buyers as of %s with model version %s; grades %s -> %s",
        len(scores),
        date,
        scores["model_version"].iat[0] if len(scores) else "-",
        ", ".join(f"{g}: {n}" for g, n in counts.items()),
        path,
    )
    return path
