"""Compare the published daily outputs of two lakes, date by date and table by table.

Why: a refactoring must not change what underwriters and operations see. Run the demo with
the old code, keep its lake, run it again with the new code, then

    python -m benchmarks.compare_daily_outputs OLD_LAKE NEW_LAKE

prints, per date and table, whether the two published tables are equal (same rows, columns,
types and values), and the largest numeric difference where they are not. Exits 1 when any
table differs or is missing on one side.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from data.daily_store import DailyStore

TABLES = ("scores", "recommendations", "alerts", "psi", "migration", "backtest")


def compare_tables(old: pd.DataFrame, new: pd.DataFrame) -> str:
    """'equal', or what differs (shape, columns, types, values with the largest gap)."""
    if old.shape != new.shape:
        return f"shape {old.shape} vs {new.shape}"
    if list(old.columns) != list(new.columns):
        return f"columns differ: {sorted(set(old.columns) ^ set(new.columns))}"
    try:
        pd.testing.assert_frame_equal(old, new, check_exact=True)
        return "equal"
    except AssertionError:
        pass
    differing = []
    for column in old.columns:
        a, b = old[column], new[column]
        if a.equals(b):
            continue
        if pd.api.types.is_numeric_dtype(a) and pd.api.types.is_numeric_dtype(b):
            gap = np.nanmax(np.abs(a.to_numpy("float64") - b.to_numpy("float64")))
            differing.append(f"{column} (max |diff| {gap:.3g})")
        else:
            differing.append(f"{column} ({int((a.astype(str) != b.astype(str)).sum())} rows)")
    return "differs: " + ", ".join(differing)


def compare_stores(old_lake: Path, new_lake: Path) -> list[tuple[str, str, str]]:
    """(date, table, verdict) for every date published in either lake."""
    old, new = DailyStore(old_lake), DailyStore(new_lake)
    rows = []
    for date in sorted(set(old.dates()) | set(new.dates())):
        for table in TABLES:
            name = f"{table}.parquet"
            has_old, has_new = old.has(date, name), new.has(date, name)
            if not has_old and not has_new:
                continue
            if has_old != has_new:
                rows.append((date, table, "only in " + ("old" if has_old else "new")))
                continue
            rows.append((date, table, compare_tables(old.read(date, table), new.read(date, table))))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old_lake", type=Path)
    parser.add_argument("new_lake", type=Path)
    args = parser.parse_args(argv)
    rows = compare_stores(args.old_lake, args.new_lake)
    width = max((len(t) for _, t, _ in rows), default=5)
    for date, table, verdict in rows:
        print(f"{date}  {table:<{width}}  {verdict}")
    equal = sum(v == "equal" for *_, v in rows)
    print(f"{equal} of {len(rows)} published tables equal")
    return 0 if rows and equal == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
