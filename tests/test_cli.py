"""The `solvency` command line: help everywhere, and the demo's generate -> ingest path."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from data.daily_store import DailyStore
from data.lake import QUARANTINE, Lake
from flows.cli import app

runner = CliRunner()
COMMANDS = [
    "settings",
    "lake",
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
    "rescore",
    "monitoring",
    "serve",
    "queue",
    "decide",
    "decisions",
    "request",
    "users",
    "db",
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


@pytest.mark.slow
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
    """A temporary MLflow store and decision store, so tests never touch data/."""
    return {
        "MLFLOW_TRACKING_URI": f"sqlite:///{root}/mlflow.db",
        "SOLVENCY_MLFLOW_ARTIFACTS": str(root / "artifacts"),
        "SOLVENCY_DECISION_DB": f"sqlite:///{root}/decisions.db",
    }


@pytest.mark.slow
def test_demo_generates_ingests_and_is_idempotent(tmp_path):
    """The README's main job, small: every step through Prefect flows and MLflow."""
    demo, lake_dir = tmp_path / "demo", tmp_path / "lake"
    args = ["demo", "--buyers", "300", "--months", "48", "--dirty", "0.01", "--days", "3",
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
    # the second demo trains on more data (the daily drops loaded since): a newer training set
    training_file = sorted((lake_dir / "outputs" / "training_set").glob("*.parquet"))[-1]
    training = pd.read_parquet(training_file)
    assert {"train", "calibration", "test"} <= set(training["split"])
    assert "Training set by split" in first.stdout
    assert "Out-of-time validation" in first.stdout and "champion is now version 1" in first.stdout
    # the second run trains again: version 2 is registered and goes through the gate
    assert "v2" in second.stdout

    store = DailyStore(lake_dir)
    assert store.dates() == ["2026-11-28", "2026-11-29", "2026-11-30"]
    scores = store.read("2026-11-30", "scores")
    assert len(scores) == rows["buyers"] and scores["grade"].between(1, 10).all()
    recs = store.read("2026-11-30", "recommendations")
    # one recommendation per pair of the book (which keeps every decided version),
    # replaced (not appended) by the second run
    limits = lake.read("limits")
    known = limits.loc[limits["decision_date"] <= pd.Timestamp("2026-11-30")]
    assert len(recs) == len(known[["policyholder_id", "buyer_id"]].drop_duplicates())
    assert recs[["policyholder_id", "buyer_id"]].duplicated().sum() == 0
    for date in store.dates():  # one published run per date, nothing left of the first demo
        assert len([p for p in (store.root / date).iterdir() if p.is_dir()]) == 1
    assert "Limit recommendations, EUR" in second.stdout
    report = store.path("2026-11-30", "recommendations.html")
    assert str(report) in second.stdout.replace("\n", "")
    assert "data:image/png;base64," in report.read_text()
    assert (store.root / "history.html").exists()
    acted = recs.loc[recs["action"] != "maintain", "action"]
    shown = acted.iat[0] if len(acted) else "maintain"
    view = runner.invoke(
        app, ["recommendations", "--lake", str(lake_dir), "--action", shown, "--top", "5"]
    )
    assert view.exit_code == 0, view.output
    assert shown in view.output
    # the daily loop: decisions on record, the underwriter's queue readable by other systems
    assert "The daily loop" in first.stdout
    queue = _solvency("queue", "--lake", str(lake_dir), "--format", "json", env=env)
    assert queue.returncode == 0, queue.stderr
    decided = _solvency("decisions", "--format", "csv", env=env)
    assert decided.returncode == 0 and "automatic" in decided.stdout
    # how to open the workbench, with the demo underwriter's password shown once, that works
    from data.decisions import DecisionStore
    from flows.web.auth import verify_password

    shown = re.search(r"with the password (\S+) \(shown this once", first.stdout.replace("\n", " "))
    assert shown and "solvency ui" in first.stdout
    assert "with the password" not in second.stdout and "was shown by the first" in second.stdout
    with DecisionStore(env["SOLVENCY_DECISION_DB"]) as decisions:
        account = decisions.user("demo-underwriter")
    assert verify_password(account.password_hash, shown.group(1))
    assert not verify_password(account.password_hash, shown.group(1) + "x")
    _run_notebook("model_validation.ipynb", env)
    _run_notebook("portfolio_monitoring.ipynb", {**env, "SOLVENCY_LAKE": str(lake_dir)})
    status = runner.invoke(app, ["status", "--lake", str(lake_dir)])
    assert "invoices" in status.output
    quarantine = runner.invoke(app, ["quarantine", "--lake", str(lake_dir), "--rows", "3"])
    assert quarantine.exit_code == 0 and "rule" in quarantine.output


def _run_notebook(name: str, env: dict[str, str]) -> None:
    """Execute a notebook against the demo's lake and MLflow store; no cell may fail."""
    import nbformat
    from nbclient import NotebookClient

    path = Path(__file__).parents[1] / "notebooks" / name
    notebook = nbformat.read(path, as_version=4)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        # from notebooks/, Jupyter's default working directory: nothing may land there
        NotebookClient(
            notebook, timeout=300, kernel_name="python3",
            resources={"metadata": {"path": str(path.parent)}},
        ).execute()  # fmt: skip
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert not (path.parent / "data").exists() and not (path.parent / "mlruns").exists()
    assert any("image/png" in o.get("data", {}) for o in outputs)


def test_lake_check_and_recover_after_a_lost_manifest(tmp_path, clean_tables, write_tables):
    """A deleted manifest: every command refuses with the way out, `lake check` says what is
    on disk, `lake recover` rebuilds it from the part files, and the data is all there."""
    from data.ingest import ingest_directory

    lake_dir = tmp_path / "lake"
    ingest_directory(write_tables(clean_tables), Lake(lake_dir))
    before = Lake(lake_dir).read("invoices")
    (lake_dir / "_manifest.json").unlink()

    refused = _solvency("status", "--lake", str(lake_dir))
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "_manifest.json" in refused.stderr and "solvency lake recover" in refused.stderr
    check = runner.invoke(app, ["lake", "check", "--lake", str(lake_dir)])
    assert check.exit_code == 1 and "_manifest.json" in check.output
    recover = runner.invoke(app, ["lake", "recover", "--lake", str(lake_dir)])
    assert recover.exit_code == 0, recover.output
    again = runner.invoke(app, ["lake", "check", "--lake", str(lake_dir)])
    assert again.exit_code == 0, again.output
    pd.testing.assert_frame_equal(Lake(lake_dir).read("invoices"), before)
