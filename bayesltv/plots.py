"""Figures of lifetime values and model checks, drawn with matplotlib.

Compute elsewhere, draw here: every function takes what a compute function returned (an
:class:`~bayesltv.value.LTVResult`, a ``summary(by=...)`` table, a table of
:mod:`bayesltv.checks` or a :class:`~bayesltv.checks.HoldoutCheck`) and only draws it. Each
takes an optional ``ax`` (or ``axes``) to draw into and returns the Axes it drew on, so the
figures can be composed and restyled for a slide.

Bands are the columns ``hdi_{p}_low`` and ``hdi_{p}_high`` of the check tables, drawn as
nested shaded areas (the widest the lightest); ``observed`` values are markers and the
predictive ``mean`` a line.

``import bayesltv`` does not import this module; use ``import bayesltv.plots`` or
``from bayesltv import plots``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, MaxNLocator

__all__ = [
    "plot_holdout",
    "plot_ltv_distribution",
    "plot_occupancy_fan",
    "plot_retention_ppc",
    "plot_value_forest",
]

#: Colours of the two value layers.
LAYER_COLORS = {"expected": "C0", "predictive": "C1"}
LAYER_LABELS = {
    "expected": "expected (unknown factories)",
    "predictive": "predictive (+ own coin or dice, and path)",
}
#: Colour of observed values.
OBSERVED_COLOR = "black"


# -- shared helpers ----------------------------------------------------------------------


def _layers(layer: str) -> tuple[str, ...]:
    if layer == "both":
        return ("expected", "predictive")
    if layer in LAYER_COLORS:
        return (layer,)
    raise ValueError(f"layer is {layer!r}; rule: 'expected', 'predictive' or 'both'")


def _text(label) -> str:
    """A readable label for an index value (tuples of a MultiIndex joined by ' · ')."""
    if isinstance(label, tuple):
        return " · ".join(str(part) for part in label)
    return str(label)


def _band_levels(table: pd.DataFrame) -> list[int]:
    """HDI levels (percent) with both bounds among the columns, widest first."""
    levels = []
    for column in table.columns:
        match = re.fullmatch(r"hdi_(\d+)_low", str(column))
        if match and f"hdi_{match[1]}_high" in table.columns:
            levels.append(int(match[1]))
    if not levels:
        raise ValueError(
            f"no band columns among {list(table.columns)}; rule: a check table with "
            "hdi_{p}_low and hdi_{p}_high columns (e.g. hdi_94_low, hdi_94_high)"
        )
    return sorted(levels, reverse=True)


def _band_alphas(levels: Sequence[int]) -> dict[int, float]:
    """Opacity per band: the widest the lightest."""
    return dict(zip(levels, np.linspace(0.18, 0.45, len(levels)), strict=True))


def _require_columns(table: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"{what} lacks the columns {missing}; it has {list(table.columns)}")


def _require_levels(table: pd.DataFrame, levels: Sequence[str], what: str) -> None:
    missing = [name for name in levels if name not in table.index.names]
    if missing:
        raise ValueError(
            f"{what} lacks the index levels {missing}; its index levels are "
            f"{list(table.index.names)}"
        )


def _pick(table: pd.DataFrame, level: str, chosen) -> list:
    """The labels of index ``level`` to draw: all of them, or the chosen ones (checked)."""
    available = list(table.index.get_level_values(level).unique())
    chosen = available if chosen is None else list(chosen)
    unknown = [label for label in chosen if label not in available]
    if unknown:
        raise ValueError(f"{level}s {unknown} are not in the table; it has {available}")
    return chosen


def _draw_bands(ax: Axes, x, frame: pd.DataFrame, levels, color, marker_color) -> None:
    """Nested HDI bands, the predictive mean as a line and the observed values as markers
    (filled with ``marker_color``, black edge)."""
    alphas = _band_alphas(levels)
    for level in levels:
        ax.fill_between(
            x,
            frame[f"hdi_{level}_low"].to_numpy(float),
            frame[f"hdi_{level}_high"].to_numpy(float),
            color=color,
            alpha=alphas[level],
            linewidth=0,
        )
    ax.plot(x, frame["mean"].to_numpy(float), color=color, lw=1.5)
    ax.plot(
        x,
        frame["observed"].to_numpy(float),
        "o",
        ms=4,
        mfc=marker_color,
        mec=OBSERVED_COLOR,
        mew=0.8,
        ls="none",
    )
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _band_handles(levels, color="grey", observed_color=OBSERVED_COLOR) -> list:
    """Legend entries for the observed markers, the mean line and each band."""
    alphas = _band_alphas(levels)
    handles = [
        Line2D(
            [],
            [],
            marker="o",
            ms=4,
            ls="none",
            mfc=observed_color,
            mec=OBSERVED_COLOR,
            label="observed",
        ),
        Line2D([], [], color=color, lw=1.5, label="predictive mean"),
    ]
    handles += [
        Patch(color=color, alpha=alphas[level], lw=0, label=f"{level}% HDI") for level in levels
    ]
    return handles


def _grid(n: int, axes, sharey: bool = True, width: float = 4.0, height: float = 3.0):
    """``n`` panels: the given Axes (flattened) or a new grid of at most 3 columns.

    Returns the panels and whether this call created the figure.
    """
    if axes is not None:
        panels = np.asarray(axes, dtype=object).ravel()
        if len(panels) < n:
            raise ValueError(f"{len(panels)} axes given for {n} panels; rule: one per panel")
        return panels[:n], False
    ncols = min(n, 3)
    nrows = math.ceil(n / ncols)
    fig, grid = plt.subplots(
        nrows,
        ncols,
        figsize=(width * ncols, height * nrows),
        sharex=True,
        sharey=sharey,
        squeeze=False,
        layout="constrained",
    )
    panels = grid.ravel()
    for extra in panels[n:]:
        fig.delaxes(extra)
    return panels[:n], True


def _tidy_grid(panels, sharey: bool) -> None:
    """On a grid this module created: x labels only where no panel is below, y labels only
    in the first column when the y axis is shared."""
    ncols = panels[0].get_subplotspec().get_gridspec().ncols
    for position, ax in enumerate(panels):
        below = position + ncols < len(panels)
        ax.tick_params(labelbottom=not below)
        if below:
            ax.set_xlabel("")
        if sharey and position % ncols:
            ax.tick_params(labelleft=False)
            ax.set_ylabel("")


def _value_formatter(x, _position) -> str:
    """Thousands separated by commas for large values (currency amounts)."""
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:g}"


def _settings_text(result) -> str:
    settings = result.settings
    horizon = settings.get("horizon")
    rate = settings.get("discount_rate")
    parts = []
    if horizon is not None:
        parts.append("infinite horizon" if horizon == "infinite" else f"horizon {horizon} periods")
    if rate is not None:
        parts.append(f"discount rate {rate:.2%} per period")
    return ", ".join(parts)


def _ridge_style(filled: bool) -> dict:
    """The first layer of a ridge filled, the second (predictive over expected) outlined."""
    return {"fill": True, "alpha": 0.55, "lw": 0} if filled else {"fill": False, "lw": 1.4}


# -- values ------------------------------------------------------------------------------


def plot_ltv_distribution(
    result,
    by: str | Sequence[str] = "group",
    layer: str = "both",
    ax: Axes | None = None,
    bins: int = 30,
    max_groups: int = 12,
) -> Axes:
    """Posterior distributions of total lifetime values, one ridge per group.

    Each ridge is a histogram of the per-draw totals of ``result.draws(by=by)`` (users'
    values added within each posterior draw); under it, the mean (dot) and the HDI (line:
    thick for the expected layer, thin for the predictive one) of ``result.summary(by=by)``.
    All ridges share the value axis, so groups can be compared by eye.

    Parameters
    ----------
    result : LTVResult
        Values from ``model.ltv(...)``, ``new_user_ltv(...)`` or ``value_function(...)``.
    by : str or list of str
        As for :meth:`LTVResult.draws`: ``"group"`` (alias ``"cohort"``), ``"total"``, a
        covariate, ``"state"`` or a list of these.
    layer : {"expected", "predictive", "both"}
        Expected values (what we do not know about the factories), predictive values (also
        each user's own coin or dice and path), or both overlaid.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure by default.
    bins : int
        Histogram bins over the common value range.
    max_groups : int
        More ridges than this raise an error: draw
        ``plot_value_forest(result.summary(by=...))`` for many groups instead.

    Returns
    -------
    matplotlib.axes.Axes
    """
    layers = _layers(layer)
    draws = result.draws(by=by)
    if any(name not in draws for name in layers):
        raise ValueError(
            f"the draws by {by!r} hold only {list(draws.data_vars)}; rule: layer='expected' "
            "for per-user draws"
        )
    key = next(d for d in draws[layers[0]].dims if d not in ("chain", "draw"))
    keys = list(draws[key].values)
    if len(keys) > max_groups:
        raise ValueError(
            f"{len(keys)} ridges to draw; rule: at most max_groups={max_groups} stay readable: "
            f"use plot_value_forest(result.summary(by={by!r})) or raise max_groups"
        )
    values = {
        name: draws[name].transpose(key, ...).to_numpy().reshape(len(keys), -1) for name in layers
    }
    summary = result.summary(by=by)
    if ax is None:
        _, ax = plt.subplots(figsize=(10, 1.6 + 0.7 * len(keys)), layout="constrained")
    positions = np.arange(len(keys))[::-1]  # first group on top
    for row, (label, base) in enumerate(zip(keys, positions, strict=True)):
        low = min(float(values[name][row].min()) for name in layers)
        high = max(float(values[name][row].max()) for name in layers)
        if high <= low:  # every draw the same value (e.g. an absorbing state's zero)
            low, high = low - 0.5, high + 0.5
        edges = np.linspace(low, high, bins + 1)
        heights = {
            name: np.histogram(values[name][row], bins=edges, density=True)[0] for name in layers
        }
        peak = max(float(h.max()) for h in heights.values())
        scale = 0.8 / peak if peak > 0 else 0.0
        for name in layers:
            ax.stairs(
                base + heights[name] * scale,
                edges,
                baseline=base,
                color=LAYER_COLORS[name],
                **_ridge_style(name == layers[0]),
            )
        stats = summary.loc[label]
        for name in layers[::-1]:  # the thick expected line on top
            ax.plot(
                [stats[f"{name}_hdi_low"], stats[f"{name}_hdi_high"]],
                [base - 0.1, base - 0.1],
                color=LAYER_COLORS[name],
                lw=4.0 if name == "expected" else 1.5,
                solid_capstyle="butt",
            )
        ax.plot([stats[f"{layers[0]}_mean"]], [base - 0.1], "o", color="white", mec="black", ms=5)
    ax.set_yticks(positions, [_text(k) for k in keys])
    ax.set_ylim(-0.5, len(keys) - 0.1)
    ax.set_xlabel("lifetime value (users' values added within each draw)")
    ax.xaxis.set_major_formatter(FuncFormatter(_value_formatter))
    by_text = by if isinstance(by, str) else " × ".join(by)
    ax.set_ylabel(by_text)
    settings = _settings_text(result)
    title = f"Posterior of the lifetime value by {by_text}"
    ax.set_title(title + (f"\n{settings}" if settings else ""))
    handles = [
        Patch(
            edgecolor=LAYER_COLORS[name],
            facecolor=LAYER_COLORS[name],
            label=LAYER_LABELS[name],
            **_ridge_style(name == layers[0]),
        )
        for name in layers
    ]
    handles.append(
        Line2D(
            [],
            [],
            color="grey",
            lw=3,
            marker="o",
            mfc="white",
            mec="black",
            label=f"mean and {result.hdi_prob:.0%} HDI",
        )
    )
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    return ax


def plot_value_forest(
    summary: pd.DataFrame,
    layer: str = "expected",
    ax: Axes | None = None,
    label: str | None = None,
    title: str | None = None,
) -> Axes:
    """Forest plot of a table of values: the mean as a dot, the HDI as a line per row.

    Accepts the tables of :meth:`LTVResult.summary` (columns ``{layer}_mean``,
    ``{layer}_hdi_low``, ``{layer}_hdi_high``), e.g. the value function per state
    (``model.value_function(...).summary(by="state")`` or ``by=["group", "state"]``) or
    many cohorts' totals, and tables with ``mean``, ``hdi_low`` and ``hdi_high`` such as
    :meth:`DirichletMarkov.value_of_move` (which also draws the line at zero).

    Parameters
    ----------
    summary : pandas.DataFrame
        One row per value; the index labels the rows (top to bottom in table order).
    layer : {"expected", "predictive", "both"}
        Which layer of an LTV summary; ``"both"`` draws the expected HDI thick and the
        predictive one thin. Tables of one layer (``mean``, ``hdi_low``, ``hdi_high``) take
        ``"expected"``.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure by default.
    label : str, optional
        Label of the value axis.
    title : str, optional
        Title of the axes.

    Returns
    -------
    matplotlib.axes.Axes
    """
    if len(summary) == 0:
        raise ValueError("summary has no rows to draw")
    layers = _layers(layer)
    if all(f"{name}_mean" in summary.columns for name in layers):
        columns = {name: (f"{name}_mean", f"{name}_hdi_low", f"{name}_hdi_high") for name in layers}
    elif {"mean", "hdi_low", "hdi_high"} <= set(summary.columns):
        if layers != ("expected",):
            raise ValueError(
                "this table has a single layer (columns mean, hdi_low, hdi_high); rule: "
                "layer='expected'"
            )
        columns = {"expected": ("mean", "hdi_low", "hdi_high")}
    else:
        raise ValueError(
            f"summary has the columns {list(summary.columns)}; rule: an LTV summary "
            "({layer}_mean, {layer}_hdi_low, {layer}_hdi_high) or mean, hdi_low, hdi_high"
        )
    move = {"origin", "target"} <= set(summary.columns)
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 1.2 + 0.32 * len(summary)), layout="constrained")
    y = np.arange(len(summary))
    for name in layers[::-1]:  # the thick expected line on top
        mean, low, high = (summary[c].to_numpy(float) for c in columns[name])
        thick = name == "expected"
        ax.hlines(
            y,
            low,
            high,
            color=LAYER_COLORS[name],
            lw=4.0 if thick else 1.5,
            label=f"{name} HDI" if len(layers) > 1 or not move else "HDI",
        )
    mean = summary[columns[layers[0]][0]].to_numpy(float)
    ax.plot(mean, y, "o", color="white", mec="black", ms=5, ls="none", label="mean")
    if move:
        ax.axvline(0.0, color="grey", lw=1, ls="--")
    ax.set_yticks(y, [_text(k) for k in summary.index])
    ax.set_ylim(len(summary) - 0.5, -0.5)  # first row on top
    if label is None:
        if move:
            pairs = summary[["origin", "target"]].drop_duplicates()
            label = " / ".join(f"V({t}) − V({o})" for o, t in pairs.itertuples(index=False))
        else:
            label = "lifetime value"
    ax.set_xlabel(label)
    ax.xaxis.set_major_formatter(FuncFormatter(_value_formatter))
    names = [n for n in summary.index.names if n is not None]
    if names:
        ax.set_ylabel(" × ".join(str(n) for n in names))
    if title is not None:
        ax.set_title(title)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, fontsize="small")
    return ax


# -- checks ------------------------------------------------------------------------------


def _group_curves(table, groups, axes, ylabel, xlabel, what, sharey=True):
    """Observed curve with bands per group: one panel per group, or colours on one Axes."""
    _require_levels(table, ["group", "period"], what)
    _require_columns(table, ["observed", "mean"], what)
    levels = _band_levels(table)
    groups = _pick(table, "group", groups)
    if isinstance(axes, Axes):  # all groups on one Axes, a colour each
        for n, group in enumerate(groups):
            frame = table.xs(group, level="group")
            color = f"C{n % 10}"
            _draw_bands(axes, frame.index.to_numpy(), frame, levels, color, color)
        handles = [Patch(color=f"C{n % 10}", label=_text(g)) for n, g in enumerate(groups)]
        handles += _band_handles(levels, observed_color="lightgrey")
        axes.legend(handles=handles, frameon=False, fontsize="small", loc="best")
        axes.set(xlabel=xlabel, ylabel=ylabel)
        return axes, False
    panels, created = _grid(len(groups), axes, sharey=sharey)
    for ax, group in zip(panels, groups, strict=True):
        frame = table.xs(group, level="group")
        _draw_bands(ax, frame.index.to_numpy(), frame, levels, "C0", OBSERVED_COLOR)
        ax.set(title=_text(group), xlabel=xlabel, ylabel=ylabel)
    panels[0].legend(
        handles=_band_handles(levels, color="C0"), frameon=False, fontsize="small", loc="best"
    )
    if created:
        _tidy_grid(panels, sharey)
    return panels, created


def plot_retention_ppc(
    table: pd.DataFrame,
    groups: Sequence | None = None,
    axes=None,
    curve: str = "retention",
):
    """Posterior predictive retention (or survival) curves against the observed ones.

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`bayesltv.checks.retention_ppc`: index (group, period), columns ``observed``,
        ``mean`` and ``hdi_{p}_low``/``hdi_{p}_high``.
    groups : sequence, optional
        Groups to draw (default: all, in table order).
    axes : matplotlib.axes.Axes or array of Axes, optional
        One Axes: every group on it, a colour each. An array: one panel per group. Default:
        a new grid, one panel per group.
    curve : str
        What the table holds, for the axis label (``"retention"`` or ``"survival"``, as
        passed to ``retention_ppc``).

    Returns
    -------
    numpy.ndarray of Axes, or the Axes given
    """
    ylabel = "retention r(t)" if curve == "retention" else f"{curve} (Kaplan–Meier)"
    drawn, created = _group_curves(
        table, groups, axes, ylabel, "period since acquisition", "the retention_ppc table"
    )
    if created:
        drawn[0].figure.suptitle(f"Posterior predictive check: observed vs replicated {curve}")
    return drawn


def _occupancy_layout(table: pd.DataFrame, group) -> tuple[pd.DataFrame, str, str]:
    """The rows of one group indexed (time, state), the time level and a title."""
    names = list(table.index.names)
    if set(names) == {"group", "tenure", "state"}:
        available = list(table.index.get_level_values("group").unique())
        if group is None:
            if len(available) > 1:
                raise ValueError(
                    f"the table holds groups {available}; rule: pick one with group=..."
                )
            group = available[0]
        if group not in available:
            raise ValueError(f"group {group!r} is not in the table; it has {available}")
        frame = table.xs(group, level="group")
        return frame.reorder_levels(["tenure", "state"]), "tenure", f"group {_text(group)}"
    if set(names) == {"period", "state"}:
        if group is not None:
            raise ValueError("a hold-out table has no groups; rule: leave group=None")
        return table.reorder_levels(["period", "state"]), "period", "held-out periods"
    raise ValueError(
        f"index levels {names}; rule: (group, tenure, state) from occupancy_ppc or "
        "(period, state) from a multi-state holdout_check"
    )


def plot_occupancy_fan(
    table: pd.DataFrame,
    group=None,
    states: Sequence[str] | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Fan chart of the share of users in each state over time, with the observed shares.

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`bayesltv.checks.occupancy_ppc` (index (group, tenure, state)) or the table of
        a multi-state :func:`bayesltv.checks.holdout_check` (index (period, state)); columns
        ``observed``, ``mean`` and ``hdi_{p}_low``/``hdi_{p}_high``.
    group : optional
        The group (cohort) to draw from an ``occupancy_ppc`` table; may be left out when it
        holds one group.
    states : sequence of str, optional
        States to draw (default: all). Each state keeps its colour whatever the subset.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure by default.

    Returns
    -------
    matplotlib.axes.Axes
    """
    frame, time, title = _occupancy_layout(table, group)
    _require_columns(frame, ["observed", "mean"], "the occupancy table")
    levels = _band_levels(frame)
    all_states = _pick(frame, "state", None)  # colours follow the table's state order
    states = _pick(frame, "state", states)
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4.5), layout="constrained")
    for state in states:
        rows = frame.xs(state, level="state").sort_index()
        color = f"C{all_states.index(state) % 10}"
        _draw_bands(ax, rows.index.to_numpy(), rows, levels, color, color)
    if len(states) > 1:
        handles = [
            Patch(color=f"C{all_states.index(s) % 10}", label=str(s)) for s in states
        ] + _band_handles(levels, observed_color="lightgrey")
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
        ax.set_title(f"State occupancy: observed vs predicted, {title}")
    else:
        color = f"C{all_states.index(states[0]) % 10}"
        ax.set_title(str(states[0]))
        ax.legend(
            handles=_band_handles(levels, color=color, observed_color=color),
            frameon=False,
            fontsize="small",
            loc="best",
        )
    xlabel = "tenure (periods since first observation)" if time == "tenure" else "period"
    ax.set(xlabel=xlabel, ylabel="share of users in the state")
    return ax


def _metrics_text(metrics: pd.Series) -> str:
    """One line: MAE, the coverage of each band and the number of held-out points."""
    parts = [f"MAE {metrics['mae']:.3f}"]
    coverage = [k for k in metrics.index if str(k).startswith("coverage_")]
    if coverage:
        levels = "/".join(f"{k.split('_')[1]}%" for k in coverage)
        shares = "/".join(f"{metrics[k]:.0%}" for k in coverage)
        parts.append(f"coverage of the {levels} HDI: {shares}")
    if "points" in metrics.index:
        parts.append(f"{int(metrics['points'])} points")
    return " · ".join(parts)


def plot_holdout(check, axes=None):
    """Hold-out tracking: observed values after the split against the forecast bands.

    Survival checks (index (group, period)) draw each group's Kaplan–Meier survival; a
    multi-state check (index (period, state)) draws each state's share of the users present
    at the split. The metrics (MAE, interval coverage, number of points) go into the figure
    title, or the first panel's title when ``axes`` are given.

    Parameters
    ----------
    check : HoldoutCheck
        From :func:`bayesltv.checks.holdout_check`.
    axes : matplotlib.axes.Axes or array of Axes, optional
        One Axes: everything on it (groups or states in colours). An array: one panel per
        group or state. Default: a new grid with one panel per group or state.

    Returns
    -------
    numpy.ndarray of Axes, or the Axes given
    """
    table = check.table
    text = _metrics_text(check.metrics)
    if "group" in table.index.names:
        drawn, created = _group_curves(
            table,
            None,
            axes,
            "survival (Kaplan–Meier)",
            "period since acquisition",
            "the hold-out table",
            sharey=False,
        )
    elif isinstance(axes, Axes):
        drawn, created = plot_occupancy_fan(table, ax=axes), False
    else:
        _occupancy_layout(table, None)  # validates the index
        states = list(table.index.get_level_values("state").unique())
        drawn, created = _grid(len(states), axes, sharey=False, height=2.6)
        for ax, state in zip(drawn, states, strict=True):
            plot_occupancy_fan(table, states=[state], ax=ax)
            if ax is not drawn[0]:
                ax.get_legend().remove()
            ax.set_ylabel("share of users")
        if created:
            _tidy_grid(drawn, sharey=False)
    first = drawn if isinstance(drawn, Axes) else drawn[0]
    if created:
        first.figure.suptitle(f"Hold-out forecast after the split\n{text}")
    else:
        title = first.get_title()
        first.set_title(f"{title}\n{text}" if title else text)
    return drawn
