"""A small reader for dense ARFF files (Weka's format), e.g. the Polish bankruptcy data.

Why not scipy.io.arff: it returns a structured array of bytes for nominal values and has no
pandas output; this reader gives a typed DataFrame in one pass, handles `?` as missing, CRLF
line ends, `%` comments, quoted names and any number of attributes. Sparse ARFF (rows in
braces) is refused with a clear message rather than misread.

Types: `numeric` / `real` / `integer` -> float64 (integers may be missing, so float);
nominal `{a,b,...}` -> pandas Categorical with the declared categories in declared order;
`string` -> str; `date [format]` -> datetime64 (ISO-8601 by default).
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pandas as pd

_ATTRIBUTE = re.compile(
    r"""^@attribute\s+('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|\S+)\s+(.+?)\s*$""", re.IGNORECASE
)


def _unquote(token: str) -> str:
    token = token.strip()
    if len(token) >= 2 and token[0] == token[-1] and token[0] in "'\"":
        return token[1:-1].replace("\\" + token[0], token[0])
    return token


def _nominal_values(spec: str) -> list[str]:
    inner = spec.strip()[1:-1]
    row = next(csv.reader([inner], quotechar="'", skipinitialspace=True))
    return [_unquote(v) for v in row]


def parse_arff(text: str) -> pd.DataFrame:
    """Parse ARFF text (header + `@data` section) into a typed DataFrame."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    names: list[str] = []
    kinds: list[str] = []
    nominal: dict[str, list[str]] = {}
    data_start = None
    for number, raw in enumerate(lines):
        line = raw.strip()
        if not line or line.startswith("%"):
            continue
        lower = line.lower()
        if lower.startswith("@relation"):
            continue
        if lower.startswith("@attribute"):
            match = _ATTRIBUTE.match(line)
            if not match:
                raise ValueError(f"line {number + 1}: cannot read attribute declaration {line!r}")
            name, spec = _unquote(match.group(1)), match.group(2).strip()
            spec_lower = spec.lower()
            if spec.startswith("{"):
                kinds.append("nominal")
                nominal[name] = _nominal_values(spec)
            elif spec_lower in ("numeric", "real", "integer"):
                kinds.append("numeric")
            elif spec_lower == "string":
                kinds.append("string")
            elif spec_lower.startswith("date"):
                kinds.append("date")
            else:
                raise ValueError(f"line {number + 1}: unsupported attribute type {spec!r}")
            names.append(name)
            continue
        if lower.startswith("@data"):
            data_start = number + 1
            break
        raise ValueError(f"line {number + 1}: unexpected header line {line!r}")
    if data_start is None:
        raise ValueError("no @data section: not an ARFF file")
    if not names:
        raise ValueError("no @attribute declarations before @data")

    body = [ln for ln in lines[data_start:] if ln.strip() and not ln.lstrip().startswith("%")]
    if body and body[0].lstrip().startswith("{"):
        raise ValueError("sparse ARFF ({index value, ...} rows) is not supported")
    frame = pd.read_csv(
        io.StringIO("\n".join(body)),
        header=None,
        names=names,
        na_values=["?"],
        keep_default_na=False,
        quotechar="'",
        skipinitialspace=True,
        dtype={
            n: ("float64" if k == "numeric" else "str") for n, k in zip(names, kinds, strict=True)
        },
    )
    if len(frame.columns) != len(names):
        raise ValueError(
            f"data rows have {len(frame.columns)} fields, header declares {len(names)}"
        )
    for name, kind in zip(names, kinds, strict=True):
        if kind == "nominal":
            values = frame[name].str.strip()
            unknown = set(values.dropna().unique()) - set(nominal[name])
            if unknown:
                raise ValueError(f"attribute {name!r}: values {sorted(unknown)} not declared")
            frame[name] = pd.Categorical(values, categories=nominal[name])
        elif kind == "date":
            frame[name] = pd.to_datetime(frame[name], format="ISO8601")
    return frame


def read_arff(path: str | Path) -> pd.DataFrame:
    """Read a dense ARFF file (e.g. `polish_bankruptcy/1year.arff`) into a DataFrame."""
    return parse_arff(Path(path).read_text(encoding="utf-8", errors="replace"))
