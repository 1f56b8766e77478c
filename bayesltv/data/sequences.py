r"""Validated state sequences (user × period panels), collapsed to transition-count patterns.

Users move between named states (plans) from one period to the next. Each user's
transitions are counted per origin state: :math:`n_u[i, j]` moves from :math:`i` to
:math:`j`. The Dirichlet-multinomial path likelihood factorises over origin states
(DESIGN.md §3), so a user contributes one term per origin state they left at least once,
and users sharing (cell, origin, row of counts) contribute identical terms. The rows are
therefore collapsed to unique *patterns* with weights: the likelihood's cost follows the
number of unique row patterns, far fewer than users or unique whole matrices.

Conventions:

- A user's rows must cover consecutive periods. A gap is an error, unless
  ``split_gaps=True``: then no transition is counted across the gap (the user keeps the same
  dice on both sides; nothing is bridged).
- An absorbing state (e.g. "deleted") must be a user's last row.
- The allowed-transition mask (origin × target) is given by the user, or inferred as the
  transitions seen at least once; :attr:`StateSequences.never_seen` lists allowed
  transitions with no observation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bayesltv.data.groups import GROUP_CODE, CovariateEncoding, Groups, make_cells
from bayesltv.data.validation import (
    as_count,
    describe_values,
    require_columns,
    require_distinct_roles,
    require_no_missing,
    require_rows,
    require_unique,
)
from bayesltv.errors import DataValidationError

#: Column of :attr:`StateSequences.patterns` holding the origin state's integer code.
ORIGIN = "origin"
#: Column of :attr:`StateSequences.patterns` holding how many (user, origin) rows share it.
WEIGHT = "weight"

AllowedSpec = pd.DataFrame | np.ndarray | Mapping[str, Sequence[str]] | None


@dataclass(frozen=True)
class StateSequences:
    """State sequences ready for :class:`~bayesltv.DirichletMarkov`.

    Build it with :meth:`from_panel` or :meth:`from_sequences`.

    Attributes
    ----------
    states : pandas.Index
        State names in model order.
    absorbing : tuple of str
        Absorbing states (no transitions out).
    allowed : pandas.DataFrame
        Boolean mask, origin × target; rows of absorbing states are all False.
    groups, encoding, cells
        Cohorts, categorical covariates and their unique combinations (as for
        :class:`~bayesltv.SurvivalData`).
    patterns : pandas.DataFrame
        Unique (``cell``, ``origin``, counts per target state) rows with their ``weight``.
    initial_counts : pandas.DataFrame
        Users by group (rows) and first observed state (columns).
    users : pandas.DataFrame
        Per user (index: user id): ``cell``, ``first_period``, ``last_period``,
        ``first_state`` and ``last_state``.
    user_patterns : numpy.ndarray
        (users × states) row of :attr:`patterns` holding each user's counts out of each
        origin state, −1 where the user never left that state.
    history : pandas.DataFrame
        The panel in compact form, sorted by user and period: ``user`` (position in
        :attr:`users`), ``period`` (period number; dates count calendar months) and
        ``state`` (code in :attr:`states`). Used by checks (occupancy, hold-out splits);
        the likelihood only needs :attr:`patterns`.
    """

    states: pd.Index
    absorbing: tuple[str, ...]
    allowed: pd.DataFrame
    groups: Groups
    encoding: CovariateEncoding
    cells: pd.DataFrame
    patterns: pd.DataFrame
    initial_counts: pd.DataFrame
    users: pd.DataFrame
    user_patterns: np.ndarray
    history: pd.DataFrame = field(repr=False)

    # -- constructors -----------------------------------------------------------------

    @classmethod
    def from_panel(
        cls,
        df: pd.DataFrame,
        user: str,
        period: str,
        state: str,
        states: Sequence[str] | None = None,
        absorbing: Sequence[str] = (),
        cohort: str | None = None,
        covariates: Sequence[str] = (),
        allowed: AllowedSpec = None,
        split_gaps: bool = False,
    ) -> StateSequences:
        """Read one row per user and period.

        Parameters
        ----------
        df : pandas.DataFrame
            The panel.
        user, period, state : str
            Columns of the user id, the period (whole numbers, pandas Periods or dates,
            counted in months) and the state name.
        states : sequence of str, optional
            All states in model order; defaults to the categories of a categorical
            ``state`` column, else the sorted observed states.
        absorbing : sequence of str
            States that end a user's sequence (e.g. "deleted").
        cohort : str, optional
            Acquisition cohort, constant within a user (ordered, for the random walk).
        covariates : sequence of str
            Categorical user attributes, constant within a user.
        allowed : DataFrame, array or mapping, optional
            Allowed transitions: a boolean origin × target table or array in ``states``
            order, or ``{origin: [targets]}``. Inferred from the data when omitted.
        split_gaps : bool
            Allow gaps in a user's periods, counting no transition across them.
        """
        if isinstance(covariates, str):
            covariates = [covariates]
        named = [user, period, state, *covariates] + ([cohort] if cohort is not None else [])
        require_distinct_roles(named, reserved=(GROUP_CODE,))
        require_columns(df, named)
        require_rows(df, "panel")
        require_no_missing(df, named)
        require_unique(df, [user, period])

        names = _state_names(df, state, states)
        absorbing = tuple(absorbing)
        unknown_absorbing = [s for s in absorbing if s not in names]
        if unknown_absorbing:
            raise DataValidationError(
                f"absorbing state(s) {describe_values(unknown_absorbing)} are not among the "
                f"states {describe_values(names)}; rule: absorbing states must be states"
            )
        codes = names.get_indexer(df[state])
        unknown = codes < 0
        if unknown.any():
            raise DataValidationError(
                f"column {state!r} has value(s) {describe_values(pd.unique(df[state][unknown]))}"
                f" not among the states {describe_values(names)}; rule: every state is declared"
            )
        numeric = [c for c in covariates if pd.api.types.is_numeric_dtype(df[c])]
        numeric = [c for c in numeric if not pd.api.types.is_bool_dtype(df[c])]
        if numeric:
            raise DataValidationError(
                f"covariate column(s) {describe_values(numeric)} are numeric; rule: the "
                "multi-state model takes categorical covariates (bin numeric ones first)"
            )

        user_codes, user_ids = pd.factorize(df[user], sort=False)
        periods = _period_numbers(df, period)
        order = np.lexsort((periods, user_codes))
        sorted_df = df.iloc[order]
        u, p, s = user_codes[order], periods[order], codes[order]
        first_row = np.r_[True, u[1:] != u[:-1]]
        for column in [*covariates] + ([cohort] if cohort is not None else []):
            _require_constant_within_user(sorted_df, column, user, first_row)

        same_user = ~first_row[1:]
        step = p[1:] - p[:-1]
        # the period values as given (dates, Periods), for messages; p holds their numbers
        shown = sorted_df[period].array
        repeated = same_user & (step == 0)
        if repeated.any():
            at = np.flatnonzero(repeated)[0]
            raise DataValidationError(
                f"column {period!r}: user {_plain(user_ids[u[at]])!r} has rows at {shown[at]} and "
                f"{shown[at + 1]}, the same period ({int(repeated.sum())} such row(s) in all); "
                f"rule: one row per {user}, {period} (dates are counted in calendar months)"
            )
        after_absorbing = same_user & np.isin(s[:-1], names.get_indexer(list(absorbing)))
        if after_absorbing.any():
            at = np.flatnonzero(after_absorbing)[0]
            raise DataValidationError(
                f"column {state!r}: user {_plain(user_ids[u[at]])!r} has a row at {period} "
                f"{shown[at + 1]} after the absorbing state {names[s[at]]!r} at {period} "
                f"{shown[at]} "
                f"({int(after_absorbing.sum())} such row(s) in all); rule: an absorbing state "
                "is a user's last row"
            )
        gap = same_user & (step != 1)
        if gap.any() and not split_gaps:
            at = np.flatnonzero(gap)[0]
            raise DataValidationError(
                f"column {period!r}: user {_plain(user_ids[u[at]])!r} jumps from {shown[at]} to "
                f"{shown[at + 1]} ({int(gap.sum())} gap(s) in all); rule: a user's periods are "
                "consecutive (pass split_gaps=True to count no transition across gaps)"
            )
        moves = same_user & (step == 1)
        origin, target, mover = s[:-1][moves], s[1:][moves], u[:-1][moves]

        mask = _allowed_mask(allowed, names, absorbing, origin, target)
        _require_allowed(
            mask, origin, target, mover, shown[:-1][moves], user_ids, names, period, state
        )

        first_df = sorted_df[first_row]
        groups = Groups.from_column(first_df, cohort, ordered=True)
        encoding = CovariateEncoding.from_frame(first_df, covariates)
        group_codes = (
            groups.codes(first_df[cohort])
            if cohort is not None
            else np.zeros(len(first_df), np.int64)
        )
        cells, cell_of_user = make_cells(first_df, groups, group_codes, encoding)
        patterns, user_patterns = _patterns(mover, origin, target, cell_of_user, len(names), names)
        last_row = np.r_[first_row[1:], True]
        users = pd.DataFrame(
            {
                "cell": cell_of_user,
                "first_period": p[first_row],
                "last_period": p[last_row],
                "first_state": pd.Categorical.from_codes(s[first_row], categories=names),
                "last_state": pd.Categorical.from_codes(s[last_row], categories=names),
            },
            index=pd.Index(user_ids[u[first_row]], name=user),
        )
        initial = pd.crosstab(
            pd.Categorical.from_codes(group_codes, categories=range(groups.size)),
            users["first_state"].to_numpy(),
            dropna=False,
        )
        initial = initial.reindex(columns=names, fill_value=0)
        initial.index = groups.labels
        initial.columns.name = "state"
        first_of = np.cumsum(first_row) - 1  # each sorted row's user position
        history = pd.DataFrame(
            {"user": first_of.astype(np.int32), "period": p, "state": s.astype(np.int8)}
        )
        return cls(
            names,
            absorbing,
            mask,
            groups,
            encoding,
            cells,
            patterns,
            initial,
            users,
            user_patterns,
            history,
        )

    @classmethod
    def from_sequences(
        cls,
        sequences: Sequence[Sequence[str]] | Mapping[object, Sequence[str]],
        states: Sequence[str] | None = None,
        absorbing: Sequence[str] = (),
        cohort: Sequence | None = None,
        covariates: pd.DataFrame | None = None,
        allowed: AllowedSpec = None,
    ) -> StateSequences:
        """Read one list of consecutive states per user.

        Parameters
        ----------
        sequences : list of lists, or mapping of user id to list
            Each user's states in period order (periods are numbered from 0).
        cohort : sequence, optional
            One cohort label per user, in the order of ``sequences``.
        covariates : pandas.DataFrame, optional
            One row per user, in the order of ``sequences``, of categorical columns.
        states, absorbing, allowed
            As in :meth:`from_panel`.
        """
        if isinstance(sequences, Mapping):
            ids, paths = list(sequences), list(sequences.values())
        else:
            ids, paths = list(range(len(sequences))), list(sequences)
        if not paths:
            raise DataValidationError("no sequences given; rule: at least one user")
        lengths = np.array([len(path) for path in paths], dtype=np.int64)
        if (lengths == 0).any():
            empty = [ids[i] for i in np.flatnonzero(lengths == 0)]
            raise DataValidationError(
                f"sequence(s) of user(s) {describe_values(empty)} are empty; rule: every "
                "user has at least one state"
            )
        panel = pd.DataFrame(
            {
                "user": np.repeat(np.asarray(ids, dtype=object), lengths),
                "period": np.concatenate([np.arange(n) for n in lengths]),
                "state": np.concatenate([np.asarray(path, dtype=object) for path in paths]),
            }
        )
        row_user = np.repeat(np.arange(len(paths)), lengths)  # each panel row's user position
        columns: list[str] = []
        if covariates is not None:
            if len(covariates) != len(paths):
                raise DataValidationError(
                    f"covariates have {len(covariates)} rows for {len(paths)} sequences; "
                    "rule: one row per user"
                )
            columns = list(covariates.columns)
            for column in columns:
                # take from the pandas array: a Categorical keeps its levels and their order
                panel[column] = covariates[column].array.take(row_user)
        if cohort is not None:
            if len(cohort) != len(paths):
                raise DataValidationError(
                    f"cohort has {len(cohort)} labels for {len(paths)} sequences; rule: one "
                    "label per user"
                )
            panel["cohort"] = pd.Series(cohort).array.take(row_user)
        return cls.from_panel(
            panel,
            user="user",
            period="period",
            state="state",
            states=states,
            absorbing=absorbing,
            cohort="cohort" if cohort is not None else None,
            covariates=columns,
            allowed=allowed,
        )

    # -- derived quantities -----------------------------------------------------------

    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_states(self) -> int:
        return len(self.states)

    @property
    def transient(self) -> list[str]:
        """States with transitions out (all but the absorbing ones)."""
        return [s for s in self.states if s not in self.absorbing]

    @property
    def count_columns(self) -> list[str]:
        """Columns of :attr:`patterns` holding counts per target state."""
        return [f"n[{s}]" for s in self.states]

    def design(self) -> np.ndarray:
        """Design matrix of the cells (cells × ``encoding.features``)."""
        return self.encoding.design(self.cells)

    def transition_counts(self) -> pd.DataFrame:
        """Total observed transitions, origin × target."""
        weighted = self.patterns[self.count_columns].mul(self.patterns[WEIGHT], axis=0)
        totals = weighted.groupby(self.patterns[ORIGIN]).sum()
        totals = totals.reindex(range(self.n_states), fill_value=0)
        totals.index = pd.Index(self.states, name="origin")
        totals.columns = pd.Index(self.states, name="target")
        return totals

    def never_seen(self) -> pd.DataFrame:
        """Transitions out of non-absorbing states never observed, and whether allowed.

        With an inferred mask the rows with ``allowed`` False are exactly the transitions
        the model treats as impossible because the data never show them; with a given mask
        the rows with ``allowed`` True are possible moves the data say nothing about.

        Returns
        -------
        pandas.DataFrame
            Columns ``origin``, ``target``, ``allowed``.
        """
        counts = self.transition_counts().to_numpy()
        unseen = counts == 0
        unseen[self.states.get_indexer(list(self.absorbing))] = False
        origin, target = np.nonzero(unseen)
        return pd.DataFrame(
            {
                "origin": self.states[origin],
                "target": self.states[target],
                "allowed": self.allowed.to_numpy()[origin, target],
            }
        )

    def user_counts(self, users: Sequence | None = None) -> np.ndarray:
        """Transition counts per user (users × origin × target) for the given user ids."""
        rows = np.arange(self.n_users) if users is None else self.users.index.get_indexer(users)
        if (rows < 0).any():
            missing = np.asarray(users, dtype=object)[rows < 0]
            raise DataValidationError(
                f"user(s) {describe_values(missing)} are not in the data; rule: score users "
                "that were read"
            )
        index = self.user_patterns[rows]
        # a zero row at the end: index −1 (the user never left that state) picks it
        table = np.vstack(
            [self.patterns[self.count_columns].to_numpy(), np.zeros((1, self.n_states), int)]
        )
        return table[index]


def _state_names(df: pd.DataFrame, column: str, states: Sequence[str] | None) -> pd.Index:
    if states is not None:
        names = pd.Index(list(states), name="state")
        if names.has_duplicates:
            raise DataValidationError(
                f"states {describe_values(names[names.duplicated()])} are listed twice; "
                "rule: each state once"
            )
        return names
    series = df[column]
    if isinstance(series.dtype, pd.CategoricalDtype):
        return pd.Index(series.cat.categories, name="state")
    return pd.Index(np.sort(series.unique()), name="state")


def _period_numbers(df: pd.DataFrame, column: str) -> np.ndarray:
    """Periods as integers: pandas Periods by ordinal, dates in calendar months."""
    series = df[column]
    if isinstance(series.dtype, pd.PeriodDtype):
        return series.array.asi8.astype(np.int64)
    if pd.api.types.is_datetime64_any_dtype(series):
        return (series.dt.year * 12 + series.dt.month).to_numpy(dtype=np.int64)
    return as_count(df, column)


def _require_constant_within_user(
    sorted_df: pd.DataFrame, column: str, user: str, first_row: np.ndarray
) -> None:
    values = sorted_df[column].to_numpy()
    changed = np.r_[False, values[1:] != values[:-1]] & ~first_row
    if changed.any():
        at = np.flatnonzero(changed)[0]
        before, after = sorted_df[column].iloc[[at - 1, at]].tolist()
        raise DataValidationError(
            f"column {column!r} changes within user {_plain(sorted_df[user].iloc[at])!r} (from "
            f"{before!r} to {after!r}); rule: cohort and covariates are constant within a user"
        )


def _plain(value):
    """A NumPy number or string as the Python value it holds: messages read 7, not np.int64(7)."""
    return value.item() if isinstance(value, np.number | np.bool_ | np.str_) else value


def _allowed_mask(
    allowed: AllowedSpec,
    names: pd.Index,
    absorbing: tuple[str, ...],
    origin: np.ndarray,
    target: np.ndarray,
) -> pd.DataFrame:
    """The allowed-transition mask: given, or the transitions seen at least once.

    A transient state with no transition seen (inferred mask) is allowed to stay, so that
    every transient row has at least one target.
    """
    k = len(names)
    if allowed is None:
        mask = np.zeros((k, k), dtype=bool)
        mask[origin, target] = True
        empty = ~mask.any(axis=1)
        mask[empty, empty] = True
    elif isinstance(allowed, Mapping):
        mask = np.zeros((k, k), dtype=bool)
        for source, targets in allowed.items():
            rows = names.get_indexer([source, *targets])
            if (rows < 0).any():
                bad = np.asarray([source, *targets], dtype=object)[rows < 0]
                raise DataValidationError(
                    f"allowed transitions name unknown state(s) {describe_values(bad)}; rule: "
                    f"states are {describe_values(names)}"
                )
            mask[rows[0], rows[1:]] = True
    else:
        frame = allowed if isinstance(allowed, pd.DataFrame) else None
        if frame is not None:
            labels = frame.index.append(frame.columns)
            bad = labels[~labels.isin(names)].unique()
            if len(bad):
                raise DataValidationError(
                    f"allowed mask names unknown state(s) {describe_values(bad)}; rule: "
                    f"states are {describe_values(names)}"
                )
        array = np.asarray(
            allowed.reindex(index=names, columns=names, fill_value=False)
            if frame is not None
            else allowed
        )
        if array.shape != (k, k):
            raise DataValidationError(
                f"allowed mask has shape {array.shape}; rule: states × states = ({k}, {k}) "
                f"in the order {describe_values(names)}"
            )
        mask = np.array(array, dtype=bool)
    absorbing_rows = names.get_indexer(list(absorbing))
    mask[absorbing_rows, :] = False
    transient = np.setdiff1d(np.arange(k), absorbing_rows)
    empty = transient[~mask[transient].any(axis=1)]
    if len(empty):
        raise DataValidationError(
            f"allowed mask gives state(s) {describe_values(names[empty])} no target; rule: "
            "a non-absorbing state allows at least one transition (staying counts)"
        )
    return pd.DataFrame(mask, index=names.rename("origin"), columns=names.rename("target"))


def _require_allowed(
    mask, origin, target, mover, period_from, user_ids, names, period, state
) -> None:
    forbidden = ~mask.to_numpy()[origin, target]
    if forbidden.any():
        at = np.flatnonzero(forbidden)[0]
        kinds = pd.unique(
            pd.Series(
                [
                    f"{names[o]}→{names[t]}"
                    for o, t in zip(origin[forbidden], target[forbidden], strict=True)
                ]
            )
        )
        raise DataValidationError(
            f"column {state!r} has transition(s) {describe_values(kinds)} not allowed (first: "
            f"user {_plain(user_ids[mover[at]])!r} at {period} {period_from[at]}); rule: "
            "transitions must be in the allowed mask"
        )


def _patterns(mover, origin, target, cell_of_user, k, names) -> tuple[pd.DataFrame, np.ndarray]:
    """Collapse per-(user, origin) count rows to unique (cell, origin, counts) patterns."""
    n_users = len(cell_of_user)
    user_patterns = np.full((n_users, k), -1, dtype=np.int64)
    if len(mover) == 0:
        columns = ["cell", ORIGIN, *[f"n[{s}]" for s in names], WEIGHT]
        return pd.DataFrame(np.zeros((0, k + 3), np.int64), columns=columns), user_patterns
    row_key = mover * k + origin
    rows, row_of_move = np.unique(row_key, return_inverse=True)
    counts = np.zeros((len(rows), k), dtype=np.int64)
    np.add.at(counts, (row_of_move, target), 1)
    row_user, row_origin = rows // k, rows % k
    table = np.column_stack([cell_of_user[row_user], row_origin, counts])
    table = np.ascontiguousarray(table)
    keys = table.view(np.dtype((np.void, table.dtype.itemsize * table.shape[1]))).ravel()
    _, first, pattern_of_row, weight = np.unique(
        keys, return_index=True, return_inverse=True, return_counts=True
    )
    user_patterns[row_user, row_origin] = pattern_of_row
    unique_rows = table[first]
    frame = pd.DataFrame(unique_rows, columns=["cell", ORIGIN, *[f"n[{s}]" for s in names]])
    frame[WEIGHT] = weight
    return frame, user_patterns
