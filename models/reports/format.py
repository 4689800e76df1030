"""Display formatting shared by the reports, alert and reason texts, and the terminal.

One definition of how an amount of money reads, so the same figure never prints two ways
by accident. Four forms are in use, each kept byte for byte because readers (and tests)
compare texts; `money` chooses among them with keywords:

- report tables and pages (default): 'EUR 1.2 M', 'EUR 350 k', 'EUR 420', 'EUR 2.5 bn';
  `signed=True` for changes ('EUR +350 k'); a missing amount is a dash;
- `compact=True`, terminal tables whose title already says EUR: '8.6 M', '350 k';
- `significant=3`, reason texts, where the digits matter more: 'EUR 1.23 M';
- `terse=True`, alert texts: 'EUR 750k', 'EUR 1.5m', 'EUR 900'.

Pure functions of their arguments, no template engine: the Jinja2 filters of
`models.reports.render` are these functions.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import partial

import numpy as np
import pandas as pd

#: Shown for a missing value in tables and headlines.
MISSING = "–"
CURRENCY = "EUR"
#: (scale, unit, decimals), largest first.
_UNITS: tuple[tuple[float, str, int], ...] = ((1e9, "bn", 1), (1e6, "M", 1), (1e3, "k", 0))


def scaled(amount: float) -> str:
    """1_234_567 -> '1.2 M', 350_000 -> '350 k', 420 -> '420': unsigned, no currency.

    The unit is the largest one at which the rounded figure is at least 1, so 999_999 reads
    '1.0 M' rather than '1,000 k' (and, as a consequence, 600 reads '1 k').
    """
    size = abs(amount)
    for scale, unit, digits in _UNITS:
        if round(size / scale, digits) >= 1:
            return f"{size / scale:,.{digits}f} {unit}"
    return f"{size:,.0f}"


def _compact(amount: float) -> str:
    """Always thousands or millions: columns of a terminal table line up by unit."""
    if abs(amount) >= 1e6:
        return f"{amount / 1e6:,.1f} M"
    return f"{amount / 1e3:,.0f} k"


def _significant(amount: float, digits: int) -> str:
    """`digits` significant digits in the largest unit the amount reaches."""
    for scale, unit, _ in _UNITS:
        if abs(amount) >= scale:
            return f"{amount / scale:.{digits}g} {unit}"
    return f"{amount:.0f}"


def _terse(amount: float) -> str:
    """Unit glued to the number, lower case, millions at most: short enough for a sentence."""
    size = abs(amount)
    if size < 1e3:
        return f"{amount:.0f}"
    if size < 999_500:
        return f"{amount / 1e3:.0f}k"
    return f"{amount / 1e6:,.1f}m"


def _is_missing(value: object) -> bool:
    return value is None or bool(pd.isna(value))


def money(
    value: float | None,
    signed: bool = False,
    compact: bool = False,
    significant: int | None = None,
    terse: bool = False,
) -> str:
    """An amount in EUR as text (see the module docstring for the four forms).

    None and NaN give `MISSING` in every form. `signed` adds '+' to a positive amount that
    does not print as zero (a change of 'EUR 0' carries no sign).
    """
    if sum((compact, terse, significant is not None)) > 1:
        raise ValueError("choose one of compact, significant and terse")
    if _is_missing(value):
        return MISSING
    amount = float(value)  # type: ignore[arg-type]
    if compact:
        text = _compact(amount)
    elif terse:
        text = _terse(amount)
    elif significant is not None:
        text = _significant(amount, significant)
    else:  # the report form signs the unsigned figure, so a zero never reads '-0'
        text = scaled(amount)
        sign = "-" if amount < 0 else "+" if signed and amount > 0 else ""
        return f"{CURRENCY} {sign if _nonzero(text) else ''}{text}"
    if signed and amount > 0 and _nonzero(text):
        text = "+" + text
    return text if compact else f"{CURRENCY} {text}"


def _nonzero(text: str) -> bool:
    """Whether a formatted amount shows any non-zero digit."""
    return any(c in "123456789" for c in text)


def money_series(values: pd.Series, **options: object) -> pd.Series:
    """`money` of every value (same index, object dtype); takes the same keywords."""
    amounts = pd.Series(values, dtype="float64")
    return amounts.map(partial(money, **options)).astype(object)


def count(value: float) -> str:
    """A count with thousands separators: 12345 -> '12,345'."""
    return f"{int(value):,}"


def label(value: object) -> str:
    """A key or id as text: whole floats as ints (grades read back as floats), missing as a dash."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return MISSING
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def grade_move(previous: object, grade: object) -> str:
    """'4 → 6' when the grade moved, '6' when it did not or there was no previous grade."""
    now = label(grade)
    before = label(previous)
    return now if before in (MISSING, now) else f"{before} → {now}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table of already formatted cells (left aligned), for text reports."""
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


#: Characters a terminal acts on: C0 controls but tab and line feed, DEL, C1 controls.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(value: object) -> str:
    """Text for a terminal or a log line: control characters as visible escapes ('\\x1b'),
    so a value from the data (an id, a file name) cannot send escape sequences (colours,
    OSC 8 links, a cleared screen) to whoever reads the output; tab and line feed pass."""
    text = "" if value is None else str(value)
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
