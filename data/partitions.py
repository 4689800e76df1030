"""Buyer-hash partitions: split the lake's tables so each buyer's rows land in one partition.

Why: the daily rescoring is per buyer (features, score, the limits on it, its alerts), so a
portfolio can be processed in independent slices, as coarse tasks on local threads or on a
Dask cluster. A buyer's partition is a stable hash of its id (the same on every machine,
process and day), so partition k of today holds the same buyers as partition k yesterday.

Tables keyed by buyer (buyers, financials, invoices, events, limits) are split; reference
tables (country_risk, policies) are small and go whole to every partition. Rows whose buyer
is unknown to the buyers table are kept too (hashed on their own id): nothing is dropped.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from data.keys import positions

#: Tables split by buyer_id; every other table is copied to each partition.
BUYER_TABLES = ("buyers", "financials", "invoices", "events", "limits")


def buyer_partition(buyer_ids: pd.Series | np.ndarray, partitions: int) -> np.ndarray:
    """Partition number (0 .. partitions-1) of each buyer id: a stable 64-bit hash modulo n.

    pandas' `hash_array` uses a fixed key, so the result does not change between runs,
    processes or machines (unlike Python's salted `hash`).
    """
    if partitions < 1:
        raise ValueError(f"partitions must be at least 1, got {partitions}")
    values = np.asarray(pd.Series(buyer_ids).astype("str"), dtype=object)
    return (pd.util.hash_array(values, categorize=True) % np.uint64(partitions)).astype(np.int64)


def _row_partitions(
    frame: pd.DataFrame, buyers: pd.Series, buyer_parts: np.ndarray, partitions: int
) -> np.ndarray:
    """Partition of each row of a buyer-keyed table (a lookup in the buyers' partitions)."""
    found = positions(frame["buyer_id"], buyers)
    parts = np.where(found >= 0, buyer_parts[np.maximum(found, 0)], -1)
    unknown = parts < 0
    if unknown.any():
        parts[unknown] = buyer_partition(frame["buyer_id"].to_numpy()[unknown], partitions)
    return parts


def split_by_buyer(
    tables: dict[str, pd.DataFrame], partitions: int
) -> list[dict[str, pd.DataFrame]]:
    """`partitions` dicts of the same tables, each holding the rows of its buyers.

    The union of the partitions is exactly the input (row order kept within a partition);
    with one partition the input tables are returned as they are.
    """
    if partitions == 1:
        return [dict(tables)]
    buyers = tables["buyers"]["buyer_id"]
    buyer_parts = buyer_partition(buyers.to_numpy(), partitions)
    out: list[dict[str, pd.DataFrame]] = [{} for _ in range(partitions)]
    for name, frame in tables.items():
        if name not in BUYER_TABLES:
            for part in out:
                part[name] = frame
            continue
        parts = (
            buyer_parts
            if name == "buyers"
            else _row_partitions(frame, buyers, buyer_parts, partitions)
        )
        order = np.argsort(parts, kind="stable")
        bounds = np.searchsorted(parts[order], np.arange(partitions + 1))
        for k in range(partitions):
            out[k][name] = frame.take(order[bounds[k] : bounds[k + 1]]).reset_index(drop=True)
    return out


def split_frame_by_buyer(frame: pd.DataFrame | None, partitions: int) -> list[pd.DataFrame | None]:
    """One buyer-keyed frame (e.g. the previous run's scores) cut like `split_by_buyer`."""
    if frame is None:
        return [None] * partitions
    if partitions == 1:
        return [frame]
    parts = buyer_partition(frame["buyer_id"].to_numpy(), partitions)
    return [frame.loc[parts == k].reset_index(drop=True) for k in range(partitions)]
