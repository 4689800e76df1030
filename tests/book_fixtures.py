"""A small generated book for the daily-run and decision-loop tests: loaded as known on BASE,
one drop folder per day up to END, and a transparent stand-in champion in MLflow.

Registered in conftest.py (`pytest_plugins`), so any test module can ask for `book`
(built once per module) and build run contexts on it with `context_for`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path
from typing import ClassVar

import mlflow
import numpy as np
import pandas as pd
import pytest

from data.drops import split_daily_drops
from data.generator import GeneratorConfig, generate_portfolio, write_portfolio
from data.ingest import ingest_directory
from data.lake import Lake
from features.snapshot import build_snapshots
from flows.context import RunContext
from flows.daily import DAILY_TABLES
from flows.settings import Settings
from models.monitoring.drift import build_reference
from models.registry import CHAMPION, ModelRegistry

BASE, END = dt.date(2026, 11, 26), dt.date(2026, 11, 30)


class StandInModel:
    """A small, transparent PD model: logistic in days beyond terms and overdue age."""

    kind = "stand-in"
    feature_names: ClassVar[list[str]] = ["dbt_12m", "oldest_overdue_days"]
    slopes: ClassVar[dict[str, float]] = {"dbt_12m": 0.05, "oldest_overdue_days": 0.02}

    def contributions(self, frame: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame(
            {n: s * frame[n].astype("float64").fillna(0.0) for n, s in self.slopes.items()},
            index=frame.index,
        )

    def predict_pd(self, frame: pd.DataFrame) -> np.ndarray:
        z = -4.0 + self.contributions(frame).sum(axis=1).to_numpy()
        return 1 / (1 + np.exp(-z))


class SlopeModel:
    """A stand-in PD model: logistic in one feature, with a configurable slope (registry
    tests register several and tell them apart by their PDs)."""

    kind = "stand-in"
    feature_names: ClassVar[list[str]] = ["dbt_12m"]

    def __init__(self, slope: float) -> None:
        self.slope = slope

    def predict_pd(self, frame: pd.DataFrame) -> np.ndarray:
        return 1 / (1 + np.exp(-(self.slope * frame["dbt_12m"].to_numpy() - 4)))


def make_book(root: Path, edit=None) -> dict:
    """A generated book under `root` (see the module docstring); `edit(tables)` may change
    the generated tables before they are written (a hostile buyer name, say)."""
    source = root / "source"
    config = GeneratorConfig(n_buyers=250, months=26, end_date=END, seed=11)
    portfolio = generate_portfolio(config)
    if edit is not None:
        edit(portfolio.tables)
    write_portfolio(portfolio, source)
    plan = split_daily_drops(source, BASE, END, root / "drops")
    lake_dir = root / "lake"
    ingest_directory(plan.base_dir, Lake(lake_dir), load_date=BASE)

    uri = f"sqlite:///{root}/mlflow.db"
    registry = ModelRegistry(uri, root / "artifacts")
    model = StandInModel()
    snapshot = build_snapshots(Lake(lake_dir).read_tables(DAILY_TABLES), [pd.Timestamp(BASE)])
    reference = build_reference(snapshot, model.feature_names, model.predict_pd(snapshot))
    with registry.run("test", "stand-in champion") as run:
        uri_model = registry.log_pd_model(model, model.feature_names, set())
        mlflow.log_text(json.dumps(reference), "reference/reference.json")
        version = registry.register(uri_model, run.info.run_id, {"kind": "stand-in"}).version
    registry.move_alias(CHAMPION, version, "test champion")
    settings = Settings(
        lake_dir=lake_dir,
        mlflow_uri=uri,
        mlflow_artifacts=root / "artifacts",
        drop_dir=root / "drops",
        decision_db_url=f"sqlite:///{root}/decisions.db",
    )
    return {
        "root": root,
        "lake": lake_dir,
        "drops": root / "drops",
        "uri": uri,
        "artifacts": root / "artifacts",
        "buyers": len(Lake(lake_dir).read("buyers")),
        "settings": settings,
    }


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    """A generated book loaded as known on BASE, daily drops after it, a champion in MLflow."""
    yield make_book(tmp_path_factory.mktemp("daily"))


def context_for(book, date: dt.date, **changes) -> RunContext:
    """The book's run context for `date`, with settings changed as given; a copied lake
    gets its own decision store (decisions belong to the book they change)."""
    if "lake_dir" in changes and "decision_db_url" not in changes:
        lake = Path(changes["lake_dir"])
        changes["decision_db_url"] = f"sqlite:///{lake.parent}/{lake.name}-decisions.db"
    return RunContext.build(dataclasses.replace(book["settings"], **changes), date)
