"""The `solvency` command line: help everywhere, and the demo's generate -> ingest path."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from data.lake import QUARANTINE, Lake
from flows.cli import app

runner = CliRunner()
COMMANDS = [
    "demo",
    "generate",
    "ingest",
    "quarantine",
    "status",
    "features",
    "training-set",
    "catalogue",
    "train",
    "promote",
    "rollback",
    "score",
    "recommend",
    "recommendations",
    "backtest-limits",
]


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_every_command_has_help(command):
    args = [command, "--help"] if command else ["--help"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output
    if command is None:
        for name in COMMANDS:
            assert name in result.output


def test_ingest_rejects_a_missing_folder(tmp_path):
    result = runner.invoke(
        app, ["ingest", str(tmp_path / "nope"), "--lake", str(tmp_path / "lake")]
    )
    assert result.exit_code == 2
    assert "not found" in result.output


def test_training_set_says_how_much_history_it_needs(tmp_path):
    from data.generator import GeneratorConfig, generate_portfolio, write_portfolio
    from data.ingest import ingest_directory

    write_portfolio(generate_portfolio(GeneratorConfig(n_buyers=50, months=12)), tmp_path / "src")
    ingest_directory(tmp_path / "src", Lake(tmp_path / "lake"))
    result = _solvency("training-set", "--lake", str(tmp_path / "lake"))
    assert result.returncode == 1
    assert "not enough history" in result.stdout and "months" in result.stdout


def test_generate_rejects_a_bad_date(tmp_path):
    result = runner.invoke(app, ["generate", "--out", str(tmp_path), "--end", "2026-02-30"])
    assert result.exit_code != 0
    assert "YYYY-MM-DD" in result.output


def _solvency(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run the real console entry point in its own process, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *args],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, **(env or {})},
    )


def _mlflow_env(root) -> dict[str, str]:
    """A temporary MLflow store, so tests never touch the developer's data/mlflow."""
    return {
        "MLFLOW_TRACKING_URI": f"sqlite:///{root}/mlflow.db",
        "SOLVENCY_MLFLOW_ARTIFACTS": str(root / "artifacts"),
    }


@pytest.mark.slow
def test_demo_generates_ingests_and_is_idempotent(tmp_path):
    """The README's main job, small: a Prefect flow run against the temporary local server."""
    demo, lake_dir = tmp_path / "demo", tmp_path / "lake"
    args = ["demo", "--buyers", "300", "--months", "44", "--dirty", "0.01",
            "--demo-dir", str(demo), "--lake", str(lake_dir)]  # fmt: skip
    env = _mlflow_env(tmp_path / "mlflow")
    first = _solvency(*args, env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    lake = Lake(lake_dir)
    rows = {t: len(lake.read(t)) for t in lake.manifest().tables}
    assert rows["buyers"] > 250 and rows["invoices"] > 1000
    assert rows[QUARANTINE] > 0
    second = _solvency(*args, env=env)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "skipped" in second.stdout
    assert {t: len(lake.read(t)) for t in lake.manifest().tables} == rows
    features = pd.read_parquet(lake_dir / "outputs" / "features" / "2026-11-30.parquet")
    assert len(features) == rows["buyers"] and features["as_of_date"].nunique() == 1
    (training_file,) = (lake_dir / "outputs" / "training_set").glob("*.parquet")
    training = pd.read_parquet(training_file)
    assert {"train", "calibration", "test"} <= set(training["split"])
    assert "Training set by split" in first.stdout
    assert "Out-of-time validation" in first.stdout and "champion is now version 1" in first.stdout
    # the second run trains again: version 2 is registered and goes through the gate
    assert "v2" in second.stdout
    scores = pd.read_parquet(lake_dir / "outputs" / "scores" / "2026-11-30.parquet")
    assert len(scores) == rows["buyers"] and scores["grade"].between(1, 10).all()
    recs_dir = lake_dir / "outputs" / "recommendations"
    recs = pd.read_parquet(recs_dir / "2026-11-30.parquet")
    # one recommendation per limit, replaced (not appended) by the second run
    assert len(recs) == rows["limits"] == len(pd.read_csv(recs_dir / "2026-11-30.csv"))
    assert recs[["policyholder_id", "buyer_id"]].duplicated().sum() == 0
    assert "Limit recommendations, EUR" in second.stdout
    assert str(recs_dir / "2026-11-30.html") in second.stdout.replace("\n", "")
    assert "data:image/png;base64," in (recs_dir / "2026-11-30.html").read_text()
    view = runner.invoke(
        app, ["recommendations", "--lake", str(lake_dir), "--action", "cancel", "--top", "5"]
    )
    assert view.exit_code == 0, view.output
    assert "cancel" in view.output
    _run_validation_notebook(env)
    status = runner.invoke(app, ["status", "--lake", str(lake_dir)])
    assert "invoices" in status.output
    quarantine = runner.invoke(app, ["quarantine", "--lake", str(lake_dir), "--rows", "3"])
    assert quarantine.exit_code == 0 and "rule" in quarantine.output


def _run_validation_notebook(env: dict[str, str]) -> None:
    """Execute the model validation notebook against the demo's MLflow store."""
    import nbformat
    from nbclient import NotebookClient

    path = Path(__file__).parents[1] / "notebooks" / "model_validation.ipynb"
    notebook = nbformat.read(path, as_version=4)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        NotebookClient(notebook, timeout=300, kernel_name="python3").execute()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs)
