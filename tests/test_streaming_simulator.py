"""The streaming-panel simulator: structure of the panel and agreement with its own truth.

Expected values are typed in here from the documented parameter table (the η, κ, π of the
reference country at cohort 0) or counted with plain loops over users, never produced by the
code under test. Statistical checks use fixed seeds and tolerances of 4 standard errors
(a two-sided normal tail of 6e-5 per comparison, so a few dozen comparisons stay below 1e-2
even before fixing the seed); each standard error is derived next to its check.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import bayesltv as bl
from bayesltv.datasets import StreamingPanel, simulate_streaming

STATES = ["premium", "duo", "family", "student", "free", "lapsed", "deleted"]
TRANSIENT = STATES[:-1]

#: Allowed targets per origin, typed from the brief (deleted is absorbing: no targets).
ALLOWED = {
    "premium": {"premium", "duo", "family", "free", "lapsed"},
    "duo": {"duo", "premium", "family", "free", "lapsed"},
    "family": {"family", "duo", "premium", "free", "lapsed"},
    "student": {"student", "premium", "free", "lapsed"},
    "free": {"free", "premium", "duo", "family", "student", "lapsed", "deleted"},
    "lapsed": {"lapsed", "premium", "free", "deleted"},
    "deleted": set(),
}

#: Documented truth for the reference country "SE" at cohort 0: mean rows and κ.
MEAN_ROW = {
    "premium": {"premium": 0.90, "duo": 0.02, "family": 0.02, "free": 0.04, "lapsed": 0.02},
    "duo": {"duo": 0.92, "premium": 0.02, "family": 0.02, "free": 0.02, "lapsed": 0.02},
    "family": {"family": 0.94, "duo": 0.015, "premium": 0.015, "free": 0.015, "lapsed": 0.015},
    "student": {"student": 0.88, "premium": 0.04, "free": 0.05, "lapsed": 0.03},
    "free": {
        "free": 0.85,
        "premium": 0.04,
        "duo": 0.01,
        "family": 0.01,
        "student": 0.01,
        "lapsed": 0.05,
        "deleted": 0.03,
    },
    "lapsed": {"lapsed": 0.70, "premium": 0.05, "free": 0.05, "deleted": 0.20},
}
KAPPA = {"premium": 20.0, "duo": 28.0, "family": 25.0, "student": 8.0, "free": 3.0, "lapsed": 2.5}
INITIAL_SE = {"premium": 0.30, "duo": 0.08, "family": 0.07, "student": 0.10, "free": 0.45}

Z = 4.0  # standard errors allowed in every statistical comparison (see the module docstring)


# -- fixtures ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def default() -> StreamingPanel:
    return simulate_streaming(horizon_beyond=6)


@pytest.fixture(scope="module")
def large() -> StreamingPanel:
    """20,000 users, all acquired in month 0 in one country, no drift, 12 months of data."""
    return simulate_streaming(
        users_per_cohort=[20_000] + [0] * 11,
        n_cohorts=12,
        countries=("SE",),
        drift=0.0,
        horizon_beyond=18,
        random_seed=11,
    )


def transitions(frame: pd.DataFrame) -> pd.DataFrame:
    """Consecutive (origin, target) pairs per user, with the month of the origin."""
    frame = frame.sort_values(["user", "month"])
    nxt = frame.groupby("user").shift(-1)
    keep = nxt["month"].notna()
    return pd.DataFrame(
        {
            "user": frame["user"][keep].to_numpy(),
            "month": frame["month"][keep].to_numpy(),
            "origin": frame["state"][keep].astype(str).to_numpy(),
            "target": nxt["state"][keep].astype(str).to_numpy(),
        }
    )


# -- structure --------------------------------------------------------------------------


def test_columns_and_dtypes(default: StreamingPanel) -> None:
    panel = default.panel
    assert panel.columns.tolist() == ["user", "month", "state", "cohort", "country"]
    for column in ["user", "month", "cohort"]:
        assert panel[column].dtype == np.int64
    assert isinstance(panel["state"].dtype, pd.CategoricalDtype)
    assert panel["state"].cat.categories.tolist() == STATES
    assert panel["country"].cat.categories.tolist() == ["SE", "US"]
    assert default.holdout.columns.tolist() == panel.columns.tolist()
    assert default.holdout["state"].cat.categories.tolist() == STATES
    # default size: 36 cohorts × 60 users, months 0..35, both countries present
    assert panel["user"].nunique() == 36 * 60
    assert panel["month"].min() == 0 and panel["month"].max() == 35
    assert set(panel["country"]) == {"SE", "US"}
    assert (panel.groupby("cohort")["user"].nunique() == 60).all()
    assert panel.equals(panel.sort_values(["user", "month"]))


def test_paths_are_complete_and_allowed(default: StreamingPanel) -> None:
    end = 35
    for user, rows in default.panel.groupby("user"):
        months = rows["month"].to_numpy()
        states = rows["state"].astype(str).tolist()
        cohort = rows["cohort"].iloc[0]
        assert (rows["cohort"] == cohort).all() and rows["country"].nunique() == 1
        assert months[0] == cohort, user
        assert (np.diff(months) == 1).all(), user
        assert states[0] not in {"lapsed", "deleted"}
        assert "deleted" not in states[:-1]
        # observed to the end of the data unless deleted earlier
        assert months[-1] == end or states[-1] == "deleted", user
        for origin, target in itertools.pairwise(states):
            assert target in ALLOWED[origin], (user, origin, target)


def test_allowed_mask_and_truth_layout(default: StreamingPanel) -> None:
    truth = default.truth
    assert list(truth.states) == STATES
    assert truth.absorbing == ("deleted",)
    assert truth.reference == {s: s for s in TRANSIENT}
    expected = pd.DataFrame(
        [[t in ALLOWED[o] for t in STATES] for o in STATES], index=STATES, columns=STATES
    )
    assert (truth.allowed.to_numpy() == expected.to_numpy()).all()
    assert truth.allowed.index.tolist() == STATES and truth.allowed.columns.tolist() == STATES
    assert (bl.datasets.streaming.ALLOWED == expected.to_numpy()).all()
    p = truth.parameters
    assert p["mean_row"].dims == ("country", "cohort", "origin", "target")
    assert p["concentration"].dims == ("country", "cohort", "origin")
    assert p["initial"].dims == ("country", "state")
    assert p["origin"].values.tolist() == TRANSIENT
    assert p["target"].values.tolist() == STATES
    assert p["cohort"].values.tolist() == list(range(36))
    assert truth.user_matrices.dims == ("user", "origin", "target")
    assert truth.user_matrices.sizes["user"] == 36 * 60


def test_truth_parameters(default: StreamingPanel) -> None:
    p = default.truth.parameters
    se0 = p.sel(country="SE", cohort=0)
    for origin, row in MEAN_ROW.items():
        for target in STATES:
            assert se0["mean_row"].sel(origin=origin, target=target) == pytest.approx(
                row.get(target, 0.0), abs=1e-12
            )
            eta = se0["eta"].sel(origin=origin, target=target).item()
            if target in row:  # log-odds against staying
                assert eta == pytest.approx(np.log(row[target] / row[origin]))
            else:
                assert np.isnan(eta)
        assert se0["concentration"].sel(origin=origin) == pytest.approx(KAPPA[origin])
    for state in STATES:
        assert p["initial"].sel(country="SE", state=state) == INITIAL_SE.get(state, 0.0)
    assert float(p["initial"].sel(country="US", state="lapsed")) == 0.0
    np.testing.assert_allclose(p["initial"].sum("state"), 1.0)

    # composition: η = base + country shift + cohort × drift, m = softmax over the mask, κ = e^ρ
    for country in ["SE", "US"]:
        for cohort in [0, 17, 35]:
            eta = p["eta"].sel(country=country, cohort=cohort).to_numpy()
            expected_eta = (
                p["eta_base"].to_numpy()
                + p["eta_country"].sel(country=country).to_numpy()
                + cohort * p["eta_drift"].to_numpy()
            )
            np.testing.assert_allclose(eta, expected_eta)
            weights = np.where(np.isnan(eta), 0.0, np.exp(np.nan_to_num(eta, nan=-1.0)))
            np.testing.assert_allclose(
                p["mean_row"].sel(country=country, cohort=cohort),
                weights / weights.sum(axis=1, keepdims=True),
            )
            np.testing.assert_allclose(
                p["concentration"].sel(country=country, cohort=cohort),
                np.exp(
                    p["rho_base"] + p["rho_country"].sel(country=country) + cohort * p["rho_drift"]
                ),
            )
    assert (p["eta_country"].sel(country="SE").fillna(0) == 0).all()
    assert (p["eta_country"].sel(country="US").fillna(0) != 0).any()
    assert (p["eta_drift"].fillna(0) != 0).sum() >= 3
    # sensible magnitudes everywhere: paid plans stay 85–95 %, κ between 2 and 30
    stay = {o: p["mean_row"].sel(origin=o, target=o) for o in ["premium", "duo", "family"]}
    for value in stay.values():
        assert 0.85 <= float(value.min()) and float(value.max()) <= 0.95
    assert 2.0 <= float(p["concentration"].min()) and float(p["concentration"].max()) <= 30.0


def test_user_matrices_are_stochastic_on_the_mask(default: StreamingPanel) -> None:
    matrices = default.truth.user_matrices
    np.testing.assert_allclose(matrices.sum("target"), 1.0, atol=1e-12)
    outside = ~default.truth.allowed.loc[TRANSIENT].to_numpy()
    assert (matrices.to_numpy()[:, outside] == 0).all()
    users = default.panel.groupby("user")[["cohort", "country"]].first()
    assert (matrices["cohort"].to_numpy() == users["cohort"].to_numpy()).all()
    assert (matrices["country"].to_numpy() == users["country"].astype(str).to_numpy()).all()


# -- agreement with the truth -----------------------------------------------------------


def test_first_transitions_match_mean_row(large: StreamingPanel) -> None:
    """A user's first transition out of i is distributed as E P_u[i, ·] = m_i.

    Reaching i (and still being observed a month later) depends only on the user's other
    rows, drawn independently of row i, so the first transitions of different users are
    independent Categorical(m_i) draws: each frequency has binomial standard error
    sqrt(m(1 − m)/n). Later transitions of the same user are correlated through P_u and are
    left out.
    """
    pairs = transitions(large.panel)
    first = pairs.drop_duplicates(["user", "origin"])
    for origin, row in MEAN_ROW.items():
        targets = first.loc[first["origin"] == origin, "target"]
        n = len(targets)
        assert n > 1500, origin  # enough first transitions for a sharp check
        counts = targets.value_counts()
        for target in STATES:
            m = row.get(target, 0.0)
            observed = counts.get(target, 0) / n
            if m == 0.0:
                assert observed == 0.0, (origin, target)
            else:
                se = np.sqrt(m * (1 - m) / n)
                assert abs(observed - m) < Z * se, (origin, target, observed, m)


def test_initial_states_match_pi(large: StreamingPanel) -> None:
    # 20,000 independent first states: binomial standard error sqrt(π(1 − π)/n)
    first = large.panel.groupby("user")["state"].first().astype(str)
    n = len(first)
    counts = first.value_counts()
    for state in STATES:
        pi = INITIAL_SE.get(state, 0.0)
        observed = counts.get(state, 0) / n
        assert abs(observed - pi) <= Z * np.sqrt(pi * (1 - pi) / n), state


@pytest.mark.parametrize("origin", TRANSIENT)
def test_user_rows_have_the_dirichlet_spread(large: StreamingPanel, origin: str) -> None:
    """P_u[i, stay] ~ Beta(κm, κ(1 − m)): mean m and variance m(1 − m)/(κ + 1).

    Standard errors over n = 20,000 users: σ/√n for the mean, and σ² √((k − 1)/n) for the
    sample variance, with k = μ₄/σ⁴ the Beta's kurtosis (from scipy, not from the simulator).
    """
    m, kappa = MEAN_ROW[origin][origin], KAPPA[origin]
    stay = large.truth.user_matrices.sel(origin=origin, target=origin).to_numpy()
    n = len(stay)
    variance = m * (1 - m) / (kappa + 1)
    a, b = kappa * m, kappa * (1 - m)
    assert stats.beta(a, b).var() == pytest.approx(variance)  # the formula itself
    kurtosis = float(stats.beta(a, b).stats(moments="k")) + 3.0
    assert abs(stay.mean() - m) < Z * np.sqrt(variance / n)
    assert abs(stay.var(ddof=1) - variance) < Z * variance * np.sqrt((kurtosis - 1) / n)


@pytest.mark.parametrize("origin", ["free", "lapsed"])
def test_paths_show_user_heterogeneity(large: StreamingPanel, origin: str) -> None:
    """Staying twice in a row: P(stay₂ | stay₁) = E p² / E p = m + (1 − m)/(κ + 1), not m.

    The second transition is the month right after the first (the user stayed), so whether
    it is observed depends on the arrival month only. Binomial standard error over the n
    users with a second transition; the check also confirms that m itself is rejected, i.e.
    that each user keeps their own matrix rather than redrawing it monthly.
    """
    m, kappa = MEAN_ROW[origin][origin], KAPPA[origin]
    pairs = transitions(large.panel)
    pairs = pairs[pairs["origin"] == origin]
    first = pairs.drop_duplicates("user")
    stayed = first[first["target"] == origin]
    second = pairs.merge(
        stayed[["user", "month"]].assign(month=stayed["month"] + 1), on=["user", "month"]
    )
    n = len(second)
    observed = (second["target"] == origin).mean()
    expected = m + (1 - m) / (kappa + 1)
    se = np.sqrt(expected * (1 - expected) / n)
    assert abs(observed - expected) < Z * se, (observed, expected)
    assert abs(observed - m) > 2 * Z * se


# -- holdout ----------------------------------------------------------------------------


def test_holdout_continues_the_same_users(default: StreamingPanel) -> None:
    panel, holdout = default.panel, default.holdout
    # the panel does not depend on how far past the data the simulation runs
    pd.testing.assert_frame_equal(panel, simulate_streaming().panel)
    assert simulate_streaming().holdout.empty
    last = panel.groupby("user").last()
    alive = set(last.index[last["state"] != "deleted"])
    deleted = set(last.index[last["state"] == "deleted"])
    assert deleted and alive
    assert set(holdout["user"]) == alive  # every survivor continues, nobody else
    assert not deleted & set(holdout["user"])
    assert holdout["month"].min() == 36 and holdout["month"].max() == 41
    both = pd.concat([panel, holdout]).sort_values(["user", "month"])
    for user, rows in holdout.groupby("user"):
        months = rows["month"].to_numpy()
        assert months[0] == 36 and (np.diff(months) == 1).all(), user
        assert months[-1] == 41 or rows["state"].iloc[-1] == "deleted", user
        assert rows["cohort"].iloc[0] == last.loc[user, "cohort"]
        assert rows["country"].iloc[0] == last.loc[user, "country"]
    for origin, target in transitions(both)[["origin", "target"]].itertuples(index=False):
        assert target in ALLOWED[origin]
    assert "deleted" not in set(
        both.groupby("user")["state"].apply(lambda s: s.astype(str).iloc[:-1].tolist()).sum()
    )


@pytest.mark.parametrize("origin", ["free", "lapsed"])
def test_holdout_moves_with_each_users_own_matrix(large: StreamingPanel, origin: str) -> None:
    """Given the path so far, every holdout transition from i is Categorical(P_u[i, ·]).

    So the number of stays is a sum of independent Bernoulli(P_u[i, i]) over those
    transitions: mean Σp, variance Σp(1 − p). Survivors still in i after a year are the
    stayers, so the mean row m underpredicts the stays by far (checked too).
    """
    panel, holdout = large.panel, large.holdout
    boundary = panel[panel["month"] == 11]
    pairs = transitions(pd.concat([boundary, holdout]))
    pairs = pairs[pairs["origin"] == origin]
    assert len(pairs) > 1000
    p = large.truth.user_matrices.sel(origin=origin, target=origin).to_numpy()[pairs["user"]]
    observed = (pairs["target"] == origin).sum()
    sd = np.sqrt((p * (1 - p)).sum())
    assert abs(observed - p.sum()) < Z * sd, (observed, p.sum())
    m = MEAN_ROW[origin][origin]
    assert observed - m * len(pairs) > 3 * Z * sd


# -- reproducibility and arguments ------------------------------------------------------


def test_default_is_reproducible(default: StreamingPanel) -> None:
    again = simulate_streaming(horizon_beyond=6)
    pd.testing.assert_frame_equal(default.panel, again.panel)
    pd.testing.assert_frame_equal(default.holdout, again.holdout)
    np.testing.assert_array_equal(default.truth.user_matrices, again.truth.user_matrices)
    other = simulate_streaming(random_seed=1)
    assert not other.panel.equals(simulate_streaming().panel)
    generator = simulate_streaming(random_seed=np.random.default_rng(0))
    pd.testing.assert_frame_equal(generator.panel, simulate_streaming().panel)


def test_arguments() -> None:
    one = simulate_streaming(users_per_cohort=5, n_cohorts=4, countries=("SE",))
    assert one.panel["country"].cat.categories.tolist() == ["SE"]
    assert one.truth.parameters.sizes["country"] == 1
    assert one.panel["user"].nunique() == 20
    uneven = simulate_streaming(users_per_cohort=[3, 0, 2], n_cohorts=3)
    assert uneven.panel.groupby("cohort")["user"].nunique().to_dict() == {0: 3, 2: 2}
    # the last cohort has a single row per user
    assert (uneven.panel[uneven.panel["cohort"] == 2]["month"] == 2).all()
    us = simulate_streaming(users_per_cohort=200, n_cohorts=2, country_share=1.0)
    assert set(us.panel["country"]) == {"US"}
    flat = simulate_streaming(n_cohorts=3, country_effect=0.0, drift=0.0).truth.parameters
    np.testing.assert_allclose(
        flat["mean_row"].sel(country="US", cohort=2), flat["mean_row"].sel(country="SE", cohort=0)
    )
    for bad in [
        {"countries": ("SE", "US", "DE")},
        {"countries": ("SE", "SE")},
        {"n_cohorts": 0},
        {"horizon_beyond": -1},
        {"country_share": 1.5},
        {"users_per_cohort": -1},
    ]:
        with pytest.raises(ValueError):
            simulate_streaming(**bad)
