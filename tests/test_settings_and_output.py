"""The run context's parts: settings read once and anchored, command output that never
wraps in a log, and flows that all name their runs."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import flows
from flows.cli.output import plain_table
from flows.context import RunContext, parse_date
from flows.settings import Settings, checkout_root


def test_relative_settings_are_read_against_the_checkout(tmp_path):
    """A notebook opened in notebooks/ finds data/lake and the MLflow store of the root."""
    relative = Settings()
    anchored = relative.anchored(tmp_path)
    assert anchored.lake_dir == tmp_path / "data" / "lake"
    assert anchored.mlflow_uri == f"sqlite:///{tmp_path}/data/mlflow/mlflow.db"
    assert anchored.mlflow_artifacts == tmp_path / "data" / "mlflow" / "artifacts"
    assert anchored.policy_path == relative.policy_path  # already absolute: unchanged
    server = Settings(mlflow_uri="http://mlflow:5000", mlflow_artifacts=None)
    assert server.anchored(tmp_path).mlflow_uri == "http://mlflow:5000"
    assert (checkout_root() / "pyproject.toml").exists()


def test_the_context_carries_one_date_and_the_loaded_configuration(tmp_path):
    settings = Settings(lake_dir=tmp_path / "lake", timezone="Pacific/Kiritimati")
    ctx = RunContext.build(settings)
    assert ctx.as_of == settings.today()  # today where the business is, not on the server
    later = ctx.on(parse_date("2026-11-30"))
    assert later.day == "2026-11-30" and later.policy is ctx.policy
    assert later.lake.root == tmp_path / "lake" and later.store.root.is_relative_to(tmp_path)
    with pytest.raises(ValueError, match="--as-of '2026-02-30' is not a date"):
        parse_date("2026-02-30", "--as-of")
    assert Settings.from_mapping(settings.to_mapping()) == settings


def test_every_flow_names_its_runs():
    """Prefect's default run names ('sapphire-jacamar') tell an operator nothing."""
    from prefect import Flow

    found = []
    for module in pkgutil.walk_packages(flows.__path__, "flows."):
        if module.name.endswith("__main__"):
            continue
        for value in vars(importlib.import_module(module.name)).values():
            if isinstance(value, Flow) and value not in found:
                found.append(value)
    assert len(found) >= 10
    unnamed = [f.name for f in found if f.flow_run_name is None]
    assert unnamed == []


def test_plain_tables_never_wrap_or_cut():
    lines = plain_table(
        "Daily rescoring", ["as of", "buyers"], [["2026-11-30", "1,000,000"]], right={"buyers"}
    )
    assert lines == ["Daily rescoring", "as of          buyers", "----------  ---------",
                     "2026-11-30  1,000,000"]  # fmt: skip


def test_command_output_in_a_log_keeps_every_value_whole(tmp_path):
    """Written to a file (not a terminal), tables are plain lines: no 80-column wrapping,
    no 'Counterp…' cuts, no box characters."""
    from features.catalogue import FEATURES

    result = subprocess.run(
        [sys.executable, "-m", "flows.cli", "catalogue"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
        env={**__import__("os").environ, "COLUMNS": "80"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for feature in FEATURES:
        assert any(feature.name in line and feature.description in line for line in lines)
    assert "…" not in result.stdout and "│" not in result.stdout
    assert max(len(line) for line in lines) > 80
    assert not Path(tmp_path / "data").exists()  # listing the catalogue writes nothing
