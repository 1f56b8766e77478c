"""StateSequences: bad inputs raise DataValidationError; patterns and counts by hand.

Every bad input raises :class:`bayesltv.DataValidationError` whose message names the column
(or the argument, where no column is involved), shows the offending value(s) and states the
rule. Expected counts, patterns and masks are typed in by hand from the small panel below or
counted with plain loops over its rows, never produced by the code under test.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

import bayesltv as bl
from bayesltv import DataValidationError, StateSequences

STATES = ["free", "basic", "premium", "deleted"]

#: user, month, plan, cohort, country: one row per user and month.
ROWS = [
    ("a", 1, "free", 0, "SE"),
    ("a", 2, "free", 0, "SE"),
    ("a", 3, "basic", 0, "SE"),
    ("a", 4, "basic", 0, "SE"),
    ("b", 1, "basic", 0, "US"),
    ("b", 2, "premium", 0, "US"),
    ("b", 3, "deleted", 0, "US"),
    ("c", 2, "free", 1, "SE"),
    ("c", 3, "free", 1, "SE"),
    ("c", 4, "basic", 1, "SE"),
    ("d", 2, "free", 1, "SE"),
    ("d", 3, "free", 1, "SE"),
    ("d", 4, "basic", 1, "SE"),
    ("e", 4, "premium", 1, "US"),
]

KWARGS = {
    "user": "user",
    "period": "month",
    "state": "plan",
    "states": STATES,
    "absorbing": ["deleted"],
    "cohort": "cohort",
    "covariates": ["country"],
}

#: Transitions seen in ROWS, origin → {target: count}, counted by eye:
#: a: free→free, free→basic, basic→basic; b: basic→premium, premium→deleted;
#: c and d: free→free, free→basic each; e never moves.
SEEN = {
    "free": {"free": 3, "basic": 3},
    "basic": {"basic": 1, "premium": 1},
    "premium": {"deleted": 1},
}


def pattern(*parts: str) -> str:
    """Regex matching the literal ``parts`` in this order, anything in between."""
    return ".*".join(re.escape(part) for part in parts)


def panel() -> pd.DataFrame:
    """A valid panel; each test breaks one thing in a fresh copy."""
    return pd.DataFrame(ROWS, columns=["user", "month", "plan", "cohort", "country"])


def read(df: pd.DataFrame, **changes) -> StateSequences:
    return StateSequences.from_panel(df, **{**KWARGS, **changes})


def table(counts: dict[str, dict[str, int]]) -> np.ndarray:
    """An origin × target array in STATES order from nested dicts."""
    out = np.zeros((len(STATES), len(STATES)), dtype=np.int64)
    for origin, row in counts.items():
        for target, n in row.items():
            out[STATES.index(origin), STATES.index(target)] = n
    return out


def loop_counts(df: pd.DataFrame) -> dict[object, np.ndarray]:
    """Per user, origin × target counts of moves between consecutive months (plain loop)."""
    counts: dict[object, np.ndarray] = {}
    for user, rows in df.sort_values(["user", "month"]).groupby("user", sort=False):
        n = np.zeros((len(STATES), len(STATES)), dtype=np.int64)
        months, plans = rows["month"].tolist(), rows["plan"].tolist()
        for t in range(len(months) - 1):
            if months[t + 1] == months[t] + 1:
                n[STATES.index(plans[t]), STATES.index(plans[t + 1])] += 1
        counts[user] = n
    return counts


# -- valid input: patterns, counts, masks by hand ----------------------------------------


def test_patterns_and_weights_by_hand():
    data = read(panel())
    patterns = data.patterns
    cells = data.cells.loc[patterns["cell"], ["cohort", "country"]].to_numpy().tolist()
    counts = patterns[data.count_columns].to_numpy().tolist()
    rows = {
        (cohort, country, STATES[origin], tuple(n), weight)
        for (cohort, country), origin, n, weight in zip(
            cells, patterns["origin"], counts, patterns["weight"], strict=True
        )
    }
    # (cohort, country, origin, counts to free/basic/premium/deleted, users sharing the row)
    expected = {
        (0, "SE", "free", (1, 1, 0, 0), 1),  # a
        (0, "SE", "basic", (0, 1, 0, 0), 1),  # a
        (0, "US", "basic", (0, 0, 1, 0), 1),  # b
        (0, "US", "premium", (0, 0, 0, 1), 1),  # b
        (1, "SE", "free", (1, 1, 0, 0), 2),  # c and d: same cell, same counts
    }
    assert rows == expected
    assert list(data.patterns.columns) == ["cell", "origin", *data.count_columns, "weight"]
    # one (user, origin) row per origin a user left: a 2, b 2, c 1, d 1, e 0
    assert data.patterns["weight"].sum() == 6


def test_transition_counts_by_hand():
    counts = read(panel()).transition_counts()
    assert list(counts.index) == STATES
    assert list(counts.columns) == STATES
    np.testing.assert_array_equal(counts.to_numpy(), table(SEEN))


def test_inferred_mask_is_the_transitions_seen():
    data = read(panel())
    expected = table(SEEN) > 0  # the absorbing "deleted" row has no transition seen
    np.testing.assert_array_equal(data.allowed.to_numpy(), expected)
    assert list(data.allowed.index) == STATES
    assert list(data.allowed.columns) == STATES
    never = data.never_seen()
    assert not never["allowed"].any()  # inferred: nothing allowed goes unseen
    unseen = ~table(SEEN).astype(bool)
    unseen[STATES.index("deleted")] = False  # no moves out of the absorbing state
    assert len(never) == unseen.sum()
    assert data.absorbing == ("deleted",)
    assert data.transient == ["free", "basic", "premium"]


def test_inferred_mask_lets_a_state_never_left_stay():
    # "basic" is only ever a last state and "premium" never appears: both may only stay.
    data = StateSequences.from_sequences(
        [["free", "basic"], ["free", "free"]], states=["free", "basic", "premium"]
    )
    expected = np.array([[True, True, False], [False, True, False], [False, False, True]])
    np.testing.assert_array_equal(data.allowed.to_numpy(), expected)
    never = data.never_seen()
    allowed_unseen = set(
        never[never["allowed"]][["origin", "target"]].itertuples(index=False, name=None)
    )
    assert allowed_unseen == {("basic", "basic"), ("premium", "premium")}
    # Every other unseen move out of a non-absorbing state is excluded by the inferred mask.
    excluded = set(
        never[~never["allowed"]][["origin", "target"]].itertuples(index=False, name=None)
    )
    assert excluded == {
        ("free", "premium"),
        ("basic", "free"),
        ("basic", "premium"),
        ("premium", "free"),
        ("premium", "basic"),
    }


def test_never_seen_with_a_given_mask():
    allowed = {
        "free": ["free", "basic", "premium"],
        "basic": ["basic", "premium", "free"],
        "premium": ["premium", "deleted", "basic"],
        "deleted": [],
    }
    data = read(panel(), allowed=allowed)
    expected_mask = np.zeros((4, 4), dtype=bool)
    for origin, targets in allowed.items():
        for target in targets:
            expected_mask[STATES.index(origin), STATES.index(target)] = True
    np.testing.assert_array_equal(data.allowed.to_numpy(), expected_mask)
    report = data.never_seen()
    never = set(report[report["allowed"]][["origin", "target"]].itertuples(index=False, name=None))
    # allowed minus SEEN
    assert never == {
        ("free", "premium"),
        ("basic", "free"),
        ("premium", "premium"),
        ("premium", "basic"),
    }
    assert list(report.columns) == ["origin", "target", "allowed"]


def test_absorbing_rows_of_a_given_mask_are_cleared():
    allowed = np.ones((4, 4), dtype=bool)  # also allows leaving "deleted"
    data = read(panel(), allowed=allowed)
    assert not data.allowed.loc["deleted"].any()
    assert data.allowed.drop(index="deleted").to_numpy().all()


def test_user_counts_match_a_plain_loop():
    df = panel()
    data = read(df)
    expected = loop_counts(df)
    users = ["e", "c", "a", "b", "d"]
    np.testing.assert_array_equal(data.user_counts(users), np.stack([expected[u] for u in users]))
    everyone = data.user_counts()
    for row, user in enumerate(data.users.index):
        np.testing.assert_array_equal(everyone[row], expected[user])
    # by hand for two of them
    np.testing.assert_array_equal(
        data.user_counts(["a"])[0], table({"free": {"free": 1, "basic": 1}, "basic": {"basic": 1}})
    )
    np.testing.assert_array_equal(data.user_counts(["e"])[0], np.zeros((4, 4)))


def test_user_counts_of_unknown_users_is_an_error():
    with pytest.raises(DataValidationError, match=pattern("'zz'", "not in the data", "rule")):
        read(panel()).user_counts(["a", "zz"])


def test_user_counts_when_nobody_moved():
    data = StateSequences.from_sequences([["free"], ["basic"]], states=["free", "basic"])
    np.testing.assert_array_equal(data.user_counts(), np.zeros((2, 2, 2)))
    np.testing.assert_array_equal(data.transition_counts().to_numpy(), np.zeros((2, 2)))


def test_users_table_by_hand():
    users = read(panel()).users.sort_index()
    assert list(users.index) == ["a", "b", "c", "d", "e"]
    assert users["first_period"].tolist() == [1, 1, 2, 2, 4]
    assert users["last_period"].tolist() == [4, 3, 4, 4, 4]
    assert users["first_state"].astype(str).tolist() == ["free", "basic", "free", "free", "premium"]
    assert users["last_state"].astype(str).tolist() == [
        "basic",
        "deleted",
        "basic",
        "basic",
        "premium",
    ]


def test_initial_counts_by_hand():
    initial = read(panel()).initial_counts
    # cohort 0: a free, b basic; cohort 1: c free, d free, e premium
    expected = pd.DataFrame(
        [[1, 1, 0, 0], [2, 0, 1, 0]], index=pd.Index([0, 1]), columns=pd.Index(STATES)
    )
    assert list(initial.index) == [0, 1]
    assert list(initial.columns) == STATES
    np.testing.assert_array_equal(initial.to_numpy(), expected.to_numpy())


def test_cells_by_hand():
    data = read(panel())
    cells = set(data.cells[["cohort", "country"]].itertuples(index=False, name=None))
    assert cells == {(0, "SE"), (0, "US"), (1, "SE"), (1, "US")}
    assert data.encoding.features == ["country[US]"]
    cell = data.users["cell"]
    by_user = {u: tuple(data.cells.loc[cell[u], ["cohort", "country"]]) for u in "abcde"}
    assert by_user == {
        "a": (0, "SE"),
        "b": (0, "US"),
        "c": (1, "SE"),
        "d": (1, "SE"),
        "e": (1, "US"),
    }


def _same(x: StateSequences, y: StateSequences) -> None:
    """Same patterns, counts, mask and users (users compared by id, not by position)."""

    def sort(p: pd.DataFrame) -> pd.DataFrame:
        return p.sort_values(list(p.columns)).reset_index(drop=True)

    pd.testing.assert_frame_equal(sort(x.patterns), sort(y.patterns))
    pd.testing.assert_frame_equal(x.transition_counts(), y.transition_counts())
    pd.testing.assert_frame_equal(x.allowed, y.allowed)
    pd.testing.assert_frame_equal(x.initial_counts, y.initial_counts)
    ids = list(x.users.index)
    np.testing.assert_array_equal(x.user_counts(ids), y.user_counts(ids))
    pd.testing.assert_frame_equal(
        x.users.sort_index()[["cell", "first_state", "last_state"]],
        y.users.sort_index()[["cell", "first_state", "last_state"]],
    )


def test_row_order_does_not_matter():
    df = panel()
    shuffled = df.sample(frac=1.0, random_state=7).reset_index(drop=True)
    reverse = df.iloc[::-1]
    assert not shuffled["user"].is_monotonic_increasing
    for other in (shuffled, reverse):
        _same(read(df), read(other))


def test_periods_as_pandas_periods():
    df = panel()
    # month 1 → 2023-12: consecutive months cross a year boundary
    df["month"] = pd.PeriodIndex([pd.Period("2023-11", "M") + m for m in df["month"]])
    data = read(df)
    _same(read(panel()), data)
    # a gap is still a gap, and the message shows the periods as given
    with pytest.raises(
        DataValidationError, match=pattern("'month'", "'a'", "2024-01 to 2024-03", "consecutive")
    ):
        read(df.drop(index=2))


def test_periods_as_datetimes_count_calendar_months():
    df = panel()
    # month m → day (3m mod 28) + 1 of calendar month m, starting 2023-12: days differ
    # between rows, only the calendar month counts
    df["month"] = [
        pd.Timestamp(2023, 11, 1) + pd.DateOffset(months=m) + pd.Timedelta(days=(3 * m) % 28)
        for m in df["month"]
    ]
    _same(read(panel()), read(df))
    # two dates in the same calendar month are the same period
    twice = pd.concat(
        [df, pd.DataFrame([("a", pd.Timestamp(2023, 12, 28), "free", 0, "SE")], columns=df.columns)]
    )
    for split_gaps in (False, True):
        with pytest.raises(
            DataValidationError,
            match=pattern("'month'", "'a'", "2023-12-04", "2023-12-28", "one row per user, month"),
        ):
            read(twice, split_gaps=split_gaps)


def test_from_sequences_agrees_with_from_panel():
    df = panel()
    paths = {u: rows.sort_values("month")["plan"].tolist() for u, rows in df.groupby("user")}
    first = df.sort_values("month").groupby("user").first()
    # from_sequences numbers every user's periods from 0: without gaps, the same moves
    data = StateSequences.from_sequences(
        paths,
        states=STATES,
        absorbing=["deleted"],
        cohort=first.loc[list(paths), "cohort"].tolist(),
        covariates=first.loc[list(paths), ["country"]].reset_index(drop=True),
    )
    _same(read(df), data)


def test_from_sequences_keeps_categorical_levels_like_from_panel():
    # levels in the order given, not sorted: "premium" is the reference level
    plan = pd.Categorical(["premium", "basic", "premium"], categories=["premium", "basic"])
    cohort = pd.Categorical(["late", "early", "late"], categories=["early", "late"], ordered=True)
    data = StateSequences.from_sequences(
        [["free", "free"], ["free"], ["free"]],
        cohort=pd.Series(cohort),
        covariates=pd.DataFrame({"plan": plan}),
    )
    assert data.encoding.features == ["plan[basic]"]
    assert list(data.groups.labels) == ["early", "late"]
    panel = pd.DataFrame(
        {
            "user": [0, 0, 1, 2],
            "t": [0, 1, 0, 0],
            "s": "free",
            "plan": plan[[0, 0, 1, 2]],
            "cohort": cohort[[0, 0, 1, 2]],
        }
    )
    direct = StateSequences.from_panel(
        panel, user="user", period="t", state="s", cohort="cohort", covariates=["plan"]
    )
    assert direct.encoding.features == data.encoding.features
    assert list(direct.groups.labels) == list(data.groups.labels)


# -- gaps --------------------------------------------------------------------------------


def gappy_panel() -> pd.DataFrame:
    """User "g" misses month 3: free, free | basic, basic, premium."""
    rows = [
        ("g", 1, "free", 0, "SE"),
        ("g", 2, "free", 0, "SE"),
        ("g", 4, "basic", 0, "SE"),
        ("g", 5, "basic", 0, "SE"),
        ("g", 6, "premium", 0, "SE"),
        ("h", 1, "free", 0, "SE"),
        ("h", 2, "basic", 0, "SE"),
    ]
    return pd.DataFrame(rows, columns=["user", "month", "plan", "cohort", "country"])


def test_gap_is_an_error():
    with pytest.raises(
        DataValidationError,
        match=pattern("'month'", "'g'", "2 to 4", "1 gap(s)", "consecutive", "split_gaps=True"),
    ):
        read(gappy_panel())


def test_messages_show_integer_ids_as_plain_numbers():
    df = gappy_panel()
    df["user"] = df["user"].map({"g": 7, "h": 8})
    with pytest.raises(DataValidationError, match=pattern("'month'", "user 7 jumps", "2 to 4")):
        read(df)
    with pytest.raises(
        DataValidationError, match=pattern("'plan'", "'free→basic'", "user 8 at month 1")
    ):
        read(
            df,
            split_gaps=True,
            allowed={"free": ["free"], "basic": ["basic", "premium"], "premium": ["premium"]},
        )


def test_split_gaps_counts_no_transition_across_the_gap():
    data = read(gappy_panel(), split_gaps=True)
    # g: free→free (1→2), nothing for 2→4 (free→basic is not counted), basic→basic (4→5),
    # basic→premium (5→6); h: free→basic (1→2)
    g = table({"free": {"free": 1}, "basic": {"basic": 1, "premium": 1}})
    h = table({"free": {"basic": 1}})
    np.testing.assert_array_equal(data.user_counts(["g", "h"]), np.stack([g, h]))
    np.testing.assert_array_equal(data.transition_counts().to_numpy(), g + h)
    assert data.users.loc["g", "first_period"] == 1
    assert data.users.loc["g", "last_period"] == 6
    assert data.users.loc["g", "last_state"] == "premium"


# -- bad input ---------------------------------------------------------------------------


def test_error_is_a_value_error():
    assert issubclass(DataValidationError, ValueError)
    assert bl.DataValidationError is DataValidationError


@pytest.mark.parametrize("column", ["user", "month", "plan", "cohort", "country"])
def test_missing_column(column):
    with pytest.raises(
        DataValidationError, match=pattern(f"'{column}'", "not found", "must exist")
    ):
        read(panel().drop(columns=column))


@pytest.mark.parametrize("column", ["user", "month", "plan", "cohort", "country"])
def test_missing_value(column):
    df = panel()
    df[column] = df[column].astype(object)
    df.loc[5, column] = np.nan if column in ("month", "cohort") else None
    with pytest.raises(
        DataValidationError, match=pattern(f"'{column}'", "1 missing value", "rows [5]", "NaN")
    ):
        read(df)


def test_missing_value_in_a_categorical_state_column():
    df = panel()
    df["plan"] = pd.Categorical(df["plan"], categories=STATES)
    df.loc[3, "plan"] = np.nan
    with pytest.raises(
        DataValidationError, match=pattern("'plan'", "1 missing value", "rows [3]", "NaN")
    ):
        read(df, states=None)


def test_empty_panel():
    with pytest.raises(DataValidationError, match=pattern("panel", "no rows", "at least one")):
        read(panel().iloc[:0])


def test_state_not_among_the_states():
    df = panel()
    df.loc[4, "plan"] = "gold"
    with pytest.raises(
        DataValidationError, match=pattern("'plan'", "'gold'", "not among the states", "declared")
    ):
        read(df)


def test_states_listed_twice():
    with pytest.raises(DataValidationError, match=pattern("'free'", "listed twice", "once")):
        read(panel(), states=["free", "basic", "free", "premium", "deleted"])


def test_non_integer_period():
    df = panel()
    df["month"] = df["month"].astype(float)
    df.loc[6, "month"] = 3.5
    with pytest.raises(
        DataValidationError, match=pattern("'month'", "non-integer", "3.5", "whole number")
    ):
        read(df)


def test_duplicate_user_period():
    df = pd.concat([panel(), pd.DataFrame([("a", 2, "basic", 0, "SE")], columns=panel().columns)])
    with pytest.raises(
        DataValidationError,
        match=pattern("'user', 'month'", "duplicated", "('a', 2)", "one row per user, month"),
    ):
        read(df)


def test_row_after_an_absorbing_state():
    df = pd.concat([panel(), pd.DataFrame([("b", 4, "free", 0, "US")], columns=panel().columns)])
    with pytest.raises(
        DataValidationError,
        match=pattern("'plan'", "'b'", "month 4", "'deleted'", "month 3", "last row"),
    ):
        read(df)


def test_absorbing_state_not_among_the_states():
    with pytest.raises(
        DataValidationError,
        match=pattern("absorbing", "'churned'", "not among the states", "must be states"),
    ):
        read(panel(), absorbing=["deleted", "churned"])


@pytest.mark.parametrize(
    ("column", "old", "new"), [("cohort", "0", "1"), ("country", "'SE'", "'US'")]
)
def test_cohort_or_covariate_changing_within_a_user(column, old, new):
    df = panel()
    df.loc[2, column] = 1 if column == "cohort" else "US"  # user a, month 3
    with pytest.raises(
        DataValidationError,
        match=pattern(f"'{column}'", "changes within user 'a'", f"from {old} to {new}", "constant"),
    ):
        read(df)


@pytest.mark.parametrize("values", [[30] * 14, [30.5] * 14])
def test_numeric_covariate(values):
    df = panel().assign(age=values)
    with pytest.raises(
        DataValidationError, match=pattern("'age'", "numeric", "categorical covariates")
    ):
        read(df, covariates=["country", "age"])


def test_bool_covariate_is_categorical():
    df = panel().assign(trial=[True] * 7 + [False] * 7)
    df.loc[7:, "trial"] = [u in ("c", "d") for u in df.loc[7:, "user"]]  # constant per user
    data = read(df, covariates=["country", "trial"])
    assert data.encoding.features == ["country[US]", "trial[True]"]


# -- user-given allowed masks ------------------------------------------------------------

#: Everything allowed except basic→premium (which user b does at month 1→2).
NO_UPGRADE = {
    "free": ["free", "basic", "premium", "deleted"],
    "basic": ["free", "basic", "deleted"],
    "premium": ["free", "basic", "premium", "deleted"],
}


def no_upgrade_array() -> np.ndarray:
    mask = np.ones((4, 4), dtype=bool)
    mask[STATES.index("basic"), STATES.index("premium")] = False
    return mask


def no_upgrade_frame() -> pd.DataFrame:
    frame = pd.DataFrame(no_upgrade_array(), index=STATES, columns=STATES)
    # labels, not positions, count: reverse both axes
    return frame.iloc[::-1, ::-1]


@pytest.mark.parametrize(
    "allowed",
    [NO_UPGRADE, no_upgrade_array(), no_upgrade_frame()],
    ids=["mapping", "array", "frame"],
)
def test_transition_outside_the_given_mask(allowed):
    with pytest.raises(
        DataValidationError,
        match=pattern("'plan'", "'basic→premium'", "not allowed", "'b'", "month 1", "allowed mask"),
    ):
        read(panel(), allowed=allowed)


@pytest.mark.parametrize(
    "allowed",
    [NO_UPGRADE, no_upgrade_array(), no_upgrade_frame()],
    ids=["mapping", "array", "frame"],
)
def test_the_three_mask_forms_agree(allowed):
    df = panel()
    df = df[df["user"] != "b"]  # b is the only one to upgrade
    expected = no_upgrade_array()
    expected[STATES.index("deleted")] = False
    np.testing.assert_array_equal(read(df, allowed=allowed).allowed.to_numpy(), expected)


def test_frame_mask_missing_labels_allows_nothing_there():
    # no "deleted" column: nobody may be deleted, so b's premium→deleted is an error
    frame = pd.DataFrame(True, index=STATES, columns=["free", "basic", "premium"])
    with pytest.raises(
        DataValidationError, match=pattern("'plan'", "'premium→deleted'", "allowed mask")
    ):
        read(panel(), allowed=frame)
    # no "deleted" row is fine: it is absorbing anyway
    frame = pd.DataFrame(True, index=["free", "basic", "premium"], columns=STATES)
    assert not read(panel(), allowed=frame).allowed.loc["deleted"].any()


@pytest.mark.parametrize(
    "allowed",
    [
        {"free": ["free", "basic"], "basic": ["basic", "premium"]},  # no "premium" key
        np.where(np.arange(4)[:, None] == 2, False, np.ones((4, 4), dtype=bool)),
        pd.DataFrame(True, index=["free", "basic", "deleted"], columns=STATES),
    ],
    ids=["mapping", "array", "frame"],
)
def test_mask_leaving_a_transient_state_no_target(allowed):
    with pytest.raises(
        DataValidationError, match=pattern("allowed mask", "'premium'", "no target", "at least one")
    ):
        read(panel(), allowed=allowed)


@pytest.mark.parametrize(
    ("allowed", "bad"),
    [
        ({"free": ["free", "gold"], "basic": ["basic"], "premium": ["deleted"]}, "'gold'"),
        ({"free": ["free"], "basic": ["basic"], "platinum": ["free"]}, "'platinum'"),
    ],
)
def test_unknown_state_names_in_a_mapping_mask(allowed, bad):
    with pytest.raises(DataValidationError, match=pattern("allowed", bad, "states are")):
        read(panel(), allowed=allowed)


def test_unknown_state_names_in_a_frame_mask():
    frame = pd.DataFrame(True, index=STATES, columns=[*STATES, "gold"])
    with pytest.raises(DataValidationError, match=pattern("allowed mask", "'gold'", "states are")):
        read(panel(), allowed=frame)


def test_mask_of_the_wrong_shape():
    with pytest.raises(
        DataValidationError, match=pattern("allowed mask", "(3, 3)", "states × states", "(4, 4)")
    ):
        read(panel(), allowed=np.ones((3, 3), dtype=bool))


# -- from_sequences ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sequences", "shown"),
    [([["free", "basic"], []], "[1]"), ({"x": ["free"], "y": [], "z": []}, "['y', 'z']")],
)
def test_empty_sequence(sequences, shown):
    with pytest.raises(DataValidationError, match=pattern("sequence", shown, "empty", "at least")):
        StateSequences.from_sequences(sequences)


def test_no_sequences():
    with pytest.raises(DataValidationError, match=pattern("no sequences", "at least one user")):
        StateSequences.from_sequences([])


def test_cohort_length_mismatch():
    with pytest.raises(
        DataValidationError,
        match=pattern("cohort", "1 labels", "2 sequences", "one label per user"),
    ):
        StateSequences.from_sequences([["free"], ["basic"]], cohort=[0])


def test_covariates_length_mismatch():
    covariates = pd.DataFrame({"country": ["SE", "US", "SE"]})
    with pytest.raises(
        DataValidationError,
        match=pattern("covariates", "3 rows", "2 sequences", "one row per user"),
    ):
        StateSequences.from_sequences([["free"], ["basic"]], covariates=covariates)


def test_from_sequences_checks_like_from_panel():
    paths = [["free", "basic"], ["basic", "deleted", "free"]]
    with pytest.raises(
        DataValidationError, match=pattern("'state'", "user 1", "'deleted'", "last row")
    ):
        StateSequences.from_sequences(paths, absorbing=["deleted"])
    with pytest.raises(DataValidationError, match=pattern("'state'", "'gold'", "declared")):
        StateSequences.from_sequences([["free", "gold"]], states=["free", "basic"])
    with pytest.raises(
        DataValidationError, match=pattern("'state'", "'free→basic'", "allowed mask")
    ):
        StateSequences.from_sequences(
            [["free", "basic"]], allowed={"free": ["free"], "basic": ["basic"]}
        )
    with pytest.raises(DataValidationError, match=pattern("'age'", "numeric", "categorical")):
        StateSequences.from_sequences(
            [["free"], ["basic"]], covariates=pd.DataFrame({"age": [20, 30]})
        )
