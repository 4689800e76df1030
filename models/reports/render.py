"""HTML reports from the Jinja2 templates in `models/reports/templates/`, autoescaped.

Every value a template prints is HTML-escaped unless it is `Markup`, and the only `Markup`
made in the project is the PNG data URI of `plot` (base64 text built here from our own
figure, which cannot contain markup). So buyer ids, names, reason texts and titles from the
data can never become markup. Undefined template variables raise instead of printing
nothing, so a renamed context key fails in the tests, not silently in a report.

Templates lay out values computed in Python (tables of formatted cells, numbers, plots);
the filters `money`, `count`, `label` and `grade_move` are those of `models.reports.format`.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from models.reports.format import MISSING, count, grade_move, label, money

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: A table cell: text, or (text, css class) for a cell styled by its value.
Cell = str | tuple[str, str]
_PNG_URI = "data:image/png;base64,"


@dataclass(frozen=True)
class Table:
    """Formatted cells for the `table` macro; `classes` (one per row, may be '') style rows."""

    header: Sequence[str]
    rows: Sequence[Sequence[Cell]]
    numeric: Collection[int] = ()
    classes: Sequence[str] = ()


@dataclass(frozen=True)
class Plot:
    """An embedded image: `src` is a PNG data URI, `title` its caption and alt text."""

    src: Markup
    title: str


def plot(fig: Figure, title: str) -> Plot:
    """Encode a figure as an inline PNG and clear it (no metadata: same data, same bytes)."""
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=96, metadata={"Software": None})
    finally:
        fig.clear()
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return Plot(Markup(_PNG_URI + encoded), title)


_ENV = Environment(
    loader=PackageLoader("models.reports", "templates"),
    autoescape=select_autoescape(("html", "html.j2"), default=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
_ENV.filters.update(money=money, count=count, label=label, grade_move=grade_move)
_ENV.globals["MISSING"] = MISSING


def render(template_name: str, **context: Any) -> str:
    """The named template rendered with `context`, as a string."""
    return _ENV.get_template(template_name).render(**context)
