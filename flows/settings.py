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
    local SQLite file by default) and `SOLVENCY_MLFLOW_ARTIFACTS` (where a local store
    keeps model files).
    """

    lake_dir: Path
    demo_dir: Path
    mlflow_uri: str
    mlflow_artifacts: Path

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            lake_dir=Path(os.environ.get("SOLVENCY_LAKE", "data/lake")),
            demo_dir=Path(os.environ.get("SOLVENCY_DEMO_DIR", "data/demo")),
            mlflow_uri=os.environ.get("MLFLOW_TRACKING_URI", "sqlite:///data/mlflow/mlflow.db"),
            mlflow_artifacts=Path(
                os.environ.get("SOLVENCY_MLFLOW_ARTIFACTS", "data/mlflow/artifacts")
            ),
        )
