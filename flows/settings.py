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
    """`SOLVENCY_LAKE` and `SOLVENCY_DEMO_DIR` override the defaults under `./data`."""

    lake_dir: Path
    demo_dir: Path

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            lake_dir=Path(os.environ.get("SOLVENCY_LAKE", "data/lake")),
            demo_dir=Path(os.environ.get("SOLVENCY_DEMO_DIR", "data/demo")),
        )
