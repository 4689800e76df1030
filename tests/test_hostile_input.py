"""Hostile input: the files an operator really receives (bad exports, odd encodings, curious
users). Each case asserts that the bad file or rows are contained: rows in = accepted +
quarantined, the message names file, row and column, and no other file or table changes."""

from __future__ import annotations

import datetime as dt
import gzip
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import data.ingest as ingest_module
from data.ingest import IngestOptions, ingest_directory
from data.lake import QUARANTINE, Lake
from data.reading import ReadOptions

LOAD_DATE = dt.date(2026, 11, 30)


def _ingest(folder, lake, **options):
    return ingest_directory(folder, lake, LOAD_DATE, options=IngestOptions(**options))


def _by_file(reports):
    return {r.source.rsplit("/", 1)[-1]: r for r in reports}


def _write(frame: pd.DataFrame, path, fmt: str) -> None:
    if fmt == "csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)


def _contained(report) -> None:
    assert report.status == "ingested", report.message
    assert report.rows_read == report.accepted + report.quarantined


def _quarantine(lake: Lake) -> pd.DataFrame:
    return lake.read(QUARANTINE) if lake.has_table(QUARANTINE) else pd.DataFrame()


@pytest.fixture
def reference_folder(clean_tables, write_tables):
    """buyers, policies and country risk: the reference tables the hostile facts refer to."""
    return write_tables({t: clean_tables[t] for t in ("buyers", "policies", "country_risk")})


@pytest.fixture
def lake(tmp_path, reference_folder):
    lk = Lake(tmp_path / "lake")
    reports = _ingest(reference_folder, lk)
    assert {r.status for r in reports} == {"ingested"}
    return lk


# ----------------------------------------------------------------- ids stay text, always


def test_a_byte_order_mark_does_not_turn_ids_into_numbers(tmp_path, clean_tables):
    """UTF-8 with a BOM: the first column stays text (leading zeros, 20 digits kept), so
    near ids do not collide and supersede each other."""
    buyers = clean_tables["buyers"].iloc[[0, 0, 0]].copy()
    buyers["buyer_id"] = ["000123", "123", "12345678901234567890"]
    folder = tmp_path / "bom"
    folder.mkdir()
    (folder / "buyers.csv").write_bytes(b"\xef\xbb\xbf" + buyers.to_csv(index=False).encode())
    lake = Lake(tmp_path / "lake")
    (report,) = _ingest(folder, lake)
    _contained(report)
    assert report.accepted == 3
    stored = lake.read("buyers")["buyer_id"].tolist()
    assert sorted(stored) == sorted(["000123", "123", "12345678901234567890"])


def test_integer_ids_in_parquet_are_text_and_float_ids_are_refused(tmp_path, clean_tables):
    buyers = clean_tables["buyers"].copy()
    folder = tmp_path / "ids"
    folder.mkdir()
    ints = buyers.assign(buyer_id=[123, 4567, 12345678901234567])
    pq.write_table(pa.Table.from_pandas(ints, preserve_index=False), folder / "buyers.parquet")
    floats = buyers.assign(buyer_id=[1.0, 2.5, 1.2345678901234567e19])
    floats.to_parquet(folder / "buyers_floats.parquet", index=False)
    lake = Lake(tmp_path / "lake")
    reports = _by_file(_ingest(folder, lake))
    assert sorted(lake.read("buyers")["buyer_id"]) == sorted(["123", "4567", "12345678901234567"])
    bad = reports["buyers_floats.parquet"]
    _contained(bad)
    assert bad.quarantined == 3
    q = _quarantine(lake)
    typed = q.loc[q["rule"].str.contains("decimal number")]
    assert typed["row_number"].tolist() == [1, 2, 3]
    assert set(typed["column"]) == {"buyer_id"}


# ------------------------------------------------------------- one bad file, not the folder


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_duplicate_column_names_fail_that_file_only(tmp_path, clean_tables, lake, fmt):
    folder = tmp_path / f"dup-{fmt}"
    folder.mkdir()
    inv = clean_tables["invoices"]
    columns = [*inv.columns, "amount"]
    text = inv.fillna("")
    arrays = [pa.array(text[c].tolist()) for c in columns]
    table = pa.Table.from_arrays(arrays, names=columns)
    if fmt == "csv":
        (folder / "invoices.csv").write_text(
            ",".join(columns)
            + "\n"
            + "\n".join(",".join(map(str, row)) for row in text[columns].to_numpy())
            + "\n"
        )
    else:
        pq.write_table(table, folder / "invoices.parquet")
    _write(clean_tables["events"], folder / f"events.{fmt}", fmt)
    reports = _by_file(_ingest(folder, lake))
    failed = reports[f"invoices.{fmt}"]
    assert failed.status == "failed"
    assert "column 'amount' appears 2 times" in failed.message
    assert f"invoices.{fmt}" in failed.message
    events = reports[f"events.{fmt}"]
    _contained(events)
    assert len(lake.read("events")) == len(clean_tables["events"])
    assert not lake.has_table("invoices")


def test_an_unexpected_fault_while_validating_fails_that_file_only(
    tmp_path, clean_tables, write_tables, lake, monkeypatch
):
    """Whatever breaks inside validation of one file, the folder goes on."""
    real = ingest_module.validate_table

    def breaks_on_invoices(raw, contract, *args, **kwargs):
        if contract.name == "invoices":
            raise TypeError("something nobody foresaw")
        return real(raw, contract, *args, **kwargs)

    monkeypatch.setattr(ingest_module, "validate_table", breaks_on_invoices)
    folder = write_tables({t: clean_tables[t] for t in ("invoices", "events", "limits")}, "f")
    reports = _by_file(_ingest(folder, lake))
    assert reports["invoices.csv"].status == "failed"
    assert "TypeError: something nobody foresaw" in reports["invoices.csv"].message
    assert "invoices.csv" in reports["invoices.csv"].message
    for name in ("events.csv", "limits.csv"):
        _contained(reports[name])
    assert len(lake.read("limits")) == len(clean_tables["limits"])


# ------------------------------------------------------------------------ dates and zones


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_time_zone_aware_timestamps_become_their_utc_date(tmp_path, clean_tables, lake, fmt):
    folder = tmp_path / f"tz-{fmt}"
    folder.mkdir()
    events = clean_tables["events"].iloc[:2].copy()
    if fmt == "csv":
        events["event_date"] = ["2025-05-02T23:30:00-02:00", "2025-08-01T10:00:00Z"]
    else:  # as Spark writes: timestamps with a zone
        events["event_date"] = pd.to_datetime(
            ["2025-05-02T23:30:00-02:00", "2025-08-01T10:00:00Z"], utc=True
        ).tz_convert("Europe/Warsaw")
    _write(events, folder / f"events.{fmt}", fmt)
    (report,) = _ingest(folder, lake)
    _contained(report)
    assert report.quarantined == 0
    stored = lake.read("events").sort_values("event_date")["event_date"]
    assert [d.date() for d in stored] == [dt.date(2025, 5, 3), dt.date(2025, 8, 1)]


# ------------------------------------------------------------------------------- numbers


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_non_finite_and_out_of_range_numbers_are_quarantined(tmp_path, clean_tables, lake, fmt):
    folder = tmp_path / f"inf-{fmt}"
    folder.mkdir()
    limits = clean_tables["limits"].iloc[[0, 0, 0, 1]].copy()
    limits["decision_date"] = ["2024-03-01", "2024-04-01", "2024-05-01", "2025-09-02"]
    if fmt == "csv":
        limits["limit_amount"] = ["inf", "Infinity", "1e309", "20000"]
    else:
        limits["limit_amount"] = [np.inf, -np.inf, 1e300 * 1e10, 20000.0]
    _write(limits, folder / f"limits.{fmt}", fmt)
    policies = clean_tables["policies"].assign(
        policyholder_id=["P9", "P8"], claim_waiting_days=["1e23", "inf"]
    )
    policies.to_csv(folder / "policies_more.csv", index=False)
    reports = _by_file(_ingest(folder, lake))
    for report in reports.values():
        _contained(report)
    assert reports[f"limits.{fmt}"].accepted == 1
    assert reports["policies_more.csv"].quarantined == 2
    q = _quarantine(lake)
    lim = q.loc[q["table"] == "limits"]
    assert lim["row_number"].tolist() == [1, 2, 3]
    assert set(lim["column"]) == {"limit_amount"}
    assert lim["rule"].str.contains("not a finite number").all()
    pol = q.loc[q["table"] == "policies"].sort_values("row_number")
    assert pol["rule"].tolist() == [
        "whole number beyond ±9,007,199,254,740,992",
        "type: not a finite number",
    ]
    assert np.isfinite(lake.read("limits")["limit_amount"]).all()


def test_an_amount_beyond_any_book_is_quarantined(tmp_path, clean_tables, lake):
    folder = tmp_path / "huge"
    folder.mkdir()
    limits = clean_tables["limits"].assign(limit_amount=["2e17", "20000"])
    limits.to_csv(folder / "limits.csv", index=False)
    (report,) = _ingest(folder, lake)
    _contained(report)
    assert (report.accepted, report.quarantined) == (1, 1)
    q = _quarantine(lake)
    assert q["rule"].iloc[0].startswith("beyond ±1e+15")


def test_ambiguous_thousands_separators_in_money_are_quarantined(tmp_path, clean_tables, lake):
    folder = tmp_path / "sep"
    folder.mkdir()
    inv = clean_tables["invoices"].assign(amount=["1.234", "12.50", "999.999"])
    inv.to_csv(folder / "invoices.csv", index=False)
    (report,) = _ingest(folder, lake)
    _contained(report)
    assert report.quarantined == 2
    q = _quarantine(lake).sort_values("row_number")
    assert q["row_number"].tolist() == [1, 3]
    assert q["column"].tolist() == ["amount", "amount"]
    assert q["rule"].str.startswith("ambiguous number").all()
    assert lake.read("invoices")["amount"].tolist() == [12.5]


# ------------------------------------------------------------------ columns and NA-like text


def test_a_renamed_or_absent_column_is_reported_per_file(tmp_path, clean_tables, lake):
    folder = tmp_path / "renamed"
    folder.mkdir()
    fin = clean_tables["financials"].rename(columns={"revenue": "Revenue", "cash": "Cash Box"})
    fin = fin.drop(columns=["interest_expense"])
    fin.to_csv(folder / "financials.csv", index=False)
    (report,) = _ingest(folder, lake)
    _contained(report)
    assert "column 'Revenue' read as 'revenue'" in report.warnings
    assert "unknown column 'Cash Box' not loaded" in report.warnings
    assert "column 'cash' absent: missing in all 2 rows" in report.warnings
    assert "column 'interest_expense' absent: missing in all 2 rows" in report.warnings
    stored = lake.read("financials").sort_values("buyer_id")
    assert stored["revenue"].iloc[0] == 1_000_000


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_na_null_and_n_a_stay_text_where_the_column_is_text(tmp_path, clean_tables, fmt):
    """Country NA is Namibia; a NULL legal form is a bad code shown as written; N/A in a
    number column is the contract's 'no value'."""
    buyers = clean_tables["buyers"].copy()
    buyers["country"] = ["NA", "FR", "PL"]
    buyers["legal_form"] = ["private_limited", "NULL", ""]
    folder = tmp_path / f"na-{fmt}"
    folder.mkdir()
    _write(buyers, folder / f"buyers.{fmt}", fmt)
    country = pd.DataFrame(
        {
            "country": ["NA"],
            "political_risk_class": ["3"],
            "gdp_growth": ["N/A"],
            "inflation": ["NULL"],
        }
    )
    _write(country, folder / f"country_risk.{fmt}", fmt)
    lake = Lake(tmp_path / "lake")
    reports = _by_file(_ingest(folder, lake))
    for report in reports.values():
        _contained(report)
    stored = lake.read("buyers").set_index("buyer_id")
    assert stored.loc["B1", "country"] == "NA"
    q = _quarantine(lake)
    assert q[["table", "row_number", "column", "value"]].values.tolist() == [
        ["buyers", 2, "legal_form", "NULL"]
    ]
    risk = lake.read("country_risk")
    assert risk["country"].tolist() == ["NA"]
    assert risk[["gdp_growth", "inflation"]].isna().all(axis=None)


# ---------------------------------------------------------------- delimiters and encodings


def test_a_semicolon_file_is_sniffed_and_said(tmp_path, clean_tables, lake):
    folder = tmp_path / "semi"
    folder.mkdir()
    clean_tables["limits"].to_csv(folder / "limits.csv", index=False, sep=";")
    (report,) = _ingest(folder, lake)
    _contained(report)
    assert report.accepted == 2
    assert any("delimiter ';'" in w for w in report.warnings)


def test_a_wrong_declared_delimiter_gets_a_hint(tmp_path, clean_tables, lake):
    folder = tmp_path / "semi-declared"
    folder.mkdir()
    clean_tables["limits"].to_csv(folder / "limits.csv", index=False, sep=";")
    (report,) = _ingest(folder, lake, read=ReadOptions(delimiter=","))
    assert report.status == "failed"
    assert "missing required column(s)" in report.message
    assert "limits.csv" in report.message
    assert "policyholder_id;buyer_id" in report.message


def test_latin1_bytes_name_their_row_and_column_and_load_when_declared(
    tmp_path, clean_tables, lake
):
    buyers = pd.DataFrame(
        {
            "buyer_id": ["B7", "B8"],
            "name": ["Plain SA", "Société Générale"],
            "country": ["FR", "FR"],
            "sector": ["K", "K"],
            "legal_form": ["", ""],
            "incorporation_date": ["", ""],
        }
    )
    folder = tmp_path / "latin"
    folder.mkdir()
    (folder / "buyers_more.csv").write_bytes(buyers.to_csv(index=False).encode("latin-1"))
    (report,) = _ingest(folder, lake)
    assert report.status == "failed"
    assert "byte 0xE9 at row 2, column name" in report.message
    assert "buyers_more.csv" in report.message and "--encoding" in report.message
    (report,) = _ingest(folder, lake, read=ReadOptions(encoding="latin-1"))
    _contained(report)
    assert lake.read("buyers").set_index("buyer_id").loc["B8", "name"] == "Société Générale"


def test_a_row_with_too_many_fields_names_its_row(tmp_path, clean_tables, lake):
    folder = tmp_path / "fields"
    folder.mkdir()
    text = clean_tables["limits"].to_csv(index=False).splitlines()
    text[2] += ",surplus"
    (folder / "limits.csv").write_text("\n".join(text) + "\n")
    (report,) = _ingest(folder, lake)
    assert report.status == "failed"
    assert "has 7 fields where the header has 6" in report.message
    assert "row 2" in report.message


# -------------------------------------------------------------------- what a drop may hold


def test_file_names_in_any_case_and_gzip_load_and_strangers_are_reported(
    tmp_path, clean_tables, lake
):
    folder = tmp_path / "names"
    folder.mkdir()
    clean_tables["invoices"].to_csv(folder / "Invoices.csv", index=False)
    clean_tables["events"].to_csv(folder / "EVENTS.CSV", index=False)
    with gzip.open(folder / "limits.csv.gz", "wt") as fh:
        clean_tables["limits"].to_csv(fh, index=False)
    (folder / "invoice_notes.txt").write_text("not a table")
    (folder / "_SUCCESS").write_text("")
    reports = _by_file(_ingest(folder, lake))
    for name in ("Invoices.csv", "EVENTS.CSV", "limits.csv.gz"):
        _contained(reports[name])
    assert reports["invoice_notes.txt"].status == "failed"
    assert "not a table file" in reports["invoice_notes.txt"].message
    assert "_SUCCESS" not in reports
    assert len(lake.read("limits")) == len(clean_tables["limits"])


def test_symbolic_links_are_refused_unless_inside_and_allowed(tmp_path, clean_tables, lake):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    secret = clean_tables["limits"].assign(buyer_id="SECRET")
    secret.to_csv(outside / "limits.csv", index=False)
    folder = tmp_path / "links"
    folder.mkdir()
    (folder / "limits.csv").symlink_to(outside / "limits.csv")
    clean_tables["events"].to_csv(folder / "events_real.csv", index=False)
    (folder / "events.csv").symlink_to(folder / "events_real.csv")
    reports = _by_file(_ingest(folder, lake))
    assert reports["limits.csv"].status == "failed"
    assert "symbolic link" in reports["limits.csv"].message
    assert reports["events.csv"].status == "failed"
    assert not lake.has_table("limits")
    q = _quarantine(lake)
    assert q.empty or not q["record"].str.contains("SECRET").any()
    # inside the folder and allowed: followed (same content as its target: loaded once)
    reports = _by_file(_ingest(folder, lake, links="inside"))
    assert reports["limits.csv"].status == "failed"  # still outside
    assert reports["events.csv"].status in ("ingested", "skipped")
    assert not lake.has_table("limits")
    assert len(lake.read("events")) == len(clean_tables["events"])


def test_quarantine_keeps_the_row_as_written(tmp_path, clean_tables, lake):
    """What went in comes back out of quarantine: the text as read, unknown columns too."""
    folder = tmp_path / "record"
    folder.mkdir()
    limits = clean_tables["limits"].assign(limit_amount=["Infinity", "20000"], note=["x", "y"])
    limits.to_csv(folder / "limits.csv", index=False)
    (report,) = _ingest(folder, lake)
    _contained(report)
    record = json.loads(_quarantine(lake)["record"].iloc[0])
    assert record["limit_amount"] == "Infinity" and record["note"] == "x"


# ------------------------------------------------------------------- what the operator sees


def test_the_ingest_command_loads_the_rest_and_exits_non_zero(tmp_path, clean_tables):
    from typer.testing import CliRunner

    from flows.cli import app

    folder = tmp_path / "cli"
    folder.mkdir()
    for table in ("buyers", "policies", "country_risk", "limits"):
        clean_tables[table].to_csv(folder / f"{table}.csv", index=False)
    (folder / "invoices.csv").write_bytes(
        clean_tables["invoices"].assign(currency="EUR").to_csv(index=False).encode()
        .replace(b"EUR", b"\xe9UR", 1)
    )  # fmt: skip
    fin = clean_tables["financials"].rename(columns={"revenue": "Revenue"})
    fin.to_csv(folder / "financials.csv", index=False, sep=";")
    lake_dir = tmp_path / "lake"
    result = CliRunner().invoke(app, ["ingest", str(folder), "--lake", str(lake_dir)])
    assert result.exit_code == 1, result.output
    assert (
        "invoices.csv" in result.output and "byte 0xE9 at row 1, column currency" in result.output
    )
    assert "column 'Revenue' read as 'revenue'" in result.output
    lake = Lake(lake_dir)
    assert len(lake.read("limits")) == len(clean_tables["limits"])
    assert len(lake.read("financials")) == len(clean_tables["financials"])
    assert not lake.has_table("invoices")
    # declared, the same bytes load (the other files are skipped: same content)
    result = CliRunner().invoke(
        app, ["ingest", str(folder), "--lake", str(lake_dir), "--encoding", "latin-1"]
    )
    assert result.exit_code == 0, result.output
    assert len(lake.read("invoices")) == len(clean_tables["invoices"]) - 1
    q = lake.read(QUARANTINE)
    assert q[["column", "value"]].values.tolist() == [["currency", "éUR"]]
    bad = CliRunner().invoke(
        app, ["ingest", str(folder), "--lake", str(lake_dir), "--encoding", "nope"]
    )
    assert bad.exit_code == 2 and "unknown encoding 'nope'" in bad.output


# ------------------------------------------------------------- exports as they really come


def test_old_spreadsheet_exports_load(tmp_path, clean_tables, lake):
    """CR-only line ends, trailing empty columns, an upper-case gzip name, UTF-16 declared
    in any spelling: all load (the empty columns are reported, not fatal)."""
    folder = tmp_path / "exports"
    folder.mkdir()
    limits = clean_tables["limits"].to_csv(index=False, lineterminator="\r")
    (folder / "limits.csv").write_text(limits)
    events = clean_tables["events"].assign(**{"": "", " ": ""})
    events.to_csv(folder / "events.csv", index=False)
    with gzip.open(folder / "INVOICES.CSV.GZ", "wt") as fh:
        clean_tables["invoices"].to_csv(fh, index=False)
    reports = _by_file(_ingest(folder, lake))
    for report in reports.values():
        _contained(report)
    assert reports["events.csv"].accepted == len(clean_tables["events"])
    assert "unknown column 'unnamed_6' not loaded" in reports["events.csv"].warnings
    assert len(lake.read("limits")) == len(clean_tables["limits"])
    assert len(lake.read("invoices")) == len(clean_tables["invoices"])
    for spelling in ("UTF-16", "utf16", "utf_16"):
        wide = tmp_path / f"wide-{spelling}"
        wide.mkdir()
        buyers = clean_tables["buyers"]
        more = buyers.assign(buyer_id=buyers["buyer_id"] + spelling)
        (wide / "buyers.csv").write_bytes(more.to_csv(index=False).encode("utf-16"))
        (report,) = _ingest(wide, lake, read=ReadOptions(encoding=spelling))
        _contained(report)
        assert report.accepted == len(more), spelling


def test_thousandths_currencies_and_typed_decimals_are_not_ambiguous(tmp_path, clean_tables, lake):
    folder = tmp_path / "kwd"
    folder.mkdir()
    inv = clean_tables["invoices"].assign(amount=["1.250", "1.250", "12.5"])
    inv["currency"] = ["KWD", "EUR", "EUR"]
    inv.to_csv(folder / "invoices.csv", index=False)
    (report,) = _ingest(folder, lake)
    _contained(report)
    q = _quarantine(lake)
    assert q[["row_number", "column"]].values.tolist() == [[2, "amount"]]  # EUR 1.250 only
    assert sorted(lake.read("invoices")["amount"]) == [1.25, 12.5]


def test_parquet_integer_ids_with_gaps_stay_whole(tmp_path, clean_tables, lake):
    folder = tmp_path / "gaps"
    folder.mkdir()
    policies = clean_tables["policies"].assign(policyholder_id=["101", "102"])
    policies.to_csv(folder / "policies_more.csv", index=False)
    events = clean_tables["events"].iloc[:3].copy()
    events["policyholder_id"] = pd.array([101, None, 102], dtype="Int64")
    events["event_date"] = ["2025-05-02", "2025-08-01", "2025-08-02"]
    events.to_parquet(folder / "events.parquet", index=False)
    reports = _by_file(_ingest(folder, lake))
    _contained(reports["events.parquet"])
    assert reports["events.parquet"].quarantined == 0
    stored = lake.read("events").sort_values("event_date")["policyholder_id"]
    assert stored.isna().tolist() == [False, True, False]
    assert stored.dropna().tolist() == ["101", "102"]


def test_links_in_a_loop_pipes_and_underscored_tables_are_reported(tmp_path, clean_tables, lake):
    import os

    folder = tmp_path / "odd"
    folder.mkdir()
    (folder / "limits_a.csv").symlink_to(folder / "limits_b.csv")
    (folder / "limits_b.csv").symlink_to(folder / "limits_a.csv")
    os.mkfifo(folder / "events.csv")
    clean_tables["invoices"].to_csv(folder / "_invoices.csv", index=False)
    clean_tables["limits"].to_csv(folder / "limits.csv", index=False)
    reports = _by_file(_ingest(folder, lake, links="inside"))
    assert "symbolic link" in reports["limits_a.csv"].message
    assert "not a regular file" in reports["events.csv"].message
    assert "not a table file" in reports["_invoices.csv"].message
    _contained(reports["limits.csv"])
    assert {r.status for n, r in reports.items() if n != "limits.csv"} == {"failed"}
