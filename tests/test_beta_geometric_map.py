"""MAP fits on Fader–Hardie against an independent scipy optimisation of the same posterior."""

import numpy as np
import pytest
from pymc_extras.prior import Prior
from scipy import optimize, special, stats

import bayesltv as bl
from tests.conftest import FADER_HARDIE

FIT_YEARS = 7
#: Fader & Hardie (2007), Table 1: maximum-likelihood estimates on years 1..7.
PUBLISHED_MLE = {"regular": (0.704, 1.182), "high_end": (0.668, 3.806)}


def fh_log_likelihood(alpha: float, beta: float, survivors: list[int]) -> float:
    """sBG log-likelihood of a survivor curve, written directly from the paper."""
    s = np.asarray(survivors[: FIT_YEARS + 1])
    t = np.arange(1, FIT_YEARS + 1)
    churned = s[:-1] - s[1:]
    log_pmf = special.betaln(alpha + 1, beta + t - 1) - special.betaln(alpha, beta)
    log_survival = special.betaln(alpha, beta + FIT_YEARS) - special.betaln(alpha, beta)
    return float(churned @ log_pmf + s[-1] * log_survival)


def scipy_mode(survivors: list[int], with_prior: bool) -> tuple[float, float]:
    """Mode over (logit μ, log κ); the default priors are Normal(0, 1.5) and Normal(1, 1.5)."""

    def negative_log_posterior(x):
        logit_mu, log_kappa = x
        mu, kappa = special.expit(logit_mu), np.exp(log_kappa)
        value = fh_log_likelihood(mu * kappa, (1 - mu) * kappa, survivors)
        if with_prior:
            value += stats.norm.logpdf(logit_mu, 0, 1.5) + stats.norm.logpdf(log_kappa, 1, 1.5)
        return -value

    result = optimize.minimize(
        negative_log_posterior,
        x0=[0.0, 1.0],
        method="Nelder-Mead",
        options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 20_000},
    )
    assert result.success
    mu, kappa = special.expit(result.x[0]), np.exp(result.x[1])
    return mu * kappa, (1 - mu) * kappa


def fitted_alpha_beta(model, segment: str) -> tuple[float, float]:
    summary = model.summary()["mean"]
    return summary[("alpha", segment)], summary[("beta", segment)]


@pytest.fixture(scope="module")
def map_default(fh_train):
    return bl.BetaGeometric(cohort_prior="independent").fit(fh_train, method="map")


@pytest.fixture(scope="module")
def map_flat(fh_train):
    flat = {"logit_mu_intercept": Prior("Flat"), "log_kappa_intercept": Prior("Flat")}
    return bl.BetaGeometric(cohort_prior="independent", priors=flat).fit(fh_train, method="map")


@pytest.mark.parametrize("segment", ["regular", "high_end"])
def test_map_equals_scipy_mode_of_the_same_posterior(map_default, segment):
    expected = scipy_mode(FADER_HARDIE[segment], with_prior=True)
    np.testing.assert_allclose(fitted_alpha_beta(map_default, segment), expected, rtol=1e-4)


@pytest.mark.parametrize("segment", ["regular", "high_end"])
def test_flat_prior_map_is_the_maximum_likelihood_estimate(map_flat, segment):
    expected = scipy_mode(FADER_HARDIE[segment], with_prior=False)
    fitted = fitted_alpha_beta(map_flat, segment)
    np.testing.assert_allclose(fitted, expected, rtol=1e-4)
    # The paper reports three decimals.
    np.testing.assert_allclose(fitted, PUBLISHED_MLE[segment], atol=6e-4)


@pytest.mark.parametrize("segment", ["regular", "high_end"])
def test_default_priors_move_the_estimate_only_slightly(map_default, map_flat, segment):
    with_prior = np.array(fitted_alpha_beta(map_default, segment))
    mle = np.array(fitted_alpha_beta(map_flat, segment))
    # 1,000 customers per segment against a prior with sd 1.5 on the unconstrained scale:
    # the pull is a few percent at most (β of the high-end segment, the least informed).
    assert np.all(np.abs(with_prior / mle - 1) < 0.03)
    assert not np.allclose(with_prior, mle, rtol=1e-6)  # the prior does act


def test_map_posterior_has_one_draw_and_summary_has_no_spread(map_default):
    posterior = map_default.idata["posterior"]
    assert (posterior.sizes["chain"], posterior.sizes["draw"]) == (1, 1)
    summary = map_default.summary()
    assert summary[["sd", "hdi_low", "hdi_high"]].isna().all().all()
    assert list(summary.index.get_level_values("parameter").unique()) == [
        "alpha",
        "beta",
        "mu",
        "kappa",
    ]
