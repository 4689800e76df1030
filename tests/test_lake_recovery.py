"""The lake deletes only what it accounts for, and rebuilds a lost manifest from its parts."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

import data.lake as lake_module
from data.ingest import ingest_directory
from data.lake import (
    MANIFEST,
    QUARANTINE,
    Lake,
    LakeStateError,
    PartInfo,
    leftover_files,
    part_files,
    part_info,
    temp_part_path,
)
from data.lake_recovery import RECOVERED, check_lake, recover_lake

DAY1, DAY2, DAY3 = dt.date(2026, 11, 28), dt.date(2026, 11, 29), dt.date(2026, 11, 30)


def _correction(clean_tables) -> dict[str, pd.DataFrame]:
    """Day 2: invoice I2 paid (rewrites day 1's part), a new invoice, a bad invoice (to
    quarantine), and both limits re-sent (day 1's limits part is emptied and dropped)."""
    invoices = clean_tables["invoices"]
    paid = invoices.iloc[[1]].assign(paid_date="2025-06-01")
    new = invoices.iloc[[1]].assign(invoice_id="I4", paid_date="")
    bad = invoices.iloc[[0]].assign(invoice_id="I5", amount="-50")
    limits = clean_tables["limits"].assign(exposure="1000")
    return {
        "invoices_2026-11-29": pd.concat([paid, new, bad]),
        "limits_2026-11-29": limits,
    }


def _two_loads(clean_tables, write_tables, lake: Lake) -> tuple[Path, Path]:
    day1 = write_tables(clean_tables, name="day1")
    day2 = write_tables(_correction(clean_tables), name="day2")
    ingest_directory(day1, lake, DAY1)
    reports = ingest_directory(day2, lake, DAY2)
    assert [(r.status, r.superseded) for r in reports] == [("ingested", 1), ("ingested", 2)]
    return day1, day2


def _day3(clean_tables, write_tables) -> Path:
    events = clean_tables["events"].iloc[[0]].assign(event_date="2025-10-01")
    return write_tables({"events_2026-11-30": events}, name="day3")


def _snapshot(lake: Lake) -> dict[str, pd.DataFrame]:
    return {t: lake.read(t, lineage=True) for t in sorted(lake.manifest().tables)}


def _assert_same_rows(lake: Lake, before: dict[str, pd.DataFrame]) -> None:
    after = _snapshot(lake)
    assert sorted(after) == sorted(before)
    for table, frame in before.items():
        pd.testing.assert_frame_equal(after[table], frame, obj=table)


def _files(root: Path) -> dict[str, bytes]:
    """Every file in the lake's partition folders, with its bytes."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in root.glob("*/load_date=*/*")
        if p.is_file()
    }


# ------------------------------------------------------------------ a missing manifest


def test_a_deleted_manifest_stops_the_next_ingest_and_deletes_nothing(
    clean_tables, write_tables, tmp_path
):
    lake = Lake(tmp_path / "lake")
    day1, day2 = _two_loads(clean_tables, write_tables, lake)
    before, manifest = _snapshot(lake), lake.manifest()
    assert "invoices" in before and QUARANTINE in before
    lake.manifest_path.unlink()
    files = _files(lake.root)

    with pytest.raises(LakeStateError) as err:
        ingest_directory(_day3(clean_tables, write_tables), lake, DAY3)
    message = str(err.value)
    assert str(lake.manifest_path) in message
    assert "solvency lake check" in message and "solvency lake recover" in message
    with pytest.raises(LakeStateError):
        lake.read("buyers")  # readers stop too
    assert _files(lake.root) == files  # not one part file deleted

    recovery = recover_lake(lake.root)
    assert recovery.rebuilt and recovery.manifest_set_aside is None
    assert recovery.set_aside == [] and recovery.folder is None
    assert recovery.version == manifest.version + 1
    rebuilt = lake.manifest()
    assert rebuilt.tables == manifest.tables
    assert rebuilt.sources == manifest.sources
    assert rebuilt.parts == manifest.parts
    _assert_same_rows(lake, before)
    assert check_lake(lake.root).ok

    # idempotency survives recovery: the same files again add nothing
    again = ingest_directory(day1, lake, DAY3) + ingest_directory(day2, lake, DAY3)
    assert {r.status for r in again} == {"skipped"}
    _assert_same_rows(lake, before)
    (report,) = ingest_directory(_day3(clean_tables, write_tables), lake, DAY3)
    assert report.status == "ingested"
    assert len(lake.read("events")) == len(before["events"]) + 1


def test_a_lake_without_manifest_or_parts_is_empty_and_loads(clean_tables, write_tables, tmp_path):
    lake = Lake(tmp_path / "lake")
    assert lake.manifest().tables == {}
    assert check_lake(lake.root).ok
    assert recover_lake(lake.root).lines() == [f"lake {lake.root}: empty, nothing to recover"]
    # a first load that crashed before naming its parts left only temporary files
    partition = lake.root / "buyers" / "load_date=2026-11-28"
    partition.mkdir(parents=True)
    (partition / ".abc-12345678.parquet.tmp").write_bytes(b"half")
    assert lake.manifest().version == 0
    reports = ingest_directory(write_tables(clean_tables), lake, DAY1)
    assert {r.status for r in reports} == {"ingested"}
    assert leftover_files(lake.root) == []


def test_a_truncated_manifest_names_the_file_and_is_set_aside_by_recovery(
    clean_tables, write_tables, tmp_path
):
    lake = Lake(tmp_path / "lake")
    _two_loads(clean_tables, write_tables, lake)
    before, manifest = _snapshot(lake), lake.manifest()
    text = lake.manifest_path.read_text()
    lake.manifest_path.write_text(text[: len(text) // 2])

    for attempt in (
        lambda: ingest_directory(_day3(clean_tables, write_tables), lake, DAY3),
        lambda: lake.read("invoices"),
    ):
        with pytest.raises(LakeStateError, match="unreadable") as err:
            attempt()
        assert not isinstance(err.value, json.JSONDecodeError)
        assert str(lake.manifest_path) in str(err.value)
        assert "solvency lake recover" in str(err.value)
    check = check_lake(lake.root)
    assert not check.ok and "unreadable" in check.manifest_problem
    assert sorted(check.unlisted) == sorted(manifest.listed())

    recovery = recover_lake(lake.root)
    assert recovery.rebuilt
    moved = lake.root / recovery.manifest_set_aside
    assert moved.parent.parent == lake.root / RECOVERED and moved.name == MANIFEST
    assert moved.read_text() == text[: len(text) // 2]
    assert lake.manifest().version > manifest.version
    assert lake.manifest().sources == manifest.sources
    _assert_same_rows(lake, before)
    assert any("rebuilt from the part files" in line for line in recovery.lines())


def test_a_manifest_without_its_keys_is_unreadable(tmp_path, clean_tables, write_tables):
    lake = Lake(tmp_path / "lake")
    ingest_directory(write_tables({"buyers": clean_tables["buyers"]}), lake, DAY1)
    lake.manifest_path.write_text(json.dumps({"version": 3, "tables": {}}))
    with pytest.raises(LakeStateError, match="missing key"):
        lake.manifest()


def test_a_manifest_of_the_older_format_still_loads(clean_tables, write_tables, tmp_path):
    lake = Lake(tmp_path / "lake")
    ingest_directory(write_tables({"buyers": clean_tables["buyers"]}), lake, DAY1)
    raw = json.loads(lake.manifest_path.read_text())
    del raw["parts"]
    lake.manifest_path.write_text(json.dumps(raw))
    check = check_lake(lake.root)
    assert check.ok and check.not_recorded == lake.manifest().listed()
    assert any("1 not recorded" in line for line in check.lines())
    ingest_directory(write_tables({"policies": clean_tables["policies"]}, name="p"), lake, DAY2)
    assert set(lake.manifest().parts) == set(lake.manifest().tables["policies"])


# ---------------------------------------------------- what a commit may and may not delete


def test_an_unlisted_part_survives_commits_and_recovery_moves_it_aside(
    clean_tables, write_tables, tmp_path
):
    lake = Lake(tmp_path / "lake")
    _two_loads(clean_tables, write_tables, lake)
    listed = lake.files("buyers")[0]
    stray = listed.with_name("0123456789abcdef-feedf00d.parquet")
    shutil.copy(listed, stray)
    rel = lake.relative(stray)

    ingest_directory(_day3(clean_tables, write_tables), lake, DAY3)
    assert stray.exists()  # a commit never deletes what no manifest listed
    before = _snapshot(lake)
    check = check_lake(lake.root)
    assert not check.ok and check.unlisted == [rel]
    assert any(rel in line for line in check.lines())

    recovery = recover_lake(lake.root)
    assert not recovery.rebuilt
    assert [(s.table, s.path) for s in recovery.set_aside] == [("buyers", rel)]
    assert not stray.exists()
    assert (recovery.folder / rel).read_bytes() == listed.read_bytes()
    assert recovery.folder.parent == lake.root / RECOVERED
    assert check_lake(lake.root).ok
    _assert_same_rows(lake, before)


def test_recovery_without_manifest_sets_aside_a_copy_of_a_part(
    clean_tables, write_tables, tmp_path
):
    lake = Lake(tmp_path / "lake")
    _two_loads(clean_tables, write_tables, lake)
    before = _snapshot(lake)
    listed = lake.files("invoices")[0]
    stray = listed.with_name("0123456789abcdef-feedf00d.parquet")
    shutil.copy(listed, stray)
    lake.manifest_path.unlink()

    recovery = recover_lake(lake.root)
    (aside,) = recovery.set_aside
    assert aside.path == lake.relative(stray) and aside.reason.startswith("a copy of")
    assert (recovery.folder / aside.path).exists()
    _assert_same_rows(lake, before)
    assert not recovery.warnings


def test_only_the_lakes_temporary_names_are_swept(clean_tables, write_tables, tmp_path):
    lake = Lake(tmp_path / "lake")
    _two_loads(clean_tables, write_tables, lake)
    partition = lake.files("buyers")[0].parent
    temporary = [
        partition / ".0123456789abcdef-0badcafe.parquet.tmp",
        partition / f".0123456789abcdef-0badcafe.parquet.{'ab' * 16}.tmp",
    ]
    kept = [
        partition / "notes.txt",
        partition / "backup.parquet.bak",
        partition / ".hidden.parquet",
        partition / "something.tmp",
        lake.root / "buyers" / ".stray.parquet.tmp",  # not inside a partition folder
    ]
    for path in temporary + kept:
        path.write_bytes(b"x")
    check = check_lake(lake.root)
    assert sorted(check.leftovers) == sorted(lake.relative(p) for p in temporary)
    assert check.ok  # leftovers are harmless until swept

    ingest_directory(_day3(clean_tables, write_tables), lake, DAY3)
    assert not any(p.exists() for p in temporary)
    assert all(p.exists() for p in kept)


def test_copy_on_write_deletes_exactly_the_replaced_parts(clean_tables, write_tables, tmp_path):
    lake = Lake(tmp_path / "lake")
    ingest_directory(write_tables(clean_tables, name="day1"), lake, DAY1)
    first = lake.manifest()
    ingest_directory(write_tables(_correction(clean_tables), name="day2"), lake, DAY2)
    second = lake.manifest()
    gone = set(first.listed()) - set(second.listed())
    assert {p.split("/")[0] for p in gone} == {"invoices", "limits"}
    on_disk = {lake.relative(p) for p in part_files(lake.root)}
    assert on_disk == set(second.listed())
    # the parts describe themselves: the rewrite names the part it replaces
    rewrite, new = second.tables["invoices"]  # the rewrite keeps the original's place
    assert rewrite not in first.listed() and new not in first.listed()
    info = part_info(lake.root / rewrite)
    assert info.replaces in gone and info.load_id == first.sources[info.source["sha256"]]["load_id"]
    assert info.source["sha256"] in first.sources
    (limits,) = second.tables["limits"]
    limits_info = part_info(lake.root / limits)
    assert limits_info.retires == tuple(first.tables["limits"])
    assert {s["sha256"] for s in limits_info.retired_sources} <= set(first.sources)
    assert second.parts[limits]["rows"] == 2


def test_a_crash_before_publishing_gives_the_new_parts_their_temporary_names_back(
    clean_tables, write_tables, tmp_path, monkeypatch
):
    lake = Lake(tmp_path / "lake")
    ingest_directory(write_tables(clean_tables, name="day1"), lake, DAY1)
    listed = set(lake.manifest().listed())

    def crash(path, text):
        raise OSError("disk full")

    monkeypatch.setattr(lake_module, "atomic_write_text", crash)
    with pytest.raises(OSError, match="disk full"):
        ingest_directory(write_tables(_correction(clean_tables), name="day2"), lake, DAY2)
    monkeypatch.undo()
    assert {lake.relative(p) for p in part_files(lake.root)} == listed
    assert leftover_files(lake.root)  # swept by the next commit
    assert check_lake(lake.root).ok


# ------------------------------------------------------------------------------ check


def test_check_finds_changed_parts_and_missing_ones(clean_tables, write_tables, tmp_path):
    lake = Lake(tmp_path / "lake")
    _two_loads(clean_tables, write_tables, lake)
    report = check_lake(lake.root)
    assert report.ok and report.verified == report.listed > 0
    assert report.not_recorded == [] and report.lines()[0].endswith(": OK")

    fewer, rebytes, gone = (lake.files(t)[0] for t in ("buyers", "policies", "country_risk"))
    table = pq.read_table(fewer)
    pq.write_table(table.slice(0, 1), fewer)
    pq.write_table(pq.read_table(rebytes), rebytes, compression="gzip")  # same rows
    gone.unlink()

    report = check_lake(lake.root)
    assert not report.ok
    problems = {p.path: p.problem for p in report.damaged}
    assert "rows" in problems[lake.relative(fewer)]
    assert "bytes changed" in problems[lake.relative(rebytes)]
    assert report.missing == [lake.relative(gone)]
    text = "\n".join(report.lines())
    assert lake.relative(gone) in text and lake.relative(fewer) in text
    assert "PROBLEMS FOUND" in text


# ----------------------------------------------------------------- rebuilding the manifest


def test_recovery_sets_aside_a_replaced_part_left_behind(clean_tables, write_tables, tmp_path):
    lake = Lake(tmp_path / "lake")
    ingest_directory(write_tables(clean_tables, name="day1"), lake, DAY1)
    originals = {lake.relative(p): p.read_bytes() for p in part_files(lake.root)}
    ingest_directory(write_tables(_correction(clean_tables), name="day2"), lake, DAY2)
    before = _snapshot(lake)
    # a crash between publishing and deleting would leave the copy-on-write originals behind
    for rel, payload in originals.items():
        (lake.root / rel).write_bytes(payload)
    lake.manifest_path.unlink()

    recovery = recover_lake(lake.root)
    reasons = {s.path: s.reason for s in recovery.set_aside}
    stale = {rel for rel in originals if rel not in lake.manifest().listed()}
    assert set(reasons) == stale and {r.split("/")[0] for r in stale} == {"invoices", "limits"}
    assert all(reason.startswith("replaced by") for reason in reasons.values())
    assert all((recovery.folder / rel).exists() for rel in stale)
    _assert_same_rows(lake, before)
    lines = recovery.lines()
    assert any(line.strip().startswith("invoices: 1 part(s) set aside") for line in lines)
    assert not recovery.warnings


def test_recovery_keeps_only_the_published_write_of_a_load_retried_after_a_crash(
    clean_tables, write_tables, tmp_path, monkeypatch
):
    lake = Lake(tmp_path / "lake")
    ingest_directory(write_tables(clean_tables, name="day1"), lake, DAY1)
    day2 = write_tables(_correction(clean_tables), name="day2")

    def crash(path, text):
        raise OSError("power cut")

    # a hard crash: parts already renamed, manifest never published, no chance to undo
    monkeypatch.setattr(lake_module, "atomic_write_text", crash)
    monkeypatch.setattr(Lake, "_unmaterialise", staticmethod(lambda paths: None))
    with pytest.raises(OSError, match="power cut"):
        ingest_directory(day2, lake, DAY2)
    monkeypatch.undo()
    stale = {lake.relative(p) for p in part_files(lake.root)} - set(lake.manifest().listed())
    assert stale
    ingest_directory(day2, lake, DAY2)  # the retry publishes
    before = _snapshot(lake)
    assert set(check_lake(lake.root).unlisted) == stale
    lake.manifest_path.unlink()

    recovery = recover_lake(lake.root)
    assert {s.path for s in recovery.set_aside} == stale
    assert all("never published" in s.reason for s in recovery.set_aside)
    _assert_same_rows(lake, before)
    assert check_lake(lake.root).ok


def test_recovery_keeps_the_latest_load_of_a_source_loaded_twice(
    clean_tables, write_tables, tmp_path
):
    lake = Lake(tmp_path / "lake")
    ingest_directory(write_tables(clean_tables, name="day1"), lake, DAY1)
    before = _snapshot(lake)
    (part,) = lake.files("buyers")
    info = part_info(part)
    earlier = "00000000000000aa"
    copy = replace(
        info,
        load_id=earlier,
        source={**info.source, "load_id": earlier, "ingested_at": "2000-01-01T00:00:00+00:00"},
    )
    table = pq.read_table(part)
    twin = part.with_name(f"{earlier}-0000abcd.parquet")
    pq.write_table(
        table.replace_schema_metadata({**table.schema.metadata, **copy.metadata()}), twin
    )
    lake.manifest_path.unlink()

    recovery = recover_lake(lake.root)
    (aside,) = recovery.set_aside
    assert aside.path == lake.relative(twin) and "loaded again" in aside.reason
    _assert_same_rows(lake, before)


def test_parts_without_metadata_are_listed_from_their_folder_with_a_warning(
    clean_tables, write_tables, tmp_path
):
    lake = Lake(tmp_path / "lake")
    ingest_directory(write_tables({"buyers": clean_tables["buyers"]}), lake, DAY1)
    before = _snapshot(lake)
    (part,) = lake.files("buyers")
    table = pq.read_table(part)
    plain = {k: v for k, v in table.schema.metadata.items() if not k.startswith(b"lake.")}
    pq.write_table(table.replace_schema_metadata(plain), part)
    assert part_info(part) is None
    lake.manifest_path.unlink()

    recovery = recover_lake(lake.root)
    assert recovery.listed == {"buyers": [lake.relative(part)]}
    assert recovery.sources == 0
    assert any("predate self-describing parts" in w for w in recovery.warnings)
    _assert_same_rows(lake, before)


def test_a_commit_refuses_to_list_a_part_never_written(tmp_path, clean_tables, write_tables):
    lake = Lake(tmp_path / "lake")
    ingest_directory(write_tables({"buyers": clean_tables["buyers"]}), lake, DAY1)
    manifest = lake.manifest()
    ghost = lake.new_part_path("buyers", "2026-11-30", "0123456789abcdef")
    manifest.tables["buyers"].append(lake.relative(ghost))
    with pytest.raises(LakeStateError, match="never written"):
        lake.commit(manifest)
    assert lake.manifest().version == 1
    assert not temp_part_path(ghost).exists()


def test_part_metadata_round_trips():
    info = PartInfo(
        table="invoices",
        load_id="abc",
        load_date="2026-11-30",
        source={"sha256": "f" * 64, "file": "x.csv"},
        load_version=4,
        replaces="invoices/load_date=2026-11-29/abc-1.parquet",
        retires=("a",),
        retired_sources=({"sha256": "e" * 64},),
    )
    assert PartInfo.from_metadata(info.metadata()) == info
    assert PartInfo.from_metadata({b"pandas": b"{}"}) is None
