"""The `solvency` command line: help everywhere, and the demo's generate -> ingest path."""

from __future__ import annotations

import subprocess
import sys

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


def _solvency(*args: str) -> subprocess.CompletedProcess:
    """Run the real console entry point in its own process, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *args], capture_output=True, text=True, timeout=600
    )


@pytest.mark.slow
def test_demo_generates_ingests_and_is_idempotent(tmp_path):
    """The README's main job, small: a Prefect flow run against the temporary local server."""
    demo, lake_dir = tmp_path / "demo", tmp_path / "lake"
    args = ["demo", "--buyers", "300", "--months", "44", "--dirty", "0.01",
            "--demo-dir", str(demo), "--lake", str(lake_dir)]  # fmt: skip
    first = _solvency(*args)
    assert first.returncode == 0, first.stdout + first.stderr
    lake = Lake(lake_dir)
    rows = {t: len(lake.read(t)) for t in lake.manifest().tables}
    assert rows["buyers"] > 250 and rows["invoices"] > 1000
    assert rows[QUARANTINE] > 0
    second = _solvency(*args)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "skipped" in second.stdout
    assert {t: len(lake.read(t)) for t in lake.manifest().tables} == rows
    features = pd.read_parquet(lake_dir / "outputs" / "features" / "2026-11-30.parquet")
    assert len(features) == rows["buyers"] and features["as_of_date"].nunique() == 1
    (training_file,) = (lake_dir / "outputs" / "training_set").glob("*.parquet")
    training = pd.read_parquet(training_file)
    assert {"train", "calibration", "test"} <= set(training["split"])
    assert "Training set by split" in first.stdout
    status = runner.invoke(app, ["status", "--lake", str(lake_dir)])
    assert "invoices" in status.output
    quarantine = runner.invoke(app, ["quarantine", "--lake", str(lake_dir), "--rows", "3"])
    assert quarantine.exit_code == 0 and "rule" in quarantine.output
