"""Display formatting of `models.reports`: the exact texts of every money form, and the
template environment (autoescape on, undefined names fail, no external resources)."""

from __future__ import annotations

import re
from importlib import resources

import jinja2
import numpy as np
import pandas as pd
import pytest

from models.reports.format import (
    MISSING,
    count,
    grade_move,
    label,
    markdown_table,
    money,
    money_series,
    scaled,
)
from models.reports.render import Table, render

NAN = float("nan")
#: amount -> (report, report signed, compact (CLI), significant=3 (reasons), terse (alerts));
#: today's texts, kept as they are (reason texts round to 3 significant digits first, so
#: 999_999 reaches `significant` as 1e6 there).
CASES = {
    0: ("EUR 0", "EUR 0", "0 k", "EUR 0", "EUR 0"),
    0.2: ("EUR 0", "EUR 0", "0 k", "EUR 0", "EUR 0"),
    420: ("EUR 420", "EUR +420", "0 k", "EUR 420", "EUR 420"),
    999: ("EUR 1 k", "EUR +1 k", "1 k", "EUR 999", "EUR 999"),
    5_000: ("EUR 5 k", "EUR +5 k", "5 k", "EUR 5 k", "EUR 5k"),
    350_000: ("EUR 350 k", "EUR +350 k", "350 k", "EUR 350 k", "EUR 350k"),
    999_999: ("EUR 1.0 M", "EUR +1.0 M", "1,000 k", "EUR 1e+03 k", "EUR 1.0m"),
    1_234_567: ("EUR 1.2 M", "EUR +1.2 M", "1.2 M", "EUR 1.23 M", "EUR 1.2m"),
    8_600_000: ("EUR 8.6 M", "EUR +8.6 M", "8.6 M", "EUR 8.6 M", "EUR 8.6m"),
    1.2e9: ("EUR 1.2 bn", "EUR +1.2 bn", "1,200.0 M", "EUR 1.2 bn", "EUR 1,200.0m"),
    -350_000: ("EUR -350 k", "EUR -350 k", "-350 k", "EUR -350 k", "EUR -350k"),
    -2_500_000: ("EUR -2.5 M", "EUR -2.5 M", "-2.5 M", "EUR -2.5 M", "EUR -2.5m"),
}


@pytest.mark.parametrize(("amount", "texts"), CASES.items())
def test_money_texts(amount: float, texts: tuple[str, ...]) -> None:
    report, signed, compact, significant, terse = texts
    assert money(amount) == report
    assert money(amount, signed=True) == signed
    assert money(amount, compact=True) == compact
    assert money(amount, significant=3) == significant
    assert money(amount, terse=True) == terse


@pytest.mark.parametrize("missing", [None, NAN, np.nan, pd.NA])
@pytest.mark.parametrize(
    "options", [{}, {"signed": True}, {"compact": True}, {"significant": 3}, {"terse": True}]
)
def test_missing_money_is_a_dash(missing: object, options: dict) -> None:
    assert money(missing, **options) == MISSING == "–"  # type: ignore[arg-type]


def test_money_forms_are_exclusive() -> None:
    with pytest.raises(ValueError, match="one of"):
        money(1.0, compact=True, terse=True)


def test_unit_boundaries() -> None:
    # the report form rounds at the larger unit: never '1,000 k'
    assert money(999_499) == "EUR 1.0 M" and money(949_000) == "EUR 949 k"
    assert money(500) == "EUR 500" and money(501) == "EUR 1 k"
    # the alert form switches to millions where thousands would print 1000
    assert money(999_499, terse=True) == "EUR 999k" and money(999_500, terse=True) == "EUR 1.0m"
    assert money(1_000_000, compact=True) == "1.0 M" and money(999_999.9, compact=True) == "1,000 k"


def test_scaled_is_unsigned_and_without_currency() -> None:
    assert scaled(-1_234_567) == "1.2 M" and scaled(420) == "420" and scaled(2.5e9) == "2.5 bn"


def test_money_series_keeps_the_index() -> None:
    values = pd.Series([750_000.0, 1_500_000.0, 900.0, np.nan], index=[10, 20, 30, 40])
    out = money_series(values, terse=True)
    assert out.dtype == object and list(out.index) == [10, 20, 30, 40]
    assert list(out) == ["EUR 750k", "EUR 1.5m", "EUR 900", MISSING]
    assert list(money_series(values.iloc[:2], signed=True)) == ["EUR +750 k", "EUR +1.5 M"]
    assert money_series(pd.Series([], dtype="float64")).empty


def test_count_label_and_grade_move() -> None:
    assert count(12345.0) == "12,345" and count(np.int64(7)) == "7"
    assert label(4.0) == "4" and label(np.float64(10)) == "10" and label(2.5) == "2.5"
    assert label(None) == label(NAN) == label(pd.NA) == MISSING and label("B1") == "B1"
    assert grade_move(4, 6) == "4 → 6" and grade_move(6.0, 6) == "6"
    assert grade_move(pd.NA, 6) == "6"


def test_markdown_table() -> None:
    assert markdown_table(["a", "b"], [[1, "x"], ["y", 2.5]]) == (
        "| a | b |\n|---|---|\n| 1 | x |\n| y | 2.5 |"
    )


# --------------------------------------------------------------------------- templates


def test_data_is_escaped_by_the_macros() -> None:
    """Cells, row classes and header texts from a Table are escaped, never markup."""
    from models.reports.render import _ENV

    evil = '"><img src=x onerror=alert(1)>'
    macro = _ENV.get_template("macros.html.j2").module.table
    html = str(macro(Table([evil], [[evil, (evil, "num")]], numeric=(1,), classes=[evil])))
    assert "<img" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert 'class="&#34;&gt;&lt;img' in html  # the class attribute cannot be closed


def test_templates_are_autoescaped_and_strict() -> None:
    from models.reports.render import _ENV

    assert _ENV.autoescape("recommendations.html.j2") is True
    with pytest.raises(jinja2.UndefinedError):
        render("recommendations.html.j2", title="t", facts=[], empty=False)


def test_templates_load_nothing_from_outside() -> None:
    folder = resources.files("models.reports") / "templates"
    names = sorted(p.name for p in folder.iterdir() if p.name.endswith(".j2"))
    assert names == [
        "base.html.j2",
        "macros.html.j2",
        "monitoring.html.j2",
        "recommendations.html.j2",
    ]
    for name in names:
        text = (folder / name).read_text(encoding="utf-8")
        assert not re.search(
            r"<script|<link|<iframe|https?://|//cdn|@import|url\(|@font-face", text
        )
