"""Master scale: exact band edges, the PD floor, grade 10 only from the default status."""

from __future__ import annotations

import numpy as np
import pytest

from models.master_scale import MASTER_SCALE, MASTER_SCALE_PATH, MasterScale, floor, grade_of

EDGES = [0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08, 0.15]


def test_published_scale_has_ten_grades_floor_and_edges() -> None:
    frame = MASTER_SCALE.scale_frame()
    assert frame["grade"].tolist() == list(range(1, 11))
    assert MASTER_SCALE.pd_floor == 0.0003
    assert list(MASTER_SCALE.pd_upper) == [*EDGES, 1.0]
    assert frame["pd_lower"].tolist()[:9] == [0.0003, *EDGES]
    assert frame.loc[0, "label"] == "1 (minimal risk)"
    assert frame.loc[9, "label"] == "10 (in default)"
    # central PD inside its band, increasing
    inside = (frame["central_pd"] >= frame["pd_lower"]) & (frame["central_pd"] <= frame["pd_upper"])
    assert inside.all()
    assert np.all(np.diff(frame["central_pd"]) > 0)


def test_edges_belong_to_the_worse_grade_exactly() -> None:
    assert grade_of(np.array(EDGES)).tolist() == list(range(2, 10))
    below = np.nextafter(np.array(EDGES), 0)
    assert grade_of(below).tolist() == list(range(1, 9))
    assert grade_of([1.0, 0.9999, 0.15]).tolist() == [9, 9, 9]


def test_floor_and_tiny_pds_are_grade_one() -> None:
    assert floor(np.array([0.0, 1e-9, 0.0003, 0.5, 1.2])).tolist() == [
        0.0003,
        0.0003,
        0.0003,
        0.5,
        1.0,
    ]
    assert grade_of([0.0, 0.0002999, 0.0003, 0.000999]).tolist() == [1, 1, 1, 1]


def test_grade_ten_only_from_the_default_flag() -> None:
    pd_ = np.array([0.0005, 0.5, 0.99])
    assert 10 not in grade_of(pd_)
    assert grade_of(pd_, in_default=np.array([False, True, False])).tolist() == [1, 10, 9]
    with pytest.raises(ValueError, match="one flag per PD"):
        grade_of(pd_, in_default=np.array([True]))


def test_missing_pd_is_refused() -> None:
    with pytest.raises(ValueError, match="missing PD"):
        grade_of([0.01, np.nan])


def test_scale_file_is_the_single_source() -> None:
    assert MasterScale.from_toml(MASTER_SCALE_PATH) == MASTER_SCALE
    assert "| 1 (minimal risk) | 0.03% | 0.10% |" in MASTER_SCALE.to_markdown()


def test_bad_scales_are_refused() -> None:
    with pytest.raises(ValueError, match="increase"):
        MasterScale(0.0003, (0.01, 0.005, 1.0), ("a", "b", "c", "d"))
    with pytest.raises(ValueError, match="floor"):
        MasterScale(0.02, (0.01, 1.0), ("a", "b", "c"))
