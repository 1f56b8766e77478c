"""Groups (cohorts, segments) and categorical/numeric covariates shared by all data types.

A *group* is the level at which ``cohort_prior`` pools information: an acquisition cohort
(ordered, so a random walk makes sense) or a segment (unordered). Covariates enter the
model through a design matrix: categorical columns are one-hot encoded against their first
level (the reference), numeric columns enter as they are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bayesltv.data.validation import describe_values, require_no_empty_levels
from bayesltv.errors import DataValidationError

SINGLE_GROUP = "all"
#: Column of a cells table holding each cell's integer group code.
GROUP_CODE = "group_code"


@dataclass(frozen=True)
class Groups:
    """The group labels of a data set, in model order.

    Attributes
    ----------
    column : str or None
        The column the labels came from (``None``: every user is in one group ``"all"``).
    labels : pandas.Index
        Group labels in order: sorted for ordered cohorts, first appearance otherwise.
    ordered : bool
        Whether the labels are ordered in time (cohorts), which the random-walk prior needs.
    gaps : numpy.ndarray
        Distance from each group to the previous one (first entry 0). Numbers and pandas
        Periods give their difference (a missing monthly cohort gives a gap of 2), datetimes
        are measured in calendar months, anything else counts 1 per step.
    """

    column: str | None
    labels: pd.Index
    ordered: bool
    gaps: np.ndarray = field(repr=False)

    @property
    def size(self) -> int:
        return len(self.labels)

    def codes(self, values: pd.Series | None) -> np.ndarray:
        """Integer position of each value in :attr:`labels`; unknown labels are an error."""
        if values is None:
            return np.zeros(0, dtype=np.int64)
        codes = self.labels.get_indexer(values)
        unknown = codes < 0
        if unknown.any():
            raise DataValidationError(
                f"column {self.column!r} has unknown group(s) "
                f"{describe_values(pd.unique(np.asarray(values)[unknown]))}; rule: groups must "
                f"be among those the model was fitted on {describe_values(self.labels)}"
            )
        return codes.astype(np.int64)

    @classmethod
    def single(cls) -> Groups:
        return cls(None, pd.Index([SINGLE_GROUP], name="group"), False, np.zeros(1))

    @classmethod
    def from_column(cls, df: pd.DataFrame, column: str | None, ordered: bool) -> Groups:
        """Read the labels of ``column``; ``ordered`` marks acquisition cohorts."""
        if column is None:
            return cls.single()
        require_no_empty_levels(df, column)
        series = df[column]
        if isinstance(series.dtype, pd.CategoricalDtype):
            labels = pd.Index(series.cat.categories)
            ordered = ordered or bool(series.cat.ordered)
        elif ordered:
            labels = pd.Index(np.sort(series.unique()))
        else:
            labels = pd.Index(series.unique())
        labels = labels.rename("group")
        return cls(column, labels, ordered, _gaps(labels) if ordered else np.ones(len(labels)))


def _gaps(labels: pd.Index) -> np.ndarray:
    """Distance between consecutive ordered cohort labels (first entry 0)."""
    if len(labels) == 0:
        return np.zeros(0)
    if isinstance(labels, pd.PeriodIndex):
        steps = np.diff(labels.asi8).astype(float)
    elif isinstance(labels, pd.DatetimeIndex):
        months = labels.year * 12 + labels.month
        steps = np.diff(np.asarray(months)).astype(float)
    elif pd.api.types.is_numeric_dtype(labels) and not pd.api.types.is_bool_dtype(labels):
        steps = np.diff(labels.to_numpy(dtype=float))
    else:
        steps = np.ones(len(labels) - 1)
    if (steps <= 0).any():
        raise DataValidationError(
            f"cohort labels {describe_values(labels)} give non-positive gaps "
            f"{describe_values(steps[steps <= 0])}; rule: cohorts must be distinct and ordered"
        )
    return np.concatenate([[0.0], steps])


@dataclass(frozen=True)
class CovariateEncoding:
    """How covariate columns become the columns of a design matrix.

    Categorical columns (object, string, category, bool) get one indicator per non-reference
    level, named ``"column[level]"``; numeric columns keep their name and values.
    """

    categorical: Mapping[str, pd.Index]
    numeric: tuple[str, ...]

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self.categorical) + self.numeric

    @property
    def features(self) -> list[str]:
        names = [
            f"{col}[{level}]" for col, levels in self.categorical.items() for level in levels[1:]
        ]
        return names + list(self.numeric)

    @property
    def aggregatable(self) -> bool:
        """Whether users can be collapsed to sufficient statistics (no numeric covariates)."""
        return not self.numeric

    @classmethod
    def from_frame(cls, df: pd.DataFrame, columns: Sequence[str]) -> CovariateEncoding:
        categorical: dict[str, pd.Index] = {}
        numeric: list[str] = []
        for column in columns:
            series = df[column]
            if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
                values = series.to_numpy(dtype=float)
                infinite = np.isinf(values)
                if infinite.any():
                    raise DataValidationError(
                        f"column {column!r} has infinite values "
                        f"{describe_values(values[infinite])}; rule: numeric covariates are finite"
                    )
                numeric.append(column)
                continue
            require_no_empty_levels(df, column)
            if isinstance(series.dtype, pd.CategoricalDtype):
                levels = pd.Index(series.cat.categories)
            else:
                levels = pd.Index(pd.unique(series)).sort_values()
            categorical[column] = levels
        return cls(categorical, tuple(numeric))

    def design(self, df: pd.DataFrame) -> np.ndarray:
        """Design matrix (rows of ``df`` × :attr:`features`); unknown levels are an error."""
        blocks = []
        for column, levels in self.categorical.items():
            codes = levels.get_indexer(df[column])
            unknown = codes < 0
            if unknown.any():
                raise DataValidationError(
                    f"column {column!r} has unknown level(s) "
                    f"{describe_values(pd.unique(df[column].to_numpy()[unknown]))}; rule: "
                    f"levels must be among those seen when fitting {describe_values(levels)}"
                )
            blocks.append(codes[:, None] == np.arange(1, len(levels))[None, :])
        for column in self.numeric:
            blocks.append(df[column].to_numpy(dtype=float)[:, None])
        if not blocks:
            return np.zeros((len(df), 0))
        return np.hstack(blocks).astype(float)

    def reference(self) -> dict:
        """Covariate values of the baseline: reference levels, and 0 for numeric columns."""
        values: dict = {column: levels[0] for column, levels in self.categorical.items()}
        values.update({column: 0.0 for column in self.numeric})
        return values

    def design_for(self, covariates: Mapping | None) -> np.ndarray:
        """One design row for the given covariate values (missing ones: the baseline)."""
        values = self.reference()
        unknown = set(covariates or {}) - set(values)
        if unknown:
            raise DataValidationError(
                f"covariate(s) {describe_values(sorted(unknown))} were not in the fitted model; "
                f"rule: use the model's covariates {describe_values(self.columns)}"
            )
        values.update(covariates or {})
        return self.design(pd.DataFrame([values]))[0]


def make_cells(
    df: pd.DataFrame, groups: Groups, group_codes: np.ndarray, encoding: CovariateEncoding
) -> tuple[pd.DataFrame, np.ndarray]:
    """Unique (group, covariates) combinations and the cell of every row of ``df``.

    Rows sharing a cell share the model's parameters. Categorical covariates collapse rows
    into few cells; numeric covariates make every row its own cell.
    """
    keys = pd.DataFrame({GROUP_CODE: group_codes}, index=df.index)
    for column in encoding.columns:
        keys[column] = df[column].to_numpy()
    if encoding.aggregatable:
        cells = keys.drop_duplicates().sort_values(list(keys.columns)).reset_index(drop=True)
        cell_of_user = pd.MultiIndex.from_frame(cells).get_indexer(pd.MultiIndex.from_frame(keys))
    else:
        cell_of_user = np.arange(len(df))
        cells = keys.reset_index(drop=True)
    cells.index.name = "cell"
    if groups.column is not None:
        cells.insert(1, groups.column, groups.labels[cells[GROUP_CODE].to_numpy()])
    return cells, np.asarray(cell_of_user, dtype=np.int64)
