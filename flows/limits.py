"""Limit recommendations flow: scores of an as-of date -> one action per credit limit.

Publishes, for the as-of date, `recommendations/<date>.parquet` (the table), `.csv` (for
underwriters' spreadsheets) and `.html` (the self-contained report) in the lake's outputs,
and records an MLflow run with the counts, the policy file and the report.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from data.lake import Lake
from models import registry
from models.limits.engine import recommend_limits
from models.limits.inputs import assemble_pairs
from models.limits.policy import POLICY_PATH, LimitPolicy, load_policy
from models.limits.report import recommendations_html, summary_by

LIMIT_TABLES = ("limits", "policies", "buyers", "financials", "invoices", "events")
LIMITS_EXPERIMENT = "limit-recommendations"
HISTORY_COLUMNS = ["policyholder_id", "buyer_id", "as_of_date", "proposed_action"]


@dataclass(frozen=True)
class LimitsResult:
    as_of: str
    parquet: Path
    csv: Path
    html: Path
    summary: pd.DataFrame
    model_version: str
    policy_version: str
    run_id: str | None


def previous_partition(lake: Lake, name: str, as_of: str) -> str | None:
    """The latest partition of an output strictly before `as_of` (ISO dates sort as text)."""
    earlier = [p for p in lake.output_partitions(name) if p < as_of]
    return earlier[-1] if earlier else None


def recommendation_history(lake: Lake, as_of: str, days: int) -> pd.DataFrame | None:
    """Earlier recommendations within `days` before as-of (all the hysteresis rule needs)."""
    start = (pd.Timestamp(as_of) - pd.Timedelta(days=days)).date().isoformat()
    wanted = [p for p in lake.output_partitions("recommendations") if start <= p < as_of]
    if not wanted:
        return None
    return pd.concat(
        [lake.read_output("recommendations", p, HISTORY_COLUMNS) for p in wanted],
        ignore_index=True,
    )


@task(name="recommend-limits", cache_policy=NO_CACHE)
def recommend_for_date(
    lake_dir: Path,
    as_of: str,
    policy: LimitPolicy,
    tables: dict[str, pd.DataFrame] | None = None,
) -> pd.DataFrame:
    """Assemble the limit engine's inputs for `as_of` from the lake and run the engine."""
    lake = Lake(lake_dir)
    tables = tables if tables is not None else lake.read_tables(LIMIT_TABLES)
    scores = lake.read_output("scores", as_of)
    features = lake.read_output(
        "features", as_of, ["buyer_id", "political_risk_class", "oldest_overdue_days"]
    )
    previous = previous_partition(lake, "scores", as_of)
    previous_scores = (
        lake.read_output("scores", previous, ["buyer_id", "grade"]) if previous else None
    )
    history = recommendation_history(lake, as_of, policy.hysteresis.no_increase_after_decrease_days)
    pairs = assemble_pairs(
        as_of,
        tables,
        scores,
        features,
        previous_scores,
        history,
        grace_days=policy.capacity.payment_grace_days,
    )
    model_version = str(scores["model_version"].iat[0]) if len(scores) else ""
    return recommend_limits(pairs, policy, model_version)


@task(name="publish-recommendations", retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def publish_recommendations(lake_dir: Path, as_of: str, recs: pd.DataFrame) -> tuple[Path, ...]:
    """Parquet, CSV and HTML report of one as-of date, each replaced atomically."""
    lake = Lake(lake_dir)
    parquet = lake.write_output("recommendations", as_of, recs)
    csv = lake.write_output_csv("recommendations", f"{as_of}.csv", recs)
    html = lake.write_output_text("recommendations", f"{as_of}.html", recommendations_html(recs))
    return parquet, csv, html


def log_recommendation_run(
    recs: pd.DataFrame,
    summary: pd.DataFrame,
    policy: LimitPolicy,
    policy_path: Path,
    html: Path,
    as_of: str,
    mlflow_artifacts: Path | None,
) -> str:
    """One MLflow run per recommendation date: counts and amounts, policy file and report."""
    experiment = registry.ensure_experiment(LIMITS_EXPERIMENT, mlflow_artifacts)
    model_version = str(recs["model_version"].iat[0]) if len(recs) else ""
    with mlflow.start_run(experiment_id=experiment, run_name=f"limits {as_of}") as run:
        mlflow.log_params(
            {
                "as_of": as_of,
                "policy_version": policy.version,
                "policy_fingerprint": policy.fingerprint,
                "model_version": model_version,
                "pairs": len(recs),
            }
        )
        metrics = {f"pairs_{a}": float(summary.loc[a, "pairs"]) for a in summary.index}
        total = summary.loc["total"]
        metrics |= {
            "cover_before": float(total["limit_before"]),
            "cover_after": float(total["limit_after"]),
            "expected_loss_before": float(total["expected_loss_before"]),
            "expected_loss_after": float(total["expected_loss_after"]),
            "human_required": float(total["human_required"]),
        }
        mlflow.log_metrics(metrics)
        mlflow.log_artifact(str(policy_path), artifact_path="policy")
        mlflow.log_artifact(str(html), artifact_path="report")
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "summary_by_action.csv"
            summary.to_csv(path)
            mlflow.log_artifact(str(path), artifact_path="report")
        return run.info.run_id


@flow(name="limit-recommendations", flow_run_name="limits {as_of}")
def limits_flow(
    lake_dir: Path,
    as_of: str,
    mlflow_uri: str,
    mlflow_artifacts: Path | None,
    policy_path: Path = POLICY_PATH,
) -> LimitsResult:
    """Recommend an action for every credit limit as of `as_of` and publish it."""
    from flows.score import score_flow

    logger = get_run_logger()
    policy = load_policy(policy_path)
    lake = Lake(lake_dir)
    date = pd.Timestamp(as_of).date().isoformat()
    if not lake.output_path("scores", date).exists():
        logger.info("no scores for %s yet: scoring with the champion first", date)
        score_flow(lake_dir, date, mlflow_uri)
    recs = recommend_for_date(lake_dir, date, policy)
    parquet, csv, html = publish_recommendations(lake_dir, date, recs)
    summary = summary_by(recs, "action")
    registry.configure(mlflow_uri)
    run_id = log_recommendation_run(
        recs, summary, policy, Path(policy_path), html, date, mlflow_artifacts
    )
    counts = ", ".join(f"{a} {int(summary.loc[a, 'pairs'])}" for a in summary.index if a != "total")
    logger.info(
        "%d limits as of %s (policy %s, model v%s): %s -> %s",
        len(recs),
        date,
        policy.version,
        recs["model_version"].iat[0] if len(recs) else "-",
        counts,
        html,
    )
    return LimitsResult(
        date,
        parquet,
        csv,
        html,
        summary,
        str(recs["model_version"].iat[0]) if len(recs) else "",
        policy.version,
        run_id,
    )


#: What-if settings shown beside the configured policy in the backtest.
BACKTEST_VARIANTS = {
    "cautious": {"capacity_factor": 0.6, "cancel_grade": 8, "increase_max_grade": 4},
    "configured": {},
    "lenient": {"capacity_factor": 1.6, "cancel_grade": 10, "increase_max_grade": 6},
}


@flow(name="limit-backtest")
def limit_backtest_flow(
    lake_dir: Path,
    mlflow_uri: str,
    mlflow_artifacts: Path | None,
    policy_path: Path = POLICY_PATH,
    split: str = "test",
) -> pd.DataFrame:
    """Decision value of the policy on the out-of-time months, for a few policy settings.

    Uses the champion and the latest published training set (`solvency training-set`).
    """
    from models.limits.backtest import backtest_limits, policy_variant, summarise_backtest

    logger = get_run_logger()
    lake = Lake(lake_dir)
    sets = lake.output_partitions("training_set")
    if not sets:
        raise RuntimeError("no training set published: run `solvency training-set` first")
    snapshots = lake.read_output("training_set", sets[-1])
    dates = sorted(
        pd.to_datetime(snapshots.loc[snapshots["split"] == split, "as_of_date"].unique())
    )
    if not dates:
        raise RuntimeError(f"the training set {sets[-1]} has no '{split}' months")
    registry.configure(mlflow_uri)
    model, version = registry.load_pd_model(registry.CHAMPION)
    policy = load_policy(policy_path)
    policies = {
        name: policy if not settings else policy_variant(policy, name, **settings)
        for name, settings in BACKTEST_VARIANTS.items()
    }
    logger.info(
        "backtest on %d %s months (%s .. %s), model v%s, policy %s",
        len(dates), split, dates[0].date(), dates[-1].date(), version.version, policy.version,
    )  # fmt: skip
    results = backtest_limits(
        snapshots, dates, lake.read_tables(LIMIT_TABLES), model, str(version.version), policies
    )
    summary = summarise_backtest(results)
    experiment = registry.ensure_experiment(LIMITS_EXPERIMENT, mlflow_artifacts)
    with mlflow.start_run(
        experiment_id=experiment, run_name=f"backtest {dates[0].date()}..{dates[-1].date()}"
    ):
        mlflow.log_params(
            {"model_version": version.version, "policy_version": policy.version, "split": split}
        )
        for name, row in summary.iterrows():
            mlflow.log_metrics(
                {
                    f"{name}_avoided_share": float(row["avoided_share"]),
                    f"{name}_retained_share": float(row["retained_share"]),
                    f"{name}_increases_granted": float(row["increases_granted"]),
                }
            )
        mlflow.log_artifact(str(policy_path), artifact_path="policy")
        with tempfile.TemporaryDirectory() as tmp:
            for frame, name in ((results, "by_date.csv"), (summary, "summary.csv")):
                frame.to_csv(Path(tmp) / name)
                mlflow.log_artifact(str(Path(tmp) / name), artifact_path="backtest")
    return summary
