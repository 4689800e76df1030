"""The run context: every value a run needs, built once where the run starts.

A command, a deployment's flow run or a test builds one `RunContext` — the as-of date (a
`datetime.date`, parsed once), the settings, the loaded limit policy and monitoring
configuration — and passes it (or its parts) down. The lake, the per-date output store and
the MLflow registry follow from the settings and are derived on first use, so the context
stays a small, picklable value that Prefect records as the flow run's parameters.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from functools import cached_property

import pandas as pd

from data.daily_store import DailyStore
from data.decisions import DecisionStore
from data.lake import Lake
from data.permissions import use_shared_files
from flows.settings import Settings
from models.limits.policy import LimitPolicy, load_policy
from models.monitoring.config import MonitoringConfig, load_monitoring_config
from models.outputs import check_output
from models.registry import ModelRegistry


def parse_date(value: str | dt.date | None, what: str = "date") -> dt.date | None:
    """A YYYY-MM-DD date from a command line or a deployment parameter (None stays None)."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise ValueError(f"{what} '{value}' is not a date in YYYY-MM-DD form") from None


@dataclass(frozen=True)
class RunContext:
    """What one run works with; `on(date)` gives the same context for another as-of date."""

    as_of: dt.date
    settings: Settings
    policy: LimitPolicy
    monitoring: MonitoringConfig

    @classmethod
    def build(cls, settings: Settings, as_of: dt.date | None = None) -> RunContext:
        """Load the policy and monitoring files the settings name; as-of defaults to today
        in the settings' time zone. Raises `PolicyError` / `MonitoringConfigError` naming
        the bad field.

        Also applies the `shared_files` setting to the process (`data.permissions`): by
        default the umask becomes owner-only, so every file the run writes, its libraries'
        included, is readable by its owner only."""
        use_shared_files(settings.shared_files)
        return cls(
            as_of=as_of or settings.today(),
            settings=settings,
            policy=load_policy(settings.policy_path),
            monitoring=load_monitoring_config(settings.monitoring_path),
        )

    def on(self, as_of: dt.date) -> RunContext:
        """The same settings and configuration for another as-of date (backfills)."""
        return dataclasses.replace(self, as_of=as_of)

    @property
    def day(self) -> str:
        """The as-of date as the output store's key (YYYY-MM-DD)."""
        return self.as_of.isoformat()

    @property
    def timestamp(self) -> pd.Timestamp:
        """The as-of date as the pandas timestamp the pure functions take."""
        return pd.Timestamp(self.as_of)

    @cached_property
    def lake(self) -> Lake:
        return Lake(self.settings.lake_dir)

    @cached_property
    def store(self) -> DailyStore:
        """The per-date output store; every table is checked against its contract."""
        return DailyStore(self.settings.lake_dir, check=check_output)

    @cached_property
    def registry(self) -> ModelRegistry:
        return ModelRegistry(self.settings.mlflow_uri, self.settings.mlflow_artifacts)

    @cached_property
    def decisions(self) -> DecisionStore:
        """The decision store; the embedded SQLite default creates and migrates itself, a
        server database is migrated by `solvency db upgrade`."""
        store = DecisionStore(self.settings.decision_db_url)
        if store.url.get_backend_name() == "sqlite":
            store.upgrade()  # a no-op at the current revision
        return store

    def __getstate__(self) -> dict:
        """Pickled (process or Dask workers) without the derived connections: they are
        rebuilt from the settings on first use."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
