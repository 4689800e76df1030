"""Runtime settings: one object for everything that differs between installations.

The embedded default needs nothing: a lake folder under `./data`, a local SQLite MLflow
store, Prefect in local mode, partitions on local threads. A production installation sets
the same fields in a TOML file named by `SOLVENCY_CONFIG` (see `config/production.toml`)
and/or in environment variables; an environment variable wins over the file, and
command-line options win over both, per call.

| field | environment variable | default |
|---|---|---|
| lake_dir | SOLVENCY_LAKE | data/lake |
| demo_dir | SOLVENCY_DEMO_DIR | data/demo |
| mlflow_uri | MLFLOW_TRACKING_URI | sqlite:///data/mlflow/mlflow.db |
| mlflow_artifacts | SOLVENCY_MLFLOW_ARTIFACTS | data/mlflow/artifacts; with an http(s) MLflow server, unset: the server's own artifact store |
| prefect_api_url | PREFECT_API_URL | unset: Prefect runs in local mode |
| drop_dir | SOLVENCY_DROP_DIR | unset |
| source_encoding | SOLVENCY_SOURCE_ENCODING | unset: UTF-8, or UTF-16 by its byte order mark (e.g. cp1252 for old exports) |
| source_delimiter | SOLVENCY_SOURCE_DELIMITER | unset: sniffed from each CSV header among comma, semicolon, tab, pipe |
| source_links | SOLVENCY_SOURCE_LINKS | refuse (inside: follow symbolic links to files of the same folder) |
| daily_time | SOLVENCY_DAILY_TIME | 06:00 |
| timezone | SOLVENCY_TIMEZONE | UTC |
| auto_promote | SOLVENCY_AUTO_PROMOTE | false |
| task_runner | SOLVENCY_TASK_RUNNER | threads (or processes, dask) |
| dask_address | SOLVENCY_DASK_ADDRESS | unset (setting it means task_runner dask) |
| workers | SOLVENCY_WORKERS | unset: threads/processes = cores, local Dask = 2 |
| partition_buyers | SOLVENCY_PARTITION_BUYERS | 250000 buyers per partition |
| policy_path | SOLVENCY_POLICY | the shipped config/limit_policy.yaml |
| monitoring_path | SOLVENCY_MONITORING | the shipped config/monitoring.yaml |
| decision_db_url | SOLVENCY_DECISION_DB | sqlite:///data/decisions.db (PostgreSQL in production) |
| web_host | SOLVENCY_WEB_HOST | 127.0.0.1 (the workbench listens on this machine only) |
| web_port | SOLVENCY_WEB_PORT | 8000 |
| web_secret_key | SOLVENCY_WEB_SECRET_KEY | unset: a random key kept in data/workbench-secret.key (with a warning) |
| web_https_only | SOLVENCY_WEB_HTTPS_ONLY | false (set true behind TLS: the session cookie is then sent over HTTPS only) |
| cache_days | SOLVENCY_CACHE_DAYS | 7 (days a cached result of a daily step, the features or the matured-cohort backtest, is reused) |
| cache_max_mb | SOLVENCY_CACHE_MAX_MB | 500 (MB of Prefect's result cache kept: the oldest files beyond it, and those older than cache_days, are removed before each daily run) |
| shared_files | SOLVENCY_SHARED_FILES | false: every folder the project creates is 0700, every file 0600 (owner only); true: the process umask decides (`data/permissions.py`) |

The settings are read once, where a run starts (a command, a deployment's flow run, a test),
and travel inside the run context (`flows/context.py`).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tomllib
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from models.limits.policy import POLICY_PATH
from models.monitoring.config import MONITORING_PATH

TASK_RUNNERS = ("threads", "processes", "dask")

#: Field -> environment variable (MLflow's and Prefect's own variables where they exist).
ENVIRONMENT = {
    "lake_dir": "SOLVENCY_LAKE",
    "demo_dir": "SOLVENCY_DEMO_DIR",
    "mlflow_uri": "MLFLOW_TRACKING_URI",
    "mlflow_artifacts": "SOLVENCY_MLFLOW_ARTIFACTS",
    "prefect_api_url": "PREFECT_API_URL",
    "drop_dir": "SOLVENCY_DROP_DIR",
    "source_encoding": "SOLVENCY_SOURCE_ENCODING",
    "source_delimiter": "SOLVENCY_SOURCE_DELIMITER",
    "source_links": "SOLVENCY_SOURCE_LINKS",
    "daily_time": "SOLVENCY_DAILY_TIME",
    "timezone": "SOLVENCY_TIMEZONE",
    "auto_promote": "SOLVENCY_AUTO_PROMOTE",
    "task_runner": "SOLVENCY_TASK_RUNNER",
    "dask_address": "SOLVENCY_DASK_ADDRESS",
    "workers": "SOLVENCY_WORKERS",
    "partition_buyers": "SOLVENCY_PARTITION_BUYERS",
    "policy_path": "SOLVENCY_POLICY",
    "monitoring_path": "SOLVENCY_MONITORING",
    "decision_db_url": "SOLVENCY_DECISION_DB",
    "web_host": "SOLVENCY_WEB_HOST",
    "web_port": "SOLVENCY_WEB_PORT",
    "web_secret_key": "SOLVENCY_WEB_SECRET_KEY",
    "web_https_only": "SOLVENCY_WEB_HTTPS_ONLY",
    "cache_days": "SOLVENCY_CACHE_DAYS",
    "cache_max_mb": "SOLVENCY_CACHE_MAX_MB",
    "shared_files": "SOLVENCY_SHARED_FILES",
}
#: Settings never written into a deployment's parameters or a log line.
SECRET_FIELDS = ("web_secret_key",)
PATH_FIELDS = (
    "lake_dir",
    "demo_dir",
    "mlflow_artifacts",
    "drop_dir",
    "policy_path",
    "monitoring_path",
)
_HHMM = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")


def parse_hhmm(value: str) -> tuple[int, int]:
    """'06:00' -> (6, 0); a ValueError saying the expected form for anything else."""
    match = _HHMM.fullmatch(value.strip())
    if not match:
        raise ValueError(f"must be HH:MM (24 h), got {value!r}")
    hour, minute = (int(g) for g in match.groups())
    return hour, minute


class SettingsError(ValueError):
    """A setting with a wrong value; the message names the setting and where it came from."""


@dataclass(frozen=True)
class Settings:
    """See the module docstring for every field, its variable and its default."""

    lake_dir: Path = Path("data/lake")
    demo_dir: Path = Path("data/demo")
    mlflow_uri: str = "sqlite:///data/mlflow/mlflow.db"
    #: Artifact root of new experiments on a local store; None = the tracking server's own
    #: (its --artifacts-destination), the default when mlflow_uri is an http(s) server.
    mlflow_artifacts: Path | None = Path("data/mlflow/artifacts")
    #: Prefect server API (e.g. http://prefect:4200/api); None = Prefect's local mode.
    prefect_api_url: str | None = None
    #: Folder of daily input drops (`<drop_dir>/<YYYY-MM-DD>/`), or None.
    drop_dir: Path | None = None
    #: How source CSV files are read (None: detected per file) and whether symbolic links
    #: in a source folder are refused or followed inside the folder.
    source_encoding: str | None = None
    source_delimiter: str | None = None
    source_links: str = "refuse"
    #: Local time of the scheduled daily rescoring and its IANA time zone.
    daily_time: str = "06:00"
    timezone: str = "UTC"
    #: Whether the monthly retrain may promote its challenger (else promotion is a decision).
    auto_promote: bool = False
    #: Where the daily rescoring's buyer partitions run: threads, processes or dask.
    task_runner: str = "threads"
    #: A Dask scheduler (tcp://host:8786); None with task_runner dask = a local cluster.
    dask_address: str | None = None
    #: Workers of the local runner or local Dask cluster (None: its default).
    workers: int | None = None
    #: Buyers per partition of the daily rescoring (the number of partitions follows).
    partition_buyers: int = 250_000
    #: The limit policy and the monitoring configuration files (versioned YAML).
    policy_path: Path = POLICY_PATH
    monitoring_path: Path = MONITORING_PATH
    #: The decision store (SQLAlchemy URL): decisions, limit requests, the audit log, users.
    decision_db_url: str = "sqlite:///data/decisions.db"
    #: The underwriters' workbench (`solvency ui`): where it listens, the key that signs its
    #: session cookies (None: a random one kept beside the lake), cookies over HTTPS only.
    web_host: str = "127.0.0.1"
    web_port: int = 8000
    web_secret_key: str | None = field(default=None, repr=False)
    web_https_only: bool = False
    #: Prefect's result cache of the daily steps (PREFECT_LOCAL_STORAGE_PATH, by default
    #: ~/.prefect/storage): days a result is reused, and megabytes of it kept.
    cache_days: int = 7
    cache_max_mb: int = 500
    #: Whether the files and folders the project creates (lake, output store, decision
    #: store, MLflow's local store, reports) follow the process umask (True), or are owner
    #: only, 0700 / 0600 (False), applied where a run starts (`data/permissions.py`).
    shared_files: bool = False

    def __post_init__(self) -> None:
        if self.task_runner not in TASK_RUNNERS:
            raise SettingsError(
                f"task_runner must be one of {', '.join(TASK_RUNNERS)}, got {self.task_runner!r}"
            )
        try:
            parse_hhmm(self.daily_time)
        except ValueError as exc:
            raise SettingsError(f"daily_time {exc}") from None
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise SettingsError(
                f"timezone must be an IANA time zone such as Europe/Paris, got {self.timezone!r}"
            ) from None
        if self.partition_buyers < 1:
            raise SettingsError(f"partition_buyers must be >= 1, got {self.partition_buyers}")
        if self.workers is not None and self.workers < 1:
            raise SettingsError(f"workers must be >= 1, got {self.workers}")
        if self.cache_days < 1:
            raise SettingsError(f"cache_days must be >= 1, got {self.cache_days}")
        if self.cache_max_mb < 1:
            raise SettingsError(f"cache_max_mb must be >= 1, got {self.cache_max_mb}")
        if not 0 < self.web_port < 65536:
            raise SettingsError(f"web_port must be a TCP port (1-65535), got {self.web_port}")
        try:
            self.ingest_options()
        except ValueError as exc:
            raise SettingsError(f"source settings: {exc}") from None
        if self.web_secret_key is not None and len(self.web_secret_key) < 32:
            raise SettingsError("web_secret_key must be at least 32 characters (use a random one)")

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> Settings:
        """Settings from plain values (a deployment's parameters, a TOML table)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise SettingsError(
                f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        return cls(**{name: _convert(name, value) for name, value in values.items()})

    def to_mapping(self) -> dict[str, Any]:
        """Plain JSON values (paths as text), e.g. a deployment's parameters; secrets are
        left out (a process that needs one reads it from its own environment)."""
        return {
            k: str(v) if isinstance(v, Path) else v
            for k, v in asdict(self).items()
            if k not in SECRET_FIELDS
        }

    def anchored(self, root: Path) -> Settings:
        """The same settings with relative paths (and a relative SQLite MLflow store) read
        against `root`: a notebook opened in `notebooks/` still finds `data/lake`."""
        root = Path(root).resolve()
        changes: dict[str, Any] = {
            name: root / getattr(self, name)
            for name in PATH_FIELDS
            if getattr(self, name) is not None and not getattr(self, name).is_absolute()
        }
        prefix = "sqlite:///"
        for name in ("mlflow_uri", "decision_db_url"):
            url = getattr(self, name)
            if url.startswith(prefix) and not url.startswith(prefix + "/"):
                changes[name] = f"{prefix}{root / url.removeprefix(prefix)}"
        return replace(self, **changes)

    def today(self) -> dt.date:
        """Today's date in the settings' time zone (the scheduled runs' default as-of)."""
        return dt.datetime.now(ZoneInfo(self.timezone)).date()

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        """Defaults, then the TOML file named by SOLVENCY_CONFIG, then environment variables."""
        env = os.environ if environ is None else environ
        raw: dict[str, Any] = {}
        config = env.get("SOLVENCY_CONFIG")
        if config:
            raw |= _read_file(Path(config))
        raw |= {name: env[var] for name, var in ENVIRONMENT.items() if env.get(var)}
        server = str(raw.get("mlflow_uri", "")).startswith(("http://", "https://"))
        if server and "mlflow_artifacts" not in raw:
            raw["mlflow_artifacts"] = None
        if raw.get("dask_address") and "task_runner" not in raw:
            raw["task_runner"] = "dask"
        return cls(**{name: _convert(name, value) for name, value in raw.items()})

    @staticmethod
    def sources(environ: dict[str, str] | None = None) -> dict[str, str]:
        """Where each setting's value comes from: default, the config file, or a variable."""
        env = os.environ if environ is None else environ
        config = env.get("SOLVENCY_CONFIG")
        in_file = set(_read_file(Path(config))) if config else set()
        return {
            f.name: "environment"
            if env.get(ENVIRONMENT[f.name])
            else ("file" if f.name in in_file else "default")
            for f in fields(Settings)
        }

    def ingest_options(self):
        """How source folders are read (`data.ingest.IngestOptions`)."""
        from data.ingest import IngestOptions
        from data.reading import ReadOptions

        delimiter = (
            "\t" if self.source_delimiter in ("tab", "TAB", "\\t") else self.source_delimiter
        )
        return IngestOptions(ReadOptions(self.source_encoding, delimiter), self.source_links)

    def partitions(self, buyers: int) -> int:
        """How many buyer partitions a portfolio of `buyers` is cut into (at least one)."""
        return max(1, -(-buyers // self.partition_buyers))

    def export_prefect(self) -> None:
        """Point Prefect at the configured server (PREFECT_API_URL), unless already set."""
        if self.prefect_api_url:
            os.environ.setdefault("PREFECT_API_URL", self.prefect_api_url)


def checkout_root() -> Path:
    """The project checkout holding this package (where `data/` lives by default); the
    working directory for an installed package."""
    here = Path(__file__).resolve().parents[1]
    return here if (here / "pyproject.toml").exists() else Path.cwd()


def _read_file(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise SettingsError(f"SOLVENCY_CONFIG names {path}, which does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path} is not valid TOML: {exc}") from None
    known = {f.name for f in fields(Settings)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise SettingsError(
            f"{path}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    return data


def _convert(name: str, value: Any) -> Any:
    """A file or environment value as the field's type; a bad value names the setting."""
    if value is None:
        return None
    try:
        if name in PATH_FIELDS:
            return Path(value)
        if name in ("workers", "partition_buyers", "web_port", "cache_days", "cache_max_mb"):
            return int(value)
        if name in ("auto_promote", "web_https_only", "shared_files"):
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text not in ("1", "true", "yes", "0", "false", "no"):
                raise ValueError(f"not a yes/no value: {value!r}")
            return text in ("1", "true", "yes")
        return str(value)
    except (TypeError, ValueError) as exc:
        raise SettingsError(f"setting {name} ({ENVIRONMENT[name]}): {exc}") from None
