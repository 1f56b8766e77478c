"""Group priors: structure of pooled / independent / hierarchical / random-walk levels."""

import numpy as np
import pandas as pd
import pymc as pm
import pytest
from pymc_extras.prior import Prior

import bayesltv as bl
from bayesltv.data.groups import Groups
from bayesltv.priors import group_coords, group_levels, resolve_cohort_prior

INTERCEPT = Prior("Normal", mu=0.0, sigma=1.0)
SIGMA = Prior("HalfNormal", sigma=0.5)


def cohorts(labels) -> Groups:
    return Groups.from_column(pd.DataFrame({"cohort": labels}), "cohort", ordered=True)


def prior_levels(kind: str, groups: Groups, draws: int = 4000) -> np.ndarray:
    with pm.Model(coords=group_coords(groups)):
        pm.Deterministic("level", group_levels("eta", kind, groups, INTERCEPT, SIGMA), dims="group")
        tree = pm.sample_prior_predictive(
            draws, var_names=["level", "eta_intercept"], random_seed=5
        )
    return tree["prior"]["level"].to_numpy()[0]


def test_pooled_groups_share_one_level():
    levels = prior_levels("pooled", cohorts([0, 1, 2]), draws=50)
    np.testing.assert_allclose(levels, levels[:, :1].repeat(3, axis=1))


def test_independent_groups_are_uncorrelated():
    levels = prior_levels("independent", cohorts([0, 1, 2]))
    correlation = np.corrcoef(levels.T)
    # 4000 draws: the sampling sd of a zero correlation is about 0.016.
    assert np.abs(correlation[np.triu_indices(3, 1)]).max() < 0.06


def test_random_walk_steps_scale_with_the_gap():
    # Cohorts 0, 1, 3: the second step spans a gap of 2, so its variance doubles.
    levels = prior_levels("random_walk", cohorts([0, 1, 3]), draws=8000)
    step_variance = np.diff(levels, axis=1).var(axis=0)
    assert step_variance[1] / step_variance[0] == pytest.approx(2.0, rel=0.1)


def test_random_walk_first_cohort_is_the_intercept():
    groups = cohorts([0, 1, 2])
    with pm.Model(coords=group_coords(groups)):
        level = group_levels("eta", "random_walk", groups, INTERCEPT, SIGMA)
        pm.Deterministic("level", level, dims="group")
        tree = pm.sample_prior_predictive(20, var_names=["level", "eta_intercept"], random_seed=1)
    prior = tree["prior"]
    np.testing.assert_allclose(prior["level"].isel(group=0), prior["eta_intercept"])


def test_hierarchical_groups_are_exchangeable_and_correlated():
    levels = prior_levels("hierarchical", cohorts([0, 1, 2, 3]))
    correlation = np.corrcoef(levels.T)[np.triu_indices(4, 1)]
    # Shared intercept (var 1) plus group spread (E[σ²] = 0.25): correlation ≈ 0.8.
    assert correlation.min() > 0.7
    assert correlation.max() - correlation.min() < 0.08


def test_default_cohort_prior_depends_on_the_groups():
    assert resolve_cohort_prior(None, cohorts([0, 1])) == "random_walk"
    segments = Groups.from_column(pd.DataFrame({"s": ["a", "b"]}), "s", ordered=False)
    assert resolve_cohort_prior(None, segments) == "independent"
    assert resolve_cohort_prior("hierarchical", Groups.single()) == "pooled"


def test_user_priors_replace_the_defaults(fh_train):
    tight = Prior("Normal", mu=-3.0, sigma=0.001)
    model = bl.BetaGeometric(cohort_prior="pooled", priors={"logit_mu_intercept": tight})
    fitted = model.fit(fh_train, method="map")
    # A prior this tight pins logit μ at -3 whatever the data say.
    mu = fitted.summary().loc["mu", "mean"]
    np.testing.assert_allclose(mu, 1 / (1 + np.exp(3.0)), rtol=0.02)


def test_priors_must_be_prior_objects():
    with pytest.raises(TypeError, match=r"pymc_extras\.prior\.Prior"):
        bl.BetaGeometric(priors={"logit_mu_intercept": {"dist": "Normal"}})
