"""The limit policy configuration: one versioned YAML file, validated on load.

`load_policy(path)` returns a frozen `LimitPolicy`; any wrong, missing or unknown field
raises `PolicyError` naming its path in the file (e.g. `capacity.equity_multiple.3: Input
should be greater than or equal to 0`), so an underwriting manager editing the file sees
what to fix. The engine (`models/limits/engine.py`) only reads this object.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator

from config import packaged
from data.reference import EVENT_TYPES, POLITICAL_RISK_CLASSES
from models.config_files import StrictModel, load_config, validate_config
from models.master_scale import MASTER_SCALE

POLICY_PATH = packaged("limit_policy.yaml")
ACTIONS = ("increase", "decrease", "maintain", "cancel", "refer")

Share = Annotated[float, Field(ge=0, le=1)]
Amount = Annotated[float, Field(ge=0)]
Multiple = Annotated[float, Field(ge=0, le=10)]


class PolicyError(ValueError):
    """The policy file is missing, unreadable or invalid; the message names each bad field."""


def _grade_table(value: dict[int, float]) -> dict[int, float]:
    """Multiples by performing grade; a missing grade means 0 (no capacity)."""
    performing = range(1, MASTER_SCALE.default_grade)
    wrong = [g for g in value if g not in performing]
    if wrong:
        raise ValueError(f"grades must be performing grades 1..{performing[-1]}, not {wrong}")
    rising = [g for g in performing[1:] if value.get(g, 0.0) > value.get(g - 1, 0.0)]
    if rising:
        raise ValueError(
            f"a worse grade may not get a larger multiple (grades {rising} exceed the grade "
            "before them; an unlisted grade counts as 0)"
        )
    return value


class Capacity(StrictModel):
    equity_multiple: dict[int, Multiple]
    turnover_multiple: dict[int, Multiple]
    max_statement_age_months: Annotated[int, Field(ge=1, le=120)] = 24
    payment_multiple: dict[int, Multiple]
    #: No default: the policy file states it (one definition).
    payment_grace_days: Annotated[int, Field(ge=0, le=365)]

    _grades = field_validator("equity_multiple", "turnover_multiple", "payment_multiple")(
        _grade_table
    )


class Cancel(StrictModel):
    events: list[str] = Field(default_factory=lambda: ["insolvency", "liquidation"])
    claim_lookback_days: Annotated[int, Field(ge=0)] = 365
    grade: Annotated[int, Field(ge=1)] = 9

    @field_validator("events")
    @classmethod
    def _known_events(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - EVENT_TYPES)
        if unknown:
            raise ValueError(f"unknown event types {unknown}; known: {sorted(EVENT_TYPES)}")
        return value

    @field_validator("grade")
    @classmethod
    def _on_scale(cls, value: int) -> int:
        if value > MASTER_SCALE.default_grade:
            raise ValueError(f"grade must be at most {MASTER_SCALE.default_grade}")
        return value


class Decrease(StrictModel):
    downgrade_notches: Annotated[int, Field(ge=1)] = 2
    downgrade_cut: Share = 0.25
    overdue_days: Annotated[int, Field(ge=1)] = 60
    overdue_cut: Share = 0.30
    max_step: Annotated[float, Field(gt=0, le=1)] = 0.5


class Increase(StrictModel):
    max_grade: Annotated[int, Field(ge=1)] = 5


class Hysteresis(StrictModel):
    min_change_share: Share = 0.10
    min_change_amount: Amount = 5000
    no_increase_after_decrease_days: Annotated[int, Field(ge=0)] = 90


class Authority(StrictModel):
    """What the system decides on its own; beyond any of these a human decides (`refer`)."""

    max_amount: Amount
    max_change: Amount
    max_increase: Amount
    increase_max_grade: Annotated[int, Field(ge=1)]
    cancel_on_events: bool

    @field_validator("increase_max_grade")
    @classmethod
    def _performing(cls, value: int) -> int:
        if value >= MASTER_SCALE.default_grade:
            raise ValueError(f"must be a performing grade (below {MASTER_SCALE.default_grade})")
        return value


class Notice(StrictModel):
    """When a decided reduction takes effect for new shipments."""

    days: Annotated[int, Field(ge=0, le=366)]
    immediate_on_events: bool


class Queue(StrictModel):
    """The underwriters' queue: answer times and when a decided pair may come back."""

    deadline_business_days: Annotated[int, Field(ge=0, le=60)]
    reconsider_after_days: Annotated[int, Field(ge=0, le=366)]


class ExcessOfLoss(StrictModel):
    respect_discretionary_limit: bool = True


class LimitPolicy(StrictModel):
    """Every rule the engine applies; see config/limit_policy.yaml for what each means."""

    version: Annotated[str, Field(min_length=1)]
    lgd: Annotated[float, Field(gt=0, le=1)] = 0.7
    capacity: Capacity
    cancel: Cancel = Cancel()
    decrease: Decrease = Decrease()
    increase: Increase = Increase()
    hysteresis: Hysteresis = Hysteresis()
    authority: Authority
    notice: Notice
    queue: Queue
    country_caps: dict[int, Amount] = Field(default_factory=dict)
    excess_of_loss: ExcessOfLoss = ExcessOfLoss()
    priority_weights: dict[Literal[ACTIONS], Annotated[int, Field(ge=0)]] = Field(
        default_factory=lambda: {
            "cancel": 4,
            "refer": 3,
            "decrease": 2,
            "increase": 1,
            "maintain": 0,
        }
    )
    #: SHA-256 of the file's bytes (set by load_policy), logged beside the version.
    fingerprint: str = ""

    @field_validator("country_caps")
    @classmethod
    def _known_classes(cls, value: dict[int, float]) -> dict[int, float]:
        wrong = [k for k in value if k not in POLITICAL_RISK_CLASSES]
        if wrong:
            raise ValueError(f"political-risk classes are 0..7, not {wrong}")
        return value


def parse_policy(config: object, source: str = "policy") -> LimitPolicy:
    """Validate an already-parsed mapping; errors list every bad field by its path."""
    return validate_config(LimitPolicy, config, source, PolicyError)


def load_policy(path: str | Path = POLICY_PATH) -> LimitPolicy:
    """Read and validate the policy file; the result carries the file's fingerprint."""
    return load_config(LimitPolicy, path, "limit policy", PolicyError)
