"""Reading a source file the way a careful analyst opens an export: nothing guessed silently.

- Every CSV column is read as text (types come from the contract, cell by cell), so ids
  keep their leading zeros and their 20 digits, whatever the first column's byte order mark.
- Only an empty cell is missing. `NA` (Namibia), `NULL` and `N/A` stay text; the contract
  decides where such a marker means "no value" (numbers and dates, `data.contracts`).
- The encoding is UTF-8 (with or without a byte order mark) or UTF-16 by its byte order
  mark, unless declared (`encoding`); a byte that does not decode names its row and column.
- The delimiter is sniffed from the header among `, ; TAB |` unless declared; a header
  that is one column holding separators gets a hint.
- `.csv`, `.csv.gz` and `.parquet`, in any letter case. A header naming a column twice
  fails the file: which copy to load is unknowable.

Each fault of the whole file is a :class:`data.contracts.ContractError` naming the file;
the caller fails that file only.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from data.contracts import ContractError, normalised_column_name

CSV_SUFFIXES = (".csv", ".csv.gz")
PARQUET_SUFFIXES = (".parquet",)
SOURCE_SUFFIXES = (*CSV_SUFFIXES, *PARQUET_SUFFIXES)
DELIMITERS = (",", ";", "\t", "|")
_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


@dataclass(frozen=True)
class ReadOptions:
    """How to read CSV files: declared encoding and delimiter (None = detect)."""

    encoding: str | None = None
    delimiter: str | None = None

    def __post_init__(self) -> None:
        if self.encoding is not None:
            try:
                codecs.lookup(self.encoding)
            except LookupError:
                raise ValueError(f"unknown encoding {self.encoding!r}") from None
        if self.delimiter is not None and len(self.delimiter) != 1:
            raise ValueError(f"a delimiter is one character, not {self.delimiter!r}")


@dataclass
class SourceFrame:
    """A file's rows as read, and what the reader decided on the way (shown as notes)."""

    frame: pd.DataFrame
    notes: list[str] = field(default_factory=list)


def source_suffix(name: str) -> str | None:
    """The recognised suffix of a file name (any letter case), or None."""
    lower = name.lower()
    longest_first = sorted(SOURCE_SUFFIXES, key=len, reverse=True)
    return next((s for s in longest_first if lower.endswith(s)), None)


def read_source(
    path: Path, options: ReadOptions = ReadOptions(), columns: Iterable[str] = ()
) -> SourceFrame:
    """Read a CSV (every column text) or Parquet file (its own types, typed later).

    `columns` are the names the file should have (the delimiter is sniffed to find them).
    """
    suffix = source_suffix(path.name)
    try:
        if suffix in PARQUET_SUFFIXES:
            _refuse_duplicate_columns(path, pq.read_schema(path).names)
            table = pq.read_table(path)
            return SourceFrame(table.to_pandas(date_as_object=False, types_mapper=_NULLABLE.get))
        return _read_csv(path, options, columns)
    except (pa.ArrowInvalid, OSError, EOFError, csv.Error) as exc:
        raise ContractError(f"{path}: unreadable file ({exc})") from exc


#: Parquet integers stay integers when a column has nulls (not floats: an id `101` must not
#: become `101.0`).
_NULLABLE = {
    pa.int8(): pd.Int8Dtype(),
    pa.int16(): pd.Int16Dtype(),
    pa.int32(): pd.Int32Dtype(),
    pa.int64(): pd.Int64Dtype(),
    pa.uint8(): pd.UInt8Dtype(),
    pa.uint16(): pd.UInt16Dtype(),
    pa.uint32(): pd.UInt32Dtype(),
    pa.uint64(): pd.UInt64Dtype(),
}


def _is_gzip(path: Path) -> bool:
    return path.name.lower().endswith(".gz")


def _open_bytes(path: Path):
    return gzip.open(path, "rb") if _is_gzip(path) else open(path, "rb")


def _encoding(path: Path, options: ReadOptions) -> str:
    """The Python codec of the file (its canonical name): declared, else by byte order
    mark, else UTF-8."""
    if options.encoding:
        return codecs.lookup(options.encoding).name
    with _open_bytes(path) as fh:
        start = fh.read(4)
    return next((codec for bom, codec in _BOMS if start.startswith(bom)), "utf-8")


def _wide(codec: str) -> bool:
    """Two- or four-byte encodings: their lines do not end at a newline byte."""
    return codec.startswith(("utf-16", "utf-32"))


def _header_line(path: Path, codec: str, errors: str = "strict") -> str:
    """The first line (ended by CR LF, LF or a lone CR, as old spreadsheet exports do),
    decoded; a byte that does not decode in the first megabyte raises UnicodeDecodeError."""
    with _open_bytes(path) as fh:
        chunk = fh.read(1 << 20)
    text = codecs.getincrementaldecoder(codec)(errors).decode(chunk, final=False)
    return re.split(r"\r\n|\r|\n", text, maxsplit=1)[0]


def sniff_delimiter(header: str, known: Iterable[str] = ()) -> str:
    """The separator that splits the header into the most known (else most) columns."""
    wanted = {normalised_column_name(k) for k in known}

    def score(sep: str) -> tuple[int, int, bool]:
        names = next(csv.reader([header], delimiter=sep), [])
        return sum(normalised_column_name(n) in wanted for n in names), len(names), sep == ","

    return max(DELIMITERS, key=score)


def _read_csv(path: Path, options: ReadOptions, known: Iterable[str] = ()) -> SourceFrame:
    known = list(known) or _all_columns()
    codec = _encoding(path, options)
    notes = []
    if options.encoding is None and codec != "utf-8":
        notes.append(f"encoding {codec} (from its byte order mark)")
    try:
        header_text = _header_line(path, codec)
    except UnicodeDecodeError:  # name the bad byte's row and column
        rough = _header_line(path, codec, errors="replace")
        delimiter = options.delimiter or sniff_delimiter(rough, known)
        _raise_undecodable(path, codec, delimiter, next(csv.reader([rough], delimiter=delimiter)))
    delimiter = options.delimiter or sniff_delimiter(header_text, known)
    if options.delimiter is None and delimiter != ",":
        notes.append(f"delimiter {delimiter!r} (sniffed from the header)")
    header = next(csv.reader([header_text], delimiter=delimiter), None)
    if not header:
        raise ContractError(f"{path}: empty file (no header row)")
    header[0] = header[0].lstrip("\ufeff")
    header = _unique_header(path, header, known)
    bad_rows: list[pacsv.InvalidRow] = []

    def keep_bad_row(row: pacsv.InvalidRow) -> str:
        bad_rows.append(row)
        return "skip"

    try:
        table = pacsv.read_csv(
            pa.input_stream(str(path), compression="gzip" if _is_gzip(path) else None),
            read_options=pacsv.ReadOptions(
                encoding="utf8" if codec in ("utf-8", "utf-8-sig") else codec,
                column_names=header,
                skip_rows=1,
            ),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, invalid_row_handler=keep_bad_row),
            convert_options=pacsv.ConvertOptions(
                column_types={c: pa.string() for c in header},
                null_values=[""],
                strings_can_be_null=True,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        if isinstance(exc, UnicodeDecodeError) or "UTF8" in str(exc) or "decode" in str(exc):
            _raise_undecodable(path, codec, delimiter, header)
        raise
    if bad_rows:
        row = bad_rows[0]
        number = row.number - 1 if row.number else _row_of_line(path, codec, row.text)
        where = f"row {number}" if number else "a row"
        raise ContractError(
            f"{path}: {where} has {row.actual_columns} fields where the header has "
            f"{row.expected_columns} ({len(bad_rows):,} such row(s)): {row.text[:120]!r}; "
            "check the delimiter and the quoting of values that contain it"
        )
    frame = table.to_pandas()
    hint = delimiter_hint(list(frame.columns))
    if hint:
        notes.append(hint)
    return SourceFrame(frame, notes)


def _row_of_line(path: Path, codec: str, text: str) -> int | None:
    """The data row (1 = first after the header) of a physical line, for messages."""
    with _open_bytes(path) as raw, io.TextIOWrapper(raw, encoding=codec, newline="") as fh:
        for number, line in enumerate(fh):
            if line.rstrip("\r\n") == text:
                return number
    return None


def _all_columns() -> list[str]:
    from data.contracts import CONTRACTS

    return [c for contract in CONTRACTS.values() for c in contract.columns]


def delimiter_hint(columns: list[str]) -> str:
    """A hint when the header is one column that holds other separators."""
    if len(columns) != 1:
        return ""
    seps = [s for s in DELIMITERS if s in columns[0]]
    if not seps:
        return ""
    shown = "TAB" if seps[0] == "\t" else repr(seps[0])
    return (
        f"the header is a single column {columns[0][:60]!r}: is the delimiter {shown}? "
        f"(declare it with --delimiter)"
    )


def _unique_header(path: Path, header: list[str], known: Iterable[str]) -> list[str]:
    """Refuse a contract column named twice; give an empty or repeated other name a unique
    one (`unnamed_7`, `note_2`: reported as unknown columns, kept in quarantined records),
    as spreadsheets leave trailing empty columns behind."""
    wanted = {normalised_column_name(k) for k in known}
    _refuse_duplicate_columns(path, header, lambda name: normalised_column_name(name) in wanted)
    seen: Counter[str] = Counter()
    unique = []
    for i, name in enumerate(header):
        name = name if name.strip() else f"unnamed_{i + 1}"
        seen[name] += 1
        unique.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return unique


def _refuse_duplicate_columns(
    path: Path, header: list[str], refused: Callable[[str], bool] = lambda _name: True
) -> None:
    twice = [name for name, n in Counter(header).items() if n > 1 and refused(name)]
    if twice:
        name = twice[0]
        where = [str(i + 1) for i, h in enumerate(header) if h == name]
        raise ContractError(
            f"{path}: column '{name}' appears {len(where)} times in the header (columns "
            f"{' and '.join(where)}): which one to load is unknowable; rename or drop the copies"
        )


def _raise_undecodable(
    path: Path, codec: str, delimiter: str, header: list[str] | None = None
) -> None:
    """Find the first byte the codec cannot decode and name its row and column."""
    with _open_bytes(path) as fh:
        offset = 0
        for row, line in enumerate(fh):
            if _wide(codec):
                break  # lines of a two- or four-byte text do not split on the newline byte
            try:
                line.decode(codec)
            except UnicodeDecodeError as exc:
                prefix = line[: exc.start].decode(codec, errors="replace")
                fields = next(csv.reader([prefix], delimiter=delimiter), [""])
                column = len(fields) - 1
                if row == 0:
                    where = f"the header (column {column + 1})"
                else:
                    name = header[column] if header and column < len(header) else f"#{column + 1}"
                    where = f"row {row}, column {name}"
                raise ContractError(
                    f"{path}: not {codec} text: byte 0x{line[exc.start]:02X} at {where} "
                    f"(byte {offset + exc.start:,} of the file); save it as UTF-8 or declare "
                    "its encoding (e.g. --encoding cp1252)"
                ) from None
            offset += len(line)
    raise ContractError(f"{path}: not {codec} text (the failing byte could not be located)")


__all__ = [
    "DELIMITERS",
    "SOURCE_SUFFIXES",
    "ReadOptions",
    "SourceFrame",
    "delimiter_hint",
    "read_source",
    "sniff_delimiter",
    "source_suffix",
]
