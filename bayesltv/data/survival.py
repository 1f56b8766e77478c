r"""Validated survival data, collapsed to sufficient statistics.

Users who share a *cell* (the same group and the same categorical covariate values) share
the churn factory Beta(α, β), so their log-likelihood only needs three counts per period
:math:`t` (lifelines' convention: ``duration`` counts completed periods; a user who churned
has :math:`T = d`, a censored user :math:`T > d`, and a user first seen after surviving
``entry`` :math:`= e` periods is left-truncated):

.. math::

    \log L_{\text{cell}} = \sum_t \Big[\, c_t \log P(T = t) + r_t \log S(t) - e_t \log S(t) \Big]

with :math:`c_t` users churned at :math:`t`, :math:`r_t` censored at :math:`t` and
:math:`e_t` entered at :math:`t`. Fitting therefore costs O(cells × periods) whatever the
number of users. Numeric per-user covariates make every user its own cell: the cost is then
O(users), which is documented and allowed.

pymc-marketing's ``ShiftedBetaGeoModel`` columns ``recency``/``T`` are off by one from this
for active users: it scores ``recency == T`` as censored with :math:`P(T_u \ge T) = S(T-1)`,
so an active user there has ``duration = T - 1`` here, while a churned user keeps
``duration = recency``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bayesltv.data.groups import GROUP_CODE, CovariateEncoding, Groups, make_cells
from bayesltv.data.validation import (
    as_count,
    as_flag,
    describe_values,
    offending_rows,
    require_columns,
    require_distinct_roles,
    require_no_missing,
    require_rows,
    require_unique,
)
from bayesltv.errors import DataValidationError

COUNT_COLUMNS = ("churned", "censored", "entered")


@dataclass(frozen=True)
class SurvivalData:
    """Survival observations ready for :class:`~bayesltv.BetaGeometric`.

    Build it with :meth:`from_users` (one row per user) or :meth:`from_survivors` (cohort
    survivor tables). Do not call the constructor directly.

    Attributes
    ----------
    groups : Groups
        Cohort or segment labels (one group ``"all"`` when none was given).
    encoding : CovariateEncoding
        How covariates enter the design matrix.
    cells : pandas.DataFrame
        One row per cell (users sharing α, β): ``group_code`` (integer position of the
        group), the group label column and covariate columns.
    counts : pandas.DataFrame
        Sufficient statistics: ``cell``, ``period`` and the number of users ``churned``,
        ``censored`` and ``entered`` at that period (rows with all three zero are absent).
    users : pandas.DataFrame or None
        Per-user ``cell``, ``duration``, ``churned``, ``entry`` (index: user id), kept for
        scoring individual users; ``None`` for survivor tables.
    """

    groups: Groups
    encoding: CovariateEncoding
    cells: pd.DataFrame
    counts: pd.DataFrame
    users: pd.DataFrame | None

    # -- constructors -----------------------------------------------------------------

    @classmethod
    def from_users(
        cls,
        df: pd.DataFrame,
        duration: str,
        churned: str,
        cohort: str | None = None,
        entry: str | None = None,
        covariates: Sequence[str] = (),
        user: str | None = None,
    ) -> SurvivalData:
        """Read one row per user.

        Parameters
        ----------
        df : pandas.DataFrame
            The users.
        duration : str
            Completed periods observed: the churn period if ``churned``, else the number of
            periods survived so far (right-censored). Whole numbers ≥ 0; ≥ 1 when churned.
        churned : str
            True/1 if the user churned at ``duration``, False/0 if still active.
        cohort : str, optional
            Acquisition cohort (ordered: numbers, dates or pandas Periods; strings are
            ordered alphabetically with a gap of 1 between neighbours).
        entry : str, optional
            Periods already survived when the user was first observed (left truncation),
            ``0 <= entry <= duration`` and ``entry < duration`` for churned users.
        covariates : sequence of str
            Categorical columns (aggregated) and/or numeric columns (one cell per user).
        user : str, optional
            User identifier; must be unique. Defaults to the table's index.
        """
        if isinstance(covariates, str):
            covariates = [covariates]
        named = [duration, churned, *covariates]
        named += [c for c in (cohort, entry, user) if c is not None]
        require_distinct_roles(named, reserved=(GROUP_CODE,))
        require_columns(df, named)
        require_rows(df, "users")
        require_no_missing(df, named)
        if user is not None:
            require_unique(df, [user])
        elif df.index.has_duplicates:
            duplicated = df.index.duplicated(keep=False)
            raise DataValidationError(
                "the table's index (the user id; pass user= to use a column) has duplicated "
                f"values {describe_values(df.index[duplicated].unique())}; rule: one row per user"
            )

        durations = as_count(df, duration)
        churn_flags = as_flag(df, churned)
        entries = as_count(df, entry) if entry is not None else np.zeros(len(df), np.int64)

        churned_at_zero = churn_flags & (durations == 0)
        if churned_at_zero.any():
            raise DataValidationError(
                f"column {duration!r} is 0 for churned users at "
                f"{offending_rows(df, churned_at_zero)}; rule: a user churns at period 1 or "
                "later (duration counts completed periods; churn ends period >= 1)"
            )
        if entry is not None:
            late = entries > durations
            if late.any():
                raise DataValidationError(
                    f"column {entry!r} exceeds {duration!r} at {offending_rows(df, late)} "
                    f"(entry values {describe_values(entries[late])}); rule: entry <= duration"
                )
            churned_on_entry = churn_flags & (entries == durations)
            if churned_on_entry.any():
                raise DataValidationError(
                    f"column {entry!r} equals {duration!r} for churned users at "
                    f"{offending_rows(df, churned_on_entry)} (entry values "
                    f"{describe_values(entries[churned_on_entry])}); rule: a churned user must "
                    "churn after entry (entry < duration)"
                )

        groups = Groups.from_column(df, cohort, ordered=True)
        encoding = CovariateEncoding.from_frame(df, covariates)
        group_codes = (
            groups.codes(df[cohort]) if cohort is not None else np.zeros(len(df), np.int64)
        )
        cells, cell_of_user = make_cells(df, groups, group_codes, encoding)
        counts = _counts(cell_of_user, durations, churn_flags, entries)
        index = pd.Index(df[user] if user is not None else df.index, name=user or "user")
        users = pd.DataFrame(
            {"cell": cell_of_user, "duration": durations, "churned": churn_flags, "entry": entries},
            index=index,
        )
        return cls(groups, encoding, cells, counts, users)

    @classmethod
    def from_survivors(
        cls,
        table: pd.DataFrame,
        survivors: str,
        period: str,
        group: str | None = None,
    ) -> SurvivalData:
        """Read survivor tables: how many of a group's users are still active at each period.

        Each group's periods must be consecutive whole numbers. The first row gives the
        group's size; a group whose table starts after period 0 is left-truncated there.
        Users still active at a group's last period are right-censored there.

        Parameters
        ----------
        table : pandas.DataFrame
            Long table, one row per (group, period).
        survivors : str
            Number of users still active; must not increase with the period.
        period : str
            Period number (whole numbers ≥ 0).
        group : str, optional
            Group (segment or cohort) column; one group when omitted.
        """
        named = [survivors, period] + ([group] if group is not None else [])
        require_columns(table, named)
        require_rows(table, "survivors")
        require_no_missing(table, named)
        require_unique(table, named[1:])
        periods = as_count(table, period)
        alive = as_count(table, survivors)

        groups = Groups.from_column(table, group, ordered=False)
        codes = groups.codes(table[group]) if group is not None else np.zeros(len(table), np.int64)
        frames = []
        for code, label in enumerate(groups.labels):
            rows = np.flatnonzero(codes == code)
            rows = rows[np.argsort(periods[rows], kind="stable")]
            frames.append(
                _survivor_counts(table, rows, periods, alive, code, label, survivors, period)
            )
        counts = pd.concat(frames, ignore_index=True)
        cells = pd.DataFrame(
            {GROUP_CODE: np.arange(groups.size)}, index=pd.RangeIndex(groups.size, name="cell")
        )
        if group is not None:
            cells[group] = groups.labels
        return cls(groups, CovariateEncoding({}, ()), cells, counts, users=None)

    # -- derived quantities -----------------------------------------------------------

    @property
    def n_users(self) -> int:
        return int(self.counts["entered"].sum())

    @property
    def n_cells(self) -> int:
        return len(self.cells)

    @property
    def max_period(self) -> int:
        return int(self.counts["period"].max())

    def with_covariates(self, columns: Sequence[str]) -> SurvivalData:
        """The same users with only the given covariates, re-collapsed to fewer cells."""
        columns = list(columns)
        unknown = [c for c in columns if c not in self.encoding.columns]
        if unknown:
            raise DataValidationError(
                f"covariate(s) {describe_values(unknown)} are not in the data; rule: a model's "
                f"covariates must be among the data's {describe_values(self.encoding.columns)}"
            )
        if columns == list(self.encoding.columns):
            return self
        encoding = CovariateEncoding(
            {c: levels for c, levels in self.encoding.categorical.items() if c in columns},
            tuple(c for c in self.encoding.numeric if c in columns),
        )
        keep = [c for c in self.cells.columns if c not in self.encoding.columns or c in columns]
        if encoding.aggregatable:
            cells = self.cells[keep].drop_duplicates().reset_index(drop=True)
            cells.index.name = "cell"
            new_cell = pd.MultiIndex.from_frame(cells).get_indexer(
                pd.MultiIndex.from_frame(self.cells[keep])
            )
        else:
            cells, new_cell = self.cells[keep], np.arange(self.n_cells)
        counts = (
            self.counts.assign(cell=new_cell[self.counts["cell"].to_numpy()])
            .groupby(["cell", "period"], as_index=False)[list(COUNT_COLUMNS)]
            .sum()
        )
        users = None
        if self.users is not None:
            users = self.users.assign(cell=new_cell[self.users["cell"].to_numpy()])
        return SurvivalData(self.groups, encoding, cells, counts, users)

    def design(self) -> np.ndarray:
        """Design matrix of the cells (cells × ``encoding.features``)."""
        return self.encoding.design(self.cells)

    def at_risk(self) -> pd.DataFrame:
        """Users at risk and users churned per group and period (a life table).

        A user is at risk at period ``t`` when ``entry < t <= duration``.
        """
        by_group = self.counts.assign(group=self.cells[GROUP_CODE].to_numpy()[self.counts["cell"]])
        table = by_group.groupby(["group", "period"])[list(COUNT_COLUMNS)].sum()
        frames = []
        for code, label in enumerate(self.groups.labels):
            counts = table.loc[code].reindex(range(self.max_period + 1), fill_value=0)
            entered_before = counts["entered"].cumsum().shift(1, fill_value=0)
            left_before = (counts["churned"] + counts["censored"]).cumsum().shift(1, fill_value=0)
            frames.append(
                pd.DataFrame(
                    {
                        "group": label,
                        "period": counts.index,
                        "at_risk": (entered_before - left_before).to_numpy(),
                        "churned": counts["churned"].to_numpy(),
                    }
                )
            )
        return pd.concat(frames, ignore_index=True).query("period >= 1")

    def observed_survival(self) -> pd.DataFrame:
        """Kaplan–Meier survival per group (rows: groups; columns: periods 0..last).

        With no left truncation and no censoring before the last period this is the share of
        each group still active. Periods after a group's last observation are NaN.
        """
        life = self.at_risk()
        life = life[life["at_risk"] > 0]
        hazard = life["churned"] / life["at_risk"]
        survival = (1 - hazard).groupby(life["group"], sort=False).cumprod()
        table = (
            life.assign(survival=survival)
            .pivot(index="group", columns="period", values="survival")
            .reindex(self.groups.labels)
        )
        table.insert(0, 0, 1.0)
        table.columns.name = "period"
        return table


def _counts(
    cell: np.ndarray, duration: np.ndarray, churned: np.ndarray, entry: np.ndarray
) -> pd.DataFrame:
    """Collapse users to (cell, period) counts of churn, censoring and entry."""
    width = int(max(duration.max(), entry.max())) + 1
    keys = np.concatenate([cell * width + duration, cell * width + entry])
    kinds = np.concatenate([np.where(churned, 0, 1), np.full(len(entry), 2)])
    unique_keys, row = np.unique(keys, return_inverse=True)
    counts = np.zeros((len(unique_keys), 3), dtype=np.int64)
    np.add.at(counts, (row, kinds), 1)
    frame = pd.DataFrame(counts, columns=list(COUNT_COLUMNS))
    frame.insert(0, "period", unique_keys % width)
    frame.insert(0, "cell", unique_keys // width)
    return frame


def _survivor_counts(table, rows, periods, alive, code, label, survivors, period) -> pd.DataFrame:
    """Counts of one group's survivor curve, with the checks that curve must pass."""
    p, s = periods[rows], alive[rows]
    gaps = np.diff(p) != 1
    if gaps.any():
        raise DataValidationError(
            f"column {period!r} of group {label!r} jumps from {p[:-1][gaps][0]} to "
            f"{p[1:][gaps][0]}; rule: each group's periods are consecutive whole numbers"
        )
    increases = np.diff(s) > 0
    if increases.any():
        at = np.flatnonzero(increases)[0]
        raise DataValidationError(
            f"column {survivors!r} of group {label!r} increases from {s[at]} at {period} "
            f"{p[at]} to {s[at + 1]} at {period} {p[at + 1]}; rule: survivors never increase"
        )
    if s[0] == 0:
        raise DataValidationError(
            f"column {survivors!r} of group {label!r} is 0 at its first period {p[0]}; rule: "
            "every group must hold at least one user"
        )
    frame = pd.DataFrame(
        {
            "cell": code,
            "period": p,
            "churned": np.concatenate([[0], -np.diff(s)]),
            "censored": np.zeros(len(p), np.int64),
            "entered": np.zeros(len(p), np.int64),
        }
    )
    frame.loc[len(p) - 1, "censored"] = s[-1]
    frame.loc[0, "entered"] = s[0]
    return frame[frame[list(COUNT_COLUMNS)].sum(axis=1) > 0]
