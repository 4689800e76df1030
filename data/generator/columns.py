"""Column encodings of the output frames: fixed-width ids, string columns and dates.

Every frame the generator returns (tables, truth, dirty rows) encodes ids, text and dates the
same way; the columns are built through Arrow buffers, so no per-row Python runs even for
tens of millions of invoices.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from data.generator.config import _NULL_DAY

#: Digits of buyer / policyholder / invoice numbers in their ids ("B0000001", "P000001", ...).
_BUYER_WIDTH = 7
_PH_WIDTH = 6
_INVOICE_WIDTH = 12


def _id_array(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    """Fixed-width ids like "B0000042", built as raw bytes (no per-row Python)."""
    numbers = np.asarray(numbers, dtype=np.int64)
    if len(numbers) and numbers.max() >= 10**width:
        width = len(str(int(numbers.max())))
    pre = np.frombuffer(prefix.encode(), dtype=np.uint8)
    size = len(pre) + width
    buf = np.empty((len(numbers), size), dtype=np.uint8)
    buf[:, : len(pre)] = pre
    rest = numbers.copy()
    for j in range(width - 1, -1, -1):
        buf[:, len(pre) + j] = rest % 10 + 48
        rest //= 10
    offsets = np.arange(len(numbers) + 1, dtype=np.int64) * size
    return pa.Array.from_buffers(
        pa.large_string(), len(numbers), [None, pa.py_buffer(offsets), pa.py_buffer(buf)]
    )


def _id_series(prefix: str, numbers: np.ndarray, width: int) -> pd.Series:
    return pd.Series(pd.array(_id_array(prefix, numbers, width), dtype="str"))


def _str_series(values: np.ndarray) -> pd.Series:
    """A pandas string column from a (small) array of Python strings."""
    return pd.Series(pd.array(pa.array(values, type=pa.large_string()), dtype="str"))


def _take_str(table: tuple[str, ...] | list[str], codes: np.ndarray) -> pd.Series:
    """Decode integer codes into a string column through a small dictionary."""
    dictionary = pa.array(list(table), type=pa.large_string())
    return pd.Series(pd.array(dictionary.take(np.asarray(codes, dtype=np.int32)), dtype="str"))


def _const_str(value: str, n: int) -> pd.Series:
    return _take_str([value], np.zeros(n, dtype=np.int32))


def _dates(days: np.ndarray) -> np.ndarray:
    """Day numbers (with _NULL_DAY for missing) -> datetime64[s] with NaT."""
    days = np.asarray(days, dtype=np.int64)
    out = (days * 86400).astype("datetime64[s]")
    out[days == _NULL_DAY] = np.datetime64("NaT")
    return out
