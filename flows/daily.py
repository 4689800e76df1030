"""The daily rescoring: one flow run per as-of date, published as one unit.

ingest the day's drop (optional) -> features as of the date -> score with the champion ->
limit recommendations -> alerts -> monitoring (drift, migration, matured-cohort backtest)
-> publish (data/daily_store.py: all files of the date at once) -> MLflow run.

Safe to rerun: a date's outputs are replaced as a unit; a run failing half-way leaves the
previous outputs of its date untouched; two runs of one date cannot overlap (a lock).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner

from data.daily_store import DailyStore
from data.ingest import ingest_directory
from data.lake import Lake
from data.partitions import split_by_buyer, split_frame_by_buyer
from features.labels import first_default_dates, label_snapshots
from features.snapshot import as_of_index, build_snapshots
from flows.settings import Settings
from models import registry
from models.limits.engine import combine_recommendations, recommend_limits
from models.limits.inputs import assemble_pairs
from models.limits.policy import POLICY_PATH, LimitPolicy, load_policy
from models.limits.report import recommendations_html
from models.master_scale import MASTER_SCALE
from models.monitoring.alerts import alert_summary, build_alerts, combine_alerts
from models.monitoring.config import MONITORING_PATH, MonitoringConfig, load_monitoring_config
from models.monitoring.drift import (
    cohort_backtest,
    grade_migration,
    migration_summary,
    psi_against_reference,
)
from models.monitoring.report import history_frame, monitoring_html
from models.pd.scoring import (
    carry_reasons,
    explain_rows,
    needs_explanation,
    reusable_reasons,
    score_buyers,
)

DAILY_EXPERIMENT = "daily-rescoring"
#: The timed steps inside each buyer partition (`rescore_partition`), in order.
PARTITION_STEPS = ("score", "recommend", "alerts", "reasons")
DAILY_TABLES = (
    "buyers",
    "financials",
    "invoices",
    "events",
    "country_risk",
    "limits",
    "policies",
)
REFERENCE_ARTIFACT = "reference/reference.json"
_CODE = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class RescoreResult:
    as_of: str
    pointer: Path
    summary: dict[str, Any]
    recommendations_html: Path
    monitoring_html: Path
    #: (step, seconds, rows) in run order, for progress output and the benchmark.
    steps: list[tuple[str, float, int | None]] = field(default_factory=list)


class StepTimer:
    """Wall time of the flow's steps (and rows handled), kept for the benchmark and logs."""

    def __init__(self) -> None:
        self.steps: list[tuple[str, float, int | None]] = []
        self._clock = time.perf_counter()

    def lap(self, step: str, rows: int | None = None) -> None:
        now = time.perf_counter()
        self.steps.append((step, now - self._clock, rows))
        self._clock = now

    def add(self, step: str, seconds: float) -> None:
        """A figure measured elsewhere (inside partitions), reported beside the laps."""
        self.steps.append((step, seconds, None))


def _fingerprint(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def _source_hash(*packages: str) -> str:
    """Hash of the code a cached result depends on: a code change invalidates the cache."""
    digest = hashlib.sha256()
    for package in packages:
        for path in sorted((_CODE / package).glob("*.py")):
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def lake_state(lake_dir: Path) -> str:
    """What the lake holds, as a short hash of its manifest (changes with every load)."""
    lake = Lake(lake_dir)
    manifest = lake.manifest_path.read_bytes() if lake.manifest_path.exists() else b""
    return _fingerprint(str(Path(lake_dir).resolve()), hashlib.sha256(manifest).hexdigest())


@task(name="ingest-drop", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def ingest_drop(drop_dir: Path, lake_dir: Path, as_of: str) -> dict[str, Any]:
    """Load `drop_dir/<as_of>/` if it exists; a missing day is reported, not an error."""
    logger = get_run_logger()
    folder = Path(drop_dir) / as_of
    if not folder.is_dir():
        logger.warning(
            "no input files for %s in %s: the run uses what the lake knows", as_of, drop_dir
        )
        return {"inputs_missing": True, "files": 0, "rows": 0, "quarantined_rows": 0}
    reports = ingest_directory(folder, Lake(lake_dir), load_date=dt.date.fromisoformat(as_of))
    quarantined = sum(r.quarantined for r in reports)
    rows = sum(r.accepted for r in reports)
    for failed in (r for r in reports if r.status == "failed"):
        logger.error("%s was not loaded: %s", failed.source, failed.message)
    if quarantined:
        logger.warning(
            "%d rows of %s failed validation and were quarantined (`solvency quarantine`)",
            quarantined,
            as_of,
        )
    return {
        "inputs_missing": False,
        "files": len(reports),
        "files_failed": sum(r.status == "failed" for r in reports),
        "rows": int(rows),
        "quarantined_rows": int(quarantined),
    }


@task(name="read-lake", retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def read_tables(lake_dir: Path) -> dict[str, pd.DataFrame]:
    lake = Lake(lake_dir)
    if not lake.has_table("buyers"):
        raise RuntimeError(f"the lake at {lake_dir} has no buyers: run `solvency ingest DIR` first")
    return lake.read_tables(DAILY_TABLES)


def _features_key(context, parameters: dict[str, Any]) -> str:
    return _fingerprint(
        "features",
        parameters["state"],
        parameters["as_of"],
        f"{parameters['part']}/{parameters['partitions']}",
        _source_hash("data", "features"),
    )


@task(name="features", cache_key_fn=_features_key, cache_expiration=None)
def daily_features(
    tables: dict[str, pd.DataFrame], as_of: str, state: str, part: int = 0, partitions: int = 1
) -> pd.DataFrame:
    """Snapshot of a partition's buyers at as-of; cached per (lake state, date, partition,
    code), so a rerun of a date on an unchanged lake skips the feature build."""
    return build_snapshots(tables, as_of_index([as_of]))


@task(name="load-champion", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def load_champion(mlflow_uri: str) -> tuple[Any, str, dict | None]:
    """The champion model, its version, and the training reference stored with it (if any)."""
    registry.configure(mlflow_uri)
    model, version = registry.load_pd_model(registry.CHAMPION)
    try:
        path = registry.download_run_artifact(version.run_id, REFERENCE_ARTIFACT)
        reference = json.loads(Path(path).read_text())
    except Exception:  # an older model without a stored reference: drift is not computed
        reference = None
    return model, str(version.version), reference


def _cohort_key(context, parameters: dict[str, Any]) -> str:
    return _fingerprint(
        "cohort",
        parameters["lake"],
        *_cohort_dates(parameters["as_of"], parameters["cohorts"]),
        parameters["model_version"],
        _source_hash("data", "features", "models"),
    )


def _cohort_dates(as_of: str, cohorts: int) -> list[str]:
    """The latest `cohorts` month ends whose 12-month outcome window ended by `as_of`."""
    end = pd.Timestamp(as_of)
    latest = (end - pd.DateOffset(months=12)) - pd.offsets.MonthEnd(0)
    if latest > end - pd.DateOffset(months=12):
        latest = latest - pd.offsets.MonthEnd(1)
    return [(latest - pd.offsets.MonthEnd(k)).date().isoformat() for k in range(cohorts)]


@task(name="matured-cohort-backtest", cache_key_fn=_cohort_key, cache_expiration=None)
def matured_cohorts(
    tables: dict[str, pd.DataFrame],
    model: Any,
    as_of: str,
    model_version: str,
    cohorts: int,
    lake: str,
) -> tuple[dict[str, Any], pd.DataFrame] | None:
    """Backtest the champion on the latest month-end cohorts whose 12-month window is over.

    Scores every buyer as it was known at each cohort date (point in time) and compares
    with the defaults observed since: AUC and observed vs predicted default rate per grade.
    Cached per (lake, cohort dates, model version, code): the cohorts change once a month,
    so the backtest runs on the first daily run of a month (or of a new champion) and the
    other days reuse it. Its outcome windows are over, so only defaults reported more than
    12 months late could change it.
    """
    end = pd.Timestamp(as_of)
    dates = [pd.Timestamp(d) for d in _cohort_dates(as_of, cohorts)]
    first = tables["invoices"]["issue_date"].min()
    dates = [d for d in dates if pd.notna(first) and d >= first + pd.DateOffset(months=12)]
    if not dates:
        return None
    rows = build_snapshots(tables, as_of_index(dates))
    defaults = first_default_dates(tables["events"], tables["invoices"], known_by=end)
    labelled = label_snapshots(rows, defaults, end)
    labelled = labelled.loc[labelled["label"].notna()]
    if labelled.empty:
        return None
    pd_ = model.predict_pd(labelled)
    y = labelled["label"].astype(int).to_numpy()
    metrics, table = cohort_backtest(y, pd_, MASTER_SCALE.grade_of(pd_))
    table = table.assign(cohort_date=", ".join(d.date().isoformat() for d in sorted(dates)))
    return metrics, table


def recommend(
    as_of: str,
    tables: dict[str, pd.DataFrame],
    scores: pd.DataFrame,
    features: pd.DataFrame,
    previous_scores: pd.DataFrame | None,
    history: pd.DataFrame | None,
    policy: LimitPolicy,
    model_version: str,
) -> pd.DataFrame:
    pairs = assemble_pairs(
        as_of,
        tables,
        scores,
        features[["buyer_id", "political_risk_class", "oldest_overdue_days"]],
        previous_scores,
        history,
        grace_days=policy.capacity.payment_grace_days,
    )
    return recommend_limits(pairs, policy, model_version)


@dataclass
class PartitionResult:
    """What one buyer partition hands back to the flow (small: no lake tables)."""

    features: pd.DataFrame
    scores: pd.DataFrame
    recommendations: pd.DataFrame
    alerts: pd.DataFrame
    #: Seconds per step inside the partition (summed over partitions by the flow).
    seconds: dict[str, float]
    #: Buyers given freshly computed reason codes (`scoring.needs_explanation`).
    explained: int
    #: Buyers whose unchanged reason codes were carried from the previous run
    #: (`scoring.reusable_reasons`).
    carried: int


@task(name="rescore-partition", retries=1, retry_delay_seconds=5, cache_policy=NO_CACHE)
def rescore_partition(
    tables: dict[str, pd.DataFrame],
    features: pd.DataFrame,
    as_of: str,
    model: Any,
    model_version: str,
    previous_scores: pd.DataFrame | None,
    history: pd.DataFrame | None,
    since: str | None,
    policy: LimitPolicy,
    config: MonitoringConfig,
) -> PartitionResult:
    """Score, recommend and alert for one partition's buyers; then reason codes where used.

    Reason codes (about 20x the cost of a PD) are given only to the buyers someone reads
    about today (`scoring.needs_explanation`): a changed grade, a limit action other than
    maintain, or an alert; those whose grade and actions are unchanged since the previous
    run keep its reason codes until their refresh day (`scoring.reusable_reasons`).
    """
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(step: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[step] = now - clock
        clock = now

    scores = score_buyers(features, model, model_version, explain=np.zeros(len(features), bool))
    lap("score")
    recs = recommend(
        as_of, tables, scores, features, previous_scores, history, policy, model_version
    )
    lap("recommend")
    alerts = build_alerts(
        pd.Timestamp(as_of), scores, previous_scores, tables["events"],
        features[["buyer_id", "statement_age_months", "no_statement"]],
        tables["limits"], config, pd.Timestamp(since) if since else None,
    )  # fmt: skip
    lap("alerts")
    wanted = needs_explanation(scores, previous_scores, recs, alerts)
    previous_recs = (
        history.loc[history["as_of_date"] == pd.Timestamp(since)]
        if history is not None and since
        else None
    )
    carried = wanted & reusable_reasons(
        scores, previous_scores, recs, previous_recs, alerts, config.reasons.refresh_days
    )
    reasons = explain_rows(features, model, wanted & ~carried)
    reasons = carry_reasons(reasons, scores, previous_scores, carried)
    scores = pd.concat(
        [scores.drop(columns=reasons.columns), reasons.set_axis(scores.index)], axis=1
    )
    lap("reasons")
    return PartitionResult(
        features, scores, recs, alerts, seconds, int((wanted & ~carried).sum()), int(carried.sum())
    )


def build_task_runner(settings: Settings):
    """The Prefect task runner the settings ask for: local threads (default), local
    processes, or Dask (the cluster at `dask_address`, else a local one) via prefect-dask."""
    from prefect.task_runners import ProcessPoolTaskRunner, ThreadPoolTaskRunner

    workers = settings.workers or os.cpu_count() or 1
    if settings.task_runner == "threads":
        return ThreadPoolTaskRunner(max_workers=workers)
    if settings.task_runner == "processes":
        return ProcessPoolTaskRunner(max_workers=workers)
    from prefect_dask import DaskTaskRunner

    if settings.dask_address:
        return DaskTaskRunner(address=settings.dask_address)
    cluster = {"n_workers": settings.workers or 2, "threads_per_worker": 1}
    api_url = _local_prefect_api()
    if api_url:  # the workers report to this process's Prefect API, not to one each
        cluster["env"] = {"PREFECT_API_URL": api_url}
    return DaskTaskRunner(cluster_kwargs=cluster)


def _local_prefect_api() -> str | None:
    """In Prefect's local mode, start the temporary API server now and return its URL.

    Why: a Dask worker process without PREFECT_API_URL would start a temporary server of
    its own (tens of seconds each, competing for the same SQLite file). Started here, the
    flow itself then reuses the very same server (Prefect keeps one per process).
    """
    if os.environ.get("PREFECT_API_URL"):
        return None
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()
    server.start()
    return server.api_url


def rescore_flow_for(settings: Settings):
    """`daily_rescore_flow` with the task runner of `settings` (the CLI and deployments)."""
    return daily_rescore_flow.with_options(task_runner=build_task_runner(settings))


def _previous_outputs(
    store: DailyStore, as_of: str, days: int
) -> tuple[str | None, pd.DataFrame | None, pd.DataFrame | None]:
    """The previous run's date and scores, and the recommendations of the last `days` days."""
    previous = store.previous_date(as_of)
    scores = None
    if previous:  # grades and PDs, and the reason codes that may be carried forward
        columns = pq.read_schema(store.path(previous, "scores.parquet")).names
        scores = store.read(previous, "scores", [c for c in columns if c != "as_of_date"])
    start = (pd.Timestamp(as_of) - pd.Timedelta(days=days)).date().isoformat()
    dates = [d for d in store.dates() if start <= d < as_of]
    history = (
        pd.concat(
            [
                store.read(
                    d,
                    "recommendations",
                    ["policyholder_id", "buyer_id", "as_of_date", "proposed_action"],
                )
                for d in dates
            ],
            ignore_index=True,
        )
        if dates
        else None
    )
    return previous, scores, history


def monitor(
    features: pd.DataFrame,
    scores: pd.DataFrame,
    previous_scores: pd.DataFrame | None,
    reference: dict | None,
) -> dict[str, Any]:
    """Drift against the training reference and grade migration against the previous run."""
    scored = scores["grade"] < MASTER_SCALE.default_grade
    psi = (
        psi_against_reference(
            reference, features.loc[scored.to_numpy()], scores.loc[scored, "pd"].to_numpy()
        )
        if reference is not None
        else None
    )
    migration = grade_migration(previous_scores, scores[["buyer_id", "grade"]])
    return {"psi": psi, "migration": migration, "migration_summary": migration_summary(migration)}


def _finite_or_none(value: Any) -> Any:
    """NaN -> None, so the published summary is strict JSON."""
    if isinstance(value, float | np.floating) and not np.isfinite(value):
        return None
    return value.item() if isinstance(value, np.generic) else value


def _summary(
    as_of: str,
    scores: pd.DataFrame,
    recs: pd.DataFrame,
    alerts: pd.DataFrame,
    monitoring: dict[str, Any],
    backtest: tuple[dict[str, Any], pd.DataFrame] | None,
    inputs: dict[str, Any],
    model_version: str,
    policy: LimitPolicy,
    config: MonitoringConfig,
) -> dict[str, Any]:
    psi = monitoring["psi"]
    migration = {k: _finite_or_none(v) for k, v in monitoring["migration_summary"].items()}
    features_psi = psi.loc[psi["name"] != "score"] if psi is not None else None
    actions = recs["action"].value_counts()
    summary = {
        "as_of": as_of,
        "buyers": len(scores),
        "scored": int((scores["grade"] < MASTER_SCALE.default_grade).sum()),
        "in_default": int((scores["grade"] == MASTER_SCALE.default_grade).sum()),
        "model_version": model_version,
        "policy_version": policy.version,
        "monitoring_version": config.version,
        "score_psi": float(psi.loc[psi["name"] == "score", "psi"].iat[0])
        if psi is not None
        else None,
        "max_feature_psi": float(features_psi["psi"].max()) if features_psi is not None else None,
        "features_red": int((features_psi["light"] == "red").sum())
        if features_psi is not None
        else None,
        "backtest_auc": float(backtest[0]["auc"]) if backtest else None,
        "backtest_light": backtest[0].get("worst_light") if backtest else None,
        "alerts_total": len(alerts),
        "alerts": alert_summary(alerts),
        "actions": {
            a: int(actions.get(a, 0))
            for a in ("increase", "decrease", "maintain", "cancel", "refer")
        },
        "limits": len(recs),
        "migration": migration,
        **inputs,
    }
    return {k: _finite_or_none(v) for k, v in summary.items()}


def log_daily_run(
    summary: dict[str, Any], pointer: Path, files: dict[str, Path], mlflow_artifacts: Path | None
) -> str:
    """One MLflow run per date; step = days since 1970 so the metrics form time series."""
    experiment = registry.ensure_experiment(DAILY_EXPERIMENT, mlflow_artifacts)
    step = int(pd.Timestamp(summary["as_of"]).value // 86_400_000_000_000)
    with mlflow.start_run(experiment_id=experiment, run_name=f"rescore {summary['as_of']}") as run:
        mlflow.log_params(
            {
                k: summary[k]
                for k in ("as_of", "model_version", "policy_version", "monitoring_version")
            }
        )
        numbers = {
            k: float(v)
            for k, v in summary.items()
            if isinstance(v, int | float) and not isinstance(v, bool) and v is not None
        }
        numbers |= {f"alerts_{k}": float(v) for k, v in summary["alerts"].items()}
        numbers |= {f"action_{k}": float(v) for k, v in summary["actions"].items()}
        numbers |= {
            f"migration_{k}": float(v)
            for k, v in summary["migration"].items()
            if isinstance(v, int | float)
        }
        mlflow.log_metrics({k: v for k, v in numbers.items() if np.isfinite(v)}, step=step)
        mlflow.set_tag("inputs_missing", str(summary.get("inputs_missing", False)))
        mlflow.log_artifact(str(pointer), artifact_path="published")
        for name, path in files.items():
            mlflow.log_artifact(str(path), artifact_path=name)
        return run.info.run_id


def _today() -> str:
    return dt.date.today().isoformat()


def _run_name() -> str:
    """'rescore 2026-11-30': scheduled runs (as_of None) are named after today."""
    from prefect.runtime import flow_run

    return f"rescore {flow_run.parameters.get('as_of') or _today()}"


@flow(
    name="daily-rescore",
    flow_run_name=_run_name,
    task_runner=ThreadPoolTaskRunner(max_workers=os.cpu_count() or 1),
)
def daily_rescore_flow(
    lake_dir: Path,
    mlflow_uri: str,
    mlflow_artifacts: Path | None,
    as_of: str | None = None,
    drop_dir: Path | None = None,
    policy_path: Path = POLICY_PATH,
    monitoring_path: Path = MONITORING_PATH,
    partition_buyers: int = Settings.partition_buyers,
) -> RescoreResult:
    """Rescore every buyer as of `as_of` (default today) and publish scores, limits, alerts
    and monitoring as one unit.

    Buyers are processed in hash partitions of about `partition_buyers` buyers, each a
    coarse task on the flow's task runner (threads by default; `rescore_flow_for(settings)`
    picks processes or Dask). The published outputs do not depend on the partitioning.
    """
    logger = get_run_logger()
    date = pd.Timestamp(as_of or _today()).date().isoformat()
    policy = load_policy(policy_path)
    config = load_monitoring_config(monitoring_path)
    store = DailyStore(lake_dir)
    timings = StepTimer()
    with store.lock(date):
        inputs = (
            ingest_drop(drop_dir, lake_dir, date)
            if drop_dir is not None
            else {"inputs_missing": False, "files": 0, "rows": 0, "quarantined_rows": 0}
        )
        timings.lap("ingest drop")
        model, model_version, reference = load_champion(mlflow_uri)
        timings.lap("load champion")
        tables = read_tables(lake_dir)
        state = lake_state(lake_dir)
        timings.lap("read lake", rows=sum(len(t) for t in tables.values()))
        partitions = max(1, -(-len(tables["buyers"]) // partition_buyers))
        previous, previous_scores, history = _previous_outputs(
            store, date, policy.hysteresis.no_increase_after_decrease_days
        )
        parts = split_by_buyer(tables, partitions)
        previous_parts = split_frame_by_buyer(previous_scores, partitions)
        history_parts = split_frame_by_buyer(history, partitions)
        timings.lap("partition", rows=len(tables["buyers"]))
        features_futures = [
            daily_features.submit(parts[k], date, state, k, partitions) for k in range(partitions)
        ]
        part_features = [f.result() for f in features_futures]
        timings.lap("features", rows=sum(len(f) for f in part_features))
        futures = [
            rescore_partition.submit(
                parts[k], part_features[k], date, model, model_version,
                previous_parts[k], history_parts[k], previous, policy, config,
            )
            for k in range(partitions)
        ]  # fmt: skip
        results = [f.result() for f in futures]
        del parts, features_futures, part_features, futures
        timings.lap("score, limits, alerts, reasons", rows=sum(len(r.scores) for r in results))
        features = pd.concat([r.features for r in results], ignore_index=True)
        scores = pd.concat([r.scores for r in results], ignore_index=True)
        order = np.argsort(scores["buyer_id"].to_numpy(dtype=object), kind="stable")
        features = features.take(order).reset_index(drop=True)
        scores = scores.take(order).reset_index(drop=True)
        recs = combine_recommendations([r.recommendations for r in results], policy)
        alerts = combine_alerts([r.alerts for r in results])
        for step in PARTITION_STEPS:
            timings.add(f"  {step} (all partitions)", sum(r.seconds[step] for r in results))
        explained = sum(r.explained for r in results)
        carried = sum(r.carried for r in results)
        timings.lap("combine", rows=len(scores))
        monitoring = task(monitor, name="monitoring", cache_policy=NO_CACHE)(
            features, scores, previous_scores, reference
        )
        timings.lap("monitoring (PSI, migration)", rows=len(scores))
        backtest = matured_cohorts(
            tables,
            model,
            date,
            model_version,
            config.backtest.cohorts,
            str(Path(lake_dir).resolve()),
        )
        timings.lap("matured-cohort backtest (monthly, cached)")
        del tables
        summary = _summary(
            date, scores, recs, alerts, monitoring, backtest, inputs, model_version, policy, config
        )
        summary |= {
            "partitions": partitions,
            "explained_buyers": explained,
            "reasons_carried": carried,
        }
        if reference is None:
            logger.warning(
                "model v%s has no stored training reference: no drift figures", model_version
            )

        staging = store.stage(date)
        staging.write_frame("scores", scores)
        staging.write_frame("recommendations", recs)
        staging.write_csv("recommendations.csv", recs)
        staging.write_frame("alerts", alerts)
        if monitoring["psi"] is not None:
            staging.write_frame("psi", monitoring["psi"])
        staging.write_frame("migration", monitoring["migration"])
        if backtest is not None:
            staging.write_frame("backtest", backtest[1])
        timings.lap("write tables (Parquet, CSV)", rows=len(scores) + len(recs))
        recs_html = staging.write_text("recommendations.html", recommendations_html(recs))
        history_rows = history_frame(store, current=(date, summary, scores["grade"]))
        monitoring_page = monitoring_html(
            date, summary, monitoring["psi"], monitoring["migration"],
            backtest[1] if backtest else None, alerts, history_rows if len(history_rows) else None,
        )  # fmt: skip
        mon_html = staging.write_text("monitoring.html", monitoring_page)
        timings.lap("HTML reports")
        pointer = store.commit(staging, summary)
        timings.lap("publish (commit)")

    registry.configure(mlflow_uri)
    task(log_daily_run, name="mlflow-run", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)(
        summary, pointer, {"reports": recs_html, "monitoring": mon_html}, mlflow_artifacts
    )
    timings.lap("MLflow run")
    logger.info(
        "%s: %d buyers scored with model v%s in %d partition(s), %d limits (%s), %d alerts%s -> %s",
        date, summary["scored"], model_version, partitions, summary["limits"],
        ", ".join(f"{k} {v}" for k, v in summary["actions"].items() if v),
        summary["alerts_total"],
        "; inputs missing for the day" if summary.get("inputs_missing") else "",
        pointer,
    )  # fmt: skip
    return RescoreResult(date, pointer, summary, recs_html, mon_html, timings.steps)


@flow(name="monitoring-report")
def monitoring_history_flow(lake_dir: Path) -> Path:
    """The portfolio's monitoring history across every published date, as one HTML page."""
    from data.lake import atomic_write_text

    store = DailyStore(lake_dir)
    dates = store.dates()
    if not dates:
        raise RuntimeError("no daily runs published yet: run `solvency rescore` first")
    latest = dates[-1]
    pointer = store.pointer(latest) or {}
    files = pointer.get("files", {})

    def optional(name: str) -> pd.DataFrame | None:
        return store.read(latest, name) if f"{name}.parquet" in files else None

    page = monitoring_html(
        latest, pointer.get("summary", {}), optional("psi"), optional("migration"),
        optional("backtest"), optional("alerts"), history_frame(store),
    )  # fmt: skip
    path = store.root / "history.html"
    atomic_write_text(path, page)
    return path
