"""What the commands print: Rich tables on a terminal, plain unwrapped lines in a log.

Why: on a terminal a boxed table reads best; written to a file or a scheduler's log, Rich
would wrap it at 80 columns and cut values ("2026…"). There every table becomes plain,
aligned lines that never wrap, and long messages stay on one line.

Everything printed here is plain text, never Rich markup: values from the data (ids, names,
file names, reasons, quarantined values) go into `Text` objects (`plain_text`), so an id
`X[/red]` prints as written instead of stopping the command, and `[link=…]` is no link.
Control characters a terminal would act on (escape sequences such as OSC 8 links or colour
codes, bells, C1 controls) are shown as visible `\x1b`-style escapes (`printable`); line
feeds and tabs pass. Anything else a command prints from the data must use these helpers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

from models.reports.format import money, printable

#: Wide enough that no message of ours wraps when the output is not a terminal.
LOG_WIDTH = 10_000

__all__ = ["OUT", "Output", "compact_money", "plain_table", "plain_text", "printable"]


def plain_text(value: object, style: str = "") -> Text:
    """A value (from the data or not) as Rich text: never markup, controls visible."""
    return Text(printable(value), style=style)


class Output:
    """The command line's printer (one per process), following whatever `sys.stdout` is
    when it prints (a test runner swaps it)."""

    def __init__(self) -> None:
        self._consoles: dict[bool, Console] = {
            True: Console(),
            False: Console(width=LOG_WIDTH),
        }
        #: The same on `sys.stderr`, for `fault`.
        self._stderr: dict[bool, Console] = {
            True: Console(stderr=True),
            False: Console(stderr=True, width=LOG_WIDTH),
        }

    @property
    def terminal(self) -> bool:
        return self._consoles[True].is_terminal

    @property
    def console(self) -> Console:
        return self._consoles[self.terminal]

    def line(self, text: str = "", style: str | None = None) -> None:
        """One message, printed as it is (no markup, no wrapping outside a terminal)."""
        self.console.print(plain_text(text, style or ""), soft_wrap=not self.terminal)

    def error(self, text: str) -> None:
        self.line(text, style="red")

    def fault(self, text: str) -> None:
        """One red line on stderr: a command stopped by an expected failure (a refused
        concurrent run, a registry or store fault), never wrapped outside a terminal."""
        terminal = self._stderr[True].is_terminal
        self._stderr[terminal].print(plain_text(text, "red"), soft_wrap=not terminal)

    def warning(self, text: str) -> None:
        self.line(text, style="yellow")

    def success(self, text: str) -> None:
        self.line(text, style="green")

    def rule(self, title: str) -> None:
        if self.terminal:
            self.console.rule(plain_text(title))
        else:
            self.console.print(
                f"── {printable(title)} ──", markup=False, emoji=False, highlight=False
            )

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
        cells = [[printable(v) for v in row] for row in rows]
        title, shown = printable(title), [printable(c) for c in columns]
        if self.terminal:
            table = Table(title=Text(title))
            for column, name in zip(columns, shown, strict=True):
                table.add_column(Text(name), justify="right" if column in right else "left")
            for k, row in enumerate(cells):
                table.add_row(*(Text(v) for v in row), end_section=k in sections)
            self.console.print(table)
            return
        for text in plain_table(title, shown, cells, right, sections):
            self.console.print(text, markup=False, emoji=False, highlight=False, soft_wrap=True)


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
