"""The master scale: one published table that maps a 12-month PD to a rating grade.

Why one table: underwriters, limit rules and validation all speak in grades; if each read
its own thresholds, a buyer could be "grade 6" in one report and "grade 7" in another. The
table lives in `config/master_scale.toml` and is loaded once here as `MASTER_SCALE`.

Conventions (tested at the exact edges):
- grades 1 (best) .. 9 (worst performing) are half-open PD bands [pd_lower, pd_upper); a
  PD equal to an upper edge belongs to the next, worse grade; PD = 100 % is grade 9;
- every PD is floored at `pd_floor` (0.03 %) before grading, so grade 1 starts there;
- grade 10 is "in default": given by the default status (`in_default=True`), never by a PD;
- the central PD of a band is the geometric mean of its edges (bands are log-spaced).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from config import packaged

#: The published scale file (versioned with the code; logged with every trained model).
MASTER_SCALE_PATH = packaged("master_scale.toml")


@dataclass(frozen=True)
class MasterScale:
    """PD bands of the performing grades, the PD floor and the grade names."""

    pd_floor: float
    pd_upper: tuple[float, ...]  # upper edges of grades 1..9, increasing, last = 1.0
    names: tuple[str, ...]  # names of grades 1..10 (10 = in default)
    version: str = ""

    def __post_init__(self) -> None:
        upper = np.asarray(self.pd_upper, dtype=float)
        if len(self.names) != len(upper) + 1:
            raise ValueError("names must cover every performing grade plus the default grade")
        if not 0 < self.pd_floor < upper[0]:
            raise ValueError("pd_floor must be positive and below the first band's upper edge")
        if np.any(np.diff(upper) <= 0) or upper[-1] != 1.0:
            raise ValueError("band upper edges must increase strictly and end at 1.0")

    @classmethod
    def from_toml(cls, path: str | Path = MASTER_SCALE_PATH) -> MasterScale:
        """Read the scale file (see config/master_scale.toml for the layout)."""
        with open(path, "rb") as handle:
            config = tomllib.load(handle)
        grades = sorted(config["grade"], key=lambda g: g["grade"])
        performing = [g for g in grades if not g.get("default", False)]
        defaulted = [g for g in grades if g.get("default", False)]
        if len(defaulted) != 1 or defaulted[0]["grade"] != len(performing) + 1:
            raise ValueError("the scale needs exactly one default grade, numbered last")
        if [g["grade"] for g in performing] != list(range(1, len(performing) + 1)):
            raise ValueError("performing grades must be numbered 1..n without gaps")
        return cls(
            pd_floor=float(config["pd_floor"]),
            pd_upper=tuple(float(g["pd_upper"]) for g in performing),
            names=tuple(str(g["name"]) for g in grades),
            version=str(config.get("version", "")),
        )

    @property
    def n_performing(self) -> int:
        return len(self.pd_upper)

    @property
    def default_grade(self) -> int:
        return self.n_performing + 1

    @property
    def grades(self) -> list[int]:
        return list(range(1, self.default_grade + 1))

    @property
    def pd_lower(self) -> tuple[float, ...]:
        return (self.pd_floor, *self.pd_upper[:-1])

    def floor(self, pd_: np.ndarray | pd.Series | float) -> np.ndarray:
        """PD floored at the scale floor and capped at 100 % (as float64)."""
        return np.clip(np.asarray(pd_, dtype="float64"), self.pd_floor, 1.0)

    def grade_of(
        self, pd_: np.ndarray | pd.Series | float, in_default: np.ndarray | pd.Series | None = None
    ) -> np.ndarray:
        """Grade 1..9 of each PD (after the floor); 10 where `in_default` is true.

        Missing PDs raise: a buyer without a PD must be handled explicitly, not graded 1.
        """
        values = np.atleast_1d(np.asarray(pd_, dtype="float64"))
        if np.isnan(values).any():
            raise ValueError("cannot grade a missing PD")
        floored = self.floor(values)
        # side="right": a PD equal to an upper edge goes to the next grade.
        grades = np.searchsorted(np.asarray(self.pd_upper[:-1]), floored, side="right") + 1
        grades = grades.astype(np.int64)
        if in_default is not None:
            flag = np.atleast_1d(np.asarray(pd.Series(in_default).fillna(False), dtype=bool))
            if flag.shape != grades.shape:
                raise ValueError("in_default must have one flag per PD")
            grades[flag] = self.default_grade
        return grades

    def central_pd(self) -> np.ndarray:
        """Representative PD of each grade 1..10 (geometric mid-band; 100 % in default)."""
        lower, upper = np.asarray(self.pd_lower), np.asarray(self.pd_upper)
        return np.append(np.sqrt(lower * upper), 1.0)

    def label(self, grade: int) -> str:
        return f"{grade} ({self.names[grade - 1]})"

    def scale_frame(self) -> pd.DataFrame:
        """The scale as a table: grade, label, pd_lower, pd_upper, central_pd."""
        return pd.DataFrame(
            {
                "grade": self.grades,
                "label": [self.label(g) for g in self.grades],
                "pd_lower": [*self.pd_lower, 1.0],
                "pd_upper": [*self.pd_upper, 1.0],
                "central_pd": self.central_pd(),
            }
        )

    def to_markdown(self) -> str:
        """The scale as a Markdown table (for the validation report and docs)."""
        rows = ["| grade | PD from | PD below | central PD |", "|---|---:|---:|---:|"]
        for row in self.scale_frame().itertuples(index=False):
            if row.grade == self.default_grade:
                rows.append(f"| {row.label} | default | | 100 % |")
            else:
                upper = "100 % (incl.)" if row.pd_upper == 1.0 else f"{row.pd_upper:.2%}"
                rows.append(
                    f"| {row.label} | {row.pd_lower:.2%} | {upper} | {row.central_pd:.2%} |"
                )
        return "\n".join(rows)


MASTER_SCALE = MasterScale.from_toml()


def grade_of(
    pd_: np.ndarray | pd.Series | float, in_default: np.ndarray | pd.Series | None = None
) -> np.ndarray:
    """Grades on the published master scale (see `MasterScale.grade_of`)."""
    return MASTER_SCALE.grade_of(pd_, in_default)


def floor(pd_: np.ndarray | pd.Series | float) -> np.ndarray:
    """PD floored at the published scale's floor (see `MasterScale.floor`)."""
    return MASTER_SCALE.floor(pd_)


def scale_frame() -> pd.DataFrame:
    """The published master scale as a table (see `MasterScale.scale_frame`)."""
    return MASTER_SCALE.scale_frame()
