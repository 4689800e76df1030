"""ARFF loader on hand-written files: missing values, CRLF, comments, quoted names, nominal class."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from data.arff import parse_arff, read_arff

TEXT = (
    "% a comment before the header\r\n"
    "@relation 'tiny-weka.filters'\r\n"
    "\r\n"
    "@attribute Attr1 numeric\r\n"
    "@ATTRIBUTE 'net profit / assets' REAL\r\n"
    "@attribute Attr3 integer\r\n"
    "@attribute class {0,1}\r\n"
    "\r\n"
    "@data\r\n"
    "0.20055,0.37951,3,0\r\n"
    "?,-1.5e-3,?,1\r\n"
    "% a comment inside the data\r\n"
    "1,2, 4,0\r\n"
)


def test_reads_types_missing_values_and_crlf(tmp_path) -> None:
    path = tmp_path / "tiny.arff"
    path.write_bytes(TEXT.encode())
    frame = read_arff(path)
    assert list(frame.columns) == ["Attr1", "net profit / assets", "Attr3", "class"]
    assert frame.shape == (3, 4)
    assert frame["Attr1"].dtype == "float64" and np.isnan(frame.loc[1, "Attr1"])
    assert frame.loc[1, "net profit / assets"] == pytest.approx(-0.0015)
    assert frame["Attr3"].tolist()[0] == 3 and np.isnan(frame.loc[1, "Attr3"])
    assert isinstance(frame["class"].dtype, pd.CategoricalDtype)
    assert frame["class"].cat.categories.tolist() == ["0", "1"]
    assert frame["class"].astype(int).tolist() == [0, 1, 0]


def test_unix_line_ends_and_quoted_nominal_values() -> None:
    text = "@relation r\n@attribute x numeric\n@attribute kind {'a b', c}\n@data\n1,'a b'\n2,c\n"
    frame = parse_arff(text)
    assert frame["kind"].tolist() == ["a b", "c"]
    assert frame["x"].tolist() == [1.0, 2.0]


def test_rejects_undeclared_nominal_values_sparse_rows_and_headerless_text() -> None:
    with pytest.raises(ValueError, match="not declared"):
        parse_arff("@relation r\n@attribute c {0,1}\n@data\n2\n")
    with pytest.raises(ValueError, match="sparse"):
        parse_arff("@relation r\n@attribute x numeric\n@data\n{0 1}\n")
    with pytest.raises(ValueError, match="@data"):
        parse_arff("@relation r\n@attribute x numeric\n")
