"""DirichletMarkov: likelihood against brute force and simulation; agreement with the sBG."""

import itertools

import numpy as np
import pandas as pd
import pymc as pm
import pytest
from pymc_extras.prior import Prior
from scipy import special

import bayesltv as bl

STATES = ["free", "premium", "deleted"]
#: Dirichlet parameters a_i = κ_i m_i of the two transient rows (targets in STATES order).
DICE = {"free": np.array([6.0, 2.0, 1.0]), "premium": np.array([1.0, 8.0, 0.5])}


def simulate_paths(n_users: int, periods: int, seed: int) -> list[list[str]]:
    """Users with their own dice drawn once from DICE, walking up to ``periods`` steps."""
    rng = np.random.default_rng(seed)
    paths = []
    for _ in range(n_users):
        dice = {state: rng.dirichlet(a) for state, a in DICE.items()}
        path = ["free" if rng.random() < 0.6 else "premium"]
        for _ in range(periods):
            if path[-1] == "deleted":
                break
            path.append(STATES[rng.choice(3, p=dice[path[-1]])])
        paths.append(path)
    return paths


def path_log_probability(path: list[str], dice: dict[str, np.ndarray]) -> float:
    """Dirichlet-multinomial probability of one path given its first state, from counts."""
    counts = {state: np.zeros(len(STATES)) for state in dice}
    for origin, target in itertools.pairwise(path):
        counts[origin][STATES.index(target)] += 1
    total = 0.0
    for state, a in dice.items():
        n = counts[state]
        total += special.gammaln(a.sum()) - special.gammaln(a.sum() + n.sum())
        total += np.sum(special.gammaln(a + n) - special.gammaln(a))
    return total


def _evaluate(model: pm.Model, names: list[str], point: dict) -> list[np.ndarray]:
    outputs = model.replace_rvs_by_values([model[name] for name in names])
    function = model.compile_fn(
        outputs, inputs=model.value_vars, point_fn=True, on_unused_input="ignore"
    )
    return [np.asarray(value) for value in function(point)]


def _likelihood(model: pm.Model, name: str, point: dict) -> float:
    return float(model.compile_logp(vars=[model[name]], sum=True)(point))


@pytest.fixture(scope="module")
def paths():
    return simulate_paths(600, periods=8, seed=3)


@pytest.fixture(scope="module")
def sequences(paths):
    cohorts = [i % 3 for i in range(len(paths))]
    return bl.StateSequences.from_sequences(
        paths, states=STATES, absorbing=["deleted"], cohort=cohorts
    )


def test_patterns_are_far_fewer_than_user_rows(sequences, paths):
    rows = sum(len({o for o, _ in itertools.pairwise(p)}) for p in paths)
    assert sequences.patterns["weight"].sum() == rows
    assert len(sequences.patterns) < rows / 3


def test_likelihood_equals_brute_force_per_user(sequences, paths):
    model = bl.DirichletMarkov(cohort_prior="hierarchical").build_model(sequences)
    rng = np.random.default_rng(0)
    point = {
        name: value + rng.normal(scale=0.3, size=np.shape(value))
        for name, value in model.initial_point().items()
    }
    mean, kappa = _evaluate(model, ["transition_mean", "concentration"], point)
    cohorts = [i % 3 for i in range(len(paths))]
    expected = 0.0
    for path, cohort in zip(paths, cohorts, strict=True):
        dice = {
            state: kappa[cohort, n] * mean[cohort, n] for n, state in enumerate(["free", "premium"])
        }
        expected += path_log_probability(path, dice)
    assert _likelihood(model, "transitions", point) == pytest.approx(expected, rel=1e-10)


def test_path_probability_matches_plain_simulation():
    """For fixed factories, the likelihood of short paths is their simulated frequency."""
    rng = np.random.default_rng(11)
    n = 200_000
    free_dice = rng.dirichlet(DICE["free"], size=n)
    premium_dice = rng.dirichlet(DICE["premium"], size=n)
    dice = {"free": free_dice, "premium": premium_dice}
    path = np.zeros((n, 3), dtype=int)  # everyone starts "free"
    for t in (1, 2):
        rows = np.where(
            (path[:, t - 1] == 0)[:, None],
            dice["free"],
            np.where((path[:, t - 1] == 1)[:, None], dice["premium"], np.eye(3)[2]),
        )
        path[:, t] = (rng.random((n, 1)) > rows.cumsum(axis=1)).sum(axis=1)
    for observed in (
        ["free", "free", "free"],
        ["free", "premium", "premium"],
        ["free", "premium", "free"],
        ["free", "free", "deleted"],
    ):
        codes = [STATES.index(s) for s in observed]
        frequency = np.mean(np.all(path == codes, axis=1))
        probability = np.exp(path_log_probability(observed, DICE))
        # Binomial standard error of the frequency is below 0.0012; allow 4 of them.
        assert frequency == pytest.approx(probability, abs=0.005)


def _two_state_data():
    users = bl.datasets.simulate_survival(
        alpha=[0.8, 1.4],
        beta=[2.0, 3.5],
        users_per_cohort=300,
        observed_periods=[8, 5],
        random_seed=5,
    )
    survival = bl.SurvivalData.from_users(
        users, duration="duration", churned="churned", cohort="cohort", user="user"
    )
    paths = [
        ["active"] * d + ["churned"] if churned else ["active"] * (d + 1)
        for d, churned in zip(users["duration"], users["churned"], strict=True)
    ]
    sequences = bl.StateSequences.from_sequences(
        paths,
        states=["active", "churned"],
        absorbing=["churned"],
        cohort=users["cohort"].tolist(),
    )
    return survival, sequences


def test_two_state_model_has_the_sbg_likelihood():
    survival, sequences = _two_state_data()
    sbg = bl.BetaGeometric(cohort_prior="independent").build_model(survival)
    dm = bl.DirichletMarkov(cohort_prior="independent").build_model(sequences)
    rng = np.random.default_rng(4)
    logit_mu = rng.normal(-1.0, 0.5, size=2)
    log_kappa = rng.normal(1.0, 0.5, size=2)
    sbg_point = {"logit_mu_intercept": logit_mu, "log_kappa_intercept": log_kappa}
    dm_point = dm.initial_point()
    dm_point.update({"eta_intercept": logit_mu[:, None], "log_kappa_intercept": log_kappa[:, None]})
    assert _likelihood(dm, "transitions", dm_point) == pytest.approx(
        _likelihood(sbg, "survival", sbg_point), rel=1e-10
    )


def test_two_state_fits_agree_with_the_sbg():
    survival, sequences = _two_state_data()
    sbg = bl.BetaGeometric(cohort_prior="independent").fit(survival, method="map")
    sbg_priors = {
        "eta_intercept": Prior("Normal", mu=0, sigma=1.5),
        "log_kappa_intercept": Prior("Normal", mu=1, sigma=1.5),
    }
    dm = bl.DirichletMarkov(cohort_prior="independent", priors=sbg_priors).fit(
        sequences, method="map"
    )
    mean = dm.idata["posterior"]["transition_mean"].sel(origin="active")
    kappa = dm.idata["posterior"]["concentration"].sel(origin="active")
    alpha = (kappa * mean.sel(target="churned")).values.ravel()
    beta = (kappa * mean.sel(target="active")).values.ravel()
    summary = sbg.summary()["mean"]
    np.testing.assert_allclose(alpha, summary["alpha"].to_numpy(), rtol=1e-3)
    np.testing.assert_allclose(beta, summary["beta"].to_numpy(), rtol=1e-3)
    # Survival = occupancy of "active" for a user starting active, heterogeneity included.
    occupancy = dm.occupancy(horizon=10, start="active", users_per_draw=20_000, random_seed=2)
    active = occupancy.sel(state="active").isel(chain=0, draw=0)
    expected = sbg.survival(horizon=10).isel(chain=0, draw=0)
    # 20,000 simulated users per group: Monte Carlo sd below 0.0035.
    np.testing.assert_allclose(active.values, expected.values, atol=0.015)


def test_transition_matrix_rows_sum_to_one_and_absorbing_rows_are_identity(sequences):
    model = bl.DirichletMarkov(cohort_prior="pooled").fit(sequences, method="map")
    matrix = model.transition_matrix()
    np.testing.assert_allclose(matrix.sum("target"), 1.0)
    np.testing.assert_allclose(matrix.sel(origin="deleted", target="deleted"), 1.0)
    users = model.user_transition_posterior(users=[0, 1, 2])
    np.testing.assert_allclose(users.sum("target"), 1.0)
    paths = model.simulate_paths(n_users=50, horizon=6, random_seed=1)
    assert set(paths["state"].cat.categories) == set(STATES)
    assert paths.groupby("user")["period"].apply(lambda p: (np.diff(p) == 1).all()).all()


def test_conjugate_user_posterior_moves_toward_the_users_own_moves(sequences, paths):
    model = bl.DirichletMarkov(cohort_prior="pooled").fit(sequences, method="map")
    mean = model.transition_matrix().isel(chain=0, draw=0, group=0)
    kappa = model.idata["posterior"]["concentration"].isel(chain=0, draw=0, group=0)
    counts = sequences.user_counts([5])[0]
    posterior = model.user_transition_posterior(users=[5]).sel(user=5)
    for n, origin in enumerate(["free", "premium"]):
        a = float(kappa.isel(origin=n)) * mean.sel(origin=origin).values
        expected = (a + counts[n]) / (a.sum() + counts[n].sum())
        np.testing.assert_allclose(posterior.sel(origin=origin).values, expected, rtol=1e-10)


def test_pandas_panel_gives_the_same_patterns_as_sequences(paths, sequences):
    cohorts = [i % 3 for i in range(len(paths))]
    panel = pd.DataFrame(
        [
            {"user": u, "month": 100 + t, "plan": s, "cohort": cohorts[u]}
            for u, path in enumerate(paths)
            for t, s in enumerate(path)
        ]
    ).sample(frac=1.0, random_state=0)  # row order must not matter
    from_panel = bl.StateSequences.from_panel(
        panel,
        user="user",
        period="month",
        state="plan",
        states=STATES,
        absorbing=["deleted"],
        cohort="cohort",
    )
    pd.testing.assert_frame_equal(from_panel.transition_counts(), sequences.transition_counts())
    assert len(from_panel.patterns) == len(sequences.patterns)
