"""Benchmark: point-in-time features from a 24-month lake.

Cases (issue 3), each in a fresh process so time and peak memory are its own:
- one as-of date for 1,000,000 buyers (~24M invoices): target <= 60 s and <= 8 GB;
- 24 monthly as-of dates for 100,000 buyers: target <= 120 s.
Reading the lake is timed apart from the feature computation.

    uv run python -m benchmarks.bench_features            # both cases
    uv run python -m benchmarks.bench_features --buyers-one 100000   # smaller try-out
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

from benchmarks.common import END_DATE, ROOT, build_lake, report_child, run_child


def _case(lake: Path, n_dates: int) -> dict:
    from data.lake import Lake
    from features.snapshot import build_snapshots
    from features.training import monthly_as_of_dates
    from flows.features import FEATURE_INPUTS

    started = time.perf_counter()
    tables = Lake(lake).read_tables(FEATURE_INPUTS)
    read_s = time.perf_counter() - started
    end = pd.Timestamp(END_DATE)
    dates = monthly_as_of_dates(
        end - pd.DateOffset(months=n_dates - 1) - pd.offsets.MonthEnd(1), end
    )
    dates = dates[-n_dates:]
    started = time.perf_counter()
    frame = build_snapshots(tables, dates)
    features_s = time.perf_counter() - started
    return {
        "read_s": read_s,
        "features_s": features_s,
        "seconds": read_s + features_s,
        "dates": len(dates),
        "rows": len(frame),
        "invoices": len(tables["invoices"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--buyers-one", type=int, default=1_000_000, help="buyers, one-date case")
    parser.add_argument("--buyers-many", type=int, default=100_000, help="buyers, 24-date case")
    parser.add_argument("--dates", type=int, default=24)
    parser.add_argument("--months", type=int, default=24, help="months of history in the lake")
    parser.add_argument("--workdir", type=Path, default=ROOT / "data" / "bench")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        lake, n_dates = args.case.split(",")
        report_child(lambda: _case(Path(lake), int(n_dates)))
        return

    cases = [
        ("one date", args.buyers_one, 1, (60.0, 8.0)),
        (f"{args.dates} dates", args.buyers_many, args.dates, (120.0, None)),
    ]
    for label, buyers, n_dates, (max_s, max_gb) in cases:
        print(f"preparing a {buyers:,}-buyer, {args.months}-month lake (not timed)…", flush=True)
        lake = build_lake(args.workdir / f"features_{buyers}", buyers, args.months)
        r = run_child("benchmarks.bench_features", [f"--case={lake},{n_dates}"])
        rate = r["rows"] / r["features_s"]
        print(
            f"{label:9s} {buyers:>9,} buyers x {r['dates']:>2} dates = {r['rows']:>10,} rows "
            f"from {r['invoices']:,} invoices\n"
            f"          read lake {r['read_s']:6.1f} s | features {r['features_s']:6.1f} s "
            f"({rate:,.0f} rows/s) | peak {r['peak_gb']:.2f} GB"
        )
        met = r["seconds"] <= max_s and (max_gb is None or r["peak_gb"] <= max_gb)
        limit = f"<= {max_s:.0f} s" + (f" and <= {max_gb:.0f} GB" if max_gb else "")
        print(f"          target {limit} (read + features): {'met' if met else 'MISSED'}")


if __name__ == "__main__":
    main()
