"""Arrow key helpers agree with pandas' own definitions on random data."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from data.keys import duplicated, positions

ids = st.one_of(st.none(), st.sampled_from(["a", "b", "c", "d"]))
days = st.one_of(st.none(), st.sampled_from(["2024-01-01", "2024-01-02"]))


@settings(max_examples=150, deadline=None)
@given(rows=st.lists(st.tuples(ids, days), max_size=30))
def test_duplicated_matches_pandas_keep_false(rows):
    frame = pd.DataFrame(rows, columns=["id", "day"]).astype({"id": "str"})
    frame["day"] = pd.to_datetime(frame["day"])
    for key in (["id"], ["id", "day"]):
        expected = frame.duplicated(key, keep=False).to_numpy()
        assert np.array_equal(duplicated(frame, key), expected)


@settings(max_examples=100, deadline=None)
@given(
    keys=st.lists(st.sampled_from(["B1", "B2", "B3", "X"]), max_size=20),
    lookup=st.lists(st.sampled_from(["B1", "B2", "B3"]), unique=True),
)
def test_positions_match_index_get_indexer(keys, lookup):
    expected = pd.Index(lookup, dtype=object).get_indexer(pd.Index(keys, dtype=object))
    assert positions(pd.Series(keys, dtype="str"), pd.Index(lookup)).tolist() == expected.tolist()
