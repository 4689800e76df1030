"""The MLflow adapter: one object that knows the store, its experiments and the PD model registry.

`ModelRegistry(tracking_uri, artifact_root)` is built once per run (in the run context) and
passed on; nothing else in the project calls `mlflow.set_tracking_uri` or reads the tracking
URI again. What it does:

- **experiments** are created on first use with their artifacts under `artifact_root /
  <experiment name>`, and every run — a nested one too — is started in its experiment, so a
  store's runs and files stay together (nothing lands in MLflow's Default experiment or in
  the working directory's `./mlruns`);
- **a moved store still works**: a local store records absolute artifact paths; when they no
  longer exist but the same files are found under the configured `artifact_root`, the
  adapter reads them from there (back-ups and restores to another folder keep the champion);
- **the registry** holds one model name (`buyer-pd`) whose versions carry the aliases
  `challenger` (the newest trained model) and `champion` (the one the daily rescoring
  uses). Aliases, not the deprecated stages: promotion and rollback just point `champion` at
  another version, and every alias move is recorded as a version tag (who, when, why).

What is logged is a pyfunc wrapper whose `predict` returns calibrated PDs (not labels, as the
LightGBM flavour would), so `mlflow.pyfunc.load_model("models:/buyer-pd@champion")` scores
correctly anywhere. The pure model object is reachable through
`unwrap_python_model().model` for reason codes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import getpass
import io
import pickle
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import Run
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema

MODEL_NAME = "buyer-pd"
CHAMPION = "champion"
CHALLENGER = "challenger"
PREVIOUS_CHAMPION = "previous-champion"
TRAINING_EXPERIMENT = "buyer-pd-training"
#: A training run's latest-fold model (fitted without its test rows), pickled for the gate.
VALIDATION_MODEL_ARTIFACT = "validation/model.pkl"
#: The binned distribution of the rows a model was fitted on, the daily drift's reference.
REFERENCE_ARTIFACT = "reference/reference.json"

#: Explicit requirements of the logged model: inferring them costs seconds and records
#: unrelated packages of the training environment.
REQUIREMENTS = ["mlflow", "numpy", "pandas", "scikit-learn", "lightgbm", "pyarrow"]

#: Modules whose classes older pickled models name: where those classes live now.
_MOVED_MODULES = {
    "models.pd_model": "models.pd.model",
    "models.gbm": "models.pd.gbm",
    "models.scorecard": "models.pd.scorecard",
    "models.calibration": "models.pd.calibration",
}


def pinned_requirements() -> list[str]:
    return [f"{name}=={version(name)}" for name in REQUIREMENTS]


class _Unpickler(pickle.Unpickler):
    """Loads models pickled before the `models/` package was split by domain."""

    def find_class(self, module: str, name: str) -> Any:
        return super().find_class(_MOVED_MODULES.get(module, module), name)


def load_pickled_model(payload: bytes) -> Any:
    return _Unpickler(io.BytesIO(payload)).load()


class PDPyfunc(mlflow.pyfunc.PythonModel):
    """pyfunc wrapper: `predict(features) -> DataFrame[pd]` with calibrated 12-month PDs."""

    def load_context(self, context) -> None:
        self.model = load_pickled_model(Path(context.artifacts["pd_model"]).read_bytes())

    def predict(
        self, context, model_input: pd.DataFrame, params: dict | None = None
    ) -> pd.DataFrame:
        return pd.DataFrame({"pd": self.model.predict_pd(model_input)}, index=model_input.index)


class NoChampionError(LookupError):
    """No model carries the champion alias yet."""


def signature_for(features: list[str], categorical: set[str]) -> ModelSignature:
    inputs = Schema(
        [ColSpec("string" if f in categorical else "double", f, required=False) for f in features]
    )
    return ModelSignature(inputs=inputs, outputs=Schema([ColSpec("double", "pd")]))


def local_path(uri: str) -> Path | None:
    """The local file path of a `file:` URI or plain path; None for remote stores."""
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return Path(unquote(parsed.path))
    return None


@dataclass(frozen=True)
class AliasMove:
    alias: str
    version: str
    previous: str | None
    reason: str


@dataclass(frozen=True)
class ModelRegistry:
    """One MLflow tracking and registry store, and where new experiments keep their files.

    `artifact_root` None means the tracking server's own artifact store (an http(s) server).
    """

    tracking_uri: str
    artifact_root: Path | None = None

    def __post_init__(self) -> None:
        if self.tracking_uri.startswith("sqlite:///"):
            Path(self.tracking_uri.removeprefix("sqlite:///")).parent.mkdir(
                parents=True, exist_ok=True
            )

    # -- store and runs ------------------------------------------------------------------

    @property
    def client(self) -> MlflowClient:
        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    def activate(self) -> None:
        """Point MLflow's fluent API (start_run, log_metric, ...) at this store."""
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)

    def experiment(self, name: str) -> str:
        """The experiment's id, created on first use with its artifacts under the root."""
        existing = self.client.get_experiment_by_name(name)
        if existing is not None:
            return existing.experiment_id
        location = (self.artifact_root / name).resolve().as_uri() if self.artifact_root else None
        return self.client.create_experiment(name, artifact_location=location)

    @contextlib.contextmanager
    def run(
        self, experiment: str, run_name: str, parent: Run | None = None
    ) -> Iterator[mlflow.ActiveRun]:
        """A run in `experiment` (nested under `parent` when given), ended on exit."""
        self.activate()
        experiment_id = self.experiment(experiment)
        with mlflow.start_run(
            experiment_id=experiment_id,
            run_name=run_name,
            nested=parent is not None,
            parent_run_id=parent.info.run_id if parent is not None else None,
        ) as active:
            yield active

    def _resolve(self, uri: str, experiment_id: str) -> str:
        """`uri`, or the same file under the configured artifact root when the store moved."""
        path = local_path(uri)
        if path is None or path.exists() or self.artifact_root is None:
            return uri
        experiment = self.client.get_experiment(experiment_id)
        old_root = local_path(experiment.artifact_location)
        if old_root is None:
            return uri
        try:
            relative = path.relative_to(old_root)
        except ValueError:
            return uri
        moved = self.artifact_root.resolve() / experiment.name / relative
        return str(moved) if moved.exists() else uri

    def run_artifact(self, run_id: str, path: str) -> Path:
        """A local copy (or the file itself, on a local store) of a run's artifact."""
        run = self.client.get_run(run_id)
        root = self._resolve(run.info.artifact_uri, run.info.experiment_id)
        local = local_path(root)
        if local is not None and (local / path).exists():
            return local / path
        return Path(mlflow.artifacts.download_artifacts(artifact_uri=f"{root}/{path}"))

    # -- registry --------------------------------------------------------------------------

    def log_pd_model(self, model: Any, features: list[str], categorical: set[str]) -> str:
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

    def register(self, model_uri: str, run_id: str, tags: dict[str, str]) -> ModelVersion:
        """Register a logged model as a new version of `buyer-pd`, aliased `challenger`."""
        client = self.client
        if not client.search_registered_models(filter_string=f"name = '{MODEL_NAME}'"):
            client.create_registered_model(MODEL_NAME, description="12-month buyer PD (calibrated)")
        mv = client.create_model_version(MODEL_NAME, model_uri, run_id=run_id, tags=tags)
        client.set_registered_model_alias(MODEL_NAME, CHALLENGER, mv.version)
        return mv

    def version_by_alias(self, alias: str) -> ModelVersion | None:
        try:
            return self.client.get_model_version_by_alias(MODEL_NAME, alias)
        except MlflowException:
            return None

    def champion(self) -> ModelVersion:
        mv = self.version_by_alias(CHAMPION)
        if mv is None:
            raise NoChampionError(
                f"no model carries the '{CHAMPION}' alias of '{MODEL_NAME}': train one "
                "(`solvency train`) and promote it (`solvency promote`)"
            )
        return mv

    def model_version(self, alias_or_version: str | int) -> ModelVersion:
        """The registered version behind an alias ('champion') or a version number."""
        key = str(alias_or_version)
        if key.isdigit():
            return self.client.get_model_version(MODEL_NAME, key)
        if key == CHAMPION:
            return self.champion()
        return self.client.get_model_version_by_alias(MODEL_NAME, key)

    def load_pd_model(self, alias_or_version: str | int) -> tuple[Any, ModelVersion]:
        """The pure PD model object behind an alias ('champion') or a version number."""
        mv = self.model_version(alias_or_version)
        uri = f"models:/{MODEL_NAME}/{mv.version}"
        if mv.source.startswith("models:/m-"):  # an MLflow 3 logged model: its own folder
            logged = self.client.get_logged_model(mv.source.removeprefix("models:/"))
            uri = self._resolve(logged.artifact_location, logged.experiment_id)
        self.activate()
        pyfunc = mlflow.pyfunc.load_model(uri)
        return pyfunc.unwrap_python_model().model, mv

    def validation_model(self, mv: ModelVersion) -> tuple[Any, str]:
        """The model a version was validated with (its latest out-of-time fold's, fitted
        without the test rows), else, for a version registered without one, the registered
        model itself; and which of the two it is."""
        try:
            path = self.run_artifact(mv.run_id, VALIDATION_MODEL_ARTIFACT)
        except (MlflowException, OSError):
            path = None
        if path is not None and path.exists():
            return load_pickled_model(path.read_bytes()), "validation fold model"
        model, _ = self.load_pd_model(mv.version)
        return model, "registered model"

    def move_alias(
        self, alias: str, version: str | int, reason: str, forced: bool = False
    ) -> AliasMove:
        """Point `alias` at `version`, remembering the former holder (for rollback) and why."""
        client = self.client
        version = str(version)
        before = self.version_by_alias(alias)
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

    def version_metric(self, mv: ModelVersion, name: str) -> float:
        run = self.client.get_run(mv.run_id)
        return float(run.data.metrics.get(name, np.nan))
