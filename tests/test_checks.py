"""Checks: predictive replays, hold-out splits and checks, pointwise log-likelihood."""

import numpy as np
import pandas as pd
import pymc as pm
import pytest
from conftest import FADER_HARDIE
from scipy import special
from value_helpers import set_posterior

import bayesltv as bl
from bayesltv import checks


@pytest.fixture(scope="module")
def fh_split(fh_full):
    return checks.holdout_split(fh_full, at_period=7)


@pytest.fixture(scope="module")
def fh_nuts(fh_split):
    return bl.BetaGeometric().fit(
        fh_split.train,
        method="nuts",
        draws=500,
        tune=500,
        chains=2,
        random_seed=3,
        progressbar=False,
    )


def test_survivor_table_split_equals_reading_the_first_years(fh_split, fh_train):
    pd.testing.assert_frame_equal(
        fh_split.train.counts.reset_index(drop=True), fh_train.counts.reset_index(drop=True)
    )
    assert fh_split.excluded_users == 0


def test_user_split_censors_each_cohort_at_its_age_at_the_split():
    users = bl.datasets.simulate_survival(
        alpha=[1.0] * 6, beta=[3.0] * 6, users_per_cohort=200, random_seed=1
    )
    data = bl.SurvivalData.from_users(
        users, duration="duration", churned="churned", cohort="cohort", user="user"
    )
    split = checks.holdout_split(data, at_period=3)
    age = 3 - users["cohort"]
    kept = users[age >= 0].set_index("user")
    train = split.train.users
    assert split.excluded_users == int((age < 0).sum())
    assert list(train.index) == list(kept.index)
    np.testing.assert_array_equal(
        train["duration"], np.minimum(kept["duration"], age[age >= 0].to_numpy())
    )
    np.testing.assert_array_equal(
        train["churned"], kept["churned"] & (kept["duration"] <= age[age >= 0].to_numpy())
    )
    assert split.test.n_users == len(kept)


def test_replaying_observed_churns_reproduces_the_life_table(fh_full):
    counts = checks._dense_counts(fh_full)
    alpha = np.full((3, 2), 0.7)
    everything = np.full(2, fh_full.max_period)
    at_risk, churned = checks.simulate_life_tables(
        alpha, alpha, counts, everything, np.random.default_rng(0)
    )
    table = fh_full.at_risk()
    for code, segment in enumerate(fh_full.groups.labels):
        life = table[table["group"] == segment].set_index("period")
        np.testing.assert_array_equal(at_risk[0, code, 1:], life["at_risk"])
        np.testing.assert_array_equal(churned[2, code, 1:], life["churned"])


def test_predictive_survival_is_centred_on_the_model_survival(fh_train):
    model = bl.BetaGeometric().fit(fh_train, method="map")
    posterior = model.idata["posterior"]
    set_posterior(
        model,
        mu=np.repeat(posterior["mu"].values, 2000, axis=1),
        kappa=np.repeat(posterior["kappa"].values, 2000, axis=1),
    )
    table = checks.retention_ppc(model, curve="survival", max_draws=None, random_seed=1)
    exact = model.survival(horizon=7).isel(chain=0, draw=0)
    for segment in fh_train.groups.labels:
        rows = table.loc[segment]
        np.testing.assert_allclose(rows["mean"], exact.sel(group=segment).values[1:], atol=0.004)
        # observed Kaplan–Meier = survivors / 1000 (no censoring before year 7)
        np.testing.assert_allclose(rows["observed"], np.array(FADER_HARDIE[segment][1:8]) / 1000)
        assert (rows["hdi_94_low"] <= rows["hdi_50_low"]).all()
        assert (rows["hdi_50_high"] <= rows["hdi_94_high"]).all()


def test_survival_holdout_check(fh_nuts, fh_split):
    check = checks.holdout_check(fh_nuts, fh_split, random_seed=2)
    table = check.table
    assert sorted(set(table.index.get_level_values("period"))) == [8, 9, 10, 11, 12]
    for segment in ("regular", "high_end"):
        np.testing.assert_allclose(
            table.loc[segment, "observed"], np.array(FADER_HARDIE[segment][8:]) / 1000
        )
    assert check.metrics["mae"] < 0.02
    assert check.metrics["coverage_94"] >= 0.8
    # log predictive density of the held-out years, independently: each survivor at year 7
    # churns at t (or survives year 12) with B(α+1, β+t−1)/B(α, β+7) (or B(α, β+12)/B(α, β+7))
    posterior = fh_nuts.idata["posterior"]
    total = 0.0
    for segment in ("regular", "high_end"):
        a = posterior["alpha"].sel(group=segment).values.ravel()
        b = posterior["beta"].sel(group=segment).values.ravel()
        alive = np.array(FADER_HARDIE[segment])
        log_p = np.zeros_like(a)
        for t in range(8, 13):
            churned = alive[t - 1] - alive[t]
            log_p += churned * (special.betaln(a + 1, b + t - 1) - special.betaln(a, b + 7))
        log_p += alive[12] * (special.betaln(a, b + 12) - special.betaln(a, b + 7))
        total = total + log_p
    expected = special.logsumexp(total) - np.log(len(total))
    np.testing.assert_allclose(check.metrics["log_predictive_density"], expected, rtol=1e-8)


def test_per_user_log_likelihood_adds_up_to_the_model_likelihood(fh_nuts):
    tree = checks.pointwise_log_likelihood(fh_nuts, point="user")
    per_user = tree["log_likelihood"]["survival"]
    assert per_user.sizes["user"] == 2000
    rows = checks.pointwise_log_likelihood(fh_nuts, point="row")["log_likelihood"]["survival"]
    np.testing.assert_allclose(
        per_user.sum("user").values, rows.sum(rows.dims[-1]).values, rtol=1e-8
    )
    result = checks.loo(fh_nuts)
    assert np.isfinite(result.elpd)
    assert result.n_data_points == 2000


@pytest.fixture(scope="module")
def streaming():
    panel = bl.datasets.simulate_streaming(users_per_cohort=30, n_cohorts=12, random_seed=4).panel
    return bl.StateSequences.from_panel(
        panel, user="user", period="month", state="state", absorbing=["deleted"], cohort="cohort"
    )


@pytest.fixture(scope="module")
def streaming_split(streaming):
    return checks.holdout_split(streaming, at_period=6)


@pytest.fixture(scope="module")
def streaming_fit(streaming_split):
    return bl.DirichletMarkov().fit(
        streaming_split.train,
        method="advi",
        draws=300,
        vi_iterations=5000,
        random_seed=1,
        progressbar=False,
    )


def test_sequence_split_keeps_rows_up_to_the_period(streaming, streaming_split):
    history = streaming.history
    first = streaming.users["first_period"]
    assert streaming_split.excluded_users == int((first > 6).sum())
    train, test = streaming_split.train, streaming_split.test
    assert train.history["period"].max() == 6
    kept = history[(first.to_numpy() <= 6)[history["user"].to_numpy()]]
    assert len(test.history) == len(kept)
    assert len(train.history) == int((kept["period"] <= 6).sum())
    assert (test.user_counts(train.users.index) >= train.user_counts()).all()


def test_sequence_holdout_check(streaming_fit, streaming_split):
    check = checks.holdout_check(streaming_fit, streaming_split, max_draws=100, random_seed=3)
    table = check.table
    # every user present at the split is followed to the end (absorbed users stay deleted)
    assert table["users"].nunique() == 1
    shares = table["observed"].groupby(level="period").sum()
    np.testing.assert_allclose(shares, 1.0)
    np.testing.assert_allclose(table["mean"].groupby(level="period").sum(), 1.0)
    expected = streaming_fit.log_predictive_density(streaming_split.test).sum()
    np.testing.assert_allclose(check.metrics["log_predictive_density"], expected)
    assert 0 <= check.metrics["coverage_94"] <= 1
    assert check.metrics["mae"] < 0.1


def test_occupancy_ppc_starts_where_users_start(streaming_fit, streaming_split):
    table = checks.occupancy_ppc(streaming_fit, max_draws=50, random_seed=4)
    np.testing.assert_allclose(table["observed"].groupby(level=["group", "tenure"]).sum(), 1.0)
    start = table.xs(0, level="tenure")
    np.testing.assert_allclose(start["mean"], start["observed"])
    initial = streaming_split.train.initial_counts
    shares = initial.div(initial.sum(axis=1), axis=0)
    first_group = initial.index[0]
    np.testing.assert_allclose(
        start.loc[first_group, "observed"], shares.loc[first_group].to_numpy()
    )


def test_per_user_paths_log_likelihood_matches_the_model(streaming_fit):
    data = streaming_fit.data
    tree = checks.pointwise_log_likelihood(streaming_fit, point="user")
    per_user = tree["log_likelihood"]["paths"].sum("user").values
    with streaming_fit.model:
        rows = pm.compute_log_likelihood(
            streaming_fit.idata, extend_inferencedata=False, progressbar=False
        )
    model_total = rows["transitions"].sum("transitions_dim_0") + rows["first_state"].sum(
        "first_state_dim_0"
    )
    counts = data.initial_counts.to_numpy()
    coefficient = np.sum(
        special.gammaln(counts.sum(axis=1) + 1) - special.gammaln(counts + 1).sum(axis=1)
    )
    np.testing.assert_allclose(per_user + coefficient, model_total.values, rtol=1e-8)


def test_loo_needs_draws(fh_train):
    model = bl.BetaGeometric().fit(fh_train, method="map")
    with pytest.raises(ValueError, match="MAP"):
        checks.loo(model)


def test_late_entry_groups_start_their_curve_at_their_first_period():
    table = pd.DataFrame(
        {
            "segment": ["a"] * 5 + ["b"] * 3,
            "period": [0, 1, 2, 3, 4, 2, 3, 4],
            "survivors": [100, 70, 55, 48, 44, 80, 70, 64],
        }
    )
    data = bl.SurvivalData.from_survivors(
        table, survivors="survivors", period="period", group="segment"
    )
    model = bl.BetaGeometric().fit(data, method="map")
    posterior = model.idata["posterior"]
    set_posterior(  # 2,000 copies of the mode: the replicas' mean is the model's curve
        model,
        mu=np.repeat(posterior["mu"].values, 2000, axis=1),
        kappa=np.repeat(posterior["kappa"].values, 2000, axis=1),
    )
    curves = checks.retention_ppc(model, curve="survival", max_draws=None, random_seed=0)
    np.testing.assert_allclose(curves.loc["a", "observed"], [0.70, 0.55, 0.48, 0.44])
    assert list(curves.loc["b"].index) == [3, 4]
    np.testing.assert_allclose(curves.loc["b", "observed"], [70 / 80, 64 / 80])
    # the model's conditional survival S(t | T > 2) for the late-entry group
    exact = model.survival(horizon=2, tenure=2).sel(group="b").isel(chain=0, draw=0)
    np.testing.assert_allclose(curves.loc["b", "mean"], exact.values[1:], atol=0.005)
    assert curves.attrs["curve"] == "survival"
