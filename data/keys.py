"""Fast key operations on text ids (buyer, policyholder, invoice) with Arrow.

Tens of millions of invoice rows are keyed by text ids. Arrow's kernels sort and look them
up several times faster than pandas' hashing of the same strings, so every module that
matches or deduplicates ids goes through these functions.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


def text_array(values: pd.Series) -> pa.Array:
    """The column as one Arrow array (pandas 3 text columns already are Arrow underneath)."""
    arr = pa.array(values, from_pandas=True)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return arr.cast(pa.large_string()) if pa.types.is_string(arr.type) else arr


def duplicated(frame: pd.DataFrame, key: list[str]) -> np.ndarray:
    """Rows whose key occurs more than once (all copies, missing values compare equal).

    Sort-based: sorting tens of millions of text keys with Arrow is several times faster
    than hashing them, and neighbours in sorted order share a key exactly when duplicated.
    """
    n = len(frame)
    if n < 2:
        return np.zeros(n, dtype=bool)
    table = pa.table({k: text_array(frame[k]) for k in key})
    order = pc.sort_indices(table, sort_keys=[(k, "ascending") for k in key])
    ordered = table.take(order)
    same = np.ones(n - 1, dtype=bool)
    for k in key:
        left, right = ordered[k].slice(0, n - 1), ordered[k].slice(1)
        equal = pc.or_kleene(
            pc.fill_null(pc.equal(left, right), False),
            pc.and_(pc.is_null(left), pc.is_null(right)),
        )
        same &= equal.to_numpy(zero_copy_only=False)
    in_sorted = np.zeros(n, dtype=bool)
    in_sorted[:-1] |= same
    in_sorted[1:] |= same
    dup = np.zeros(n, dtype=bool)
    dup[order.to_numpy()] = in_sorted
    return dup


def positions(
    keys: pd.Series | pd.Index | np.ndarray, lookup: Sequence | pd.Index | pd.Series
) -> np.ndarray:
    """Position of each key in `lookup` (whose values are unique), -1 when absent or missing."""
    value_set = text_array(pd.Series(np.asarray(lookup, dtype=object)).astype("str"))
    found = pc.index_in(text_array(pd.Series(keys).astype("str")), value_set=value_set)
    return np.asarray(found.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)
