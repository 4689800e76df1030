"""Daily drops: nothing lost, nothing from the future, and day-by-day ingestion ends where one
load of the whole portfolio does."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from data.contracts import CONTRACTS
from data.drops import BASE, DropPlan, split_daily_drops
from data.generator import GeneratorConfig, generate_portfolio, write_portfolio
from data.ingest import ingest_directory
from data.lake import Lake
from data.reading import read_source

END = dt.date(2026, 11, 30)
START = END - dt.timedelta(days=8)
DATED = ("financials", "invoices", "events", "limits")
REFERENCE = ("buyers", "policies", "country_risk")


def _config(**kw) -> GeneratorConfig:
    return GeneratorConfig(n_buyers=300, months=40, end_date=END, seed=7, **kw)


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("portfolio")
    write_portfolio(generate_portfolio(_config()), folder)
    return folder


@pytest.fixture(scope="module")
def plan(source: Path, tmp_path_factory) -> DropPlan:
    return split_daily_drops(source, START, END, tmp_path_factory.mktemp("drops"))


def _tables(folder: Path) -> dict[str, pd.DataFrame]:
    """The table files of a folder, read the way ingestion reads them."""
    return {
        t: read_source(p).frame
        for t in CONTRACTS
        for p in (folder / f"{t}.parquet", folder / f"{t}.csv")
        if p.exists()
    }


def _keys(frame: pd.DataFrame, table: str) -> list[tuple]:
    key = list(CONTRACTS[table].key)
    return list(frame[key].astype("str").itertuples(index=False, name=None))


def _dates(values: pd.Series) -> pd.Series:
    if values.dtype.kind == "M":
        return values
    return pd.to_datetime(values.astype("str").str.strip(), format="ISO8601", errors="coerce")


# ----------------------------------------------------------------------- nothing lost


def test_every_source_key_is_in_exactly_one_folder_but_paid_invoices(source, plan):
    src = _tables(source)
    loads = [(day, _tables(folder)) for day, folder in plan.loads]
    assert set(loads[0][1]) == set(CONTRACTS)  # the base has every table
    for table, frame in src.items():
        seen = Counter(
            k for _, tables in loads if table in tables for k in _keys(tables[table], table)
        )
        assert set(seen) == set(_keys(frame, table)), table
        twice = {k for k, n in seen.items() if n > 1}
        if table != "invoices":
            assert not twice, table
            continue
        assert max(seen.values()) == 2
        # the open→paid pair: open (no paid_date) first, paid on a later day with its date
        versions = pd.concat(
            [
                tables["invoices"].assign(_load=pd.Timestamp(day))
                for day, tables in loads
                if "invoices" in tables
            ]
        )
        versions = versions[versions["invoice_id"].isin({k[0] for k in twice})]
        first = versions.drop_duplicates("invoice_id", keep="first").set_index("invoice_id")
        last = versions.drop_duplicates("invoice_id", keep="last").set_index("invoice_id")
        last = last.loc[first.index]
        assert first["paid_date"].isna().all()
        assert (last["paid_date"] == last["_load"]).all()
        assert (first["_load"] < last["_load"]).all()
        assert len(twice) == plan.two_version_rows["invoices"] > 0
    written = Counter()
    for _, tables in loads:
        written.update({t: len(f) for t, f in tables.items()})
    for table, frame in src.items():
        assert written[table] == len(frame) + plan.two_version_rows[table], table
        assert plan.rows_after_end[table] == plan.undated_rows[table] == 0


def test_base_holds_reference_tables_in_full_and_open_invoices_blanked(source, plan):
    src, base = _tables(source), _tables(plan.base_dir)
    for table in REFERENCE:
        pd.testing.assert_frame_equal(base[table], src[table])
    inv = src["invoices"].set_index("invoice_id")
    start = pd.Timestamp(START)
    known = inv[inv["issue_date"] <= start]
    b = base["invoices"].set_index("invoice_id")
    assert set(b.index) == set(known.index)
    paid_later = known["paid_date"] > start
    assert b.loc[paid_later[paid_later].index, "paid_date"].isna().all()
    pd.testing.assert_series_equal(
        b.loc[paid_later[~paid_later].index, "paid_date"],
        known.loc[~paid_later, "paid_date"],
        check_names=False,
    )


# ------------------------------------------------------------------ nothing from the future


def test_no_folder_holds_a_fact_known_after_its_day(plan):
    assert [d.day for d in plan.days] == [
        START + dt.timedelta(days=i) for i in range(1, (END - START).days + 1)
    ]
    for day, folder in plan.loads:
        tables = _tables(folder)
        if folder != plan.base_dir:
            assert set(tables) <= set(DATED)  # reference tables only in the base
            assert all(len(f) for f in tables.values())  # no empty file on a day
        for table, frame in tables.items():
            for col in CONTRACTS[table].known_dates:
                assert (_dates(frame[col]).dropna() <= pd.Timestamp(day)).all(), (day, table, col)
            if folder == plan.base_dir or not CONTRACTS[table].known_dates:
                continue
            # ... and on a day only what became known that day
            known_on = pd.concat([_dates(frame[c]) for c in CONTRACTS[table].known_dates], axis=1)
            assert (known_on.max(axis=1) == pd.Timestamp(day)).all(), (day, table)


# ----------------------------------------------------------- daily ingestion == one ingestion


def _ingest_daily(plan: DropPlan, lake: Lake) -> int:
    quarantined = 0
    for day, folder in plan.loads:
        reports = ingest_directory(folder, lake, day)
        assert {r.status for r in reports} == {"ingested"}, [r.message for r in reports]
        quarantined += sum(r.quarantined for r in reports)
    return quarantined


def _current(lake: Lake, table: str) -> pd.DataFrame:
    frame = lake.read(table)
    key = list(CONTRACTS[table].key)
    return frame[CONTRACTS[table].columns].sort_values(key, ignore_index=True)


def test_ingesting_the_drops_day_by_day_gives_the_one_load_result(source, plan, tmp_path):
    daily, once = Lake(tmp_path / "daily"), Lake(tmp_path / "once")
    daily_q = _ingest_daily(plan, daily)
    once_q = sum(r.quarantined for r in ingest_directory(source, once, END))
    assert daily_q == once_q == 0
    for table in CONTRACTS:
        pd.testing.assert_frame_equal(_current(daily, table), _current(once, table), obj=table)
    # the open versions were superseded by their paid versions, not kept beside them
    sources = daily.manifest().sources.values()
    superseded = sum(s["superseded"] for s in sources if s["table"] == "invoices")
    assert superseded == plan.two_version_rows["invoices"]


# ---------------------------------------------------------------------- days without data


def test_a_day_without_data_gets_no_folder_and_is_listed(clean_tables, write_tables, tmp_path):
    # The hand-built book: invoices I2 (open) and I3 (paid the same day) on 2025-02-01 only.
    src = write_tables(clean_tables)
    out = tmp_path / "drops"
    plan = split_daily_drops(src, dt.date(2025, 1, 31), dt.date(2025, 2, 4), out, fmt="csv")
    assert [(d.day, d.rows) for d in plan.days] == [(dt.date(2025, 2, 1), {"invoices": 2})]
    assert plan.days_without_data == (dt.date(2025, 2, 2), dt.date(2025, 2, 3), dt.date(2025, 2, 4))
    assert sorted(p.name for p in out.iterdir()) == ["2025-02-01", BASE]
    day = _tables(out / "2025-02-01")["invoices"].set_index("invoice_id")
    assert day.loc["I3", "paid_date"] == "2025-02-01" and pd.isna(day.loc["I2", "paid_date"])
    base = _tables(out / BASE)
    assert base["invoices"]["invoice_id"].tolist() == ["I1"]  # issued 2025-01-10, paid 03-20
    assert pd.isna(base["invoices"]["paid_date"].iloc[0])
    assert len(base["events"]) == len(base["financials"]) == 0  # all dated later
    assert len(base["limits"]) == 1  # P1/B1 decided 2024-03-01
    # Facts known only after `end` are in no folder, and counted; I1's open version is written.
    assert plan.two_version_rows["invoices"] == 1
    assert plan.rows_after_end == {
        "buyers": 0, "policies": 0, "country_risk": 0, "financials": 2,
        "invoices": 1, "events": 4, "limits": 1,
    }  # fmt: skip


def test_a_rerun_leaves_no_stale_drop(clean_tables, write_tables, tmp_path):
    src, out = write_tables(clean_tables), tmp_path / "drops"
    split_daily_drops(src, dt.date(2025, 1, 31), dt.date(2025, 3, 20), out, fmt="csv")
    assert (out / "2025-03-20" / "invoices.csv").exists()
    plan = split_daily_drops(src, dt.date(2025, 1, 31), dt.date(2025, 3, 19), out)
    assert not list(out.rglob("*.csv"))
    assert not (out / "2025-02-01" / "invoices.csv").exists()
    assert (out / "2025-02-01" / "invoices.parquet").exists()
    assert dt.date(2025, 2, 2) in plan.days_without_data and not (out / "2025-02-02").exists()


def test_bad_arguments_are_refused(clean_tables, write_tables, tmp_path):
    src = write_tables(clean_tables)
    with pytest.raises(ValueError, match="format"):
        split_daily_drops(src, dt.date(2025, 1, 1), dt.date(2025, 2, 1), tmp_path / "o", "xlsx")
    with pytest.raises(ValueError, match="after start"):
        split_daily_drops(src, dt.date(2025, 2, 1), dt.date(2025, 2, 1), tmp_path / "o")
    with pytest.raises(FileNotFoundError):
        split_daily_drops(tmp_path / "nowhere", dt.date(2025, 1, 1), dt.date(2025, 2, 1), tmp_path)


# ----------------------------------------------------------------------------- dirty rows


def test_dirty_rows_are_kept_and_ingest_to_the_same_lake(tmp_path):
    src = tmp_path / "dirty"
    portfolio = generate_portfolio(_config(dirty_fraction=0.05))
    write_portfolio(portfolio, src)
    start = END - dt.timedelta(days=20)  # with this seed, a twin invoice pair falls in the days
    plan = split_daily_drops(src, start, END, tmp_path / "drops")
    source_tables = _tables(src)
    loads = [(day, _tables(folder)) for day, folder in plan.loads]
    for table, frame in source_tables.items():
        written = sum(len(t[table]) for _, t in loads if table in t)
        assert written == len(frame) + plan.two_version_rows[table], table
        keys = {k for _, t in loads if table in t for k in _keys(t[table], table)}
        assert keys == set(_keys(frame, table)), table
    base = loads[0][1]
    for table in DATED:  # rows that cannot be dated are in the base
        frame = base[table]
        unusable = pd.Series(False, index=frame.index)
        for col in CONTRACTS[table].known_dates:
            present = frame[col].notna() & frame[col].astype("str").str.strip().ne("")
            if not CONTRACTS[table].schema.columns[col].nullable:
                present[:] = True
            unusable |= _dates(frame[col]).isna() & present
        assert unusable.sum() == plan.undated_rows[table], table
    assert plan.undated_rows["invoices"] > 0
    # twin invoice ids travel together, so ingestion still sees both copies side by side
    twins = portfolio.truth["dirty_rows"].query("corruption == 'duplicate_invoice_id'")
    twin_ids = set(source_tables["invoices"]["invoice_id"].iloc[twins["row_number"] - 1])
    on_days = 0
    for day, tables in loads:
        if "invoices" in tables:
            ids = tables["invoices"]["invoice_id"]
            counts = ids[ids.isin(twin_ids)].value_counts()
            assert (counts >= 2).all(), day
            on_days += counts.sum() if day > start else 0
    assert on_days >= 2
    # The lake ends the same; a bad invoice open at one load and paid at a later one is
    # quarantined once per delivery, so daily loads may quarantine a few rows more.
    daily, once = Lake(tmp_path / "daily"), Lake(tmp_path / "once")
    daily_q = _ingest_daily(plan, daily)
    once_q = sum(r.quarantined for r in ingest_directory(src, once, END))
    assert once_q <= daily_q <= once_q + plan.two_version_rows["invoices"]
    for table in CONTRACTS:
        pd.testing.assert_frame_equal(_current(daily, table), _current(once, table), obj=table)
