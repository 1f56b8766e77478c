"""Figures draw what the compute functions returned: one ridge, row, panel or band per entry,
at the values of the tables."""

import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.patches import StepPatch

import bayesltv as bl
import bayesltv.checks as checks
import bayesltv.plots as blp

REWARDS = {"premium": 11.0, "duo": 15.0, "family": 18.0, "student": 6.0, "free": 0.4}


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def survival_split(fh_full):
    return checks.holdout_split(fh_full, at_period=7)


@pytest.fixture(scope="module")
def survival_model(survival_split):
    """Short ADVI on years 0..7: posterior draws for distributions, fast to fit."""
    return bl.BetaGeometric(cohort_prior="independent").fit(
        survival_split.train, method="advi", draws=200, vi_iterations=3000, random_seed=1
    )


@pytest.fixture(scope="module")
def survival_values(survival_model, survival_split):
    return survival_model.ltv(survival_split.train, value=100.0, discount_rate=0.1, horizon=20)


@pytest.fixture(scope="module")
def sequence_split():
    panel = bl.datasets.simulate_streaming(
        users_per_cohort=40, n_cohorts=6, countries=("SE",), random_seed=5
    ).panel
    sequences = bl.StateSequences.from_panel(
        panel, user="user", period="month", state="state", absorbing=["deleted"], cohort="cohort"
    )
    return checks.holdout_split(sequences, at_period=3)


@pytest.fixture(scope="module")
def sequence_model(sequence_split):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bl.ConvergenceWarning)  # a short ADVI run
        return bl.DirichletMarkov(cohort_prior="pooled").fit(
            sequence_split.train, method="advi", draws=60, vi_iterations=1500, random_seed=1
        )


def band_bounds(collection) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x values and the lower and upper edge of a fill_between area at each of them."""
    vertices = collection.get_paths()[0].vertices
    x = np.unique(vertices[:, 0])
    low = np.array([vertices[vertices[:, 0] == v, 1].min() for v in x])
    high = np.array([vertices[vertices[:, 0] == v, 1].max() for v in x])
    return x, low, high


def bands(ax) -> list:
    return [c for c in ax.collections if isinstance(c, PolyCollection)]


def observed_markers(ax) -> list:
    return [
        line for line in ax.lines if line.get_marker() == "o" and line.get_linestyle() == "None"
    ]


# -- plot_ltv_distribution -----------------------------------------------------------------


def test_ltv_distribution_draws_a_ridge_per_group_with_the_summary_intervals(survival_values):
    ax = blp.plot_ltv_distribution(survival_values, by="group", layer="both")
    summary = survival_values.summary(by="group")
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["regular", "high_end"]
    ridges = [p for p in ax.patches if isinstance(p, StepPatch)]
    assert len(ridges) == 2 * 2  # groups × layers
    # the interval lines under each ridge sit at the summary's HDI bounds
    intervals = [line for line in ax.lines if len(line.get_xdata()) == 2]
    drawn = {tuple(np.round(line.get_xdata(), 6)) for line in intervals}
    for group in summary.index:
        for layer in ("expected", "predictive"):
            bounds = summary.loc[group, [f"{layer}_hdi_low", f"{layer}_hdi_high"]]
            assert tuple(np.round(bounds.to_numpy(float), 6)) in drawn
    means = [line for line in ax.lines if line.get_marker() == "o"]
    np.testing.assert_allclose(
        sorted(float(line.get_xdata()[0]) for line in means),
        sorted(summary["expected_mean"]),
    )
    assert "lifetime value" in ax.get_xlabel()
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("expected" in t for t in legend) and any("predictive" in t for t in legend)
    assert "horizon 20" in ax.get_title()


def test_ltv_distribution_ridges_hold_the_draws(survival_values):
    ax = blp.plot_ltv_distribution(survival_values, by="total", layer="expected", bins=10)
    (ridge,) = [p for p in ax.patches if isinstance(p, StepPatch)]
    values, edges = ridge.get_data().values, ridge.get_data().edges
    draws = survival_values.draws(by="total")["expected"].to_numpy().ravel()
    assert edges[0] == pytest.approx(draws.min()) and edges[-1] == pytest.approx(draws.max())
    counts = np.histogram(draws, bins=edges)[0]
    base = ridge.get_data().baseline
    # heights are the histogram, scaled so the tallest bin is 0.8 above the baseline
    np.testing.assert_allclose(values - base, 0.8 * counts / counts.max())


def test_ltv_distribution_draws_into_given_axes_and_refuses_too_many_ridges(survival_values):
    _, (left, right) = plt.subplots(1, 2)
    assert blp.plot_ltv_distribution(survival_values, layer="predictive", ax=right) is right
    assert len([p for p in right.patches if isinstance(p, StepPatch)]) == 2
    assert not left.patches
    with pytest.raises(ValueError, match="plot_value_forest"):
        blp.plot_ltv_distribution(survival_values, by="group", max_groups=1)
    with pytest.raises(ValueError, match="layer"):
        blp.plot_ltv_distribution(survival_values, layer="epistemic")


def test_ltv_distribution_labels_ridges_of_several_keys(sequence_model, sequence_split):
    values = sequence_model.ltv(sequence_split.train, REWARDS, 0.01, horizon=12, random_seed=0)
    summary = values.summary(by=["group", "state"])
    ax = blp.plot_ltv_distribution(
        values, by=["group", "state"], layer="expected", max_groups=len(summary)
    )
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == [f"{group} · {state}" for group, state in summary.index]
    assert len([p for p in ax.patches if isinstance(p, StepPatch)]) == len(summary)
    assert ax.get_ylabel() == "group × state"


# -- plot_value_forest ---------------------------------------------------------------------


def test_value_forest_draws_each_row_at_its_mean_and_intervals(sequence_model):
    values = sequence_model.value_function(REWARDS, 0.01, horizon=24, random_seed=0)
    summary = values.summary(by=["group", "state"]).loc[[0]]
    ax = blp.plot_value_forest(summary, layer="both", label="V(s)")
    assert [t.get_text() for t in ax.get_yticklabels()] == [
        f"0 · {state}" for state in summary.index.get_level_values("state")
    ]
    bottom, top = ax.get_ylim()
    assert bottom > top  # the first row on top
    lines = {c.get_label(): c for c in ax.collections if isinstance(c, LineCollection)}
    for layer in ("expected", "predictive"):
        segments = np.array(lines[f"{layer} HDI"].get_segments())
        np.testing.assert_allclose(segments[:, 0, 0], summary[f"{layer}_hdi_low"])
        np.testing.assert_allclose(segments[:, 1, 0], summary[f"{layer}_hdi_high"])
        np.testing.assert_allclose(segments[:, 0, 1], np.arange(len(summary)))
    (means,) = [line for line in ax.lines if line.get_marker() == "o"]
    np.testing.assert_allclose(means.get_xdata(), summary["expected_mean"])
    assert ax.get_xlabel() == "V(s)"
    assert ax.get_ylabel() == "group × state"


def test_value_forest_reads_value_of_move_tables(sequence_model):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # Monte Carlo noise of a short fit
        move = sequence_model.value_of_move(
            "free", "premium", REWARDS, 0.01, horizon=24, dice_per_draw=8, random_seed=0
        )
    ax = blp.plot_value_forest(move)
    (hdi,) = [c for c in ax.collections if isinstance(c, LineCollection)]
    segments = np.array(hdi.get_segments())
    np.testing.assert_allclose(segments[:, 0, 0], move["hdi_low"])
    np.testing.assert_allclose(segments[:, 1, 0], move["hdi_high"])
    assert ax.get_xlabel() == "V(premium) − V(free)"
    zero = [line for line in ax.lines if list(line.get_xdata()) == [0.0, 0.0]]
    assert len(zero) == 1  # the reference line at no gain
    with pytest.raises(ValueError, match="single layer"):
        blp.plot_value_forest(move, layer="predictive")
    with pytest.raises(ValueError, match="columns"):
        blp.plot_value_forest(move[["origin", "target", "sd"]])


# -- plot_retention_ppc --------------------------------------------------------------------


def test_retention_ppc_draws_one_panel_per_group_with_the_table_bands(survival_model):
    table = checks.retention_ppc(survival_model, random_seed=0)
    axes = blp.plot_retention_ppc(table)
    assert len(axes) == 2
    assert [ax.get_title() for ax in axes] == ["regular", "high_end"]
    for ax, group in zip(axes, ["regular", "high_end"], strict=True):
        frame = table.xs(group, level="group")
        wide, narrow = bands(ax)  # widest first
        for collection, level in ((wide, 94), (narrow, 50)):
            x, low, high = band_bounds(collection)
            np.testing.assert_array_equal(x, frame.index)
            np.testing.assert_allclose(low, frame[f"hdi_{level}_low"])
            np.testing.assert_allclose(high, frame[f"hdi_{level}_high"])
        (observed,) = observed_markers(ax)
        np.testing.assert_allclose(observed.get_ydata(), frame["observed"])
    assert axes[0].get_ylabel() == "retention r(t)"
    assert axes[-1].get_xlabel() == "period since acquisition"
    legend = [t.get_text() for t in axes[0].get_legend().get_texts()]
    assert legend == ["observed", "predictive mean", "94% HDI", "50% HDI"]


def test_retention_ppc_on_one_axes_colours_the_groups(survival_model):
    table = checks.retention_ppc(survival_model, curve="survival", random_seed=0)
    _, ax = plt.subplots()
    assert blp.plot_retention_ppc(table, axes=ax, curve="survival") is ax
    assert len(bands(ax)) == 2 * 2  # groups × bands
    assert len(observed_markers(ax)) == 2
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[:2] == ["regular", "high_end"]
    assert "survival" in ax.get_ylabel()
    (panel,) = blp.plot_retention_ppc(table, groups=["high_end"])
    assert panel.get_title() == "high_end"
    with pytest.raises(ValueError, match="not in the table"):
        blp.plot_retention_ppc(table, groups=["premium"])


# -- plot_occupancy_fan --------------------------------------------------------------------


def test_occupancy_fan_draws_bands_and_observed_shares_per_state(sequence_model):
    table = checks.occupancy_ppc(sequence_model, max_draws=30, users_per_draw=20, random_seed=0)
    with pytest.raises(ValueError, match="group="):
        blp.plot_occupancy_fan(table)  # several cohorts: pick one
    ax = blp.plot_occupancy_fan(table, group=0, states=["premium", "free"])
    assert len(bands(ax)) == 2 * 2  # states × bands
    for state, offset in (("premium", 0), ("free", 2)):
        frame = table.xs((0, state), level=("group", "state"))
        x, low, high = band_bounds(bands(ax)[offset])
        np.testing.assert_array_equal(x, frame.index)
        np.testing.assert_allclose(low, frame["hdi_94_low"])
        np.testing.assert_allclose(high, frame["hdi_94_high"])
    observed = observed_markers(ax)
    assert len(observed) == 2
    free = table.xs((0, "free"), level=("group", "state"))
    np.testing.assert_allclose(observed[1].get_ydata(), free["observed"])
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[:2] == ["premium", "free"]
    assert ax.get_xlabel().startswith("tenure")
    assert ax.get_ylabel() == "share of users in the state"
    with pytest.raises(ValueError, match="states"):
        blp.plot_occupancy_fan(table, group=0, states=["platinum"])


def test_occupancy_fan_rejects_tables_of_other_shapes(survival_model):
    with pytest.raises(ValueError, match="index levels"):
        blp.plot_occupancy_fan(checks.retention_ppc(survival_model, random_seed=0))


# -- plot_holdout ---------------------------------------------------------------------------


def test_holdout_survival_panels_and_metrics(survival_model, survival_split):
    check = checks.holdout_check(survival_model, survival_split, random_seed=0)
    axes = blp.plot_holdout(check)
    assert [ax.get_title() for ax in axes] == ["regular", "high_end"]
    frame = check.table.xs("high_end", level="group")
    x, low, high = band_bounds(bands(axes[1])[0])
    np.testing.assert_array_equal(x, frame.index)
    np.testing.assert_allclose(low, frame["hdi_94_low"])
    np.testing.assert_allclose(high, frame["hdi_94_high"])
    assert x.min() > 7  # only the periods after the split
    title = axes[0].figure.get_suptitle()
    metrics = check.metrics
    assert f"MAE {metrics['mae']:.3f}" in title
    assert f"{metrics['coverage_50']:.0%}/{metrics['coverage_94']:.0%}" in title
    assert f"{int(metrics['points'])} points" in title


def test_holdout_multistate_panels_per_state_or_one_axes(sequence_model, sequence_split):
    check = checks.holdout_check(sequence_model, sequence_split, max_draws=30, random_seed=0)
    states = list(check.table.index.get_level_values("state").unique())
    axes = blp.plot_holdout(check)
    assert [ax.get_title() for ax in axes] == states
    for ax, state in zip(axes, states, strict=True):
        frame = check.table.xs(state, level="state")
        x, low, high = band_bounds(bands(ax)[0])
        np.testing.assert_array_equal(x, frame.index)
        np.testing.assert_allclose(low, frame["hdi_94_low"])
        np.testing.assert_allclose(high, frame["hdi_94_high"])
        (observed,) = observed_markers(ax)
        np.testing.assert_allclose(observed.get_ydata(), frame["observed"])
    assert "MAE" in axes[0].figure.get_suptitle()
    _, ax = plt.subplots()
    assert blp.plot_holdout(check, axes=ax) is ax
    assert len(bands(ax)) == 2 * len(states)
    assert ax.get_xlabel() == "period"
    assert f"MAE {check.metrics['mae']:.3f}" in ax.get_title()


def test_band_columns_are_required():
    table = pd.DataFrame(
        {"observed": [0.5], "mean": [0.5]},
        index=pd.MultiIndex.from_tuples([("a", 1)], names=["group", "period"]),
    )
    with pytest.raises(ValueError, match="hdi_"):
        blp.plot_retention_ppc(table)
