"""Contracts of the published daily outputs: what underwriters, reports and the next run read.

One pandera schema per table of the per-date output store (`data/daily_store.py`): its
columns in order, types, nullability and allowed values. The store checks every table
against its contract when a run publishes it, so a code change that drops a column, turns
grades into floats or invents an action fails the run before anything becomes visible —
instead of breaking tomorrow's run or an underwriter's spreadsheet.
"""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pandera

from models.limits.policy import ACTIONS
from models.master_scale import MASTER_SCALE
from models.monitoring.alerts import ALERT_COLUMNS, SEVERITIES
from models.pd.validation import GREEN, NOT_APPLICABLE, RED, YELLOW

DATE = "datetime64[ns]"
GRADES = pandera.Check.isin(MASTER_SCALE.grades, error="must be a grade of the master scale")
SHARE = pandera.Check.in_range(0.0, 1.0)
NON_NEGATIVE = pandera.Check.ge(0)
LIGHTS = pandera.Check.isin([GREEN, YELLOW, RED, NOT_APPLICABLE], error="must be a light")


class OutputContractError(ValueError):
    """A table about to be published breaks its contract; the message names table and column."""


def _text(*checks: pandera.Check, nullable: bool = False) -> pandera.Column:
    return pandera.Column(str, list(checks), nullable=nullable)


def _number(*checks: pandera.Check, nullable: bool = False) -> pandera.Column:
    return pandera.Column(float, list(checks), nullable=nullable)


def _grade(nullable: bool) -> pandera.Column:
    return pandera.Column("Int64" if nullable else "int64", [GRADES], nullable=nullable)


def _schema(name: str, columns: dict[str, pandera.Column]) -> pandera.DataFrameSchema:
    return pandera.DataFrameSchema(columns, name=name, strict=True, ordered=True, coerce=False)


SCORES = _schema(
    "scores",
    {
        "buyer_id": _text(),
        "as_of_date": pandera.Column(DATE),
        "pd": _number(SHARE),
        "grade": _grade(nullable=False),
        "model_version": _text(),
        **{f"reason_{k}": _text(nullable=True) for k in (1, 2, 3)},
        **{f"reason_{k}_text": _text(nullable=True) for k in (1, 2, 3)},
        "reasons_as_of": pandera.Column(DATE, nullable=True),
    },
)

RECOMMENDATIONS = _schema(
    "recommendations",
    {
        "as_of_date": pandera.Column(DATE),
        "policyholder_id": _text(),
        "buyer_id": _text(),
        "scheme": _text(),
        "country": _text(nullable=True),
        "political_risk_class": _number(nullable=True),
        "grade": _grade(nullable=True),
        "previous_grade": _grade(nullable=True),
        "pd": _number(SHARE, nullable=True),
        "limit_amount": _number(NON_NEGATIVE),
        "requested_amount": _number(NON_NEGATIVE, nullable=True),
        "exposure": _number(NON_NEGATIVE, nullable=True),
        "capacity": _number(NON_NEGATIVE, nullable=True),
        "capacity_basis": _text(nullable=True),
        "aggregate_limit": _number(NON_NEGATIVE),
        "action": _text(pandera.Check.isin(ACTIONS)),
        "proposed_action": _text(pandera.Check.isin(ACTIONS)),
        "recommended_amount": _number(NON_NEGATIVE),
        "change": _number(),
        "reason_codes": _text(),
        "explanation": _text(),
        "expected_loss_before": _number(NON_NEGATIVE),
        "expected_loss_after": _number(NON_NEGATIVE),
        "priority": pandera.Column("int64", [pandera.Check.ge(1)]),
        "human_required": pandera.Column(bool),
        "automatic_rule": _text(nullable=True),
        "effective_date": pandera.Column(DATE, nullable=True),
        "notice_days": pandera.Column("int64", [NON_NEGATIVE]),
        "deadline": pandera.Column(DATE, nullable=True),
        "new_today": pandera.Column(bool),
        "model_version": _text(),
        "policy_version": _text(),
    },
)

ALERTS = _schema(
    "alerts",
    {
        "as_of_date": pandera.Column(DATE),
        "buyer_id": _text(),
        "alert": _text(),
        "severity": _text(pandera.Check.isin(SEVERITIES)),
        "reason": _text(),
        "grade": _grade(nullable=True),
        "previous_grade": _grade(nullable=True),
        "pd": _number(SHARE, nullable=True),
        "limits": pandera.Column("int64", [NON_NEGATIVE]),
        "aggregate_limit": _number(NON_NEGATIVE),
        "policyholders": _text(),
    },
)
assert list(ALERTS.columns) == ALERT_COLUMNS, "the alerts contract follows ALERT_COLUMNS"

PSI = _schema(
    "psi",
    {
        "name": _text(),
        "psi": _number(NON_NEGATIVE, nullable=True),
        "light": _text(LIGHTS),
        "missing_share_reference": _number(SHARE, nullable=True),
        "missing_share_now": _number(SHARE, nullable=True),
    },
)

MIGRATION = _schema(
    "migration",
    {
        "previous_grade": _grade(nullable=True),
        "grade": _grade(nullable=True),
        "buyers": pandera.Column("int64", [NON_NEGATIVE]),
    },
)

BACKTEST = _schema(
    "backtest",
    {
        "grade": _grade(nullable=False),
        "count": pandera.Column("int64", [NON_NEGATIVE]),
        "share": _number(SHARE),
        "defaults": pandera.Column("int64", [NON_NEGATIVE]),
        "mean_pd": _number(SHARE, nullable=True),
        "default_rate": _number(SHARE, nullable=True),
        "p_value": _number(SHARE, nullable=True),
        "light": _text(LIGHTS),
        "conservative": pandera.Column(bool),
        "cohort_date": _text(),
    },
)

#: The contract of every table the daily output store publishes, by table name.
OUTPUT_CONTRACTS: dict[str, pandera.DataFrameSchema] = {
    schema.name: schema for schema in (SCORES, RECOMMENDATIONS, ALERTS, PSI, MIGRATION, BACKTEST)
}


def check_output(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` unchanged if it meets the contract of output `name`, else OutputContractError
    listing each broken column and rule (at most five examples each)."""
    schema = OUTPUT_CONTRACTS.get(name)
    if schema is None:
        raise OutputContractError(
            f"no contract for output table '{name}'; known: {', '.join(OUTPUT_CONTRACTS)}"
        )
    try:
        return schema.validate(frame, lazy=True)
    except pandera.errors.SchemaErrors as exc:
        cases = exc.failure_cases
        lines = []
        for (column, check), group in cases.groupby(["column", "check"], dropna=False, sort=False):
            where = "table" if pd.isna(column) else f"column {column}"
            if str(check).startswith("dtype("):  # dtype('Int64') -> type must be Int64
                expected = str(check).removeprefix("dtype(").rstrip(")").strip("'")
                lines.append(
                    f"  {where}: type must be {expected}, is {group['failure_case'].iat[0]}"
                )
                continue
            examples = ", ".join(repr(v) for v in group["failure_case"].head(5))
            lines.append(f"  {where}: {check} ({len(group)} case(s): {examples})")
        raise OutputContractError(
            f"output table '{name}' breaks its contract:\n" + "\n".join(lines)
        ) from None
