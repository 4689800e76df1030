"""How values look on the workbench's pages: one formatter per kind of value, shared by
every template (money through the reports' own formatter, so pages and reports agree)."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import pandas as pd

from models.master_scale import MASTER_SCALE
from models.reports.format import money


def _missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def eur(value: Any, signed: bool = False) -> str:
    """EUR 1,250,000 (or – when missing): the exact figure a decision is about."""
    if _missing(value):
        return "–"
    return f"EUR {float(value):+,.0f}" if signed else f"EUR {float(value):,.0f}"


def eur_compact(value: Any) -> str:
    """EUR 1.2 M: the reports' formatter, for tables of many amounts."""
    return "–" if _missing(value) else money(float(value))


def percent(value: Any, digits: int = 2) -> str:
    return "–" if _missing(value) else f"{100 * float(value):.{digits}f} %"


def number(value: Any, digits: int = 1) -> str:
    if _missing(value):
        return "–"
    number_ = float(value)
    if math.isfinite(number_) and number_ == int(number_) and digits <= 1:
        return f"{int(number_):,}"
    return f"{number_:,.{digits}f}"


def day(value: Any) -> str:
    """A date as YYYY-MM-DD (timestamps cut to their day)."""
    if _missing(value):
        return "–"
    if isinstance(value, dt.datetime | pd.Timestamp):
        return value.strftime("%Y-%m-%d")
    return str(value)[:10]


def moment(value: Any) -> str:
    """A timestamp to the minute, UTC."""
    if _missing(value):
        return "–"
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC")
    return stamp.strftime("%Y-%m-%d %H:%M UTC")


def grade_name(value: Any) -> str:
    if _missing(value):
        return "unrated"
    grade = int(value)
    names = MASTER_SCALE.names
    return names[grade - 1] if 1 <= grade <= len(names) else str(grade)


def grade(value: Any) -> str:
    return "–" if _missing(value) else str(int(value))


def text(value: Any) -> str:
    return "" if _missing(value) else str(value)


FILTERS = {
    "eur": eur,
    "eur_compact": eur_compact,
    "percent": percent,
    "number": number,
    "day": day,
    "moment": moment,
    "grade_name": grade_name,
    "grade": grade,
    "text": text,
}
GLOBALS = {"missing": _missing}
