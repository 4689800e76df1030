"""Runtime settings: where the lake and the demo data live, read from the environment.

One settings object for everything that differs between the embedded default (a local
folder) and a production installation; command-line options override it per call.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    """Environment variables override the embedded defaults under `./data`:

    `SOLVENCY_LAKE`, `SOLVENCY_DEMO_DIR`, `MLFLOW_TRACKING_URI` (MLflow's own variable; a
    local SQLite file by default), `SOLVENCY_MLFLOW_ARTIFACTS` (where a local store keeps
    model files), and for the scheduled runs `SOLVENCY_DROP_DIR`, `SOLVENCY_DAILY_TIME`
    (HH:MM), `SOLVENCY_TIMEZONE` (IANA name) and `SOLVENCY_AUTO_PROMOTE` (true/false).
    """

    lake_dir: Path
    demo_dir: Path
    mlflow_uri: str
    mlflow_artifacts: Path
    #: Folder of daily input drops (`<drop_dir>/<YYYY-MM-DD>/`), or None (`SOLVENCY_DROP_DIR`).
    drop_dir: Path | None = None
    #: Local time of the scheduled daily rescoring and its IANA time zone.
    daily_time: str = "06:00"
    timezone: str = "UTC"
    #: Whether the monthly retrain may promote its challenger (else promotion is a decision).
    auto_promote: bool = False

    @classmethod
    def from_env(cls) -> Settings:
        drop = os.environ.get("SOLVENCY_DROP_DIR")
        return cls(
            lake_dir=Path(os.environ.get("SOLVENCY_LAKE", "data/lake")),
            demo_dir=Path(os.environ.get("SOLVENCY_DEMO_DIR", "data/demo")),
            mlflow_uri=os.environ.get("MLFLOW_TRACKING_URI", "sqlite:///data/mlflow/mlflow.db"),
            mlflow_artifacts=Path(
                os.environ.get("SOLVENCY_MLFLOW_ARTIFACTS", "data/mlflow/artifacts")
            ),
            drop_dir=Path(drop) if drop else None,
            daily_time=os.environ.get("SOLVENCY_DAILY_TIME", "06:00"),
            timezone=os.environ.get("SOLVENCY_TIMEZONE", "UTC"),
            auto_promote=os.environ.get("SOLVENCY_AUTO_PROMOTE", "false").lower()
            in ("1", "true", "yes"),
        )
