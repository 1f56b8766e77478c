"""Lifetime value under the sBG: closed forms, brute force, totals within draws, coverage."""

import numpy as np
import pandas as pd
import pytest
from conftest import FADER_HARDIE
from scipy import special
from value_helpers import set_posterior, shortest_interval_mass, survival_product

import bayesltv as bl
from bayesltv.value import per_period_rate, price_schedule, residual_lifetime_value

RATE = 0.01
DELTA = 1 / (1 + RATE)


@pytest.fixture(scope="module")
def fh_map(fh_train):
    return bl.BetaGeometric().fit(fh_train, method="map")


def map_alpha_beta(model, segment):
    posterior = model.idata["posterior"]
    return (
        float(posterior["alpha"].sel(group=segment).item()),
        float(posterior["beta"].sel(group=segment).item()),
    )


@pytest.mark.parametrize("segment", ["regular", "high_end"])
def test_expected_value_equals_an_independent_discounted_sum(fh_map, fh_train, segment):
    schedule = price_schedule(10.0, horizon=60, annual_increase=0.05)
    result = fh_map.ltv(fh_train, value=schedule, discount_rate=RATE, horizon=60)
    alpha, beta = map_alpha_beta(fh_map, segment)
    per_user = sum(
        DELTA**k * schedule[k] * survival_product(alpha, beta, 7, k) for k in range(1, 61)
    )
    survivors = FADER_HARDIE[segment][7]
    row = result.summary(by="group").loc[segment]
    assert row["users"] == survivors
    np.testing.assert_allclose(row["expected_mean"], survivors * per_user, rtol=1e-10)
    # include_current adds this period's payment, certain for an active user
    current = fh_map.ltv(fh_train, value=schedule, discount_rate=RATE, include_current=True)
    np.testing.assert_allclose(
        current.summary(by="group").loc[segment, "expected_mean"],
        survivors * (per_user + schedule[0]),
        rtol=1e-10,
    )


@pytest.mark.parametrize(
    ("alpha", "beta", "tenure", "rate"),
    [(0.704, 1.182, 0, 0.1), (0.668, 3.806, 7, 0.01), (2.5, 0.4, 3, 0.02), (0.3, 8.0, 20, 0.05)],
)
def test_infinite_horizon_closed_form_equals_the_truncated_sum(alpha, beta, tenure, rate):
    delta = 1 / (1 + rate)
    terms, survival = [], 1.0
    for k in range(1, 20_000):
        survival *= (beta + tenure + k - 1) / (alpha + beta + tenure + k - 1)
        terms.append(delta**k * survival)
    closed = residual_lifetime_value(alpha, beta, tenure, rate)
    np.testing.assert_allclose(closed, np.sum(terms), rtol=1e-9)
    # Fader & Hardie (2010): DERL = (β+n−1)/(α+β+n−1) 2F1(1, β+n; α+β+n; δ) with n−1 = t
    # renewals counts the next payment undiscounted, i.e. it is our value divided by δ.
    b, c = beta + tenure, alpha + beta + tenure
    derl = b / c * special.hyp2f1(1, b + 1, c + 1, delta)
    np.testing.assert_allclose(closed, delta * derl, rtol=1e-12)


def test_infinite_horizon_ltv_uses_the_closed_form(fh_map, fh_train):
    result = fh_map.ltv(fh_train, value=10.0, discount_rate=0.02, horizon=None)
    alpha, beta = map_alpha_beta(fh_map, "regular")
    expected = FADER_HARDIE["regular"][7] * 10.0 * residual_lifetime_value(alpha, beta, 7, 0.02)
    row = result.summary(by="group").loc["regular"]
    np.testing.assert_allclose(row["expected_mean"], expected, rtol=1e-10)
    assert result.settings["horizon"] == "infinite"


def test_predictive_layer_matches_brute_force_lifetimes(fh_map):
    """Coins from Beta(α, β+t), geometric lifetimes: mean, sd and HDI mass agree."""
    alpha, beta = map_alpha_beta(fh_map, "high_end")
    users = pd.DataFrame({"duration": [7], "churned": [False], "segment": ["high_end"]})
    one = bl.SurvivalData.from_users(users, duration="duration", churned="churned")
    model = bl.BetaGeometric().fit(one, method="map")
    set_posterior(model, mu=[[[alpha / (alpha + beta)]]], kappa=[[[alpha + beta]]])
    row = model.ltv(one, value=1.0, discount_rate=RATE, horizon=36).summary(by="user").iloc[0]

    rng = np.random.default_rng(7)
    n = 400_000
    coin = rng.beta(alpha, beta + 7, size=n)
    further = np.minimum(rng.geometric(coin) - 1, 36)  # paid periods after the current one
    paid_value = np.concatenate([[0.0], np.cumsum(DELTA ** np.arange(1, 37))])
    values = paid_value[further]
    standard_error = values.std() / np.sqrt(n)
    assert abs(row["predictive_mean"] - values.mean()) < 4 * standard_error
    np.testing.assert_allclose(row["predictive_sd"], values.std(), rtol=0.01)
    mass = shortest_interval_mass(values, row["predictive_hdi_low"], row["predictive_hdi_high"])
    assert 0.935 <= mass <= 0.96
    # one posterior draw: no epistemic spread
    assert row["expected_sd"] == 0.0


@pytest.fixture(scope="module")
def cohorts():
    users = bl.datasets.simulate_survival(
        alpha=[0.8, 1.0, 1.2], beta=[2.0, 2.5, 3.0], users_per_cohort=300, random_seed=3
    )
    return users, bl.SurvivalData.from_users(
        users, duration="duration", churned="churned", cohort="cohort", user="user"
    )


@pytest.fixture(scope="module")
def cohort_values(cohorts):
    """Values under 40 hand-made posterior draws of (μ, κ) per cohort."""
    _, data = cohorts
    model = bl.BetaGeometric(cohort_prior="independent").fit(data, method="map")
    rng = np.random.default_rng(0)
    mu = rng.uniform(0.2, 0.4, size=(2, 20, 3))
    kappa = rng.uniform(2.0, 5.0, size=(2, 20, 3))
    set_posterior(model, mu=mu, kappa=kappa)
    return model, model.ltv(data, value=5.0, discount_rate=RATE, horizon=24, keep_draws=True)


def test_totals_add_users_within_each_draw(cohort_values, cohorts):
    users, _ = cohorts
    _, result = cohort_values
    per_user = result.draws(by="user")["expected"]
    total = per_user.sum("user").values.ravel()
    row = result.summary(by="total").loc["total"]
    np.testing.assert_allclose(row["expected_mean"], total.mean(), rtol=1e-12)
    np.testing.assert_allclose(row["expected_sd"], total.std(), rtol=1e-10)
    # intervals of a total are not sums of users' intervals
    user_rows = result.summary(by="user")
    assert row["expected_hdi_high"] < user_rows["expected_hdi_high"].sum()
    by_cohort = result.summary(by="cohort")
    summed = user_rows.groupby("group")["expected_mean"].sum()
    np.testing.assert_allclose(by_cohort["expected_mean"], summed.loc[by_cohort.index])
    assert by_cohort["users"].sum() == (~users["churned"]).sum()
    draws = result.draws(by="cohort")
    np.testing.assert_allclose(draws["expected"].sum("group").values.ravel(), total, rtol=1e-12)


def test_thinned_draws_keep_a_chain_by_draw_grid(cohort_values, cohorts):
    model, full = cohort_values
    _, data = cohorts
    thinned = model.ltv(data, value=5.0, discount_rate=RATE, horizon=24, max_draws=10)
    draws = thinned.draws(by="cohort")["expected"]
    assert dict(draws.sizes) == {"group": 3, "chain": 2, "draw": 5}
    np.testing.assert_array_equal(draws["draw"], [0, 4, 9, 14, 19])
    np.testing.assert_allclose(
        draws.sel(chain=1, draw=9).values,
        full.draws(by="cohort")["expected"].sel(chain=1, draw=9).values,
    )


def test_unit_rows_carry_their_stratum(fh_map, fh_train):
    units = fh_map.ltv(fh_train, value=1.0).summary(by="unit")
    assert list(units["group"]) == ["regular", "high_end"]
    assert list(units["tenure"]) == [7, 7]
    assert list(units["users"]) == [FADER_HARDIE["regular"][7], FADER_HARDIE["high_end"][7]]
    assert units.attrs["hdi_prob"] == 0.94


def test_user_rows_follow_each_users_tenure(cohort_values, cohorts):
    users, _ = cohorts
    model, result = cohort_values
    table = result.summary(by="user")
    assert len(table) == len(users)
    churned = users.set_index("user")["churned"]
    assert (table.loc[churned[churned].index, "predictive_mean"] == 0).all()
    # an active user's expected value, draw by draw, from the hand-set posterior
    user = churned[~churned].index[0]
    record = users.set_index("user").loc[user]
    posterior = model.idata["posterior"]
    mu = posterior["mu"].isel(group=int(record["cohort"])).values.ravel()
    kappa = posterior["kappa"].isel(group=int(record["cohort"])).values.ravel()
    per_draw = [
        sum(
            5.0 * DELTA**k * survival_product(m * c, (1 - m) * c, int(record["duration"]), k)
            for k in range(1, 25)
        )
        for m, c in zip(mu, kappa, strict=True)
    ]
    np.testing.assert_allclose(table.loc[user, "expected_mean"], np.mean(per_draw), rtol=1e-10)
    np.testing.assert_allclose(table.loc[user, "expected_sd"], np.std(per_draw), rtol=1e-8)
    assert table.loc[user, "predictive_sd"] > table.loc[user, "expected_sd"]


def test_new_user_value_adds_the_first_payment(fh_map):
    result = fh_map.new_user_ltv(value=10.0, discount_rate=RATE, horizon=60)
    alpha, beta = map_alpha_beta(fh_map, "regular")
    expected = sum(10.0 * DELTA**k * survival_product(alpha, beta, 0, k) for k in range(61))
    row = result.summary(by="group").loc["regular"]
    np.testing.assert_allclose(row["expected_mean"], expected, rtol=1e-10)
    assert row["predictive_hdi_low"] == pytest.approx(10.0)  # churn at the first renewal
    planned = fh_map.new_user_ltv(10.0, RATE, users={"regular": 500, "high_end": 0})
    np.testing.assert_allclose(
        planned.summary(by="total").loc["total", "expected_mean"], 500 * expected, rtol=1e-10
    )


def test_survivor_tables_have_no_user_rows(fh_map, fh_train):
    result = fh_map.ltv(fh_train, value=1.0)
    with pytest.raises(ValueError, match="by='group'"):
        result.summary(by="user")
    with pytest.raises(ValueError, match="strata columns"):
        result.summary(by="plan")


def test_helpers_and_bad_settings(fh_map, fh_train):
    np.testing.assert_allclose((1 + per_period_rate(0.12)) ** 12, 1.12)
    with pytest.raises(ValueError, match="shape"):
        fh_map.ltv(fh_train, value=np.ones(10), horizon=60)
    with pytest.raises(ValueError, match="constant reward"):
        fh_map.ltv(fh_train, value=np.ones(61), discount_rate=0.01, horizon=None)
    with pytest.raises(ValueError, match="positive discount rate"):
        fh_map.ltv(fh_train, value=1.0, discount_rate=0.0, horizon=None)
    with pytest.raises(ValueError, match="discount_rate"):
        fh_map.ltv(fh_train, value=1.0, discount_rate=-1.5)
    with pytest.raises(ValueError, match="horizon"):
        fh_map.ltv(fh_train, value=1.0, horizon=0)


def test_predictive_intervals_of_totals_cover_realised_values_near_nominal():
    """Fit on simulated cohorts, then value 80 random groups of active users 12 periods
    ahead and compare each group's realised total (from the simulated truth) with its
    predictive interval. Single users' values are discrete with mass piled at 0 and at the
    horizon, so their 94% intervals span almost everything; group totals are the
    informative check. With 80 groups the binomial standard error of a 94% rate is 2.7%,
    of a 50% rate 5.6%."""
    users = bl.datasets.simulate_survival(
        alpha=[0.7, 0.9, 1.1, 1.3],
        beta=[2.0, 2.4, 2.8, 3.2],
        users_per_cohort=3000,
        random_seed=11,
    )
    data = bl.SurvivalData.from_users(
        users, duration="duration", churned="churned", cohort="cohort", user="user"
    )
    model = bl.BetaGeometric().fit(
        data, method="nuts", draws=500, tune=500, chains=2, random_seed=5, progressbar=False
    )
    horizon = 12
    active = users[~users["churned"]].reset_index(drop=True)
    paid = np.minimum(active["true_churn_period"] - active["duration"] - 1, horizon)
    active["realised"] = np.concatenate([[0.0], np.cumsum(DELTA ** np.arange(1, horizon + 1))])[
        paid
    ]
    active["bucket"] = np.random.default_rng(2).integers(80, size=len(active))
    inside = {0.94: [], 0.5: []}
    for _, bucket in active.groupby("bucket"):
        subset = bl.SurvivalData.from_users(
            bucket, duration="duration", churned="churned", cohort="cohort", user="user"
        )
        for prob, hits in inside.items():
            row = model.ltv(subset, value=1.0, discount_rate=RATE, horizon=horizon, hdi_prob=prob)
            total = row.summary(by="total").loc["total"]
            realised = bucket["realised"].sum()
            hits.append(total["predictive_hdi_low"] <= realised <= total["predictive_hdi_high"])
    coverage = {prob: float(np.mean(hits)) for prob, hits in inside.items()}
    print(f"coverage of group totals: {coverage} over {len(inside[0.94])} groups")
    assert 0.86 <= coverage[0.94] <= 1.0
    assert 0.36 <= coverage[0.5] <= 0.64
