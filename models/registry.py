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

**Faults are `RegistryError`s** whose one-line message names the model, the alias, the
version (when known), the store and what to do: no champion (never promoted, or its
version deleted: MLflow drops a deleted version's aliases), an alias pointing at a version
the store no longer has, a version whose model files are gone, and a store that cannot be
used — its SQLite file locked by another process (after MLflow's own wait) or not a
database. Store faults are translated here, at the adapter (every `client` call, every
`run` body, every model load), not by callers; MLflow's own traceback of them is not logged.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import getpass
import io
import logging
import pickle
import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any, cast
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
from sqlalchemy.exc import SQLAlchemyError

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


class RegistryError(RuntimeError):
    """A fault of the model registry or its MLflow store; the message names the model, the
    alias, the version (when known), the store and what to do."""


class NoChampionError(RegistryError, LookupError):
    """No version carries the champion alias: none promoted yet, its version deleted, or the
    alias points at a version the store no longer has."""


class MissingVersionError(RegistryError):
    """An alias or a version number naming a model version the store does not have."""


class MissingArtifactsError(RegistryError):
    """A registered version whose model files are gone from the artifact store."""


class StoreError(RegistryError):
    """The MLflow store cannot be used: locked by another process, or not a database."""


#: Fragments of the database errors that make a store unusable, and what each means.
_LOCKED = ("database is locked",)
_CORRUPT = ("file is not a database", "database disk image is malformed")
#: MLflow's error codes for an alias, version or model that is not there.
_NOT_FOUND = {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}


def _store_cause(exc: BaseException) -> tuple[str, BaseException] | None:
    """('locked' | 'corrupt', the database error) when `exc` or an exception it wraps is a
    locked or corrupt SQLite store; None for anything else."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, (MlflowException, SQLAlchemyError, sqlite3.Error)):
            text = str(e).lower()
            if any(fragment in text for fragment in _LOCKED):
                return "locked", e
            if any(fragment in text for fragment in _CORRUPT):
                return "corrupt", e
        todo += [e.__cause__, e.__context__]
    return None


class _QuietStoreFaults(logging.Filter):
    """Drops MLflow's own log records (a full traceback, retry warnings quoting the SQL) of
    a locked or corrupt store: the `StoreError` raised for it says which file and what to do."""

    def filter(self, record: logging.LogRecord) -> bool:
        candidates = [record.exc_info[1] if record.exc_info else None]
        args = record.args if isinstance(record.args, tuple) else ()
        candidates += [a for a in args if isinstance(a, BaseException)]
        return not any(c is not None and _store_cause(c) for c in candidates)


logging.getLogger("mlflow.store.db.utils").addFilter(_QuietStoreFaults())


class _GuardedClient:
    """An `MlflowClient` whose every call raises `StoreError` (naming the file) instead of
    a database traceback when the store is locked or corrupt."""

    def __init__(self, client: MlflowClient, guard) -> None:
        self._client, self._guard = client, guard

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute

        @functools.wraps(attribute)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            with self._guard():
                return attribute(*args, **kwargs)

        return guarded


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
        """A local store's folder is created here, owner-only unless the `shared_files`
        setting says otherwise (`data.permissions`); what MLflow writes follows the umask,
        which a run context makes owner-only too."""
        from data.permissions import make_dirs

        if self.tracking_uri.startswith("sqlite:///"):
            make_dirs(Path(self.tracking_uri.removeprefix("sqlite:///")).parent)

    # -- store and runs ------------------------------------------------------------------

    @property
    def client(self) -> MlflowClient:
        """MLflow's client on this store (a locked or corrupt store raises `StoreError`)."""
        with self.store_faults():  # MLflow opens the store here already
            client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)
        return cast(MlflowClient, _GuardedClient(client, self.store_faults))

    @property
    def store(self) -> str:
        """Where the store is, for messages: the SQLite file, else the tracking URI."""
        if self.tracking_uri.startswith("sqlite:///"):
            return str(Path(self.tracking_uri.removeprefix("sqlite:///")).resolve())
        return self.tracking_uri

    @contextlib.contextmanager
    def store_faults(self) -> Iterator[None]:
        """Turn a locked or corrupt store, however MLflow reports it, into a `StoreError`
        that names the file and what to do."""
        try:
            yield
        except RegistryError:
            raise
        except Exception as exc:
            cause = _store_cause(exc)
            if cause is None:
                raise
            kind, error = cause
            raise StoreError(self._store_message(kind, error)) from exc

    def _store_message(self, kind: str, error: BaseException) -> str:
        if kind == "locked":
            return (
                f"the MLflow store {self.store} is locked by another process (database is "
                "locked): wait for the other training, promotion or daily run to finish, or "
                "stop the program holding the file, then run again"
            )
        detail = next((f for f in _CORRUPT if f in str(error).lower()), "corrupt")
        return (
            f"the MLflow store {self.store} is not a usable SQLite database ({detail}): "
            "restore it from a back-up, or move it away to start an empty store (then "
            "`solvency train` and `solvency promote`); the mlflow_uri setting "
            "(MLFLOW_TRACKING_URI) names it"
        )

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
        """A run in `experiment` (nested under `parent` when given), ended on exit; a
        locked or corrupt store inside it raises `StoreError`."""
        self.activate()
        experiment_id = self.experiment(experiment)
        with (
            self.store_faults(),
            mlflow.start_run(
                experiment_id=experiment_id,
                run_name=run_name,
                nested=parent is not None,
                parent_run_id=parent.info.run_id if parent is not None else None,
            ) as active,
        ):
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
        with self.store_faults():
            return Path(mlflow.artifacts.download_artifacts(artifact_uri=f"{root}/{path}"))

    # -- registry --------------------------------------------------------------------------

    def log_pd_model(self, model: Any, features: list[str], categorical: set[str]) -> str:
        """Log the model in the active run as a pyfunc returning PDs; return its model URI."""
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "pd_model.pkl"
            path.write_bytes(pickle.dumps(model))
            with self.store_faults():
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
        """The version carrying `alias`; None when no existing version carries it (also
        when the alias points at a version the store no longer has)."""
        try:
            return self.client.get_model_version_by_alias(MODEL_NAME, alias)
        except MlflowException as exc:
            if exc.error_code in _NOT_FOUND:
                return None
            raise

    def champion(self) -> ModelVersion:
        mv = self.version_by_alias(CHAMPION)
        if mv is None:
            raise NoChampionError(self._missing_alias(CHAMPION))
        return mv

    def model_version(self, alias_or_version: str | int) -> ModelVersion:
        """The registered version behind an alias ('champion') or a version number."""
        key = str(alias_or_version)
        if key.isdigit():
            try:
                return self.client.get_model_version(MODEL_NAME, key)
            except MlflowException as exc:
                if exc.error_code not in _NOT_FOUND:
                    raise
                raise MissingVersionError(
                    f"version {key} of '{MODEL_NAME}' does not exist in the MLflow store "
                    f"{self.store}; {self._versions_listing()}"
                ) from None
        if key == CHAMPION:
            return self.champion()
        mv = self.version_by_alias(key)
        if mv is None:
            raise MissingVersionError(self._missing_alias(key))
        return mv

    def _registered(self):
        try:
            return self.client.get_registered_model(MODEL_NAME)
        except MlflowException as exc:
            if exc.error_code in _NOT_FOUND:
                return None
            raise

    def _versions(self) -> list[ModelVersion]:
        found = self.client.search_model_versions(f"name = '{MODEL_NAME}'")
        return sorted(found, key=lambda mv: int(mv.version))

    def _versions_listing(
        self, aliases: dict[str, Any] | None = None, versions: list[ModelVersion] | None = None
    ) -> str:
        """'versions: v1 (previous-champion), v3 (challenger)' or 'no version is left'."""
        if aliases is None:
            registered = self._registered()
            aliases = dict(registered.aliases) if registered is not None else {}
        versions = self._versions() if versions is None else versions
        held: dict[str, list[str]] = {}
        for alias, number in sorted(aliases.items()):
            held.setdefault(str(number), []).append(alias)
        shown = []
        for mv in versions:
            names = held.get(str(mv.version))
            shown.append(f"v{mv.version}" + (f" ({', '.join(names)})" if names else ""))
        return f"versions: {', '.join(shown)}" if shown else "no version is left"

    def _missing_alias(self, alias: str) -> str:
        """Why no existing version carries `alias`, and what to do, in one line."""
        registered = self._registered()
        if registered is None:
            return (
                f"no model carries the '{alias}' alias of '{MODEL_NAME}': the MLflow store "
                f"{self.store} has no registered version; train one (`solvency train`) and "
                "promote it (`solvency promote`)"
            )
        aliases = dict(registered.aliases)
        versions = self._versions()
        listing = self._versions_listing(aliases, versions)
        if alias in aliases:  # the alias survived its version (a partly restored store)
            return (
                f"the '{alias}' alias of '{MODEL_NAME}' points at version {aliases[alias]}, "
                f"which does not exist in the MLflow store {self.store} ({listing}): point "
                "it at an existing version (`solvency rollback --version N`, or "
                "`solvency promote` the challenger)"
            )
        if alias != CHAMPION:
            return (
                f"no version of '{MODEL_NAME}' carries the '{alias}' alias in the MLflow "
                f"store {self.store} ({listing})"
            )
        was = [mv.version for mv in versions if f"{CHAMPION}_since" in mv.tags]
        if was or PREVIOUS_CHAMPION in aliases:  # a champion existed: its version is gone
            return (
                f"no version of '{MODEL_NAME}' carries the '{CHAMPION}' alias in the MLflow "
                f"store {self.store} any more: its version was deleted (a deleted version "
                f"loses its aliases); {listing}. Point it back with `solvency rollback` "
                "(the previous champion, or --version N) or promote the challenger "
                "(`solvency promote`)"
            )
        return (
            f"no version of '{MODEL_NAME}' carries the '{CHAMPION}' alias yet in the MLflow "
            f"store {self.store} ({listing}): promote one (`solvency promote`), or train "
            "one first (`solvency train`)"
        )

    def load_pd_model(self, alias_or_version: str | int) -> tuple[Any, ModelVersion]:
        """The pure PD model object behind an alias ('champion') or a version number; a
        version whose files are gone raises `MissingArtifactsError` naming them."""
        mv = self.model_version(alias_or_version)
        uri = f"models:/{MODEL_NAME}/{mv.version}"
        if mv.source.startswith("models:/m-"):  # an MLflow 3 logged model: its own folder
            logged = self.client.get_logged_model(mv.source.removeprefix("models:/"))
            uri = self._resolve(logged.artifact_location, logged.experiment_id)
        label = (
            f"version {mv.version}"
            if str(alias_or_version).isdigit()
            else f"version {mv.version} (the '{alias_or_version}' alias)"
        )
        folder = local_path(uri) if not uri.startswith("models:/") else None
        if folder is not None and not (folder / "MLmodel").exists():
            raise MissingArtifactsError(self._missing_files(label, str(folder)))
        self.activate()
        try:
            with self.store_faults():
                pyfunc = mlflow.pyfunc.load_model(uri)
        except (OSError, MlflowException) as exc:
            if isinstance(exc, MlflowException) and "no such artifact" not in str(exc).lower():
                raise
            raise MissingArtifactsError(self._missing_files(label, uri, exc)) from exc
        return pyfunc.unwrap_python_model().model, mv

    def _missing_files(self, label: str, where: str, exc: BaseException | None = None) -> str:
        detail = f" ({exc})" if exc is not None else ""
        return (
            f"the model files of '{MODEL_NAME}' {label} are missing: {where} does not hold "
            f"the model{detail} (MLflow store {self.store}, artifact root "
            f"{self.artifact_root or 'the tracking server'}): restore the artifacts folder "
            "from a back-up, roll back to a version whose files exist (`solvency rollback "
            "--version N`), or train and promote a new model (`solvency train`, "
            "`solvency promote`)"
        )

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
        version = str(self.model_version(str(version)).version)  # a clear error if missing
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
