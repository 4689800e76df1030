"""What the commands print: Rich tables on a terminal, plain unwrapped lines in a log.

Why: on a terminal a boxed table reads best; written to a file or a scheduler's log, Rich
would wrap it at 80 columns and cut values ("2026…"). There every table becomes plain,
aligned lines that never wrap, and long messages stay on one line. Cells are plain text:
values from the data (ids, names) are never read as Rich markup.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

from models.reports.format import money

#: Wide enough that no message of ours wraps when the output is not a terminal.
LOG_WIDTH = 10_000


class Output:
    """The command line's printer (one per process), following whatever `sys.stdout` is
    when it prints (a test runner swaps it)."""

    def __init__(self) -> None:
        self._consoles: dict[bool, Console] = {
            True: Console(),
            False: Console(width=LOG_WIDTH),
        }

    @property
    def terminal(self) -> bool:
        return self._consoles[True].is_terminal

    @property
    def console(self) -> Console:
        return self._consoles[self.terminal]

    def line(self, text: str = "", style: str | None = None) -> None:
        """One message, printed as it is (no markup, no wrapping outside a terminal)."""
        self.console.print(Text(text, style=style or ""), soft_wrap=not self.terminal)

    def error(self, text: str) -> None:
        self.line(text, style="red")

    def warning(self, text: str) -> None:
        self.line(text, style="yellow")

    def success(self, text: str) -> None:
        self.line(text, style="green")

    def rule(self, title: str) -> None:
        if self.terminal:
            self.console.rule(Text(title))
        else:
            self.console.print(f"── {title} ──", markup=False, highlight=False)

    def table(
        self,
        title: str,
        columns: Sequence[str],
        rows: Iterable[Sequence[object]],
        right: Iterable[str] = (),
        sections: Iterable[int] = (),
    ) -> None:
        """A table: `right` names the right-aligned (numeric) columns; `sections` are row
        numbers after which a separator line goes (e.g. before a total)."""
        right, sections = set(right), set(sections)
        cells = [["" if v is None else str(v) for v in row] for row in rows]
        if self.terminal:
            table = Table(title=Text(title))
            for column in columns:
                table.add_column(Text(column), justify="right" if column in right else "left")
            for k, row in enumerate(cells):
                table.add_row(*(Text(v) for v in row), end_section=k in sections)
            self.console.print(table)
            return
        for text in plain_table(title, columns, cells, right, sections):
            self.console.print(text, markup=False, highlight=False, soft_wrap=True)


def plain_table(
    title: str,
    columns: Sequence[str],
    rows: list[list[str]],
    right: set[str] = frozenset(),
    sections: set[int] = frozenset(),
) -> list[str]:
    """The table as aligned text lines (title, header, rows), never wrapped."""
    widths = [max([len(c), *(len(r[k]) for r in rows)]) for k, c in enumerate(columns)]

    def cells(values: Sequence[str]) -> str:
        return "  ".join(
            v.rjust(w) if c in right else v.ljust(w)
            for v, w, c in zip(values, widths, columns, strict=True)
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    lines = [title, cells(columns), rule]
    for k, row in enumerate(rows):
        lines.append(cells(row))
        if k in sections:
            lines.append(rule)
    return lines


def compact_money(value: float) -> str:
    """EUR amount for tables whose title says EUR: '8.6 M', '350 k'."""
    return money(value, compact=True)


OUT = Output()
