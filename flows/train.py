"""Model flows: train and validate PD models, promote the challenger, roll back the champion.

Orchestration only: the training set, the models, the validation and the gate are plain
functions in `features/` and `models/`; this module wires them to the lake, Prefect and
MLflow (one parent run per training with one nested run per model, both in the training
experiment; the parent carries every model's headline figures).
"""

from __future__ import annotations

import hashlib
import json
import pickle
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from sklearn.metrics import roc_auc_score

from data.lake import spreadsheet_safe
from features.catalogue import CATALOGUE, FEATURE_NAMES, catalogue_markdown
from features.labels import DEFAULT_DEFINITION
from features.training import (
    VALIDATION_FOLDS,
    TrainingPlan,
    build_training_set,
    fold_frame,
    latest_known_date,
    monthly_as_of_dates,
    plan_training,
    production_frame,
)
from flows.context import RunContext
from flows.features import read_inputs
from models.master_scale import MASTER_SCALE
from models.monitoring.cohorts import matured_cohort_rows
from models.monitoring.drift import build_reference, cohort_backtest, shifted_reference
from models.pd.calibration import intercept_shift
from models.pd.model import fit_model
from models.pd.plots import (
    calibration_figure,
    feature_importance_figure,
    grade_distribution_figure,
    roc_figure,
)
from models.pd.promotion import DEFAULT_AUC_TOLERANCE, GateDecision, promotion_decision
from models.pd.validation import oracle_auc, validate
from models.registry import (
    CHALLENGER,
    CHAMPION,
    PREVIOUS_CHAMPION,
    REFERENCE_ARTIFACT,
    TRAINING_EXPERIMENT,
    VALIDATION_MODEL_ARTIFACT,
    AliasMove,
    ModelRegistry,
)

MODEL_KINDS = ("scorecard", "lightgbm")
#: Segments the validation report breaks down (columns of the training set).
SEGMENTS = ("political_risk_class", "size_class")
TEST_ROWS_ARTIFACT = "validation/test_rows.parquet"
#: Out-of-time figures recorded per validation fold and averaged over the folds.
FOLD_METRICS = ("auc", "gini", "brier", "ece", "observed_to_predicted", "default_rate")
ID_AND_LABEL = ["buyer_id", "as_of_date", "label"]
#: Validation figures copied to the parent training run, per model (`<kind>_<metric>`).
HEADLINE_METRICS = ("auc", "gini", "ks", "brier", "log_loss", "ece", "psi", "oracle_auc")


@dataclass
class ModelResult:
    kind: str
    run_id: str
    metrics: dict[str, float]
    traffic_light: str
    registered_version: str | None = None


@dataclass
class TrainResult:
    parent_run_id: str
    plan: str
    rows: dict[str, int]
    models: list[ModelResult] = field(default_factory=list)


def data_fingerprint(frame: pd.DataFrame) -> str:
    """A hash of the training rows, labels and features: the same data gives the same print."""
    hashed = pd.util.hash_pandas_object(frame[[*ID_AND_LABEL, *FEATURE_NAMES]], index=False)
    return hashlib.sha256(hashed.to_numpy().tobytes()).hexdigest()[:16]


def truth_for(rows: pd.DataFrame, truth_dir: Path | None) -> np.ndarray | None:
    """The generator's true 12-month PD of each row (generated data only), else None."""
    if truth_dir is None or not (truth_dir / "pd_monthly.parquet").exists():
        return None
    truth = pd.read_parquet(
        truth_dir / "pd_monthly.parquet", columns=["buyer_id", "month_end", "pd_12m_true"]
    )
    truth = truth.astype({"buyer_id": "str", "month_end": "datetime64[ns]"})
    keyed = rows[["buyer_id", "as_of_date"]].astype(
        {"buyer_id": "str", "as_of_date": "datetime64[ns]"}
    )
    merged = keyed.merge(
        truth, left_on=["buyer_id", "as_of_date"], right_on=["buyer_id", "month_end"], how="left"
    )
    return merged["pd_12m_true"].to_numpy()


def _log_figure(fig, name: str) -> None:
    mlflow.log_figure(fig, f"plots/{name}.png")


def _log_text(text: str, name: str) -> None:
    mlflow.log_text(text, name)


def _fitted_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows a fit reads ('train' and 'calibration': cross-fitted calibration uses both)."""
    return frame[frame["split"].isin(["train", "calibration"])]


def _evaluate_and_log(kind: str, model, frame: pd.DataFrame, truth_dir: Path | None):
    """Validate on the out-of-time test rows; log metrics, tables and plots to the active run."""
    test = frame[frame["split"] == "test"]
    y = test["label"].astype(int).to_numpy()
    pd_test = model.predict_pd(test)
    pd_fitted = model.predict_pd(_fitted_rows(frame))
    grades = MASTER_SCALE.grade_of(pd_test)
    report = validate(
        y,
        pd_test,
        grades,
        segments={s: test[s].to_numpy() for s in SEGMENTS},
        reference_pd=pd_fitted,
        title=f"PD model validation: {kind} (latest out-of-time fold)",
    )
    metrics = dict(report.metrics)
    true_pd = truth_for(test, truth_dir)
    if true_pd is not None and np.isfinite(true_pd).any():
        known = np.isfinite(true_pd)
        metrics["oracle_auc"] = oracle_auc(y[known], true_pd[known])
        metrics["auc_on_truth_rows"] = float(roc_auc_score(y[known], pd_test[known]))
    mlflow.log_metrics({k: float(v) for k, v in metrics.items() if np.isfinite(v)})
    mlflow.set_tag("traffic_light", report.overall_traffic_light)
    _log_text(report.to_markdown(), "validation/report.md")
    _log_text(spreadsheet_safe(report.by_grade).to_csv(index=False), "validation/by_grade.csv")
    _log_text(json.dumps(report.to_dict(), indent=1, default=str), "validation/report.json")
    _log_figure(roc_figure(y, {kind: pd_test}), "roc")
    _log_figure(calibration_figure(y, pd_test), "calibration")
    _log_figure(grade_distribution_figure(grades, y, pd_test), "grade_distribution")
    _log_figure(feature_importance_figure(model.feature_importance()), "feature_importance")
    test_rows = test[[*ID_AND_LABEL, *model.feature_names, "in_default_at_as_of"]]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "test_rows.parquet"
        test_rows.to_parquet(path, index=False)
        mlflow.log_artifact(str(path), "validation")
        # The gate compares this fold's model, not the production refit (which has seen
        # these rows), with the champion's own validation model on the same rows.
        model_path = Path(tmp) / Path(VALIDATION_MODEL_ARTIFACT).name
        model_path.write_bytes(pickle.dumps(model))
        mlflow.log_artifact(str(model_path), str(Path(VALIDATION_MODEL_ARTIFACT).parent))
    return metrics, report.overall_traffic_light


def fold_metrics(model, frame: pd.DataFrame) -> dict[str, float]:
    """A fold's out-of-time figures (test rows), for the per-fold and mean records."""
    test = frame[frame["split"] == "test"]
    metrics = validate(test["label"].astype(int).to_numpy(), model.predict_pd(test)).metrics
    return {name: float(metrics[name]) for name in FOLD_METRICS}


@task(name="fit-and-validate", task_run_name="fit and validate {kind}", cache_policy=NO_CACHE)
def fit_and_validate(
    registry: ModelRegistry,
    parent: mlflow.entities.Run,
    kind: str,
    frame: pd.DataFrame,
    plan: TrainingPlan,
    truth_dir: Path | None,
    register: bool,
) -> ModelResult:
    """Rolling-origin validation (one fit per fold), then the production refit on every
    matured row; the production fit is what gets registered and monitored."""
    logger = get_run_logger()
    with registry.run(TRAINING_EXPERIMENT, kind, parent=parent) as run:
        per_fold: list[dict[str, float]] = []
        for k, fold in enumerate(plan.folds, 1):
            rows = fold_frame(frame, fold, seed=k)
            model = fit_model(kind, rows, calibrate_on="cross_fit")
            per_fold.append(fold_metrics(model, rows))
            mlflow.log_metrics({f"fold{k}_{m}": v for m, v in per_fold[-1].items()})
            logger.info(
                "%s fold %d: %s", kind, k, {m: round(v, 4) for m, v in per_fold[-1].items()}
            )
            if k == len(plan.folds):
                metrics, light = _evaluate_and_log(kind, model, rows, truth_dir)
        means = {f"mean_{m}": float(np.mean([f[m] for f in per_fold])) for m in FOLD_METRICS}
        metrics |= means | {"folds": float(len(plan.folds))}
        mlflow.log_metrics(means | {"folds": float(len(plan.folds))})

        production = production_frame(frame, plan)
        model = fit_model(kind, production, calibrate_on="cross_fit")
        mlflow.log_params({"model_kind": kind, "n_features": len(model.feature_names)})
        params = getattr(model, "params", None)
        if params:
            mlflow.log_params({f"param_{k}": v for k, v in params.items()})
        _log_text(json.dumps(model.info, indent=1, default=str), "production/fit.json")
        fitted = _fitted_rows(production)
        # The daily monitoring compares each day's features and scores with the rows the
        # registered model was fitted on (no warm-up rows: no train/serve skew).
        reference = build_reference(
            fitted,
            model.feature_names,
            model.predict_pd(fitted),
            months=fitted["as_of_date"].dt.month.to_numpy(),
        )
        _log_text(json.dumps(reference), REFERENCE_ARTIFACT)
        result = ModelResult(kind, run.info.run_id, metrics, light)
        if register:
            categorical = {n for n in model.feature_names if CATALOGUE[n].categorical}
            uri = registry.log_pd_model(model, model.feature_names, categorical)
            tags = {
                "kind": kind,
                "traffic_light": light,
                "fit_as_of": f"{plan.first_as_of.date()}..{plan.last_matured.date()}",
                "validation_auc": f"{metrics['auc']:.4f}",
                "mean_validation_auc": f"{metrics['mean_auc']:.4f}",
            }
            mv = registry.register(uri, run.info.run_id, tags)
            result.registered_version = mv.version
    return result


@flow(name="train", flow_run_name="train on {ctx.settings.lake_dir}")
def train_flow(
    ctx: RunContext,
    truth_dir: Path | None = None,
    register_kind: str = "lightgbm",
    folds: int = VALIDATION_FOLDS,
) -> TrainResult:
    """Plan the training dates, validate both models by rolling origin, refit for production
    on every matured row, register the production refit as the challenger."""
    logger = get_run_logger()
    tables = read_inputs(ctx)
    observation_end = latest_known_date(tables)
    first_data = tables["invoices"]["issue_date"].min()
    month_ends = monthly_as_of_dates(first_data + pd.offsets.MonthEnd(0), observation_end)
    plan = plan_training(month_ends, observation_end, first_data, folds=folds)
    frame = build_training_set(tables, plan.first_as_of, plan.last_matured, observation_end)
    frame = frame[frame["label"].notna()].reset_index(drop=True)
    fold_rows = [len(_fitted_rows(fold_frame(frame, f, seed=k)))
                 for k, f in enumerate(plan.folds, 1)]  # fmt: skip
    rows = {"production": len(frame), **{f"fold{k}_fit": n for k, n in enumerate(fold_rows, 1)}}
    logger.info("training plan:\n%s", plan.describe())
    logger.info("rows: %s", rows)

    registry = ctx.registry
    with registry.run(TRAINING_EXPERIMENT, f"train {observation_end.date()}") as parent:
        latest = plan.folds[-1]
        mlflow.log_params(
            {
                "observation_end": observation_end.date().isoformat(),
                "first_as_of": plan.first_as_of.date().isoformat(),
                "production_fit": f"{plan.first_as_of.date()}..{plan.last_matured.date()}",
                "folds": len(plan.folds),
                "test": f"{latest.test_start.date()}..{latest.test_end.date()}",
                "horizon_months": DEFAULT_DEFINITION.horizon_months,
                "default_definition": repr(DEFAULT_DEFINITION),
                "data_fingerprint": data_fingerprint(frame),
                **{f"rows_{k}": int(v) for k, v in rows.items()},
            }
        )
        _log_text(plan.describe(), "training_plan.txt")
        _log_text(catalogue_markdown(), "feature_catalogue.md")
        scale = spreadsheet_safe(MASTER_SCALE.scale_frame())
        _log_text(scale.to_csv(index=False), "master_scale.csv")
        result = TrainResult(parent.info.run_id, plan.describe(), rows)
        parent_run = registry.client.get_run(parent.info.run_id)
        for kind in MODEL_KINDS:
            model_result = fit_and_validate(
                registry, parent_run, kind, frame, plan, truth_dir, register=kind == register_kind
            )
            logger.info("%s: %s", kind, {k: round(v, 4) for k, v in model_result.metrics.items()})
            result.models.append(model_result)
        registry.activate()
        mlflow.log_metrics(headline_metrics(result.models))
        registered = [m for m in result.models if m.registered_version]
        if registered:
            mlflow.set_tags(
                {"registered_kind": registered[0].kind,
                 "registered_version": registered[0].registered_version}
            )  # fmt: skip
    return result


def headline_metrics(models: list[ModelResult]) -> dict[str, float]:
    """Each model's out-of-time headline figures as `<kind>_<metric>` (finite only)."""
    return {
        f"{m.kind}_{name}": float(m.metrics[name])
        for m in models
        for name in HEADLINE_METRICS
        if name in m.metrics and np.isfinite(m.metrics[name])
    }


def _auc_on(model, rows: pd.DataFrame) -> float:
    return float(roc_auc_score(rows["label"].astype(int), model.predict_pd(rows)))


@flow(name="promote", flow_run_name="promote the challenger")
def promote_flow(
    registry: ModelRegistry,
    tolerance: float = DEFAULT_AUC_TOLERANCE,
    force_reason: str | None = None,
) -> tuple[GateDecision, AliasMove | None]:
    """Gate the challenger against the champion on the challenger's out-of-time test rows.

    Both sides are the models each version was validated with: the challenger's production
    refit has seen its own test rows (they matured), so its latest fold's model stands in
    for it; the champion's fold model predates those rows as well.
    """
    logger = get_run_logger()
    challenger = registry.version_by_alias(CHALLENGER)
    if challenger is None:
        raise LookupError("no challenger registered: run `solvency train` first")
    champion = registry.version_by_alias(CHAMPION)
    if champion is not None and champion.version == challenger.version:
        decision = GateDecision(False, [f"version {challenger.version} is already the champion"])
        return decision, None
    rows = pd.read_parquet(registry.run_artifact(challenger.run_id, TEST_ROWS_ARTIFACT))
    challenger_model, _ = registry.validation_model(challenger)
    champion_auc = None
    if champion is not None:
        champion_model, which = registry.validation_model(champion)
        logger.info("champion v%s compared through its %s", champion.version, which)
        champion_auc = _auc_on(champion_model, rows)
    light = challenger.tags.get("traffic_light", "red")
    decision = promotion_decision(_auc_on(challenger_model, rows), champion_auc, light, tolerance)
    logger.info(decision.summary())
    if decision.approved or force_reason:
        reason = decision.summary() if decision.approved else f"forced: {force_reason}"
        move = registry.move_alias(
            CHAMPION, challenger.version, reason, forced=not decision.approved
        )
        return decision, move
    return decision, None


@flow(name="rollback", flow_run_name="roll back the champion")
def rollback_flow(
    registry: ModelRegistry, version: str | None = None, reason: str = "rollback"
) -> AliasMove:
    """Point the champion alias back at `version` (default: the previous champion)."""
    if version is None:
        previous = registry.version_by_alias(PREVIOUS_CHAMPION)
        if previous is None:
            raise LookupError("no previous champion to roll back to: give a version number")
        version = previous.version
    return registry.move_alias(CHAMPION, version, reason)


@dataclass
class Recalibration:
    """What `recalibrate_flow` found and did."""

    champion: str
    cohorts: str
    rows: int
    defaults: int
    before: dict[str, float]
    after: dict[str, float]
    delta: float
    registered_version: str


@flow(name="recalibrate", flow_run_name="recalibrate the champion on {ctx.as_of}")
def recalibrate_flow(ctx: RunContext, cohorts: int | None = None) -> Recalibration:
    """Intercept recalibration of the champion on its latest matured cohorts.

    For a champion that still ranks (AUC holds) but whose level drifted (the monitoring's
    matured-cohort backtest red, observed / predicted off): the log-odds move by the one
    constant that makes the cohort's PDs sum to its defaults; ranking, features and slope
    are unchanged. The result is registered as a new version (the challenger) with its
    validation model and test rows shifted alike, so it goes through the gate like any
    other; the drift reference's score bins move with it.
    """
    logger = get_run_logger()
    registry = ctx.registry
    champion = registry.champion()
    model, _ = registry.load_pd_model(champion.version)
    count = cohorts or ctx.monitoring.backtest.cohorts
    rows = matured_cohort_rows(read_inputs(ctx), ctx.timestamp, count)
    if rows is None:
        raise ValueError(
            f"no matured cohort as of {ctx.day}: a cohort needs {DEFAULT_DEFINITION.horizon_months}"
            " months of outcomes after a month end at least a horizon after the first invoice"
        )
    y = rows["label"].astype(int).to_numpy()
    before = model.predict_pd(rows)
    delta = intercept_shift(before, y)
    dates = ", ".join(str(d.date()) for d in rows["as_of_date"].drop_duplicates().sort_values())
    note = {"from_version": str(champion.version), "cohorts": dates, "as_of": ctx.day}
    shifted = model.recalibrated(delta, note)
    after = shifted.predict_pd(rows)
    figures = {}
    for name, pds in (("before", before), ("after", after)):
        metrics, _ = cohort_backtest(y, pds, MASTER_SCALE.grade_of(pds))
        figures[name] = {
            "auc": metrics["auc"],
            "mean_pd": metrics["mean_pd"],
            "default_rate": metrics["default_rate"],
            "observed_to_predicted": metrics["default_rate"] / metrics["mean_pd"],
            "light": metrics["worst_light"],
        }
    logger.info("champion v%s on %s: %s -> %s", champion.version, dates, figures["before"],
                figures["after"])  # fmt: skip

    source = registry.client.get_run(champion.run_id)
    with registry.run(TRAINING_EXPERIMENT, f"recalibrate v{champion.version} {ctx.day}") as run:
        mlflow.log_params({**{f"recalibration_{k}": v for k, v in note.items()},
                           "intercept_shift": delta, "model_kind": shifted.kind})  # fmt: skip
        mlflow.log_metrics({f"{side}_{k}": float(v) for side, f in figures.items()
                            for k, v in f.items() if k != "light"})  # fmt: skip
        reference = json.loads(registry.run_artifact(source.info.run_id, REFERENCE_ARTIFACT)
                               .read_text())  # fmt: skip
        _log_text(json.dumps(shifted_reference(reference, delta)), REFERENCE_ARTIFACT)
        # The champion's validation (report, plots, test rows) stays the reference of the
        # recalibrated version: its ranking is the one validated.
        try:
            for folder in ("validation", "plots"):
                copied = registry.run_artifact(source.info.run_id, folder)
                mlflow.log_artifacts(str(copied), folder)
            report = registry.run_artifact(source.info.run_id, "validation/report.md").read_text()
        except (MlflowException, OSError) as exc:
            raise ValueError(
                f"champion v{champion.version} has no validation to carry over (run "
                f"{source.info.run_id}: {exc}); retrain with `solvency train` instead"
            ) from exc
        _log_text(
            f"> Validation of version {champion.version}, whose intercept this version moved by "
            f"{delta:+.4f} on the matured cohorts {dates} (observed / predicted "
            f"{figures['before']['observed_to_predicted']:.3f} before, "
            f"{figures['after']['observed_to_predicted']:.3f} after).\n\n{report}",
            "validation/report.md",
        )
        with tempfile.TemporaryDirectory() as tmp:
            validation, _ = registry.validation_model(champion)
            path = Path(tmp) / Path(VALIDATION_MODEL_ARTIFACT).name
            path.write_bytes(pickle.dumps(validation.recalibrated(delta, note)))
            mlflow.log_artifact(str(path), str(Path(VALIDATION_MODEL_ARTIFACT).parent))
        categorical = {
            n for n in shifted.feature_names if n in CATALOGUE and CATALOGUE[n].categorical
        }
        uri = registry.log_pd_model(shifted, shifted.feature_names, categorical)
        tags = {
            "kind": shifted.kind,
            "traffic_light": figures["after"]["light"],
            "recalibrated_from": str(champion.version),
            "intercept_shift": f"{delta:.4f}",
            **{k: v for k, v in champion.tags.items() if k in ("fit_as_of", "validation_auc",
                                                                "mean_validation_auc")},
        }  # fmt: skip
        mv = registry.register(uri, run.info.run_id, tags)
    return Recalibration(str(champion.version), dates, len(rows), int(y.sum()), figures["before"],
                         figures["after"], delta, str(mv.version))  # fmt: skip
