"""Model flows: train and validate PD models, promote the challenger, roll back the champion.

Orchestration only: the training set, the models, the validation and the gate are plain
functions in `features/` and `models/`; this module wires them to the lake, Prefect and
MLflow (one parent run per training with one nested run per model, both in the training
experiment; the parent carries every model's headline figures).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from sklearn.metrics import roc_auc_score

from features.catalogue import CATALOGUE, FEATURE_NAMES, catalogue_markdown
from features.labels import DEFAULT_DEFINITION
from features.training import (
    assign_split,
    build_training_set,
    latest_known_date,
    monthly_as_of_dates,
    plan_time_split,
)
from flows.context import RunContext
from flows.features import read_inputs
from models.master_scale import MASTER_SCALE
from models.monitoring.drift import build_reference
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
    TRAINING_EXPERIMENT,
    AliasMove,
    ModelRegistry,
)

MODEL_KINDS = ("scorecard", "lightgbm")
#: Segments the validation report breaks down (columns of the training set).
SEGMENTS = ("political_risk_class", "size_class")
TEST_ROWS_ARTIFACT = "validation/test_rows.parquet"
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
    split: str
    rows: dict[str, int]
    models: list[ModelResult] = field(default_factory=list)


def data_fingerprint(frame: pd.DataFrame) -> str:
    """A hash of the training rows, labels and features: the same data gives the same print."""
    hashed = pd.util.hash_pandas_object(
        frame[[*ID_AND_LABEL, "split", *FEATURE_NAMES]], index=False
    )
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


def _evaluate_and_log(kind: str, model, frame: pd.DataFrame, truth_dir: Path | None):
    """Validate on the out-of-time test rows; log metrics, tables and plots to the active run."""
    train = frame[frame["split"] == "train"]
    test = frame[frame["split"] == "test"]
    y = test["label"].astype(int).to_numpy()
    pd_test = model.predict_pd(test)
    pd_train = model.predict_pd(train)
    grades = MASTER_SCALE.grade_of(pd_test)
    report = validate(
        y,
        pd_test,
        grades,
        segments={s: test[s].to_numpy() for s in SEGMENTS},
        reference_pd=pd_train,
        title=f"PD model validation: {kind}",
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
    _log_text(report.by_grade.to_csv(index=False), "validation/by_grade.csv")
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
    return metrics, report.overall_traffic_light


@task(name="fit-and-validate", task_run_name="fit and validate {kind}", cache_policy=NO_CACHE)
def fit_and_validate(
    registry: ModelRegistry,
    parent: mlflow.entities.Run,
    kind: str,
    frame: pd.DataFrame,
    truth_dir: Path | None,
    register: bool,
) -> ModelResult:
    with registry.run(TRAINING_EXPERIMENT, kind, parent=parent) as run:
        model = fit_model(kind, frame)
        mlflow.log_params({"model_kind": kind, "n_features": len(model.feature_names)})
        params = getattr(model, "params", None)
        if params:
            mlflow.log_params({f"param_{k}": v for k, v in params.items()})
        metrics, light = _evaluate_and_log(kind, model, frame, truth_dir)
        train = frame[frame["split"] == "train"]
        reference = build_reference(train, model.feature_names, model.predict_pd(train))
        # The daily monitoring compares each day's features and scores with this.
        _log_text(json.dumps(reference), "reference/reference.json")
        result = ModelResult(kind, run.info.run_id, metrics, light)
        if register:
            categorical = {n for n in model.feature_names if CATALOGUE[n].categorical}
            uri = registry.log_pd_model(model, model.feature_names, categorical)
            mv = registry.register(uri, run.info.run_id, {"kind": kind, "traffic_light": light})
            result.registered_version = mv.version
    return result


@flow(name="train", flow_run_name="train on {ctx.settings.lake_dir}")
def train_flow(
    ctx: RunContext, truth_dir: Path | None = None, register_kind: str = "lightgbm"
) -> TrainResult:
    """Build the training set, fit the scorecard and LightGBM, validate, register the challenger."""
    logger = get_run_logger()
    tables = read_inputs(ctx)
    observation_end = latest_known_date(tables)
    start = tables["invoices"]["issue_date"].min() + pd.offsets.MonthEnd(0)
    split = plan_time_split(monthly_as_of_dates(start, observation_end), observation_end)
    frame = build_training_set(tables, start, observation_end, observation_end)
    frame["split"] = assign_split(frame, split)
    frame = frame[frame["split"] != "excluded"].reset_index(drop=True)
    rows = frame["split"].value_counts().to_dict()
    logger.info("time split: %s", split.describe())
    logger.info("rows: %s", rows)

    registry = ctx.registry
    with registry.run(TRAINING_EXPERIMENT, f"train {observation_end.date()}") as parent:
        mlflow.log_params(
            {
                "observation_end": observation_end.date().isoformat(),
                "train_end": split.train_end.date().isoformat(),
                "calibration": f"{split.calibration_start.date()}..{split.calibration_end.date()}",
                "test": f"{split.test_start.date()}..{split.test_end.date()}",
                "horizon_months": DEFAULT_DEFINITION.horizon_months,
                "default_definition": repr(DEFAULT_DEFINITION),
                "data_fingerprint": data_fingerprint(frame),
                **{f"rows_{k}": int(v) for k, v in rows.items()},
            }
        )
        _log_text(catalogue_markdown(), "feature_catalogue.md")
        _log_text(MASTER_SCALE.scale_frame().to_csv(index=False), "master_scale.csv")
        result = TrainResult(
            parent.info.run_id, split.describe(), {k: int(v) for k, v in rows.items()}
        )
        parent_run = registry.client.get_run(parent.info.run_id)
        for kind in MODEL_KINDS:
            model_result = fit_and_validate(
                registry, parent_run, kind, frame, truth_dir, register=kind == register_kind
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
    """Gate the challenger against the champion on the challenger's out-of-time test rows."""
    logger = get_run_logger()
    challenger = registry.version_by_alias(CHALLENGER)
    if challenger is None:
        raise LookupError("no challenger registered: run `solvency train` first")
    champion = registry.version_by_alias(CHAMPION)
    if champion is not None and champion.version == challenger.version:
        decision = GateDecision(False, [f"version {challenger.version} is already the champion"])
        return decision, None
    rows = pd.read_parquet(registry.run_artifact(challenger.run_id, TEST_ROWS_ARTIFACT))
    challenger_model, _ = registry.load_pd_model(challenger.version)
    champion_auc = None
    if champion is not None:
        champion_model, _ = registry.load_pd_model(champion.version)
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
