"""Thin MLflow helpers: log a trained PD model, register it, move its aliases, load it back.

The registry holds one model name (`buyer-pd`) whose versions carry the aliases
`challenger` (the newest trained model) and `champion` (the one the daily rescoring uses).
Aliases, not the deprecated stages: promotion and rollback just point `champion` at another
version, and every alias move is recorded as a version tag (who, when, why).

What is logged is a pyfunc wrapper whose `predict` returns calibrated PDs (not labels, as
the LightGBM flavour would), so `mlflow.pyfunc.load_model("models:/buyer-pd@champion")`
scores correctly anywhere. The pure model object is reachable through
`unwrap_python_model().model` for reason codes.
"""

from __future__ import annotations

import datetime as dt
import getpass
import pickle
import tempfile
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema

MODEL_NAME = "buyer-pd"
CHAMPION = "champion"
CHALLENGER = "challenger"
PREVIOUS_CHAMPION = "previous-champion"
TRAINING_EXPERIMENT = "buyer-pd-training"

#: Explicit requirements of the logged model: inferring them costs seconds and records
#: unrelated packages of the training environment.
REQUIREMENTS = ["mlflow", "numpy", "pandas", "scikit-learn", "lightgbm", "pyarrow"]


def pinned_requirements() -> list[str]:
    return [f"{name}=={version(name)}" for name in REQUIREMENTS]


class PDPyfunc(mlflow.pyfunc.PythonModel):
    """pyfunc wrapper: `predict(features) -> DataFrame[pd]` with calibrated 12-month PDs."""

    def load_context(self, context) -> None:
        with open(context.artifacts["pd_model"], "rb") as fh:
            self.model = pickle.load(fh)

    def predict(
        self, context, model_input: pd.DataFrame, params: dict | None = None
    ) -> pd.DataFrame:
        return pd.DataFrame({"pd": self.model.predict_pd(model_input)}, index=model_input.index)


class NoChampionError(LookupError):
    """No model carries the champion alias yet."""


def configure(tracking_uri: str) -> None:
    """Point MLflow tracking and registry at one store (default: the embedded SQLite file)."""
    if tracking_uri.startswith("sqlite:///"):
        Path(tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)


def ensure_experiment(name: str, artifact_root: Path | None = None) -> str:
    """Create the experiment on first use (artifacts under `artifact_root`), return its id."""
    existing = mlflow.get_experiment_by_name(name)
    if existing is not None:
        return existing.experiment_id
    location = (artifact_root / name).resolve().as_uri() if artifact_root else None
    return mlflow.create_experiment(name, artifact_location=location)


def signature_for(features: list[str], categorical: set[str]) -> ModelSignature:
    inputs = Schema(
        [ColSpec("string" if f in categorical else "double", f, required=False) for f in features]
    )
    return ModelSignature(inputs=inputs, outputs=Schema([ColSpec("double", "pd")]))


def log_pd_model(model: Any, features: list[str], categorical: set[str]) -> str:
    """Log the model in the active run as a pyfunc returning PDs; return its model URI."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "pd_model.pkl"
        path.write_bytes(pickle.dumps(model))
        info = mlflow.pyfunc.log_model(
            name="pd_model",
            python_model=PDPyfunc(),
            artifacts={"pd_model": str(path)},
            signature=signature_for(features, categorical),
            pip_requirements=pinned_requirements(),
        )
    return info.model_uri


def register(model_uri: str, run_id: str, tags: dict[str, str]) -> ModelVersion:
    """Register a logged model as a new version of `buyer-pd`, aliased `challenger`."""
    client = MlflowClient()
    if not client.search_registered_models(filter_string=f"name = '{MODEL_NAME}'"):
        client.create_registered_model(MODEL_NAME, description="12-month buyer PD (calibrated)")
    mv = client.create_model_version(MODEL_NAME, model_uri, run_id=run_id, tags=tags)
    client.set_registered_model_alias(MODEL_NAME, CHALLENGER, mv.version)
    return mv


def version_by_alias(alias: str) -> ModelVersion | None:
    try:
        return MlflowClient().get_model_version_by_alias(MODEL_NAME, alias)
    except MlflowException:
        return None


def champion_version() -> ModelVersion:
    mv = version_by_alias(CHAMPION)
    if mv is None:
        raise NoChampionError(
            f"no model carries the '{CHAMPION}' alias of '{MODEL_NAME}': train one "
            "(`solvency train`) and promote it (`solvency promote`)"
        )
    return mv


def load_pd_model(alias_or_version: str | int) -> tuple[Any, ModelVersion]:
    """The pure PD model object behind an alias ('champion') or a version number."""
    client = MlflowClient()
    alias_or_version = str(alias_or_version)
    if alias_or_version.isdigit():
        mv = client.get_model_version(MODEL_NAME, alias_or_version)
    elif alias_or_version == CHAMPION:
        mv = champion_version()
    else:
        mv = client.get_model_version_by_alias(MODEL_NAME, alias_or_version)
    pyfunc = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}/{mv.version}")
    return pyfunc.unwrap_python_model().model, mv


@dataclass(frozen=True)
class AliasMove:
    alias: str
    version: str
    previous: str | None
    reason: str


def move_alias(alias: str, version: str | int, reason: str, forced: bool = False) -> AliasMove:
    """Point `alias` at `version`, remembering the former holder (for rollback) and why."""
    client = MlflowClient()
    version = str(version)
    before = version_by_alias(alias)
    if alias == CHAMPION and before is not None and str(before.version) != version:
        client.set_registered_model_alias(MODEL_NAME, PREVIOUS_CHAMPION, before.version)
    client.set_registered_model_alias(MODEL_NAME, alias, version)
    stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    client.set_model_version_tag(MODEL_NAME, version, f"{alias}_since", stamp)
    client.set_model_version_tag(MODEL_NAME, version, f"{alias}_reason", reason)
    client.set_model_version_tag(MODEL_NAME, version, f"{alias}_by", getpass.getuser())
    if forced:
        client.set_model_version_tag(MODEL_NAME, version, f"{alias}_forced", "true")
    return AliasMove(alias, version, str(before.version) if before else None, reason)


def version_metric(mv: ModelVersion, name: str) -> float:
    run = MlflowClient().get_run(mv.run_id)
    return float(run.data.metrics.get(name, np.nan))


def download_run_artifact(run_id: str, path: str) -> Path:
    return Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=path))
