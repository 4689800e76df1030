"""Safe outputs: nothing from the data injects into a spreadsheet, a terminal or a page, and
what the project stores is readable by its owner only.

The end-to-end half runs a small generated book whose buyer ids and names are hostile
(formulas, Rich markup, a terminal escape sequence, a script tag) through ingest, the daily
rescoring and the commands that print buyers. The other half checks the modes of every file
and folder the lake, the output store, the decision store and MLflow's store create.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import os
import stat
from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console
from typer.testing import CliRunner

from data.daily_store import DailyStore
from data.lake import FORMULA_STARTS, QUARANTINE, Lake, atomic_write_csv, spreadsheet_safe
from flows.cli import app
from flows.cli.output import OUT, printable
from tests.book_fixtures import BASE, context_for, make_book

DAY = BASE + dt.timedelta(days=1)
#: An OSC 8 hyperlink, written into an id as raw escape characters.
ESCAPE_ID = "esc\x1b]8;;http://evil.example\x1b\\link\x1b]8;;\x1b\\"
HOSTILE_IDS = (
    '=HYPERLINK("http://x","y")',
    "+1+1",
    "@SUM(A1)",
    "-cmd",
    "X[/red]",
    "[link=http://evil.example]click[/link]",
    "<script>alert(1)</script>",
    ESCAPE_ID,
)
#: Values of the bad rows and the name of the stranger file loaded through the command line.
BAD_VALUES = ("[link=http://evil.example]click[/link]", '=HYPERLINK("http://x","y")', "X[/red]")
STRANGER = "[link=https:evil.example]click.csv"
runner = CliRunner()


def hostile_ids(tables: dict[str, pd.DataFrame]) -> None:
    """Give buyers that hold limits hostile ids (in every table) and names, and file an
    insolvency for each, so they head the review queue of the report."""
    chosen = list(pd.unique(tables["limits"]["buyer_id"]))[: len(HOSTILE_IDS)]
    mapping = dict(zip(chosen, HOSTILE_IDS, strict=True))
    for frame in tables.values():
        if "buyer_id" in frame.columns:
            frame["buyer_id"] = frame["buyer_id"].replace(mapping)
    buyers = tables["buyers"]
    names = buyers["name"].astype(object).copy()
    hostile = buyers["buyer_id"].isin(HOSTILE_IDS)
    names[hostile] = buyers.loc[hostile, "buyer_id"].astype(object) + " Holding"
    buyers["name"] = names
    filed = pd.DataFrame(
        {
            "buyer_id": list(HOSTILE_IDS),
            "event_date": pd.Timestamp(BASE - dt.timedelta(days=20)),
            "event_type": "insolvency",
        }
    )
    tables["events"] = pd.concat([tables["events"], filed], ignore_index=True)


@pytest.fixture(scope="module")
def hostile_book(tmp_path_factory):
    """The book with hostile ids, a command-line ingest of bad rows and a stranger file,
    then one daily run (scores, recommendations.csv, the HTML reports)."""
    book = make_book(tmp_path_factory.mktemp("hostile"), edit=hostile_ids)
    folder = book["root"] / "hostile-files"
    folder.mkdir()
    pd.DataFrame(
        {
            "buyer_id": [HOSTILE_IDS[4], HOSTILE_IDS[5], ESCAPE_ID],
            "event_date": [DAY.isoformat()] * 3,
            "event_type": list(BAD_VALUES),  # not an event type: quarantined with the value
            "policyholder_id": [""] * 3,
            "amount": [""] * 3,
        }
    ).to_csv(folder / "events.csv", index=False)
    (folder / STRANGER).write_text("not,a,table\n")
    ingested = runner.invoke(
        app, ["ingest", str(folder), "--lake", str(book["lake"]), "--load-date", DAY.isoformat()]
    )
    from flows.daily import daily_rescore_flow

    daily_rescore_flow(context_for(book, DAY))
    return {**book, "ingested": ingested}


def _shown(text: str) -> str:
    """How the terminal must show a value: as written, control characters made visible."""
    return printable(text)


def _no_injection(output: str) -> None:
    """No operating-system command (an OSC 8 hyperlink, a window title) reached the output."""
    assert "\x1b]8;" not in output and "\x1b]" not in output


def test_the_ingest_summary_shows_hostile_names_as_written(hostile_book):
    result = hostile_book["ingested"]
    # the stranger file fails by itself (exit 1) after the rest was committed; no crash
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Ingestion summary" in result.output
    assert STRANGER in result.output  # the markup in the name is text, not a link
    _no_injection(result.output)
    quarantined = Lake(hostile_book["lake"]).read(QUARANTINE)
    assert set(BAD_VALUES) <= set(quarantined["value"])


def test_the_quarantine_listing_shows_values_as_written(hostile_book):
    result = runner.invoke(
        app, ["quarantine", "--lake", str(hostile_book["lake"]), "--rows", "500"]
    )
    assert result.exit_code == 0, result.output
    for value in BAD_VALUES:
        assert value in result.output
    _no_injection(result.output)


@pytest.mark.parametrize("terminal", [False, True], ids=["log", "terminal"])
def test_recommendations_of_a_hostile_buyer_print_its_id_as_written(
    hostile_book, monkeypatch, terminal
):
    if terminal:  # a Rich table on a colour terminal (where markup would become links)
        console = Console(force_terminal=True, color_system="truecolor", width=2000)
        monkeypatch.setitem(OUT._consoles, True, console)
    store = DailyStore(hostile_book["lake"])
    recs = store.read(DAY, "recommendations")
    for buyer in HOSTILE_IDS:
        expected = int((recs["buyer_id"] == buyer).sum())
        assert expected >= 1, buyer
        result = runner.invoke(
            app, ["recommendations", "--lake", str(hostile_book["lake"]), "--buyer", buyer]
        )
        assert result.exit_code == 0, (buyer, result.output)
        assert f"{expected} of {expected} recommendations" in result.output
        assert _shown(buyer) in result.output, (buyer, result.output)
        _no_injection(result.output)


def test_recommendations_csv_neutralises_formulas_and_keeps_numbers(hostile_book):
    store = DailyStore(hostile_book["lake"])
    recs = store.read(DAY, "recommendations")
    with open(store.path(DAY, "recommendations.csv"), newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(recs)
    for row in rows:  # no cell a spreadsheet would run: only numbers start with - or +
        for cell in row.values():
            if cell.startswith(FORMULA_STARTS):
                float(cell)
    shown_ids = [row["buyer_id"] for row in rows]
    for buyer in HOSTILE_IDS:
        written = "'" + buyer if buyer.startswith(FORMULA_STARTS) else buyer
        assert shown_ids.count(written) == int((recs["buyer_id"] == buyer).sum()) >= 1, buyer
    assert '=HYPERLINK("http://x","y")' not in shown_ids and "-cmd" not in shown_ids
    # numbers are written as numbers, negative changes included
    changes = [row["change"] for row in rows]
    assert any(c.startswith("-") for c in changes)
    for cell, value in zip(changes, recs["change"], strict=True):
        assert float(cell) == pytest.approx(value)


def test_reports_escape_hostile_ids(hostile_book):
    store = DailyStore(hostile_book["lake"])
    page = store.read_text(DAY, "recommendations.html")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert" not in page
    assert "<script" not in store.read_text(DAY, "monitoring.html").lower()


def test_spreadsheet_safe_keeps_numbers_and_only_touches_text(tmp_path):
    frame = pd.DataFrame(
        {
            "id": ["=1+1", "-5", "@x", "ok"],
            "amount": [-5, 3, -1, 0],
            "share": [-0.5, 1.0, 2.5, None],
            "kind": pd.Categorical(["+a", "b", "+a", "b"]),
            "mixed": pd.Series([-5, "-z", 2.0, None], dtype=object),
        }
    )
    safe = spreadsheet_safe(frame)
    assert safe["id"].tolist() == ["'=1+1", "'-5", "'@x", "ok"]
    assert safe["kind"].tolist() == ["'+a", "b", "'+a", "b"]
    assert safe["mixed"].tolist()[:3] == [-5, "'-z", 2.0]  # a number in an object column stays
    pd.testing.assert_series_equal(safe["amount"], frame["amount"])
    atomic_write_csv(frame.drop(columns="mixed"), tmp_path / "out.csv")
    with open(tmp_path / "out.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["amount"] for r in rows] == ["-5", "3", "-1", "0"]
    assert [r["share"] for r in rows] == ["-0.5", "1", "2.5", ""]
    assert [r["id"] for r in rows] == ["'=1+1", "'-5", "'@x", "ok"]


# ----------------------------------------------------------------- owner-only files


@pytest.fixture
def lax_umask(monkeypatch):
    """A process with umask 022 (files 0644 by default) and the file-mode state as at a
    fresh start; both restored afterwards."""
    from data import permissions

    monkeypatch.setattr(permissions, "_state", {"shared": False, "umask_before": None})
    before = os.umask(0o022)
    yield permissions
    os.umask(before)


def _modes(*roots: Path) -> dict[Path, int]:
    """Mode of every file and folder under `roots` (the roots included)."""
    found = {}
    for root in roots:
        for path in [root, *root.rglob("*")]:
            found[path] = stat.S_IMODE(path.lstat().st_mode)
    return found


def _book_folder(clean_tables, write_tables) -> Path:
    """The clean tables plus one bad buyer row (so the load writes quarantine too)."""
    tables = dict(clean_tables)
    bad = clean_tables["buyers"].iloc[[0]].assign(buyer_id="B9", country="XX")
    tables["buyers"] = pd.concat([clean_tables["buyers"], bad], ignore_index=True)
    return write_tables(tables)


def _write_everything(lake_dir: Path, folder: Path) -> None:
    """A load, outputs of every kind, and one published unit of the daily store."""
    from data.ingest import ingest_directory

    lake = Lake(lake_dir)
    reports = ingest_directory(folder, lake, load_date=dt.date(2026, 11, 30))
    assert {r.status for r in reports} == {"ingested"}
    assert lake.has_table(QUARANTINE)
    frame = pd.DataFrame({"buyer_id": ["=B1", "B2"], "value": [-1.5, 2.0]})
    lake.write_output("features", "2026-11-30", frame)
    lake.write_output_csv("features", "2026-11-30.csv", frame)
    lake.write_output_text("features", "2026-11-30.html", "<p>report</p>")
    store = DailyStore(lake_dir)
    with store.lock("2026-11-30"):
        staging = store.stage("2026-11-30")
        staging.write_frame("scores", frame)
        staging.write_csv("recommendations.csv", frame)
        staging.write_text("recommendations.html", "<p>report</p>")
        store.commit(staging, {"buyers": 2})


def test_library_writers_make_owner_only_files_whatever_the_umask(
    tmp_path, clean_tables, write_tables, lax_umask
):
    """Without any run context (a notebook): the lake, the output store, the decision
    store, MLflow's store folder and the workbench key are 0700 / 0600 under umask 022."""
    from data.decisions import DecisionStore
    from flows.web.auth import secret_key
    from models.registry import ModelRegistry

    assert not lax_umask.shared_files()
    _write_everything(tmp_path / "lake", _book_folder(clean_tables, write_tables))
    decisions = DecisionStore(f"sqlite:///{tmp_path}/decisions/decisions.db")
    decisions.upgrade()
    decisions.close()
    ModelRegistry(f"sqlite:///{tmp_path}/mlflow/mlflow.db", tmp_path / "mlflow" / "artifacts")
    secret_key(None, tmp_path / "web" / "workbench-secret.key")

    roots = [tmp_path / n for n in ("lake", "decisions", "mlflow", "web")]
    modes = _modes(*roots)
    names = {p.name for p in modes}
    assert {"_manifest.json", "_lock", "2026-11-30.json", "recommendations.csv",
            "decisions.db", "workbench-secret.key"} <= names  # fmt: skip
    assert any(p.suffix == ".parquet" and QUARANTINE in p.parts for p in modes)
    loose = {str(p): oct(m) for p, m in modes.items() if m & 0o077}
    assert not loose, loose
    assert all(m == 0o700 for p, m in modes.items() if p.is_dir())


def test_a_run_context_makes_every_new_file_owner_only(tmp_path, lax_umask):
    """The umask layer: files that libraries create (here a plain `open`, and MLflow's
    store) are owner-only once a run context is built, and the umask comes back when the
    setting says shared."""
    from flows.context import RunContext
    from flows.settings import Settings

    settings = Settings(
        lake_dir=tmp_path / "lake",
        mlflow_uri=f"sqlite:///{tmp_path}/mlflow/mlflow.db",
        mlflow_artifacts=tmp_path / "mlflow" / "artifacts",
    )
    ctx = RunContext.build(settings)
    (tmp_path / "plain.txt").write_text("written by a library")
    ctx.registry.client.search_experiments()  # MLflow creates its database
    for path in (tmp_path / "plain.txt", tmp_path / "mlflow" / "mlflow.db"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    RunContext.build(dataclasses.replace(settings, shared_files=True))
    assert os.umask(0o022) == 0o022  # the umask the process had before


@pytest.mark.parametrize("umask", [0o022, 0o007])
def test_shared_files_follow_the_umask(tmp_path, clean_tables, write_tables, lax_umask, umask):
    from flows.context import RunContext
    from flows.settings import Settings

    assert Settings().shared_files is False
    assert Settings.from_env({"SOLVENCY_SHARED_FILES": "true"}).shared_files is True
    os.umask(umask)
    RunContext.build(Settings(lake_dir=tmp_path / "lake", shared_files=True))
    _write_everything(tmp_path / "lake", _book_folder(clean_tables, write_tables))
    modes = _modes(tmp_path / "lake")
    assert {m for p, m in modes.items() if p.is_dir()} == {0o777 & ~umask}
    assert {m for p, m in modes.items() if p.is_file()} == {0o666 & ~umask}


def test_the_command_line_makes_owner_only_files(tmp_path, clean_tables, write_tables, lax_umask):
    """`solvency ingest` then `solvency quarantine` under umask 022: every file and folder
    of the lake is owner-only."""
    lake_dir = tmp_path / "lake"
    folder = _book_folder(clean_tables, write_tables)
    result = runner.invoke(app, ["ingest", str(folder), "--lake", str(lake_dir)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["quarantine", "--lake", str(lake_dir)])
    assert result.exit_code == 0, result.output
    assert "buyers" in result.output and "country" in result.output
    modes = _modes(lake_dir)
    assert any(QUARANTINE in p.parts for p in modes) and len(modes) > 10
    loose = {str(p): oct(m) for p, m in modes.items() if m & 0o077}
    assert not loose, loose
