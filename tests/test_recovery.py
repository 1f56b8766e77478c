"""Statistical checks on simulated data with known truth (NUTS; marked slow)."""

import warnings

import arviz as az
import numpy as np
import pytest
from scipy import special

import bayesltv as bl

pytestmark = pytest.mark.slow

HDI_PROB = 0.94


def alpha_beta(logit_mu: np.ndarray, log_kappa: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mu, kappa = special.expit(logit_mu), np.exp(log_kappa)
    return mu * kappa, (1 - mu) * kappa


def test_posterior_intervals_recover_simulated_factories():
    alpha, beta = alpha_beta(np.linspace(-1.6, -0.6, 6), np.linspace(0.3, 1.5, 6))
    plan_shift = (-0.5, 0.4)  # premium: lower mean churn, more homogeneous users
    users = bl.datasets.simulate_survival(
        alpha=alpha,
        beta=beta,
        users_per_cohort=2000,
        observed_periods=10,
        covariate_effects={"plan": {"basic": (0.0, 0.0), "premium": plan_shift}},
        entry_share=0.2,
        random_seed=0,
    )
    data = bl.SurvivalData.from_users(
        users,
        duration="duration",
        churned="churned",
        cohort="cohort",
        entry="entry",
        covariates=["plan"],
        user="user",
    )
    model = bl.BetaGeometric(cohort_prior="independent").fit(
        data, method="nuts", draws=1000, tune=1000, chains=2, random_seed=1
    )
    summary = model.summary(hdi_prob=HDI_PROB)
    covered = [
        summary.loc[(name, cohort), "hdi_low"]
        <= truth[cohort]
        <= summary.loc[(name, cohort), "hdi_high"]
        for name, truth in (("alpha", alpha), ("beta", beta))
        for cohort in range(6)
    ]
    hdi = az.hdi(model.idata, prob=HDI_PROB, var_names=["logit_mu_coef", "log_kappa_coef"])
    for name, truth in zip(("logit_mu_coef", "log_kappa_coef"), plan_shift, strict=True):
        low, high = np.asarray(hdi[name]).ravel()
        covered.append(low <= truth <= high)
    # 14 parameters at 94%: P(12 or more covered) > 0.9 if calibrated; a biased fit fails.
    assert sum(covered) >= 12, summary


def _holdout_log_density(model, users, cohorts, horizon) -> float:
    """Σ log E_posterior[P(outcome | still active at window end)] over held-out users.

    The outcome of a user active at the end of their cohort's window w is their true churn
    period if it falls in w+1..w+horizon, else "still active at w+horizon".
    """
    alpha, beta = model.factory()
    total = 0.0
    for cohort in cohorts:
        cohort_users = users[(users["cohort"] == cohort) & ~users["churned"]]
        window = int(cohort_users["duration"].iloc[0])
        a = alpha.sel(group=cohort).values.ravel()[:, None]
        b = beta.sel(group=cohort).values.ravel()[:, None]
        t = np.arange(window + 1, window + horizon + 1)[None, :]
        log_s_window = special.betaln(a, b + window) - special.betaln(a, b)
        churn = special.betaln(a + 1, b + t - 1) - special.betaln(a, b) - log_s_window
        survive = special.betaln(a, b + window + horizon) - special.betaln(a, b) - log_s_window
        log_p = np.concatenate([churn, survive], axis=1)  # draws × outcomes
        log_density = special.logsumexp(log_p, axis=0) - np.log(log_p.shape[0])
        true_t = cohort_users["true_churn_period"].to_numpy()
        outcome = np.where(true_t <= window + horizon, true_t - window - 1, horizon)
        total += log_density[outcome].sum()
    return float(total)


def test_random_walk_beats_independent_cohorts_on_young_cohorts():
    cohorts = np.arange(12)
    alpha, beta = alpha_beta(-1.2 + 0.06 * cohorts, 0.8 + 0.05 * cohorts)
    users = bl.datasets.simulate_survival(
        alpha=alpha, beta=beta, users_per_cohort=400, random_seed=31
    )  # cohort c observed for 12 - c periods: the youngest for one period only
    data = bl.SurvivalData.from_users(
        users, duration="duration", churned="churned", cohort="cohort", user="user"
    )
    young = [8, 9, 10, 11]
    scores = {}
    for prior in ("random_walk", "independent"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", bl.ConvergenceWarning)
            model = bl.BetaGeometric(cohort_prior=prior).fit(
                data,
                method="nuts",
                draws=500,
                tune=1000,
                chains=2,
                random_seed=32,
                target_accept=0.9,
            )
        scores[prior] = _holdout_log_density(model, users, young, horizon=6)
    assert scores["random_walk"] > scores["independent"], scores
