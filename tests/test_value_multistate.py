"""Lifetime value under the Dirichlet multi-state model: linear algebra, brute force, totals."""

import warnings

import numpy as np
import pandas as pd
import pytest
from value_helpers import set_posterior

import bayesltv as bl

RATE = 0.01
DELTA = 1 / (1 + RATE)
HORIZON = 24
REWARDS = {"premium": 11.0, "duo": 15.0, "family": 18.0, "student": 6.0, "free": 0.4}


@pytest.fixture(scope="module")
def panel():
    return bl.datasets.simulate_streaming(users_per_cohort=40, n_cohorts=12, random_seed=4).panel


@pytest.fixture(scope="module")
def sequences(panel):
    return bl.StateSequences.from_panel(
        panel, user="user", period="month", state="state", absorbing=["deleted"]
    )


@pytest.fixture(scope="module")
def heterogeneous(sequences):
    return bl.DirichletMarkov().fit(sequences, method="map")


def reward_vector(states):
    return np.array([REWARDS.get(s, 0.0) for s in states])


def brute_force_values(a, states, start, n_users, rng, counts=None):
    """Users draw their own dice row by row (numpy's Dirichlet), then walk HORIZON steps;
    returns each user's discounted rewards after the current period."""
    k = len(states)
    transient = list(a)
    dice = np.tile(np.eye(k), (n_users, 1, 1))
    for i, row in a.items():
        extra = 0.0 if counts is None else counts[i]
        allowed = row > 0
        draws = rng.dirichlet((row + extra)[allowed], size=n_users)
        dice[:, i, :] = 0.0
        dice[:, i, allowed] = draws
    assert set(transient) <= set(range(k))
    reward = reward_vector(states)
    state = np.full(n_users, start)
    total = np.zeros(n_users)
    for step in range(1, HORIZON + 1):
        cumulative = dice[np.arange(n_users), state].cumsum(-1)
        state = np.minimum((rng.random((n_users, 1)) > cumulative).sum(-1), k - 1)
        total += DELTA**step * reward[state]
    return total


def factory_rows(model):
    """The MAP factory a_i = κ_i m_i by origin code."""
    mean, kappa = model.factory()
    states = list(model.data.states)
    a = (mean * kappa).isel(chain=0, draw=0, group=0)
    return {states.index(o): a.sel(origin=o).values for o in a["origin"].values}


def test_homogeneous_value_equals_the_linear_algebra_solution(sequences):
    model = bl.DirichletMarkov(heterogeneous=False).fit(sequences, method="map")
    matrix = model.transition_matrix().isel(chain=0, draw=0, group=0).values
    reward = reward_vector(model.data.states)
    solution = sum(
        DELTA**k * np.linalg.matrix_power(matrix, k) @ reward for k in range(1, HORIZON + 1)
    )
    result = model.value_function(REWARDS, RATE, horizon=HORIZON, random_seed=0)
    table = result.summary(by="state")
    np.testing.assert_allclose(table["expected_mean"], solution, rtol=1e-10)
    # users are valued by the same recursion from their current state
    users = model.ltv(sequences, REWARDS, RATE, horizon=HORIZON, random_seed=0).summary("user")
    current = model.data.states.get_indexer(users["state"])
    absorbing = users["state"] == "deleted"
    np.testing.assert_allclose(
        users.loc[~absorbing, "expected_mean"], solution[current[~absorbing]], rtol=1e-10
    )
    assert (users.loc[absorbing, "expected_mean"] == 0).all()


def test_heterogeneous_value_matches_brute_force_and_differs_from_the_plug_in(heterogeneous):
    model = heterogeneous
    states = list(model.data.states)
    a = factory_rows(model)
    result = model.value_function(
        REWARDS, RATE, horizon=HORIZON, dice_per_draw=40_000, random_seed=1
    )
    table = result.summary(by="state")
    rng = np.random.default_rng(2)
    mean_matrix = model.transition_matrix().isel(chain=0, draw=0, group=0).values
    reward = reward_vector(states)
    plug_in = sum(
        DELTA**k * np.linalg.matrix_power(mean_matrix, k) @ reward for k in range(1, HORIZON + 1)
    )
    gaps = []
    for start in ("premium", "free", "lapsed"):
        values = brute_force_values(a, states, states.index(start), 40_000, rng)
        # the value function integrates the path exactly: its Monte Carlo error is below the
        # brute force's, so 4 brute-force standard errors bound the difference
        standard_error = values.std() / np.sqrt(len(values))
        assert abs(table.loc[start, "expected_mean"] - values.mean()) < 4 * standard_error
        gaps.append(abs(plug_in[states.index(start)] - values.mean()) / standard_error)
    # plugging in the mean matrix ignores that each user keeps their dice
    assert max(gaps) > 10


def test_a_users_history_enters_through_conjugate_dice(heterogeneous, sequences, panel):
    model = heterogeneous
    states = list(model.data.states)
    users = sequences.users
    counts = sequences.user_counts()
    moved = counts.sum(axis=(1, 2))
    candidates = users.index[(users["last_state"] == "premium").to_numpy() & (moved >= 6)]
    user = candidates[0]
    # value this one user (data other than the fitted sequences, same states and mask)
    alone = bl.StateSequences.from_panel(
        panel[panel["user"] == user],
        user="user",
        period="month",
        state="state",
        states=states,
        absorbing=["deleted"],
        allowed=sequences.allowed,
    )
    result = model.ltv(alone, REWARDS, RATE, horizon=HORIZON, dice_per_draw=40_000, random_seed=3)
    row = result.summary("user").loc[user]
    position = users.index.get_loc(user)
    own = {i: counts[position, i] for i in factory_rows(model)}
    values = brute_force_values(
        factory_rows(model),
        states,
        states.index("premium"),
        40_000,
        np.random.default_rng(4),
        counts=own,
    )
    assert abs(row["expected_mean"] - values.mean()) < 4 * values.std() / np.sqrt(len(values))
    np.testing.assert_allclose(row["predictive_sd"], values.std(), rtol=0.05)


def test_totals_add_users_and_states_within_draws(sequences):
    model = bl.DirichletMarkov().fit(sequences, method="map")  # its posterior is replaced
    draws = 12
    posterior = model.idata["posterior"]
    rng = np.random.default_rng(5)
    scale = rng.uniform(0.7, 1.3, size=(1, draws, 1, 1))
    set_posterior(
        model,
        transition_mean=np.repeat(posterior["transition_mean"].values, draws, axis=1),
        concentration=np.repeat(posterior["concentration"].values, draws, axis=1) * scale,
        initial=np.repeat(posterior["initial"].values, draws, axis=1),
    )
    result = model.ltv(sequences, REWARDS, RATE, horizon=HORIZON, keep_draws=True, random_seed=6)
    per_user = result.draws(by="user")["expected"].sum("user").values.ravel()
    total = result.summary(by="total").loc["total"]
    np.testing.assert_allclose(total["expected_mean"], per_user.mean(), rtol=1e-10)
    by_state = result.summary(by="state")
    np.testing.assert_allclose(by_state["expected_mean"].sum(), total["expected_mean"])
    assert by_state.loc["deleted", "users"] == 0
    assert total["predictive_sd"] > total["expected_sd"] > 0


def test_value_of_a_move_is_the_difference_of_state_values(heterogeneous):
    move = heterogeneous.value_of_move(
        "free", "premium", REWARDS, RATE, horizon=HORIZON, dice_per_draw=20_000, random_seed=7
    )
    values = heterogeneous.value_function(
        REWARDS,
        RATE,
        horizon=HORIZON,
        include_current=True,
        dice_per_draw=20_000,
        random_seed=7,
    ).summary(by="state")
    difference = values.loc["premium", "expected_mean"] - values.loc["free", "expected_mean"]
    np.testing.assert_allclose(move["mean"].iloc[0], difference, rtol=1e-10)
    assert move["prob_positive"].iloc[0] == 1.0
    with pytest.raises(ValueError, match="not among the states"):
        heterogeneous.value_of_move("free", "platinum", REWARDS)


def test_a_single_draw_has_no_noise_warning(heterogeneous):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        move = heterogeneous.value_of_move("free", "premium", REWARDS, RATE, random_seed=9)
    assert move["sd"].iloc[0] == 0.0


def test_new_user_value_averages_the_initial_distribution(heterogeneous):
    values = heterogeneous.value_function(
        REWARDS,
        RATE,
        horizon=HORIZON,
        include_current=True,
        dice_per_draw=20_000,
        random_seed=8,
    ).summary(by="state")
    new = heterogeneous.new_user_ltv(
        REWARDS, RATE, horizon=HORIZON, dice_per_draw=20_000, random_seed=8
    ).summary(by="group")
    initial = heterogeneous.idata["posterior"]["initial"].isel(chain=0, draw=0, group=0).values
    np.testing.assert_allclose(
        new["expected_mean"].iloc[0], initial @ values["expected_mean"].to_numpy(), rtol=1e-10
    )


def test_rewards_must_name_known_states(heterogeneous, sequences):
    with pytest.raises(ValueError, match="unknown state"):
        heterogeneous.ltv(sequences, {"platinum": 30.0})


def test_predictive_intervals_of_totals_cover_realised_values_near_nominal():
    """Fit on a simulated panel, value 40 random groups of users 12 months ahead and compare
    each group's realised discounted revenue (the simulator's held-out months, users' own
    matrices) with its predictive interval. 40 groups: binomial standard errors 3.8% at 94%
    and 7.9% at 50%."""
    horizon = 12
    sim = bl.datasets.simulate_streaming(
        users_per_cohort=60, n_cohorts=12, horizon_beyond=horizon, random_seed=21
    )
    options = dict(user="user", period="month", state="state", absorbing=["deleted"])
    sequences = bl.StateSequences.from_panel(sim.panel, cohort="cohort", **options)
    model = bl.DirichletMarkov().fit(
        sequences,
        method="nuts",
        draws=300,
        tune=300,
        chains=2,
        random_seed=1,
        progressbar=False,
    )
    end = int(sim.panel["month"].max())
    held_out = sim.holdout
    paid = held_out["state"].map(REWARDS).fillna(0.0).astype(float)
    discounted = paid * DELTA ** (held_out["month"] - end)
    users = sequences.users.index
    realised = discounted.groupby(held_out["user"]).sum().reindex(users, fill_value=0.0)
    bucket = pd.Series(np.random.default_rng(2).integers(40, size=len(users)), index=users)
    inside = {0.94: [], 0.5: []}
    for number in range(40):
        chosen = bucket.index[bucket == number]
        subset = bl.StateSequences.from_panel(
            sim.panel[sim.panel["user"].isin(chosen)],
            cohort="cohort",
            states=list(sequences.states),
            allowed=sequences.allowed,
            **options,
        )
        for prob, hits in inside.items():
            result = model.ltv(
                subset, REWARDS, RATE, horizon=horizon, hdi_prob=prob, random_seed=number
            )
            total = result.summary(by="total").loc["total"]
            value = realised.loc[chosen].sum()
            hits.append(total["predictive_hdi_low"] <= value <= total["predictive_hdi_high"])
    coverage = {prob: float(np.mean(hits)) for prob, hits in inside.items()}
    print(f"coverage of group totals: {coverage} over 40 groups")
    assert 0.84 <= coverage[0.94] <= 1.0
    assert 0.3 <= coverage[0.5] <= 0.7
