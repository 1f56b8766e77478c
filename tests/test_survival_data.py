"""SurvivalData collapses users to the right sufficient statistics.

Expected values are written out by hand or counted with plain loops over users, never with
the code under test.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import bayesltv as bl
from bayesltv import SurvivalData
from bayesltv.data import Groups

# -- helpers ----------------------------------------------------------------------------


def counts_by_label(data: SurvivalData, columns: list[str]) -> dict:
    """``{(*cell labels, period): (churned, censored, entered)}`` from ``data.counts``."""
    labels = list(data.cells[columns].itertuples(index=False, name=None))
    return {
        (*labels[row.cell], row.period): (row.churned, row.censored, row.entered)
        for row in data.counts.itertuples(index=False)
    }


def counts_by_loop(df: pd.DataFrame, columns: list[str]) -> dict:
    """The same dictionary, counted user by user (all-zero rows absent)."""
    tally: dict = {}
    for row in df.itertuples(index=False):
        cell = tuple(getattr(row, c) for c in columns)
        kind = 0 if row.churned else 1
        at_exit = tally.setdefault((*cell, row.duration), [0, 0, 0])
        at_exit[kind] += 1
        tally.setdefault((*cell, row.entry), [0, 0, 0])[2] += 1
    return {key: tuple(value) for key, value in tally.items()}


def simulated(n_users: int, seed: int = 1, **kwargs) -> pd.DataFrame:
    n_cohorts = 3
    return bl.datasets.simulate_survival(
        alpha=(0.8, 1.2, 2.0)[:n_cohorts],
        beta=(2.0, 3.0, 4.0)[:n_cohorts],
        users_per_cohort=n_users // n_cohorts,
        observed_periods=(6, 4, 2),
        covariate_effects={"plan": {"basic": (0.0, 0.0), "premium": (-0.5, 0.3)}},
        entry_share=0.3,
        random_seed=seed,
        **kwargs,
    )


# -- a small table, by hand -------------------------------------------------------------

#: cohort, plan, entry, duration, churned
HAND = pd.DataFrame(
    [
        ("A", "basic", 0, 1, True),
        ("A", "basic", 0, 1, True),
        ("A", "basic", 0, 3, False),
        ("A", "premium", 0, 2, True),
        ("A", "premium", 1, 3, False),  # left-truncated
        ("B", "basic", 2, 4, True),  # left-truncated
        ("B", "basic", 0, 2, False),
        ("B", "premium", 0, 2, True),
        ("B", "premium", 2, 2, False),  # seen once, at entry
        ("B", "premium", 0, 0, False),  # censored before completing a period
    ],
    columns=["cohort", "plan", "entry", "duration", "churned"],
)

#: (cohort, plan, period): (churned, censored, entered), worked out by hand from HAND
HAND_COUNTS = {
    ("A", "basic", 0): (0, 0, 3),
    ("A", "basic", 1): (2, 0, 0),
    ("A", "basic", 3): (0, 1, 0),
    ("A", "premium", 0): (0, 0, 1),
    ("A", "premium", 1): (0, 0, 1),
    ("A", "premium", 2): (1, 0, 0),
    ("A", "premium", 3): (0, 1, 0),
    ("B", "basic", 0): (0, 0, 1),
    ("B", "basic", 2): (0, 1, 1),
    ("B", "basic", 4): (1, 0, 0),
    ("B", "premium", 0): (0, 1, 2),
    ("B", "premium", 2): (1, 1, 1),
}

#: (cohort, period): (at risk, churned) with at risk = users with entry < t <= duration
HAND_LIFE_TABLE = {
    ("A", 1): (4, 2),
    ("A", 2): (3, 1),
    ("A", 3): (2, 0),
    ("A", 4): (0, 0),
    ("B", 1): (2, 0),
    ("B", 2): (2, 1),
    ("B", 3): (1, 0),
    ("B", 4): (1, 1),
}


@pytest.fixture(scope="module")
def hand() -> SurvivalData:
    return SurvivalData.from_users(
        HAND, "duration", "churned", cohort="cohort", entry="entry", covariates=["plan"]
    )


def test_hand_counts(hand):
    assert counts_by_label(hand, ["cohort", "plan"]) == HAND_COUNTS
    assert len(hand.counts) == len(HAND_COUNTS)
    assert counts_by_loop(HAND, ["cohort", "plan"]) == HAND_COUNTS  # the helper itself


def test_hand_summary(hand):
    assert hand.n_users == 10
    assert hand.n_cells == 4
    assert hand.max_period == 4
    assert list(hand.groups.labels) == ["A", "B"]
    assert hand.encoding.features == ["plan[premium]"]
    cells = set(hand.cells[["cohort", "plan"]].itertuples(index=False, name=None))
    assert cells == {("A", "basic"), ("A", "premium"), ("B", "basic"), ("B", "premium")}
    # the cell's group code points at its cohort label
    assert (hand.groups.labels[hand.cells["group_code"]] == hand.cells["cohort"]).all()
    # each user sits in the cell of its own cohort and plan
    user_cells = hand.cells.loc[hand.users["cell"], ["cohort", "plan"]].to_numpy()
    np.testing.assert_array_equal(user_cells, HAND[["cohort", "plan"]].to_numpy())
    np.testing.assert_array_equal(hand.users["duration"], HAND["duration"])
    np.testing.assert_array_equal(hand.users["entry"], HAND["entry"])
    np.testing.assert_array_equal(hand.users["churned"], HAND["churned"])


def test_hand_design(hand):
    design = hand.design()
    expected = (hand.cells["plan"] == "premium").to_numpy(dtype=float)[:, None]
    np.testing.assert_array_equal(design, expected)


def test_hand_life_table(hand):
    life = hand.at_risk()
    got = {
        (row.group, row.period): (row.at_risk, row.churned) for row in life.itertuples(index=False)
    }
    assert got == HAND_LIFE_TABLE


# -- scaling: cells, not users ----------------------------------------------------------


@pytest.mark.parametrize("n_users", [1_000, 100_000])
def test_cells_do_not_grow_with_users(n_users):
    df = simulated(n_users)
    data = SurvivalData.from_users(
        df, "duration", "churned", cohort="cohort", entry="entry", covariates=["plan"], user="user"
    )
    assert data.n_cells == 3 * 2  # cohorts × plans
    assert len(data.counts) <= data.n_cells * (data.max_period + 1)
    assert data.max_period == 6
    assert data.n_users == len(df)
    assert data.counts["churned"].sum() == df["churned"].sum()
    assert data.counts["censored"].sum() == (~df["churned"]).sum()


def test_counts_match_a_loop_over_simulated_users():
    df = simulated(3_000, seed=7)
    data = SurvivalData.from_users(
        df, "duration", "churned", cohort="cohort", entry="entry", covariates=["plan"]
    )
    assert counts_by_label(data, ["cohort", "plan"]) == counts_by_loop(df, ["cohort", "plan"])


def test_numeric_covariate_gives_one_cell_per_user():
    df = simulated(600, seed=3)
    df["age"] = np.random.default_rng(0).normal(40, 10, size=len(df))
    data = SurvivalData.from_users(
        df, "duration", "churned", cohort="cohort", entry="entry", covariates=["plan", "age"]
    )
    assert not data.encoding.aggregatable
    assert data.n_cells == len(df)
    np.testing.assert_array_equal(data.users["cell"], np.arange(len(df)))
    np.testing.assert_allclose(data.cells["age"], df["age"])
    assert data.encoding.features == ["plan[premium]", "age"]
    # one entry row and one exit row per user, merged when they fall on the same period
    same_period = (df["entry"] == df["duration"]).sum()
    assert len(data.counts) == 2 * len(df) - same_period


# -- survivor tables --------------------------------------------------------------------


@pytest.fixture(scope="module")
def fader_hardie() -> tuple[pd.DataFrame, SurvivalData]:
    table = bl.datasets.fader_hardie()
    data = SurvivalData.from_survivors(
        table, survivors="survivors", period="period", group="segment"
    )
    return table, data


def test_fader_hardie_counts(fader_hardie):
    table, data = fader_hardie
    expected = {}
    for segment in ("regular", "high_end"):
        alive = table.loc[table["segment"] == segment, "survivors"].tolist()
        assert len(alive) == 13
        expected[(segment, 0)] = (0, 0, alive[0])
        for t in range(1, 13):
            expected[(segment, t)] = (alive[t - 1] - alive[t], 0, 0)
        churned_last = alive[11] - alive[12]
        expected[(segment, 12)] = (churned_last, alive[12], 0)
    assert counts_by_label(data, ["segment"]) == expected
    assert data.n_users == 2000
    assert data.n_cells == 2
    assert data.users is None
    assert list(data.groups.labels) == ["regular", "high_end"]
    # spot values from the paper's table
    assert expected[("regular", 1)] == (369, 0, 0)
    assert expected[("high_end", 12)][1] == 394


def test_fader_hardie_observed_survival(fader_hardie):
    table, data = fader_hardie
    observed = data.observed_survival()
    assert list(observed.index) == ["regular", "high_end"]
    assert list(observed.columns) == list(range(13))
    for segment in ("regular", "high_end"):
        alive = table.loc[table["segment"] == segment].sort_values("period")["survivors"]
        np.testing.assert_allclose(observed.loc[segment].to_numpy(), alive.to_numpy() / 1000)


def test_survivors_starting_late_are_left_truncated():
    table = pd.DataFrame({"period": [2, 3, 4], "survivors": [50, 40, 35]})
    data = SurvivalData.from_survivors(table, survivors="survivors", period="period")
    assert counts_by_label(data, ["group_code"]) == {
        (0, 2): (0, 0, 50),
        (0, 3): (10, 0, 0),
        (0, 4): (5, 35, 0),
    }
    life = data.at_risk().set_index("period")
    assert life.loc[[1, 2, 3, 4], "at_risk"].tolist() == [0, 0, 50, 40]


# -- life table -------------------------------------------------------------------------


def test_at_risk_matches_brute_force():
    df = simulated(2_000, seed=11)
    data = SurvivalData.from_users(
        df, "duration", "churned", cohort="cohort", entry="entry", covariates=["plan"]
    )
    max_period = int(df["duration"].max())
    expected = {}
    for cohort in sorted(df["cohort"].unique()):
        for t in range(1, max_period + 1):
            at_risk = churned = 0
            for row in df[df["cohort"] == cohort].itertuples(index=False):
                if row.entry < t <= row.duration:
                    at_risk += 1
                    churned += int(row.churned and row.duration == t)
            expected[(cohort, t)] = (at_risk, churned)
    life = data.at_risk()
    got = {
        (row.group, row.period): (row.at_risk, row.churned) for row in life.itertuples(index=False)
    }
    assert got == expected
    assert (df["entry"] > 0).any()  # the check covers left truncation


# -- with_covariates --------------------------------------------------------------------


def test_with_covariates_equals_building_directly():
    df = bl.datasets.simulate_survival(
        alpha=(0.8, 1.5),
        beta=(2.0, 3.0),
        users_per_cohort=1_500,
        observed_periods=(5, 3),
        covariate_effects={
            "plan": {"basic": (0.0, 0.0), "premium": (-0.5, 0.3)},
            "region": {"eu": (0.0, 0.0), "us": (0.2, 0.0), "asia": (0.4, -0.2)},
        },
        entry_share=0.3,
        random_seed=5,
    )
    columns = {"duration": "duration", "churned": "churned", "cohort": "cohort", "entry": "entry"}
    full = SurvivalData.from_users(df, **columns, covariates=["plan", "region"])
    reduced = full.with_covariates(["plan"])
    direct = SurvivalData.from_users(df, **columns, covariates=["plan"])

    assert full.n_cells == 2 * 2 * 3
    assert reduced.n_cells == direct.n_cells == 2 * 2
    assert reduced.encoding.features == direct.encoding.features == ["plan[premium]"]
    assert counts_by_label(reduced, ["cohort", "plan"]) == counts_by_label(
        direct, ["cohort", "plan"]
    )
    assert counts_by_label(reduced, ["cohort", "plan"]) == counts_by_loop(df, ["cohort", "plan"])
    assert reduced.n_users == direct.n_users == len(df)
    # every user lands in the cell of its own cohort and plan
    for data in (reduced, direct):
        labels = data.cells.loc[data.users["cell"], ["cohort", "plan"]].to_numpy()
        np.testing.assert_array_equal(labels, df[["cohort", "plan"]].to_numpy())
    # no covariates: one cell per cohort
    none = full.with_covariates([])
    assert none.n_cells == 2
    assert counts_by_label(none, ["cohort"]) == counts_by_loop(df, ["cohort"])


# -- groups -----------------------------------------------------------------------------


def cohort_groups(cohorts) -> Groups:
    df = pd.DataFrame(
        {"cohort": cohorts, "duration": np.arange(1, len(cohorts) + 1), "churned": False}
    )
    return SurvivalData.from_users(df, "duration", "churned", cohort="cohort").groups


def test_integer_cohort_gaps():
    groups = cohort_groups([3, 0, 1, 0, 3])
    assert list(groups.labels) == [0, 1, 3]
    assert groups.ordered
    np.testing.assert_array_equal(groups.gaps, [0, 1, 2])


def test_period_cohort_gaps():
    months = pd.PeriodIndex(["2024-01", "2024-02", "2024-04", "2024-02"], freq="M")
    groups = cohort_groups(months)
    assert list(groups.labels.astype(str)) == ["2024-01", "2024-02", "2024-04"]
    np.testing.assert_array_equal(groups.gaps, [0, 1, 2])


def test_datetime_cohort_gaps_count_months():
    starts = pd.to_datetime(["2024-01-01", "2024-02-15", "2024-05-01"])
    np.testing.assert_array_equal(cohort_groups(starts).gaps, [0, 1, 3])


def test_string_cohort_gaps():
    groups = cohort_groups(["beta", "alpha", "gamma", "alpha"])
    assert list(groups.labels) == ["alpha", "beta", "gamma"]
    np.testing.assert_array_equal(groups.gaps, [0, 1, 1])


def test_segments_are_unordered():
    table = pd.DataFrame(
        {"segment": ["y", "y", "x", "x"], "period": [0, 1, 0, 1], "survivors": [10, 5, 8, 4]}
    )
    data = SurvivalData.from_survivors(table, "survivors", "period", group="segment")
    assert not data.groups.ordered
    assert list(data.groups.labels) == ["y", "x"]  # first appearance
    np.testing.assert_array_equal(data.groups.gaps, [1, 1])
