"""The queue page's logic, pure: open proposals in, the filtered, sorted page out.

The items and their order come from the decision loop (`flows/underwriting.py` publishes
them with a priority); this module only narrows and re-sorts them as the underwriter asks.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import pandas as pd

PAGE_SIZE = 50
#: sort key -> (columns, ascending)
SORTS: dict[str, tuple[list[str], list[bool]]] = {
    "priority": (["priority", "id"], [True, True]),
    "el_change": (["el_change", "priority"], [True, True]),  # largest loss reduction first
    "limit": (["limit_amount", "priority"], [False, True]),
    "deadline": (["deadline", "priority"], [True, True]),
}
SORT_LABELS = {
    "priority": "priority",
    "el_change": "expected-loss change",
    "limit": "limit (largest first)",
    "deadline": "deadline",
}
ACTIONS = ("decrease", "cancel", "increase", "refer", "maintain")


@dataclass(frozen=True)
class QueueFilters:
    """What the underwriter asked for (query parameters), already validated."""

    action: str = ""
    policyholder: str = ""
    country: str = ""
    grade: int | None = None
    human: str = "required"  # required | all
    new: bool = False
    mine: bool = False
    sort: str = "priority"
    page: int = 1

    @classmethod
    def from_query(cls, query: dict[str, str]) -> QueueFilters:
        """Unknown or malformed values fall back to the default rather than failing."""

        def text(name: str) -> str:
            return str(query.get(name, "") or "").strip()[:64]

        grade = text("grade")
        page = text("page")
        return cls(
            action=text("action") if text("action") in ACTIONS else "",
            policyholder=text("policyholder"),
            country=text("country").upper(),
            grade=int(grade) if grade.isdigit() and 1 <= int(grade) <= 10 else None,
            human="all" if text("human") == "all" else "required",
            new=text("new") in ("1", "true", "on"),
            mine=text("mine") in ("1", "true", "on"),
            sort=text("sort") if text("sort") in SORTS else "priority",
            page=max(1, int(page)) if page.isdigit() else 1,
        )

    def query(self, **changes: Any) -> dict[str, str]:
        """These filters (changed as given) as query parameters, defaults left out."""
        chosen = replace(self, **changes)
        default = QueueFilters()
        out: dict[str, str] = {}
        for name in ("action", "policyholder", "country", "grade", "human", "new", "mine",
                     "sort", "page"):  # fmt: skip
            value = getattr(chosen, name)
            if value != getattr(default, name):
                out[name] = "1" if value is True else str(value)
        return out


def queue_items(
    proposals: pd.DataFrame,
    names: pd.Series,
    countries: pd.Series,
    assignments: pd.DataFrame,
) -> pd.DataFrame:
    """Open proposals with what the queue shows beside them: buyer name and country, the
    change in expected loss, and who looks after the limit."""
    items = proposals.assign(
        buyer_name=names.to_numpy() if len(proposals) else [],
        country=countries.to_numpy() if len(proposals) else [],
        el_change=proposals["expected_loss_after"] - proposals["expected_loss_before"],
    )
    owners = (
        assignments[["policyholder_id", "buyer_id", "assigned_to"]]
        if len(assignments)
        else pd.DataFrame(columns=["policyholder_id", "buyer_id", "assigned_to"])
    )
    return items.merge(owners, on=["policyholder_id", "buyer_id"], how="left")


def filter_queue(items: pd.DataFrame, filters: QueueFilters, user: str) -> pd.DataFrame:
    """The items matching every filter, in the chosen order."""
    keep = pd.Series(True, index=items.index)
    if filters.human == "required":
        keep &= items["human_required"].astype(bool)
    if filters.action:
        keep &= (items["action"] == filters.action) | (items["proposed_action"] == filters.action)
    if filters.policyholder:
        keep &= items["policyholder_id"] == filters.policyholder
    if filters.country:
        keep &= items["country"] == filters.country
    if filters.grade is not None:
        keep &= items["grade"] == filters.grade
    if filters.new:
        keep &= items["new_today"].astype(bool)
    if filters.mine:
        keep &= items["assigned_to"] == user
    columns, ascending = SORTS[filters.sort]
    return items.loc[keep].sort_values(columns, ascending=ascending, na_position="last")


def counts_by_action(items: pd.DataFrame) -> dict[str, int]:
    """How many items propose each action (the policy's proposal, before hysteresis)."""
    counts = items["proposed_action"].value_counts()
    return {a: int(counts.get(a, 0)) for a in ACTIONS if counts.get(a, 0)}


def page_of(items: pd.DataFrame, page: int, size: int = PAGE_SIZE) -> tuple[pd.DataFrame, int]:
    """One page of items and the number of pages (at least one)."""
    pages = max(1, -(-len(items) // size))
    page = min(page, pages)
    return items.iloc[(page - 1) * size : page * size], pages


def who_may_decide(amount: float, underwriters: list[tuple[str, float]]) -> list[str]:
    """Underwriters whose authority covers a limit of `amount` (names, highest first)."""
    able = [(a, n) for n, a in underwriters if a is not None and a >= amount]
    return [n for _, n in sorted(able, reverse=True)]
