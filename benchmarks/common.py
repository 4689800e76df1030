"""Shared benchmark plumbing: run each measured step in a fresh process, report its peak RSS."""

from __future__ import annotations

import datetime as dt
import json
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: The generated portfolios end here (the generator's default end date).
END_DATE = dt.date(2026, 11, 30)


def peak_gb() -> float:
    """Peak resident memory of this process so far, in GB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def report_child(step: Callable[[], dict]) -> None:
    """Run `step` in this (child) process and print its result, time and peak as JSON."""
    started = time.perf_counter()
    result = step()
    result.setdefault("seconds", time.perf_counter() - started)
    result["peak_gb"] = peak_gb()
    print(json.dumps(result, default=str))


def run_child(module: str, argv: list[str]) -> dict:
    """Run `python -m module argv` in a fresh interpreter; parse the JSON line it printed last."""
    proc = subprocess.run(
        [sys.executable, "-m", module, *argv],
        cwd=ROOT,
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def build_lake(workdir: Path, buyers: int, months: int, dirty: float = 0.0, seed: int = 42) -> Path:
    """Generate a portfolio and ingest it (set-up, not timed); reuse one already built."""
    from data.generator import GeneratorConfig, generate_portfolio, write_portfolio
    from data.ingest import ingest_directory
    from data.lake import Lake

    src, lake = workdir / "source", workdir / "lake"
    if (lake / "_manifest.json").exists():
        return lake
    config = GeneratorConfig(n_buyers=buyers, months=months, dirty_fraction=dirty, seed=seed)
    write_portfolio(generate_portfolio(config), src, fmt="parquet")
    ingest_directory(src, Lake(lake), END_DATE)
    return lake


def champion_and_lake(workdir: Path, buyers: int, months: int) -> tuple[str, Path, Path]:
    """The set-up the request and workbench benchmarks share (not timed): bench_daily's
    LightGBM champion (MLflow URI, artifacts folder) and the cached generated lake."""
    home = workdir / "daily_champion"
    home.mkdir(parents=True, exist_ok=True)
    print("preparing the champion (shared with bench_daily, not timed)…", flush=True)
    champion = run_child("benchmarks.bench_daily", [f"--child=champion,{home},20000,60"])
    print(f"preparing a {buyers:,}-buyer, {months}-month lake (not timed)…", flush=True)
    lake = build_lake(workdir / f"scale_{buyers}_{months}", buyers, months)
    return champion["uri"], home / "artifacts", lake
