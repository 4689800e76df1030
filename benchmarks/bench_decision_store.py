"""Benchmark: the decision store's bulk paths on 100,000 proposals, on SQLite and PostgreSQL.

A daily run over a million buyers may publish hundreds of thousands of proposals, and the
system decides most of them alone. Measured, on a fresh database per backend (SQLite file in
WAL mode; PostgreSQL 16 started by pgserver on a Unix socket):

1. `publish_proposals` of a day (first run);
2. the same day published again (a rerun: replaces the open proposals);
3. `open_proposals` of the day (the whole queue as a DataFrame);
4. `record_automatic` for every proposal of the day (one transaction, audit rows included);
5. `mark_applied` for all those decisions.

    uv run python -m benchmarks.bench_decision_store                  # 100,000 rows, both
    uv run python -m benchmarks.bench_decision_store --rows 20000 --backend sqlite
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from data.decisions import DecisionStore

AS_OF = dt.date(2026, 11, 30)


def proposals(rows: int, seed: int = 7) -> pd.DataFrame:
    """A day's proposals shaped like the limit engine's, ~10 pairs per policyholder."""
    rng = np.random.default_rng(seed)
    limit = rng.choice([10_000.0, 50_000.0, 250_000.0, 1_000_000.0], rows)
    recommended = np.round(limit * rng.uniform(0.5, 1.5, rows), 2)
    return pd.DataFrame(
        {
            "policyholder_id": [f"P{i // 10:06d}" for i in range(rows)],
            "buyer_id": [f"B{i:07d}" for i in range(rows)],
            "action": rng.choice(["increase", "decrease", "maintain", "cancel", "refer"], rows),
            "proposed_action": "maintain",
            "limit_amount": limit,
            "recommended_amount": recommended,
            "requested_amount": np.where(rng.random(rows) < 0.05, limit * 2, np.nan),
            "exposure": np.round(limit * rng.random(rows), 2),
            "grade": rng.integers(1, 10, rows),
            "previous_grade": pd.array(rng.integers(1, 10, rows), dtype="Int64"),
            "pd": rng.uniform(0.0005, 0.3, rows),
            "reason_codes": "OVER_CAPACITY|STEP_CAPPED",
            "explanation": "aggregate cover exceeds the buyer's capacity",
            "expected_loss_before": np.round(limit * 0.01, 2),
            "expected_loss_after": np.round(recommended * 0.01, 2),
            "priority": np.arange(1, rows + 1),
            "human_required": rng.random(rows) < 0.1,
            "automatic_rule": "small_change",
            "deadline": pd.Timestamp(AS_OF + dt.timedelta(days=5)),
            "new_today": True,
            "model_version": "buyer-pd/3",
            "policy_version": "2026.11",
        }
    )


def timed(label: str, step: Callable[[], Any], results: dict[str, float]) -> Any:
    started = time.perf_counter()
    value = step()
    results[label] = time.perf_counter() - started
    return value


def run(url: str, rows: int) -> dict[str, float]:
    frame = proposals(rows)
    results: dict[str, float] = {}
    store = DecisionStore(url)
    store.upgrade()
    try:
        timed("publish", lambda: store.publish_proposals(AS_OF, frame), results)
        published = timed("publish_rerun", lambda: store.publish_proposals(AS_OF, frame), results)
        queue = timed("open_proposals", lambda: store.open_proposals(as_of=AS_OF), results)
        assert len(queue) == rows
        automatic = pd.DataFrame(
            {
                "proposal_id": published["id"],
                "decided_action": published["action"],
                "decided_amount": published["recommended_amount"],
                "rule": "small_change",
                "effective_date": AS_OF + dt.timedelta(days=30),
                "notice_days": 30,
            }
        )
        decided = timed(
            "record_automatic", lambda: store.record_automatic(AS_OF, automatic), results
        )
        timed("mark_applied", lambda: store.mark_applied(decided["decision_id"]), results)
        assert store.open_proposals(as_of=AS_OF).empty
    finally:
        store.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-decisions-") as work:
        folder = Path(work)
        if args.backend in ("sqlite", "both"):
            report("sqlite", run(f"sqlite:///{folder / 'decisions.db'}", args.rows), args.rows)
        if args.backend in ("postgres", "both"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                import pgserver

                server = pgserver.get_server(folder / "pg", cleanup_mode="stop")
            try:
                url = server.get_uri().replace("postgresql://", "postgresql+psycopg://", 1)
                report("postgres", run(url, args.rows), args.rows)
            finally:
                server.cleanup()


def report(backend: str, results: dict[str, float], rows: int) -> None:
    for step, seconds in results.items():
        print(f"{backend:9} {step:17} {rows:>9,} rows {seconds:7.2f} s {rows / seconds:>10,.0f}/s")


if __name__ == "__main__":
    main()
