"""Benchmark: generate a large portfolio, then ingest it into a fresh lake.

Each step runs in its own Python process, so its wall time and peak memory (max RSS) are
its own. Targets on 2 cores (issue 2): generation <= 10 min, ingestion <= 5 min, each
under 12 GB peak.

    uv run python -m benchmarks.bench_generate_ingest --buyers 1000000 --months 24
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from benchmarks.common import END_DATE, ROOT, report_child, run_child

TARGETS = {"generate": (600.0, 12.0), "ingest": (300.0, 12.0)}


def step_generate(out: Path, buyers: int, months: int, dirty: float) -> dict:
    from data.generator import GeneratorConfig, generate_portfolio, write_portfolio

    config = GeneratorConfig(n_buyers=buyers, months=months, dirty_fraction=dirty)
    portfolio = generate_portfolio(config)
    write_portfolio(portfolio, out, fmt="parquet")
    size_mb = sum(f.stat().st_size for f in out.rglob("*.parquet")) / 1024**2
    return {"rows": {k: len(v) for k, v in portfolio.tables.items()}, "size_mb": size_mb}


def step_ingest(src: Path, lake: Path) -> dict:
    from data.ingest import ingest_directory
    from data.lake import Lake

    reports = ingest_directory(src, Lake(lake), END_DATE)
    return {
        "rows": {r.table: r.rows_read for r in reports},
        "accepted": sum(r.accepted for r in reports),
        "quarantined": sum(r.quarantined for r in reports),
    }


def _child(step: str, args: argparse.Namespace) -> None:
    src, lake = args.workdir / "source", args.workdir / "lake"
    if step == "generate":
        report_child(lambda: step_generate(src, args.buyers, args.months, args.dirty))
    else:
        report_child(lambda: step_ingest(src, lake))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--buyers", type=int, default=1_000_000)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--dirty", type=float, default=0.001, help="bad-row fraction to inject")
    parser.add_argument("--workdir", type=Path, default=ROOT / "data" / "bench")
    parser.add_argument("--keep", action="store_true", help="keep the generated files and lake")
    parser.add_argument(
        "--reuse", action="store_true", help="reuse a portfolio kept by --keep (times ingest only)"
    )
    parser.add_argument("--step", choices=["generate", "ingest"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:
        _child(args.step, args)
        return

    argv = [
        f"--buyers={args.buyers}",
        f"--months={args.months}",
        f"--dirty={args.dirty}",
        f"--workdir={args.workdir}",
    ]
    reuse = args.reuse and (args.workdir / "source" / "buyers.parquet").exists()
    shutil.rmtree(args.workdir / "lake" if reuse else args.workdir, ignore_errors=True)
    print(f"benchmark: {args.buyers:,} buyers x {args.months} months, dirty fraction {args.dirty}")
    results = {}
    for step in ("ingest",) if reuse else ("generate", "ingest"):
        r = results[step] = run_child("benchmarks.bench_generate_ingest", [*argv, "--step", step])
        invoices = r["rows"].get("invoices", 0)
        print(
            f"{step:9s} {r['seconds']:8.1f} s   peak {r['peak_gb']:5.2f} GB   "
            f"{invoices / r['seconds']:>12,.0f} invoices/s"
        )
        print("          rows: " + ", ".join(f"{k} {v:,}" for k, v in r["rows"].items()))
    print(
        f"          files written: {results['generate']['size_mb']:,.0f} MB; "
        f"accepted {results['ingest']['accepted']:,}, quarantined {results['ingest']['quarantined']:,}"
    )
    for step, (max_s, max_gb) in TARGETS.items():
        r = results[step]
        met = r["seconds"] <= max_s and r["peak_gb"] < max_gb
        print(
            f"target {step}: <= {max_s:.0f} s and < {max_gb:.0f} GB -> {'met' if met else 'MISSED'}"
        )
    if not args.keep:
        shutil.rmtree(args.workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
