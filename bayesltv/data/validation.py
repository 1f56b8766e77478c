"""Checks on input tables that raise :class:`~bayesltv.errors.DataValidationError`.

Every check names the column, shows (a few of) the offending values and states the rule,
so that a user can fix the input without reading bayesltv's source.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable

import numpy as np
import pandas as pd

from bayesltv.errors import DataValidationError

_SHOWN = 5


def describe_values(values: Iterable) -> str:
    """Show up to five offending values, and how many there are in all."""
    values = list(values)
    shown = ", ".join(repr(v.item() if hasattr(v, "item") else v) for v in values[:_SHOWN])
    more = f" (and {len(values) - _SHOWN} more)" if len(values) > _SHOWN else ""
    return f"[{shown}]{more}"


def offending_rows(df: pd.DataFrame, mask: np.ndarray | pd.Series) -> str:
    """Describe the index labels of the rows selected by ``mask``."""
    return f"rows {describe_values(df.index[np.asarray(mask)])}"


def require_columns(df: pd.DataFrame, columns: Iterable[str], role: str = "column") -> None:
    """Every named column is present in ``df``."""
    if not isinstance(df, pd.DataFrame):
        raise DataValidationError(
            f"expected a pandas DataFrame, got {type(df).__name__}; rule: input is one table"
        )
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataValidationError(
            f"{role} {describe_values(missing)} not found in the table; rule: every named "
            f"column must exist (available: {describe_values(df.columns)})"
        )


def require_distinct_roles(columns: list[str], reserved: Iterable[str] = ()) -> None:
    """Each column plays one role (cohort, covariate, duration, ...) and none is reserved."""
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        raise DataValidationError(
            f"column(s) {describe_values(repeated)} are named for more than one role; rule: "
            "a column is either the duration, the churn flag, the cohort, the entry, the user "
            "id or a covariate"
        )
    clashes = sorted(set(columns) & set(reserved))
    if clashes:
        raise DataValidationError(
            f"column(s) {describe_values(clashes)} use a name bayesltv reserves; rule: rename "
            f"columns named {describe_values(sorted(reserved))}"
        )


def require_rows(df: pd.DataFrame, what: str) -> None:
    """The table is not empty."""
    if len(df) == 0:
        raise DataValidationError(f"the {what} table has no rows; rule: at least one row")


def require_no_missing(df: pd.DataFrame, columns: Iterable[str]) -> None:
    """No NaN/None in the named columns."""
    for column in columns:
        missing = df[column].isna().to_numpy()
        if missing.any():
            raise DataValidationError(
                f"column {column!r} has {int(missing.sum())} missing value(s) at "
                f"{offending_rows(df, missing)}; rule: no NaN or None"
            )


def as_count(df: pd.DataFrame, column: str) -> np.ndarray:
    """The column as non-negative integers (floats such as 3.0 are accepted)."""
    series = df[column]
    if not (pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)):
        # an object column may still hold only numbers; show just the values that are not
        bad = np.asarray(
            [isinstance(v, bool | np.bool_) or not isinstance(v, numbers.Real) for v in series],
            dtype=bool,
        )
        if bad.any():
            raise DataValidationError(
                f"column {column!r} has non-numeric values "
                f"{describe_values(pd.unique(series.to_numpy()[bad]))} at "
                f"{offending_rows(df, bad)}; rule: a whole number of periods"
            )
    values = series.to_numpy(dtype=float)
    negative = values < 0
    if negative.any():
        raise DataValidationError(
            f"column {column!r} has negative values {describe_values(values[negative])} at "
            f"{offending_rows(df, negative)}; rule: must be >= 0"
        )
    fractional = ~np.isfinite(values) | (values != np.floor(values))
    if fractional.any():
        raise DataValidationError(
            f"column {column!r} has non-integer values {describe_values(values[fractional])} "
            f"at {offending_rows(df, fractional)}; rule: a whole number of periods"
        )
    return values.astype(np.int64)


def as_flag(df: pd.DataFrame, column: str) -> np.ndarray:
    """The column as booleans; accepts bool or 0/1."""
    series = df[column]
    if pd.api.types.is_bool_dtype(series):
        return series.to_numpy(dtype=bool)
    values = series.to_numpy()
    bad = ~np.isin(values, [0, 1])
    if bad.any():
        raise DataValidationError(
            f"column {column!r} has values {describe_values(pd.unique(values[bad]))} at "
            f"{offending_rows(df, bad)}; rule: True/False or 1/0"
        )
    return values.astype(bool)


def require_unique(df: pd.DataFrame, columns: list[str]) -> None:
    """No two rows share the values of ``columns``."""
    duplicated = df.duplicated(subset=columns, keep=False).to_numpy()
    if duplicated.any():
        keys = df.loc[duplicated, columns].drop_duplicates()
        shown = describe_values(keys.itertuples(index=False, name=None))
        raise DataValidationError(
            f"column(s) {columns} have duplicated values {shown}; rule: one row per "
            + ", ".join(columns)
        )


def require_no_empty_levels(df: pd.DataFrame, column: str) -> None:
    """A categorical column declares no level that has no rows."""
    series = df[column]
    if isinstance(series.dtype, pd.CategoricalDtype):
        counts = series.value_counts()
        empty = counts.index[counts.to_numpy() == 0]
        if len(empty):
            raise DataValidationError(
                f"column {column!r} declares level(s) {describe_values(empty)} with no rows; "
                "rule: every group must hold at least one user (drop unused categories with "
                "Series.cat.remove_unused_categories())"
            )
