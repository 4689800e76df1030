"""Ingestion: nothing lost, nothing loaded twice, corrections supersede, every write atomic."""

from __future__ import annotations

import datetime as dt
import threading

import pandas as pd
import pytest

import data.lake as lake_module
from data.ingest import ingest_directory, list_sources, table_for_file
from data.lake import QUARANTINE, Lake, LakeBusyError

LOAD_DATE = dt.date(2026, 11, 30)


def _ingest(folder, lake):
    return ingest_directory(folder, lake, LOAD_DATE)


def _lake_rows(lake: Lake) -> dict[str, int]:
    return {t: len(lake.read(t)) for t in lake.manifest().tables}


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_clean_folder_loads_every_row(clean_tables, write_tables, tmp_path, fmt):
    lake = Lake(tmp_path / "lake")
    reports = _ingest(write_tables(clean_tables, fmt=fmt), lake)
    assert [r.status for r in reports] == ["ingested"] * len(clean_tables)
    for table, frame in clean_tables.items():
        stored = lake.read(table)
        assert len(stored) == len(frame), table
    assert not lake.has_table(QUARANTINE)
    invoices = lake.read("invoices", lineage=True)
    assert invoices["paid_date"].dtype.kind == "M"
    assert invoices["_source_row"].tolist() == [1, 2, 3]


def test_bad_rows_go_to_quarantine_with_file_row_and_reason(clean_tables, write_tables, tmp_path):
    tables = dict(clean_tables)
    inv = tables["invoices"].copy()
    inv.loc[1, "amount"] = "-50"
    inv.loc[2, "buyer_id"] = "B404"
    tables["invoices"] = inv
    lake = Lake(tmp_path / "lake")
    folder = write_tables(tables)
    reports = {r.table: r for r in _ingest(folder, lake)}
    rep = reports["invoices"]
    assert (rep.rows_read, rep.accepted, rep.quarantined) == (3, 1, 2)
    assert rep.rows_read == rep.accepted + rep.quarantined
    q = lake.read(QUARANTINE).sort_values("row_number")
    assert q["row_number"].tolist() == [2, 3]
    assert q["source_file"].str.endswith("invoices.csv").all()
    assert q["column"].tolist() == ["amount", "buyer_id"]
    assert "unknown buyer_id" in q["rule"].iloc[1]
    assert lake.read("invoices")["invoice_id"].tolist() == ["I1"]


def test_reingesting_the_same_files_adds_nothing(clean_tables, write_tables, tmp_path):
    lake = Lake(tmp_path / "lake")
    folder = write_tables(clean_tables)
    _ingest(folder, lake)
    before = _lake_rows(lake)
    sources = set(lake.manifest().sources)
    again = _ingest(folder, lake)
    assert {r.status for r in again} == {"skipped"}
    assert _lake_rows(lake) == before
    assert set(lake.manifest().sources) == sources


def test_corrected_file_supersedes_rows_with_the_same_key(clean_tables, write_tables, tmp_path):
    lake = Lake(tmp_path / "lake")
    _ingest(write_tables(clean_tables), lake)
    fix = clean_tables["invoices"].iloc[[1]].copy()
    fix["paid_date"] = "2025-06-01"
    new = fix.assign(invoice_id="I4", paid_date="")
    folder = write_tables({"invoices_2025-06-02": pd.concat([fix, new])}, name="day2")
    (report,) = _ingest(folder, lake)
    assert (report.accepted, report.superseded) == (2, 1)
    invoices = lake.read("invoices").set_index("invoice_id")
    assert sorted(invoices.index) == ["I1", "I2", "I3", "I4"]
    assert invoices.loc["I2", "paid_date"] == pd.Timestamp("2025-06-01")
    # the earlier part was rewritten copy-on-write; only listed files remain on disk
    listed = {f for fs in lake.manifest().tables.values() for f in fs}
    on_disk = {lake.relative(p) for p in lake.root.glob("*/load_date=*/*.parquet")}
    assert on_disk == listed


def test_missing_required_column_stops_that_file_only(clean_tables, write_tables, tmp_path):
    tables = dict(clean_tables)
    tables["invoices"] = tables["invoices"].drop(columns=["amount"])
    lake = Lake(tmp_path / "lake")
    reports = {r.table: r for r in _ingest(write_tables(tables), lake)}
    assert reports["invoices"].status == "failed"
    assert "invoices.csv" in reports["invoices"].message
    assert "amount" in reports["invoices"].message
    assert reports["events"].status == "ingested"
    assert not lake.has_table("invoices")


def test_unreadable_file_is_reported_not_raised(clean_tables, write_tables, tmp_path):
    folder = write_tables({"buyers": clean_tables["buyers"]})
    (folder / "limits.parquet").write_bytes(b"this is not parquet")
    reports = {r.table: r for r in _ingest(folder, Lake(tmp_path / "lake"))}
    assert reports["limits"].status == "failed"
    assert "limits.parquet" in reports["limits"].message
    assert reports["buyers"].status == "ingested"


def test_a_crash_before_publishing_leaves_the_previous_lake(
    clean_tables, write_tables, tmp_path, monkeypatch
):
    lake = Lake(tmp_path / "lake")
    _ingest(write_tables({k: clean_tables[k] for k in ("buyers", "policies")}), lake)
    before = _lake_rows(lake)

    def crash(path, text):
        raise OSError("disk full")

    monkeypatch.setattr(lake_module, "atomic_write_text", crash)
    with pytest.raises(OSError, match="disk full"):
        _ingest(write_tables({"invoices": clean_tables["invoices"]}, name="day2"), lake)
    monkeypatch.undo()
    assert _lake_rows(lake) == before
    assert not lake.has_table("invoices")
    # the retry loads the file and sweeps the unpublished part away
    (report,) = _ingest(write_tables({"invoices": clean_tables["invoices"]}, name="day2"), lake)
    assert report.status == "ingested"
    assert len(list((lake.root / "invoices").rglob("*.parquet"))) == 1


def test_a_second_writer_is_refused_while_the_lake_is_locked(tmp_path):
    lake = Lake(tmp_path / "lake")
    entered, release = threading.Event(), threading.Event()

    def hold():
        with lake.locked():
            entered.set()
            release.wait(5)

    t = threading.Thread(target=hold)
    t.start()
    entered.wait(5)
    try:
        with pytest.raises(LakeBusyError, match="another process"), lake.locked():
            pass
    finally:
        release.set()
        t.join()


def test_source_files_are_recognised_by_table_name(tmp_path):
    for name in (
        "invoices_2026-11-30.csv",
        "buyers.parquet",
        "notes.txt",
        "invoices-old.csv",
        "truth.parquet",
    ):
        (tmp_path / name).write_text("x")
    listing = list_sources(tmp_path)
    assert [(t, p.name) for t, p in listing.sources] == [
        ("buyers", "buyers.parquet"),
        ("invoices", "invoices-old.csv"),
        ("invoices", "invoices_2026-11-30.csv"),
    ]
    assert sorted(p.name for p in listing.unrecognised) == ["notes.txt", "truth.parquet"]
    assert table_for_file(tmp_path / "limitsx.csv") is None


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_generated_dirty_rows_are_exactly_the_quarantined_rows(tmp_path, fmt):
    from data.generator import GeneratorConfig, generate_portfolio, write_portfolio

    portfolio = generate_portfolio(
        GeneratorConfig(n_buyers=400, months=6, seed=7, dirty_fraction=0.02)
    )
    folder = tmp_path / "src"
    write_portfolio(portfolio, folder, fmt=fmt)
    lake = Lake(tmp_path / "lake")
    reports = {r.table: r for r in _ingest(folder, lake)}
    dirty = portfolio.truth["dirty_rows"]
    quarantine = lake.read(QUARANTINE)
    assert len(dirty) > 0
    for table, frame in portfolio.tables.items():
        rep = reports[table]
        assert rep.rows_read == len(frame)
        assert rep.rows_read == rep.accepted + rep.quarantined, table
        expected = set(dirty.loc[dirty["table"] == table, "row_number"])
        got = set(quarantine.loc[quarantine["table"] == table, "row_number"])
        assert got == expected, table
        accepted_rows = set(lake.read(table, lineage=True)["_source_row"])
        assert not accepted_rows & expected
