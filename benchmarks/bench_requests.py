"""Benchmark: policyholders' limit requests answered at once, against a 100,000-buyer book.

A policyholder asking for cover on a buyer expects an answer while the order is on the
phone: the system answers within its authority at once (grant, partial grant, decline with
the reason) or places the request in the underwriters' queue. Measured here:

Set-up (not timed, cached under --workdir and shared with bench_daily): a generated
100,000-buyer, 24-month portfolio (the real generator and ingestion), the LightGBM champion
of bench_daily, one daily run of the day (scores published, proposals and automatic
decisions in a fresh SQLite decision store).

Timed, in one process:
1. building the request desk (reads the lake's book and the day's scores once);
2. 1,000 requests on distinct pairs, as a policyholder would send them: four in five on a
   pair already insured (1.1x to 3x its limit), one in five on a buyer the policyholder
   has no limit on yet; each one written to the decision store with its answer (and, for
   an automatic one, the decision and its audit row), like `POST /api/limit-requests`.

Target (2 cores): an automatic decision in <= 200 ms at the 95th percentile.

    uv run python -m benchmarks.bench_requests
    uv run python -m benchmarks.bench_requests --buyers 20000 --requests 300   # quicker
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

from benchmarks.common import END_DATE, ROOT, champion_and_lake, report_child, run_child

TARGET_P95_MS = 200.0


def _settings(lake: Path, uri: str, artifacts: Path, database: Path):
    from flows.settings import Settings

    return dataclasses.replace(
        Settings.from_env(), lake_dir=lake, mlflow_uri=uri, mlflow_artifacts=artifacts,
        drop_dir=None, decision_db_url=f"sqlite:///{database}",
    )  # fmt: skip


def _publish_day(lake: Path, uri: str, artifacts: Path, database: Path) -> dict:
    """The day's daily run: scores, proposals and automatic decisions (set-up, untimed)."""
    from flows.context import RunContext
    from flows.daily import rescore_flow_for

    settings = _settings(lake, uri, artifacts, database)
    result = rescore_flow_for(settings)(RunContext.build(settings, END_DATE))
    return {"limits": result.summary["limits"], "proposals": result.summary["proposals"]}


def _request_mix(pairs, buyers: np.ndarray, policyholders: np.ndarray, n: int, seed: int):
    """`n` requests on distinct pairs: 80 % on insured pairs, 20 % on new ones."""
    rng = np.random.default_rng(seed)
    insured = pairs.sample(n=int(n * 0.8), random_state=seed)
    out = [
        (r.policyholder_id, r.buyer_id, round(max(r.limit_amount, 5_000.0) * rng.uniform(1.1, 3)))
        for r in insured.itertuples()
    ]
    known = set(zip(pairs["policyholder_id"], pairs["buyer_id"], strict=True))
    while len(out) < n:
        pair = (str(rng.choice(policyholders)), str(rng.choice(buyers)))
        if pair not in known:
            known.add(pair)
            out.append((*pair, float(rng.choice([10_000, 25_000, 50_000, 100_000, 250_000]))))
    return out


def _requests(lake: Path, uri: str, artifacts: Path, database: Path, n: int) -> dict:
    """Build the desk, then answer `n` requests one after the other (timed)."""
    from data.decisions import DecisionStore
    from flows.context import RunContext
    from flows.underwriting import RequestDesk

    settings = _settings(lake, uri, artifacts, database)
    ctx = RunContext.build(settings, END_DATE)
    store = DecisionStore(settings.decision_db_url)
    started = time.perf_counter()
    desk = RequestDesk(ctx, store)
    build_s = time.perf_counter() - started
    pairs = desk.pairs.loc[desk.pairs["limit_amount"] > 0].reset_index(drop=True)
    mix = _request_mix(
        pairs, np.array(sorted(desk.buyers)), np.array(sorted(desk.policyholders)), n, seed=11
    )
    latencies, statuses = [], Counter()
    for policyholder, buyer, amount in mix:
        started = time.perf_counter()
        answer = desk.request(policyholder, buyer, amount, requested_by="bench")
        latencies.append(time.perf_counter() - started)
        statuses[answer.status] += 1
    ms = np.array(latencies) * 1e3
    return {
        "build_s": build_s,
        "pairs": len(desk.pairs),
        "buyers": len(desk.buyers),
        "requests": len(ms),
        "p50_ms": float(np.percentile(ms, 50)),
        "p95_ms": float(np.percentile(ms, 95)),
        "p99_ms": float(np.percentile(ms, 99)),
        "max_ms": float(ms.max()),
        "mean_ms": float(ms.mean()),
        "statuses": dict(statuses),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--buyers", type=int, default=100_000, help="buyers in the book")
    parser.add_argument("--months", type=int, default=24, help="months of history")
    parser.add_argument("--requests", type=int, default=1_000, help="requests answered")
    parser.add_argument("--workdir", type=Path, default=ROOT / "data" / "bench")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, lake, uri, artifacts, database, *rest = args.child.split(",")
        paths = (Path(lake), uri, Path(artifacts), Path(database))
        if mode == "publish":
            report_child(lambda: _publish_day(*paths))
        else:
            report_child(lambda: _requests(*paths, int(rest[0])))
        return

    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    uri, artifacts, lake = champion_and_lake(args.workdir, args.buyers, args.months)
    with tempfile.TemporaryDirectory(prefix="bench-requests-") as tmp:
        os.environ["PREFECT_HOME"] = str(Path(tmp) / "prefect")
        database = Path(tmp) / "decisions.db"
        child = f"{lake},{uri},{artifacts},{database}"
        print(f"the daily run of {END_DATE} (scores, proposals; not timed)…", flush=True)
        day = run_child("benchmarks.bench_requests", [f"--child=publish,{child}"])
        print(f"answering {args.requests:,} requests…", flush=True)
        r = run_child("benchmarks.bench_requests", [f"--child=requests,{child},{args.requests}"])
    statuses = ", ".join(f"{k} {v:,}" for k, v in sorted(r["statuses"].items()))
    met = r["p95_ms"] <= TARGET_P95_MS
    print(
        f"\n{r['buyers']:,} buyers, {r['pairs']:,} pairs in the book ({day['limits']:,} limits "
        f"rescored, {day['proposals']:,} proposals that day)\n"
        f"  desk built in {r['build_s']:.1f} s (once per process)\n"
        f"  {r['requests']:,} requests: p50 {r['p50_ms']:.0f} ms, p95 {r['p95_ms']:.0f} ms, "
        f"p99 {r['p99_ms']:.0f} ms, max {r['max_ms']:.0f} ms, mean {r['mean_ms']:.0f} ms; "
        f"peak {r['peak_gb']:.2f} GB\n"
        f"  answers: {statuses}\n"
        f"  target p95 <= {TARGET_P95_MS:.0f} ms: {'met' if met else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
