"""BetaGeometric: likelihood on sufficient statistics, projections, fitting methods."""

import warnings

import numpy as np
import pandas as pd
import pymc as pm
import pytest
from scipy import special

import bayesltv as bl
from bayesltv.models.base import NotFittedError


def per_user_log_likelihood(users: pd.DataFrame, alpha: np.ndarray, beta: np.ndarray) -> float:
    """Σ_u [churned: log P(T=d) | censored: log S(d)] − log S(e), one user at a time."""
    total = 0.0
    for (_, row), a, b in zip(users.iterrows(), alpha, beta, strict=True):
        d, e = row["duration"], row["entry"]
        if row["churned"]:
            total += special.betaln(a + 1, b + d - 1) - special.betaln(a, b)
        else:
            total += special.betaln(a, b + d) - special.betaln(a, b)
        total -= special.betaln(a, b + e) - special.betaln(a, b)
    return total


@pytest.fixture(scope="module")
def users() -> pd.DataFrame:
    frame = bl.datasets.simulate_survival(
        alpha=[0.8, 1.0, 1.3],
        beta=[2.0, 2.5, 3.0],
        users_per_cohort=150,
        observed_periods=[9, 6, 3],
        covariate_effects={"plan": {"basic": (0.0, 0.0), "premium": (-0.6, 0.4)}},
        entry_share=0.3,
        random_seed=11,
    )
    rng = np.random.default_rng(0)
    frame["tenure_score"] = rng.normal(size=len(frame))
    return frame


def _log_likelihood_at(model: pm.Model, point: dict) -> float:
    logp = model.compile_logp(vars=[model["survival"]], sum=True)
    return float(logp(point))


def _evaluate(model: pm.Model, names: list[str], point: dict) -> list[np.ndarray]:
    outputs = model.replace_rvs_by_values([model[name] for name in names])
    function = model.compile_fn(
        outputs, inputs=model.value_vars, point_fn=True, on_unused_input="ignore"
    )
    return [np.asarray(value) for value in function(point)]


def _random_point(model: pm.Model, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    point = model.initial_point()
    return {
        name: value + rng.normal(scale=0.4, size=np.shape(value)) for name, value in point.items()
    }


@pytest.mark.parametrize("covariate", ["plan", "tenure_score"])
def test_aggregated_likelihood_equals_per_user_likelihood(users, covariate):
    data = bl.SurvivalData.from_users(
        users,
        duration="duration",
        churned="churned",
        cohort="cohort",
        entry="entry",
        covariates=[covariate],
        user="user",
    )
    if covariate == "plan":
        assert data.n_cells == 6  # 3 cohorts × 2 plans: far fewer rows than users
    else:
        assert data.n_cells == len(users)  # numeric covariate: one cell per user
    model = bl.BetaGeometric(cohort_prior="hierarchical").build_model(data)
    point = _random_point(model, seed=5)
    mu_group, kappa_group, mu_coef, kappa_coef = _evaluate(
        model, ["mu", "kappa", "logit_mu_coef", "log_kappa_coef"], point
    )
    if covariate == "plan":
        x = (users["plan"] == "premium").to_numpy(dtype=float)
    else:
        x = users["tenure_score"].to_numpy()
    cohort = users["cohort"].to_numpy()
    mu = special.expit(special.logit(mu_group[cohort]) + x * mu_coef[0])
    kappa = kappa_group[cohort] * np.exp(x * kappa_coef[0])
    expected = per_user_log_likelihood(users, mu * kappa, (1 - mu) * kappa)
    assert _log_likelihood_at(model, point) == pytest.approx(expected, rel=1e-10, abs=1e-8)


def test_distribution_logp_gives_the_same_per_user_likelihood(users):
    """The model's aggregated term agrees with ShiftedBetaGeometric's own logp/logcdf."""
    plain = users[users["cohort"] == 0].assign(entry=0)
    data = bl.SurvivalData.from_users(plain, duration="duration", churned="churned")
    model = bl.BetaGeometric().build_model(data)
    point = _random_point(model, seed=2)
    mu, kappa = _evaluate(model, ["mu", "kappa"], point)
    alpha, beta = float(mu[0] * kappa[0]), float((1 - mu[0]) * kappa[0])
    dist = bl.ShiftedBetaGeometric.dist(alpha, beta)
    churned = plain["churned"].to_numpy()
    d = plain["duration"].to_numpy()
    expected = (
        pm.logp(dist, d[churned]).eval().sum()
        + np.log1p(-np.exp(pm.logcdf(dist, d[~churned]).eval())).sum()
    )
    assert _log_likelihood_at(model, point) == pytest.approx(expected, rel=1e-9)


@pytest.fixture(scope="module")
def fh_nuts(fh_train):
    return bl.BetaGeometric(cohort_prior="independent").fit(
        fh_train, method="nuts", draws=500, tune=500, chains=2, random_seed=3
    )


def test_survival_is_the_beta_function_ratio(fh_nuts):
    survival = fh_nuts.survival(horizon=12)
    assert survival.dims == ("chain", "draw", "group", "period")
    assert list(survival["group"].values) == ["regular", "high_end"]
    np.testing.assert_allclose(survival.sel(period=0), 1.0)
    alpha, beta = fh_nuts.factory()
    t = 9
    expected = np.exp(special.betaln(alpha, beta + t) - special.betaln(alpha, beta))
    np.testing.assert_allclose(
        survival.sel(period=t), expected.transpose(*survival.sel(period=t).dims)
    )


def test_conditional_survival_given_tenure(fh_nuts):
    unconditional = fh_nuts.survival(horizon=20)
    conditional = fh_nuts.survival(horizon=10, tenure=5)
    assert list(conditional["period"].values) == list(range(5, 16))
    expected = unconditional.sel(period=slice(5, 15)) / unconditional.sel(period=5)
    np.testing.assert_allclose(conditional, expected, rtol=1e-10)


def test_retention_rises_with_tenure_and_matches_closed_form(fh_nuts):
    retention = fh_nuts.retention(horizon=12)
    survival = fh_nuts.survival(horizon=12)
    ratio = survival.sel(period=slice(1, 12)) / survival.sel(period=slice(0, 11)).values
    np.testing.assert_allclose(retention, ratio, rtol=1e-10)
    assert (retention.diff("period") > 0).all()


def test_nuts_posterior_covers_the_published_estimates(fh_nuts):
    summary = fh_nuts.summary()
    for segment, (alpha, beta) in {"regular": (0.704, 1.182), "high_end": (0.668, 3.806)}.items():
        for name, value in (("alpha", alpha), ("beta", beta)):
            row = summary.loc[(name, segment)]
            assert row["hdi_low"] < value < row["hdi_high"]
    assert {"ess_bulk", "ess_tail", "r_hat"} <= set(summary.columns)
    assert fh_nuts.convergence.divergences == 0


@pytest.mark.parametrize("method", ["advi", "fullrank_advi"])
def test_variational_fits_agree_with_nuts(fh_train, fh_nuts, method):
    model = bl.BetaGeometric(cohort_prior="independent").fit(fh_train, method=method, random_seed=4)
    vi = model.summary()
    nuts = fh_nuts.summary()
    # Mean-field ADVI underestimates spread but should centre within one NUTS sd.
    z = (vi["mean"] - nuts["mean"]).abs() / nuts["sd"]
    assert (z < 1.0).all(), z
    assert model.idata.attrs["vi_iterations"] == 20_000


def test_posterior_predictive_churn_periods_match_survival(fh_nuts):
    periods = fh_nuts.sample_churn_periods(users_per_group=400, random_seed=8)
    assert periods.dims == ("chain", "draw", "group", "user")
    simulated = (periods > 3).mean(("chain", "draw", "user"))
    expected = fh_nuts.survival(horizon=3).sel(period=3).mean(("chain", "draw"))
    # 2 × 500 × 400 simulated users per group: Monte Carlo error well below 0.01.
    np.testing.assert_allclose(simulated, expected, atol=0.01)


def test_prior_predictive_churn_periods(fh_nuts):
    periods = fh_nuts.sample_churn_periods(users_per_group=50, prior=True, draws=100, random_seed=1)
    assert periods.sizes["draw"] == 100
    assert int(periods.min()) >= 1


def test_short_nuts_run_reports_convergence_problems(fh_train):
    with pytest.warns(bl.ConvergenceWarning, match="effective sample size"):
        model = bl.BetaGeometric(cohort_prior="independent").fit(
            fh_train, method="nuts", draws=30, tune=30, chains=2, random_seed=1
        )
    assert not model.convergence.ok


def test_unfitted_model_says_so():
    with pytest.raises(NotFittedError, match="fit"):
        bl.BetaGeometric().survival()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "gibbs"}, "method='gibbs'"),
        ({"sampler": "stan"}, "sampler='stan'"),
        ({"method": "map", "sampler": "nutpie"}, "applies to method='nuts'"),
    ],
)
def test_bad_fit_options_are_rejected(fh_train, kwargs, message):
    with pytest.raises(ValueError, match=message):
        bl.BetaGeometric().fit(fh_train, **kwargs)


def test_bad_configuration_is_rejected(fh_train):
    with pytest.raises(ValueError, match="cohort_prior='ar1'"):
        bl.BetaGeometric(cohort_prior="ar1")
    with pytest.raises(ValueError, match="unknown prior name"):
        bl.BetaGeometric(priors={"alpha": None})
    with pytest.raises(ValueError, match="needs ordered cohorts"):
        bl.BetaGeometric(cohort_prior="random_walk").fit(fh_train, method="map")


def test_nutpie_sampler(fh_train):
    pytest.importorskip("nutpie")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bl.ConvergenceWarning)
        model = bl.BetaGeometric(cohort_prior="independent").fit(
            fh_train, method="nuts", sampler="nutpie", draws=300, tune=300, chains=2, random_seed=2
        )
    assert model.idata["posterior"].attrs["inference_library"] == "nutpie"
    assert model.summary().loc[("alpha", "regular"), "mean"] == pytest.approx(0.71, abs=0.05)


def test_numpyro_sampler(fh_train):
    pytest.importorskip("numpyro")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bl.ConvergenceWarning)
        model = bl.BetaGeometric(cohort_prior="independent").fit(
            fh_train, method="nuts", sampler="numpyro", draws=300, tune=300, chains=2, random_seed=2
        )
    assert model.idata["posterior"].sizes["draw"] == 300
    assert model.summary().loc[("alpha", "regular"), "mean"] == pytest.approx(0.71, abs=0.05)
