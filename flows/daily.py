"""The daily rescoring: one flow run per as-of date, published as one unit.

ingest the day's drop (optional) -> features as of the date -> score with the champion ->
limit recommendations -> alerts -> monitoring (drift, migration, matured-cohort backtest)
-> publish (data/daily_store.py: all files of the date at once) -> MLflow run.

Safe to rerun: a date's outputs are replaced as a unit; a run failing half-way leaves the
previous outputs of its date untouched; two runs of one date cannot overlap (a lock).

`solvency score` and `solvency recommend` are this flow with steps switched off
(`DailySteps`), so every per-date output lives in the one store and every run sees the
same history. Only tasks and the flow live here: the computations are in `models/` and
`features/`, the task runner and Prefect's server in `flows/runtime.py`.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from data.ingest import ingest_directory
from data.partitions import split_by_buyer, split_frame_by_buyer
from features.snapshot import as_of_index, build_snapshots
from flows.context import RunContext, parse_date
from flows.runtime import (
    build_task_runner,
    cache_expiration,
    cache_key,
    fingerprint,
    prune_result_cache,
    source_hash,
)
from flows.settings import Settings
from flows.underwriting import (
    apply_decisions,
    book_before_todays_decisions,
    decide_today,
    open_requests,
    recent_decisions,
)
from models.limits.book import limits_as_of
from models.limits.engine import RECOMMENDATION_COLUMNS, combine_recommendations
from models.limits.policy import LimitPolicy
from models.limits.recommend import recommend_for_book
from models.limits.report import recommendations_html
from models.monitoring.alerts import ALERT_COLUMNS, build_alerts, combine_alerts
from models.monitoring.cohorts import matured_cohort_backtest, matured_cohort_dates
from models.monitoring.config import MonitoringConfig
from models.monitoring.report import history_frame, monitoring_html
from models.monitoring.summary import daily_summary, portfolio_drift
from models.pd.scoring import (
    carry_reasons,
    explain_rows,
    needs_explanation,
    reusable_reasons,
    score_buyers,
)
from models.registry import (
    REFERENCE_ARTIFACT,
    MissingArtifactsError,
    MissingVersionError,
    ModelRegistry,
    NoChampionError,
)
from models.reports.format import printable

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
NO_INPUTS = {"inputs_missing": False, "files": 0, "rows": 0, "quarantined_rows": 0}


class DropFilesFailedError(RuntimeError):
    """Files of the day's drop could not be loaded: the outputs were published from what
    loaded, and the scheduled run still ends failed so that the scheduler shows it."""


def failed_drop_files(summary: dict[str, Any]) -> str:
    """'invoices.csv, limits.csv' when files of the day's drop failed, else ''."""
    return ", ".join(summary.get("failed_files") or [])


class SmallerRunError(RuntimeError):
    """A run with steps switched off would replace a fuller published unit of its date."""


@dataclass(frozen=True)
class DailySteps:
    """Which steps of the daily rescoring run; scoring always does.

    `explain_all` gives every scored buyer fresh reason codes (else only the buyers someone
    reads about today); `replace` lets a smaller run replace a fuller unit of its date.
    """

    ingest: bool = True
    limits: bool = True
    #: Publish the proposals to the decision store and take the automatic decisions.
    decide: bool = True
    alerts: bool = True
    monitoring: bool = True
    track: bool = True
    explain_all: bool = False
    replace: bool = False

    def names(self) -> list[str]:
        """The steps that produce published files, in run order (recorded in the pointer)."""
        named = {
            "limits": self.limits,
            "decisions": self.limits and self.decide,
            "alerts": self.alerts,
            "monitoring": self.monitoring,
        }
        return ["score", *(name for name, on in named.items() if on)]


SCORE_ONLY = DailySteps(ingest=False, limits=False, decide=False, alerts=False, monitoring=False,
                        track=False, explain_all=True)  # fmt: skip
RECOMMEND_ONLY = DailySteps(ingest=False, decide=False, alerts=False, monitoring=False)


@dataclass(frozen=True)
class RescoreResult:
    as_of: str
    pointer: Path
    summary: dict[str, Any]
    recommendations_html: Path | None
    monitoring_html: Path | None
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


def lake_state(ctx: RunContext) -> str:
    """What the lake holds, as a short hash of its manifest (changes with every load)."""
    path = ctx.lake.manifest_path
    manifest = path.read_bytes() if path.exists() else b""
    return fingerprint(str(ctx.lake.root.resolve()), hashlib.sha256(manifest).hexdigest())


@task(name="ingest-drop", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def ingest_drop(ctx: RunContext, drop_dir: Path) -> dict[str, Any]:
    """Load `drop_dir/<as_of>/` if it exists; a missing day is reported, not an error."""
    logger = get_run_logger()
    folder = Path(drop_dir) / ctx.day
    if not folder.is_dir():
        logger.warning(
            "no input files for %s in %s: the run uses what the lake knows", ctx.day, drop_dir
        )
        return {**NO_INPUTS, "inputs_missing": True}
    reports = ingest_directory(
        folder, ctx.lake, load_date=ctx.as_of, options=ctx.settings.ingest_options()
    )
    quarantined = sum(r.quarantined for r in reports)
    rows = sum(r.accepted for r in reports)
    failed = [r for r in reports if r.status == "failed"]
    for report in failed:
        logger.error("%s was not loaded: %s", printable(report.source), printable(report.message))
    for report in reports:  # names and messages from the files: no control characters
        for warning in report.warnings:
            logger.warning("%s: %s", printable(Path(report.source).name), printable(warning))
    if quarantined:
        logger.warning(
            "%d rows of %s failed validation and were quarantined (`solvency quarantine`)",
            quarantined,
            ctx.day,
        )
    return {
        "inputs_missing": False,
        "files": len(reports),
        "files_failed": len(failed),
        "failed_files": [Path(r.source).name for r in failed],
        "rows": int(rows),
        "quarantined_rows": int(quarantined),
    }


@task(name="read-lake", retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def read_tables(ctx: RunContext) -> dict[str, pd.DataFrame]:
    if not ctx.lake.has_table("buyers"):
        raise RuntimeError(
            f"the lake at {ctx.lake.root} has no buyers: run `solvency ingest DIR` first"
        )
    return ctx.lake.read_tables(DAILY_TABLES)


def _features_key(context, parameters: dict[str, Any]) -> str:
    return cache_key(
        "features",
        parameters["state"],
        str(parameters["as_of"].date()),
        f"{parameters['part']}/{parameters['partitions']}",
        source_hash("data", "features"),
    )


@task(name="features", cache_key_fn=_features_key, cache_expiration=cache_expiration())
def daily_features(
    tables: dict[str, pd.DataFrame],
    as_of: pd.Timestamp,
    state: str,
    part: int = 0,
    partitions: int = 1,
) -> pd.DataFrame:
    """Snapshot of a partition's buyers at as-of; cached per (lake state, date, partition,
    code), so a rerun of a date on an unchanged lake skips the feature build."""
    return build_snapshots(tables, as_of_index([as_of]))


def _transient(_task, _task_run, state) -> bool:
    """Retry a registry fault that may pass (a locked store), not a missing champion,
    version or artifact: waiting does not bring those back."""
    permanent = (NoChampionError, MissingVersionError, MissingArtifactsError)
    return not isinstance(state.data, permanent)


@task(
    name="load-champion", retries=2, retry_delay_seconds=5, retry_condition_fn=_transient,
    cache_policy=NO_CACHE,
)  # fmt: skip
def load_champion(registry: ModelRegistry) -> tuple[Any, str, dict | None]:
    """The champion model, its version, and the training reference stored with it (if any)."""
    model, version = registry.load_pd_model("champion")
    try:
        reference = json.loads(
            registry.run_artifact(version.run_id, REFERENCE_ARTIFACT).read_text()
        )
    except Exception:  # an older model without a stored reference: drift is not computed
        reference = None
    return model, str(version.version), reference


def _cohort_key(context, parameters: dict[str, Any]) -> str:
    ctx: RunContext = parameters["ctx"]
    dates = matured_cohort_dates(ctx.timestamp, ctx.monitoring.backtest.cohorts)
    return cache_key(
        "cohort",
        str(ctx.lake.root.resolve()),
        *(d.date().isoformat() for d in dates),
        parameters["model_version"],
        source_hash("data", "features", "models"),
    )


@task(name="matured-cohort-backtest", cache_key_fn=_cohort_key, cache_expiration=cache_expiration())
def matured_cohorts(
    ctx: RunContext, tables: dict[str, pd.DataFrame], model: Any, model_version: str
) -> tuple[dict[str, Any], pd.DataFrame] | None:
    """`models.monitoring.cohorts.matured_cohort_backtest`, cached per (lake, cohort dates,
    model version, code): the cohorts change once a month, so the backtest runs on the
    first daily run of a month (or of a new champion) and the other days reuse it. Its
    outcome windows are over, so only defaults reported a horizon late could change it."""
    return matured_cohort_backtest(tables, model, ctx.timestamp, ctx.monitoring.backtest.cohorts)


@dataclass
class PartitionResult:
    """What one buyer partition hands back to the flow (small: no lake tables)."""

    features: pd.DataFrame
    scores: pd.DataFrame
    recommendations: pd.DataFrame | None
    alerts: pd.DataFrame | None
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
    as_of: pd.Timestamp,
    model: Any,
    model_version: str,
    previous_scores: pd.DataFrame | None,
    history: pd.DataFrame | None,
    since: pd.Timestamp | None,
    policy: LimitPolicy,
    config: MonitoringConfig,
    steps: DailySteps,
    decisions: pd.DataFrame | None = None,
    requests: pd.DataFrame | None = None,
) -> PartitionResult:
    """Score, recommend and alert for one partition's buyers; then reason codes where used.

    Reason codes (about 20x the cost of a PD) are given only to the buyers someone reads
    about today (`scoring.needs_explanation`): a changed grade, a limit action other than
    maintain, or an alert; those whose grade and actions are unchanged since the previous
    run keep its reason codes until their refresh day (`scoring.reusable_reasons`).
    """
    seconds = dict.fromkeys(PARTITION_STEPS, 0.0)
    clock = time.perf_counter()

    def lap(step: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[step] = now - clock
        clock = now

    scores = score_buyers(features, model, model_version, explain=np.zeros(len(features), bool))
    lap("score")
    recs = None
    if steps.limits:
        recs = recommend_for_book(
            as_of, tables, scores, features, previous_scores, history, policy, model_version,
            decisions, requests,
        )  # fmt: skip
    lap("recommend")
    alerts = None
    if steps.alerts:
        alerts = build_alerts(
            as_of, scores, previous_scores, tables["events"],
            features[["buyer_id", "statement_age_months", "no_statement"]],
            limits_as_of(tables["limits"], as_of), config, since,
        )  # fmt: skip
    lap("alerts")
    read_recs = recs if recs is not None else pd.DataFrame(columns=RECOMMENDATION_COLUMNS)
    read_alerts = alerts if alerts is not None else pd.DataFrame(columns=ALERT_COLUMNS)
    if steps.explain_all:
        wanted = needs_explanation(scores, None, read_recs, read_alerts)
        carried = np.zeros(len(scores), dtype=bool)
    else:
        wanted = needs_explanation(scores, previous_scores, read_recs, read_alerts)
        previous_recs = (
            history.loc[history["as_of_date"] == since]
            if history is not None and since is not None
            else None
        )
        carried = wanted & reusable_reasons(
            scores, previous_scores, read_recs, previous_recs, read_alerts,
            config.reasons.refresh_days,
        )  # fmt: skip
    reasons = explain_rows(features, model, wanted & ~carried)
    reasons = carry_reasons(reasons, scores, previous_scores, carried)
    scores = pd.concat(
        [scores.drop(columns=reasons.columns), reasons.set_axis(scores.index)], axis=1
    )
    lap("reasons")
    return PartitionResult(
        features, scores, recs, alerts, seconds, int((wanted & ~carried).sum()), int(carried.sum())
    )


def log_daily_run(
    registry: ModelRegistry, summary: dict[str, Any], pointer: Path, files: dict[str, Path]
) -> str:
    """One MLflow run per date; step = days since 1970 so the metrics form time series."""
    step = int(pd.Timestamp(summary["as_of"]).value // 86_400_000_000_000)
    with registry.run(DAILY_EXPERIMENT, f"rescore {summary['as_of']}") as run:
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
        mlflow.set_tag("steps", ",".join(summary.get("steps", [])))
        mlflow.log_artifact(str(pointer), artifact_path="published")
        for name, path in files.items():
            mlflow.log_artifact(str(path), artifact_path=name)
        return run.info.run_id


def _refuse_a_smaller_unit(ctx: RunContext, steps: DailySteps) -> None:
    """A run with steps switched off must not silently replace a fuller unit of its date."""
    published = ctx.store.pointer(ctx.day)
    if published is None or steps.replace:
        return
    before = published.get("steps") or ["score", "limits", "alerts", "monitoring"]
    lost = [s for s in before if s not in steps.names()]
    if lost:
        raise SmallerRunError(
            f"{ctx.day} already has published outputs with {', '.join(lost)}; this run would "
            f"replace them with {', '.join(steps.names())} only. Use `solvency rescore "
            f"--as-of {ctx.day}` for the full run, or pass --replace"
        )


def rescore_day(ctx: RunContext, steps: DailySteps = DailySteps()) -> RescoreResult:
    """The body of the daily rescoring of `ctx.as_of` (runs inside a flow run).

    Buyers are processed in hash partitions of about `settings.partition_buyers` buyers,
    each a coarse task on the flow's task runner (threads by default, processes or Dask by
    setting). The published outputs do not depend on the partitioning.
    """
    logger = get_run_logger()
    date, as_of, store = ctx.day, ctx.timestamp, ctx.store
    policy, config = ctx.policy, ctx.monitoring
    timings = StepTimer()
    _refuse_a_smaller_unit(ctx, steps)
    with store.lock(date):
        drop_dir = ctx.settings.drop_dir if steps.ingest else None
        inputs = ingest_drop(ctx, drop_dir) if drop_dir is not None else dict(NO_INPUTS)
        timings.lap("ingest drop")
        model, model_version, reference = load_champion(ctx.registry)
        timings.lap("load champion")
        deciding = steps.limits and steps.decide
        applied, decisions, requests = 0, None, None
        if deciding:  # yesterday's decisions into the book, then what the engine must know
            applied = task(apply_decisions, name="apply-decisions", cache_policy=NO_CACHE)(
                ctx, ctx.decisions
            )
            decisions = recent_decisions(ctx.decisions, ctx)
            requests = open_requests(ctx.decisions, ctx.as_of)
            timings.lap("apply decisions", rows=applied)
        tables = read_tables(ctx)
        if deciding:
            tables["limits"] = book_before_todays_decisions(ctx, ctx.decisions, tables["limits"])
        state = lake_state(ctx)
        timings.lap("read lake", rows=sum(len(t) for t in tables.values()))
        partitions = ctx.settings.partitions(len(tables["buyers"]))
        previous, previous_scores, history = store.previous_outputs(
            date, policy.hysteresis.no_increase_after_decrease_days
        )
        since = pd.Timestamp(previous) if previous else None
        parts = split_by_buyer(tables, partitions)
        previous_parts = split_frame_by_buyer(previous_scores, partitions)
        history_parts = split_frame_by_buyer(history, partitions)
        decision_parts = split_frame_by_buyer(decisions, partitions)
        request_parts = split_frame_by_buyer(requests, partitions)
        timings.lap("partition", rows=len(tables["buyers"]))
        features_futures = [
            daily_features.submit(parts[k], as_of, state, k, partitions) for k in range(partitions)
        ]
        part_features = [f.result() for f in features_futures]
        timings.lap("features", rows=sum(len(f) for f in part_features))
        futures = [
            rescore_partition.submit(
                parts[k], part_features[k], as_of, model, model_version,
                previous_parts[k], history_parts[k], since, policy, config, steps,
                decision_parts[k], request_parts[k],
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
        recs = (
            combine_recommendations([r.recommendations for r in results], policy)
            if steps.limits
            else None
        )
        alerts = combine_alerts([r.alerts for r in results]) if steps.alerts else None
        for step in PARTITION_STEPS:
            timings.add(f"  {step} (all partitions)", sum(r.seconds[step] for r in results))
        explained = sum(r.explained for r in results)
        carried = sum(r.carried for r in results)
        timings.lap("combine", rows=len(scores))
        loop = {}
        if deciding:
            loop = task(decide_today, name="decide", cache_policy=NO_CACHE)(
                ctx, ctx.decisions, recs
            )
            loop["decisions_applied"] = applied
            timings.lap("proposals and automatic decisions", rows=loop["proposals"])
        drift = backtest = None
        if steps.monitoring:
            drift = task(portfolio_drift, name="monitoring", cache_policy=NO_CACHE)(
                features, scores, previous_scores, reference
            )
            timings.lap("monitoring (PSI, migration)", rows=len(scores))
            backtest = matured_cohorts(ctx, tables, model, model_version)
            timings.lap("matured-cohort backtest (monthly, cached)")
            if reference is None:
                logger.warning(
                    "model v%s has no stored training reference: no drift figures", model_version
                )
        del tables
        versions = {
            "model_version": model_version,
            "policy_version": policy.version,
            "monitoring_version": config.version,
        }
        summary = daily_summary(date, scores, recs, alerts, drift, backtest, versions)
        summary |= {
            **inputs,
            "partitions": partitions,
            "explained_buyers": explained,
            "reasons_carried": carried,
            **loop,
            "steps": steps.names(),
        }

        staging = store.stage(date)
        staging.write_frame("scores", scores)
        recs_html = mon_html = None
        if recs is not None:
            staging.write_frame("recommendations", recs)
            staging.write_csv("recommendations.csv", recs)
        if alerts is not None:
            staging.write_frame("alerts", alerts)
        if drift is not None:
            if drift["psi"] is not None:
                staging.write_frame("psi", drift["psi"])
            staging.write_frame("migration", drift["migration"])
            if backtest is not None:
                staging.write_frame("backtest", backtest[1])
        timings.lap(
            "write tables (Parquet, CSV)", rows=len(scores) + (0 if recs is None else len(recs))
        )
        if recs is not None:
            recs_html = staging.write_text("recommendations.html", recommendations_html(recs))
        if drift is not None:
            history_rows = history_frame(store, current=(date, summary, scores["grade"]))
            page = monitoring_html(
                date, summary, drift["psi"], drift["migration"],
                backtest[1] if backtest else None, alerts,
                history_rows if len(history_rows) else None,
            )  # fmt: skip
            mon_html = staging.write_text("monitoring.html", page)
        timings.lap("HTML reports")
        pointer = store.commit(staging, summary, steps.names())
        timings.lap("publish (commit)")

    if steps.track:
        reports = {"reports": recs_html, "monitoring": mon_html}
        track = task(
            log_daily_run, name="mlflow-run", retries=2, retry_delay_seconds=5,
            cache_policy=NO_CACHE,
        )  # fmt: skip
        track(ctx.registry, summary, pointer, {k: v for k, v in reports.items() if v})
        timings.lap("MLflow run")
    actions = summary["actions"]
    logger.info(
        "%s: %d buyers scored with model v%s in %d partition(s)%s%s%s -> %s",
        date, summary["scored"], model_version, partitions,
        f", {summary['limits']} limits ({', '.join(f'{k} {v}' for k, v in actions.items() if v)})"
        if recs is not None else "",
        f", {summary['alerts_total']} alerts" if alerts is not None else "",
        "; inputs missing for the day" if summary.get("inputs_missing") else "",
        pointer,
    )  # fmt: skip
    return RescoreResult(date, pointer, summary, recs_html, mon_html, timings.steps)


@flow(name="daily-rescore", flow_run_name="rescore {ctx.as_of}")
def daily_rescore_flow(ctx: RunContext, steps: DailySteps = DailySteps()) -> RescoreResult:
    """Rescore every buyer as of `ctx.as_of` and publish scores, limits, alerts and
    monitoring as one unit (steps switched off in `steps` are skipped)."""
    return rescore_day(ctx, steps)


def rescore_flow_for(settings: Settings):
    """`daily_rescore_flow` with the task runner of `settings` (the CLI)."""
    return daily_rescore_flow.with_options(task_runner=build_task_runner(settings))


def _scheduled_name() -> str:
    """'rescore 2026-11-30': a scheduled run (as_of None) is named after its day."""
    from prefect.runtime import flow_run

    parameters = flow_run.parameters
    settings = Settings.from_mapping(parameters.get("settings") or {})
    return f"rescore {parse_date(parameters.get('as_of')) or settings.today()}"


@flow(name="daily-rescore", flow_run_name=_scheduled_name)
def scheduled_rescore_flow(
    as_of: str | None = None, settings: dict[str, Any] | None = None
) -> RescoreResult:
    """The deployment's entry point: build the run context from the deployment's settings
    (plain values recorded with the deployment) and today's date in their time zone."""
    resolved = Settings.from_mapping(settings) if settings else Settings.from_env()
    ctx = RunContext.build(resolved, parse_date(as_of, "as_of"))
    prune_result_cache(ctx.settings)
    result = rescore_day(ctx)
    failed = failed_drop_files(result.summary)
    if failed:
        raise DropFilesFailedError(
            f"{ctx.day}: outputs published from what loaded, but these files of the drop "
            f"failed: {failed} (see the run's log and `solvency ingest` on them)"
        )
    return result


@flow(name="monitoring-report", flow_run_name="monitoring history of {ctx.settings.lake_dir}")
def monitoring_history_flow(ctx: RunContext) -> Path:
    """The portfolio's monitoring history across every published date, as one HTML page."""
    from data.lake import atomic_write_text

    store = ctx.store
    dates = store.dates_with("monitoring.html")
    if not dates:
        raise RuntimeError("no daily runs published yet: run `solvency rescore` first")
    latest = dates[-1]
    pointer = store.pointer(latest) or {}

    def optional(name: str) -> pd.DataFrame | None:
        return store.read(latest, name) if store.has(latest, f"{name}.parquet") else None

    page = monitoring_html(
        latest, pointer.get("summary", {}), optional("psi"), optional("migration"),
        optional("backtest"), optional("alerts"), history_frame(store),
    )  # fmt: skip
    path = store.root / "history.html"
    atomic_write_text(path, page)
    return path
