"""The shifted beta-geometric distribution against independent computations."""

import numpy as np
import pymc as pm
import pytest
from scipy import integrate, stats

from bayesltv.distributions import ShiftedBetaGeometric, sbg_logsf_numpy


def pmf_by_integration(t: int, alpha: float, beta: float) -> float:
    """P(T = t) = ∫ θ (1-θ)^(t-1) Beta(θ | α, β) dθ, by quadrature."""
    value, _ = integrate.quad(
        lambda theta: theta * (1 - theta) ** (t - 1) * stats.beta.pdf(theta, alpha, beta),
        0,
        1,
        epsabs=0,
        epsrel=1e-12,
        limit=200,
    )
    return value


@pytest.mark.parametrize(("alpha", "beta"), [(0.704, 1.182), (0.668, 3.806), (5.0, 40.0)])
def test_logp_matches_integral_over_coins(alpha, beta):
    t = np.arange(1, 25)
    logp = pm.logp(ShiftedBetaGeometric.dist(alpha, beta), t).eval()
    expected = np.log([pmf_by_integration(k, alpha, beta) for k in t])
    np.testing.assert_allclose(logp, expected, rtol=1e-6)


@pytest.mark.parametrize(("alpha", "beta"), [(0.704, 1.182), (2.0, 9.0)])
def test_logcdf_and_survival_agree_with_summed_pmf(alpha, beta):
    t = np.arange(1, 30)
    pmf = np.array([pmf_by_integration(k, alpha, beta) for k in t])
    cdf = np.cumsum(pmf)
    logcdf = pm.logcdf(ShiftedBetaGeometric.dist(alpha, beta), t).eval()
    np.testing.assert_allclose(np.exp(logcdf), cdf, rtol=1e-6)
    np.testing.assert_allclose(np.exp(sbg_logsf_numpy(t, alpha, beta)), 1 - cdf, rtol=1e-6)


def test_logp_outside_support_is_minus_infinity():
    assert pm.logp(ShiftedBetaGeometric.dist(1.0, 2.0), 0).eval() == -np.inf


def test_logp_stays_finite_far_in_the_tail():
    logp = pm.logp(ShiftedBetaGeometric.dist(0.5, 50.0), 10_000).eval()
    assert np.isfinite(logp)


def test_random_draws_match_the_survival_curve():
    alpha, beta = 1.5, 4.0
    draws = pm.draw(ShiftedBetaGeometric.dist(alpha, beta, size=200_000), random_seed=7)
    assert draws.min() >= 1
    t = np.arange(0, 13)
    empirical = (draws[:, None] > t[None, :]).mean(axis=0)
    expected = np.exp(sbg_logsf_numpy(t, alpha, beta))
    # 200k draws: binomial standard error below 0.0012; allow 4 of them.
    np.testing.assert_allclose(empirical, expected, atol=0.005)


def test_prior_predictive_through_pymc():
    with pm.Model():
        alpha = pm.Gamma("alpha", 20.0, 10.0)
        beta = pm.Gamma("beta", 60.0, 10.0)
        ShiftedBetaGeometric("t", alpha=alpha, beta=beta, observed=np.ones(50, dtype=int))
        tree = pm.sample_prior_predictive(200, random_seed=3)
    t = tree["prior_predictive"]["t"].to_numpy()
    assert t.shape == (1, 200, 50)
    assert t.min() >= 1
    # With α ≈ 2, β ≈ 6 about a quarter of users churn in period 1: P(T=1) = α/(α+β).
    assert 0.15 < (t == 1).mean() < 0.35
