"""Shared fixtures: a tiny hand-built valid book, written as raw text like a CSV source gives.

The test session is isolated from the developer's machine before anything imports Prefect
or MLflow: Prefect's home (its database, result cache and logs) and MLflow's default store
point into a temporary folder, removed at the end; the tests never touch `~/.prefect`,
`./mlruns` or `data/`. Telemetry is off through the `flows` package.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

_SESSION_HOME = Path(tempfile.mkdtemp(prefix="solvency-tests-"))
os.environ["PREFECT_HOME"] = str(_SESSION_HOME / "prefect")
os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{_SESSION_HOME}/mlflow/mlflow.db"
os.environ["SOLVENCY_MLFLOW_ARTIFACTS"] = str(_SESSION_HOME / "mlflow" / "artifacts")
os.environ["SOLVENCY_DECISION_DB"] = f"sqlite:///{_SESSION_HOME}/decisions.db"
os.environ.pop("SOLVENCY_CONFIG", None)

import pandas as pd  # noqa: E402
import pytest  # noqa: E402

import flows  # noqa: E402,F401  (sets the telemetry defaults)

pytest_plugins = ["tests.db_fixtures", "tests.book_fixtures", "tests.web_fixtures"]


def pytest_sessionfinish(session, exitstatus) -> None:
    """Stop Prefect's temporary server while the output streams are still open (at exit its
    log line would hit a closed capture stream), then remove the session's folder."""
    from flows.runtime import stop_local_prefect_api

    stop_local_prefect_api()
    shutil.rmtree(_SESSION_HOME, ignore_errors=True)


def _frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows).astype("str").replace({"None": ""})


@pytest.fixture
def clean_tables() -> dict[str, pd.DataFrame]:
    """One valid row set per table (as text), consistent across tables."""
    return {
        "buyers": _frame(
            [
                {
                    "buyer_id": "B1",
                    "name": "Alpha GmbH",
                    "country": "DE",
                    "sector": "C",
                    "legal_form": "private_limited",
                    "incorporation_date": "2001-05-17",
                },
                {
                    "buyer_id": "B2",
                    "name": "Beta SA",
                    "country": "FR",
                    "sector": "G",
                    "legal_form": "public_limited",
                    "incorporation_date": None,
                },
                {
                    "buyer_id": "B3",
                    "name": "Gamma sp. z o.o.",
                    "country": "PL",
                    "sector": "F",
                    "legal_form": None,
                    "incorporation_date": "2019-01-02",
                },
            ]
        ),
        "policies": _frame(
            [
                {
                    "policyholder_id": "P1",
                    "scheme": "first_euro",
                    "indemnity_pct": "90",
                    "claim_waiting_days": "120",
                    "discretionary_limit": "0",
                    "aggregate_first_loss": None,
                },
                {
                    "policyholder_id": "P2",
                    "scheme": "excess_of_loss",
                    "indemnity_pct": "85",
                    "claim_waiting_days": "90",
                    "discretionary_limit": "50000",
                    "aggregate_first_loss": "100000",
                },
            ]
        ),
        "country_risk": _frame(
            [
                {
                    "country": "DE",
                    "political_risk_class": "0",
                    "gdp_growth": "0.012",
                    "inflation": "0.021",
                },
                {
                    "country": "FR",
                    "political_risk_class": "0",
                    "gdp_growth": None,
                    "inflation": None,
                },
                {
                    "country": "PL",
                    "political_risk_class": "2",
                    "gdp_growth": "0.03",
                    "inflation": "0.04",
                },
            ]
        ),
        "financials": _frame(
            [
                {
                    "buyer_id": "B1",
                    "period_end": "2024-12-31",
                    "filing_date": "2025-06-30",
                    "currency": "EUR",
                    "revenue": "1000000",
                    "operating_income": "80000",
                    "net_income": "50000",
                    "total_assets": "800000",
                    "current_assets": "400000",
                    "cash": "50000",
                    "receivables": "150000",
                    "inventory": "100000",
                    "total_liabilities": "500000",
                    "current_liabilities": "250000",
                    "long_term_debt": "200000",
                    "equity": "300000",
                    "retained_earnings": "120000",
                    "interest_expense": "10000",
                },
                {
                    "buyer_id": "B2",
                    "period_end": "2024-12-31",
                    "filing_date": "2025-09-15",
                    "currency": "EUR",
                    "revenue": None,
                    "operating_income": None,
                    "net_income": None,
                    "total_assets": "200000",
                    "current_assets": "90000",
                    "cash": "10000",
                    "receivables": "40000",
                    "inventory": "30000",
                    "total_liabilities": "150000",
                    "current_liabilities": "100000",
                    "long_term_debt": "40000",
                    "equity": "50000",
                    "retained_earnings": "10000",
                    "interest_expense": None,
                },
            ]
        ),
        "invoices": _frame(
            [
                {
                    "invoice_id": "I1",
                    "buyer_id": "B1",
                    "policyholder_id": "P1",
                    "issue_date": "2025-01-10",
                    "due_date": "2025-03-11",
                    "paid_date": "2025-03-20",
                    "amount": "12000.50",
                    "currency": "EUR",
                },
                {
                    "invoice_id": "I2",
                    "buyer_id": "B2",
                    "policyholder_id": "P2",
                    "issue_date": "2025-02-01",
                    "due_date": "2025-03-03",
                    "paid_date": None,
                    "amount": "5000",
                    "currency": "EUR",
                },
                {
                    "invoice_id": "I3",
                    "buyer_id": "B3",
                    "policyholder_id": "P1",
                    "issue_date": "2025-02-01",
                    "due_date": "2025-02-01",
                    "paid_date": "2025-02-01",
                    "amount": "1",
                    "currency": "PLN",
                },
            ]
        ),
        "events": _frame(
            [
                {
                    "buyer_id": "B2",
                    "event_date": "2025-05-02",
                    "event_type": "overdue_notification",
                    "policyholder_id": "P2",
                    "amount": "5000",
                },
                {
                    "buyer_id": "B2",
                    "event_date": "2025-08-01",
                    "event_type": "claim_filed",
                    "policyholder_id": "P2",
                    "amount": "5000",
                },
                {
                    "buyer_id": "B2",
                    "event_date": "2025-08-01",
                    "event_type": "claim_filed",
                    "policyholder_id": "P1",
                    "amount": "700",
                },
                {
                    "buyer_id": "B2",
                    "event_date": "2025-09-01",
                    "event_type": "insolvency",
                    "policyholder_id": None,
                    "amount": None,
                },
            ]
        ),
        "limits": _frame(
            [
                {
                    "policyholder_id": "P1",
                    "buyer_id": "B1",
                    "limit_amount": "50000",
                    "requested_amount": None,
                    "exposure": "12000.5",
                    "decision_date": "2024-03-01",
                },
                {
                    "policyholder_id": "P2",
                    "buyer_id": "B2",
                    "limit_amount": "0",
                    "requested_amount": "20000",
                    "exposure": "5000",
                    "decision_date": "2025-09-02",
                },
            ]
        ),
    }


@pytest.fixture
def write_tables(tmp_path):
    """Write {table: frame} as CSV files into a fresh folder and return it."""

    def _write(tables: dict[str, pd.DataFrame], name: str = "src", fmt: str = "csv"):
        folder = tmp_path / name
        folder.mkdir(exist_ok=True)
        for table, frame in tables.items():
            if fmt == "csv":
                frame.to_csv(folder / f"{table}.csv", index=False)
            else:
                frame.to_parquet(folder / f"{table}.parquet", index=False)
        return folder

    return _write
