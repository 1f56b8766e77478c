r"""Priors shared by the model families: defaults, user overrides, and group (cohort) effects.

Every prior is a :class:`pymc_extras.prior.Prior` (serialisable with ``to_dict``, the
convention pymc-marketing users know). A model holds a dict of defaults; users override any
entry by name, e.g. ``BetaGeometric(priors={"logit_mu_intercept": Prior("Normal", mu=-2,
sigma=1)})``.

**Group effects.** A parameter :math:`\eta` (e.g. the logit of the mean churn) takes one
level per group :math:`g = 0..G-1` according to ``cohort_prior``:

``"pooled"``
    :math:`\eta_g = a` — every group shares one level.
``"independent"``
    :math:`\eta_g = a_g`, each :math:`a_g` drawn from the intercept prior.
``"hierarchical"``
    :math:`\eta_g = a + \sigma z_g`, :math:`z_g \sim N(0, 1)` (exchangeable groups,
    non-centred).
``"random_walk"``
    :math:`\eta_0 = a`, :math:`\eta_g = \eta_{g-1} + \sigma \sqrt{\Delta_g}\, z_g` with
    :math:`\Delta_g` the gap between cohort :math:`g` and the one before (ordered cohorts,
    non-centred). Young cohorts with little data borrow strength from their neighbours.

With a single group every choice reduces to ``"pooled"``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pymc as pm
import pytensor.tensor as pt
from pymc_extras.prior import Prior

from bayesltv.data.groups import Groups

COHORT_PRIORS = ("pooled", "independent", "hierarchical", "random_walk")

#: Default scale of the group standard deviation for each group prior. A random-walk step
#: is a change between neighbouring cohorts, smaller than the spread of exchangeable groups.
GROUP_SIGMA_SCALE = {"hierarchical": 0.5, "random_walk": 0.25}


def check_cohort_prior(cohort_prior: str | None) -> None:
    """``cohort_prior`` is one of :data:`COHORT_PRIORS` or ``None``."""
    if cohort_prior is not None and cohort_prior not in COHORT_PRIORS:
        raise ValueError(
            f"cohort_prior={cohort_prior!r} is not one of {COHORT_PRIORS} (or None for the "
            "default: random_walk for ordered cohorts, independent otherwise)"
        )


def resolve_cohort_prior(cohort_prior: str | None, groups: Groups) -> str:
    """The group prior to use: the user's choice, or a default that fits the groups.

    ``None`` picks ``"random_walk"`` for ordered cohorts, ``"independent"`` for unordered
    segments, ``"pooled"`` for a single group.
    """
    check_cohort_prior(cohort_prior)
    if groups.size == 1:
        return "pooled"
    if cohort_prior is None:
        return "random_walk" if groups.ordered else "independent"
    if cohort_prior == "random_walk" and not groups.ordered:
        raise ValueError(
            f"cohort_prior='random_walk' needs ordered cohorts, but the groups of column "
            f"{groups.column!r} are unordered; pass them as the cohort of "
            "SurvivalData.from_users or as an ordered pandas Categorical"
        )
    return cohort_prior


def merge_priors(defaults: Mapping[str, Prior], overrides: Mapping[str, Prior] | None) -> dict:
    """Defaults updated with the user's priors; unknown names are an error."""
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(defaults))
    if unknown:
        raise ValueError(f"unknown prior name(s) {unknown}; known names: {sorted(defaults)}")
    for name, prior in overrides.items():
        if not isinstance(prior, Prior):
            raise TypeError(
                f"prior {name!r} must be a pymc_extras.prior.Prior, got {type(prior).__name__}"
            )
    return {**defaults, **overrides}


def with_dims(prior: Prior, dims: tuple[str, ...]) -> Prior:
    """A copy of ``prior`` with its own dims replaced by ``dims``."""
    return Prior(prior.distribution, dims=dims, centered=prior.centered, **prior.parameters)


def group_levels(
    name: str,
    kind: str,
    groups: Groups,
    intercept: Prior,
    sigma: Prior,
    dims: tuple[str, ...] = (),
    centered: bool = False,
) -> pt.TensorVariable:
    """One level of parameter ``name`` per group (shape ``(G, *dims)``), per the module doc.

    Creates ``{name}_intercept`` and, for the hierarchical and random-walk priors,
    ``{name}_group_sigma`` and ``{name}_group_offset`` in the current model. The model
    must have coordinates ``group`` (and ``group_step`` = groups after the first, for the
    random walk) and any ``dims``.
    """
    if kind == "independent":
        return with_dims(intercept, ("group", *dims)).create_variable(f"{name}_intercept")
    level = with_dims(intercept, dims).create_variable(f"{name}_intercept")
    if kind == "pooled":
        return pt.broadcast_to(level, (groups.size, *level.shape))
    scale = with_dims(sigma, dims).create_variable(f"{name}_group_sigma")
    if kind == "hierarchical":
        deviation = _deviation(f"{name}_group_offset", scale, ("group", *dims), centered)
        return level + deviation
    if kind == "random_walk":
        step_scale = np.sqrt(groups.gaps[1:]).reshape((-1,) + (1,) * len(dims))
        steps = _deviation(
            f"{name}_group_step", scale * step_scale, ("group_step", *dims), centered
        )
        walk = pt.concatenate([pt.zeros_like(steps[:1]), pt.cumsum(steps, axis=0)], axis=0)
        return level + walk
    raise ValueError(f"unknown group prior {kind!r}; expected one of {COHORT_PRIORS}")


def _deviation(name: str, scale, dims: tuple[str, ...], centered: bool) -> pt.TensorVariable:
    """Normal(0, scale) deviations: drawn directly (centred) or as scale × N(0, 1)."""
    if centered:
        return pm.Normal(name, 0.0, scale, dims=dims)
    return scale * pm.Normal(f"{name}_raw", 0.0, 1.0, dims=dims)


def is_centered(centered: bool | Mapping[str, bool] | None, name: str, default: frozenset) -> bool:
    """Whether parameter ``name`` uses the centred form: per the user, else ``default``."""
    if centered is None:
        return name in default
    if isinstance(centered, Mapping):
        return bool(centered.get(name, name in default))
    return bool(centered)


def linear_predictor(
    name: str,
    kind: str,
    groups: Groups,
    priors: Mapping[str, Prior],
    cell_group: np.ndarray,
    design: pt.TensorVariable | None,
    dims: tuple[str, ...] = (),
    centered: bool = False,
) -> tuple[pt.TensorVariable, pt.TensorVariable]:
    r"""Levels of parameter ``name`` per group and per cell.

    .. math:: \eta_c = \eta_{g(c)} + x_c^\top b

    with group levels from :func:`group_levels` (priors ``{name}_intercept`` and
    ``{name}_group_sigma``) and covariate coefficients ``{name}_coef`` (dims
    ``("feature", *dims)``) when ``design`` (cells × features) is given.

    Returns
    -------
    (group levels, cell levels) of shapes ``(G, *dims)`` and ``(C, *dims)``.
    """
    group = group_levels(
        name,
        kind,
        groups,
        priors[f"{name}_intercept"],
        priors[f"{name}_group_sigma"],
        dims=dims,
        centered=centered,
    )
    cell = group[cell_group]
    if design is not None:
        coef = with_dims(priors[f"{name}_coef"], ("feature", *dims)).create_variable(f"{name}_coef")
        cell = cell + pt.tensordot(design, coef, axes=1)
    return group, cell


def group_coords(groups: Groups) -> dict[str, list]:
    """Coordinates ``group`` and ``group_step`` for :func:`group_levels`."""
    labels = list(groups.labels)
    return {"group": labels, "group_step": labels[1:]}
