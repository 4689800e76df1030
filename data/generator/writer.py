"""Writing a generated portfolio to disk: input tables as CSV or Parquet, truth as Parquet.

Files are plain (no pandas metadata, dates as ``date32`` or ``YYYY-MM-DD``) and written
atomically, so the ingestion that reads them never sees a half-written or tool-specific file.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Literal

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from data.generator.config import INPUT_TABLES, TRUTH_TABLES, Portfolio


def write_portfolio(
    portfolio: Portfolio, out_dir: Path, fmt: Literal["parquet", "csv"] = "parquet"
) -> list[Path]:
    """Write every input table as ``<table>.<fmt>`` and the truth as ``_truth/<name>.parquet``.

    Each file is written to a temporary name in its directory and renamed into place, so a
    reader never sees a half-written file. Dates are written as date32 (Parquet) or
    ``YYYY-MM-DD`` (CSV); rows keep their order, so ``dirty_rows.row_number`` is the 1-based
    data row of the file.
    """
    if fmt not in ("parquet", "csv"):
        raise ValueError(f"unknown format {fmt!r}: use 'parquet' or 'csv'")
    out_dir = Path(out_dir)
    truth_dir = out_dir / "_truth"
    truth_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name in INPUT_TABLES:
        path = out_dir / f"{name}.{fmt}"
        _atomic_write(_to_arrow(portfolio.tables[name]), path, fmt)
        written.append(path)
    for name in TRUTH_TABLES:
        path = truth_dir / f"{name}.parquet"
        _atomic_write(_to_arrow(portfolio.truth[name]), path, "parquet")
        written.append(path)
    return written


def _to_arrow(frame: pd.DataFrame) -> pa.Table:
    """pandas -> Arrow with dates as date32 and no pandas metadata (plain, tool-neutral files)."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    cols = []
    for col in table.columns:
        cols.append(col.cast(pa.date32()) if pa.types.is_timestamp(col.type) else col)
    return pa.Table.from_arrays(cols, names=table.column_names)


def _atomic_write(table: pa.Table, path: Path, fmt: str) -> None:
    """Write to a temporary file in the target directory, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        if fmt == "parquet":
            pq.write_table(table, tmp, compression="zstd")
        else:
            pacsv.write_csv(table, tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
