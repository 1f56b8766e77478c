"""Fitting machinery shared by the model families.

A model follows scikit-learn's convention: configuration in ``__init__``, ``fit(data)``
returns the model, and fitted state (the PyMC model, the ArviZ ``DataTree`` of draws, the
convergence report) lives in attributes that exist only after fitting. Subclasses say how to
build the PyMC model (:meth:`BayesianModel.build_model`) and which variables describe the
fit (:attr:`BayesianModel.summary_vars`).
"""

from __future__ import annotations

import os
import warnings
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, Literal, Self

import arviz as az
import numpy as np
import pandas as pd
import pymc as pm
from pymc_extras.prior import Prior

from bayesltv.diagnostics import ConvergenceReport, check_nuts
from bayesltv.errors import ConvergenceWarning
from bayesltv.priors import check_cohort_prior, merge_priors, resolve_cohort_prior

Method = Literal["nuts", "advi", "fullrank_advi", "map"]
Sampler = Literal["pymc", "nutpie", "numpyro"] | None

METHODS = ("nuts", "advi", "fullrank_advi", "map")
SAMPLERS = (None, "pymc", "nutpie", "numpyro")
_SAMPLER_PACKAGES = {"nutpie": ("nutpie", "nutpie"), "numpyro": ("numpyro", "jax")}


class NotFittedError(RuntimeError):
    """A fitted-state attribute was read before :meth:`BayesianModel.fit`."""


class BayesianModel(ABC):
    """Base class: priors, ``fit`` with NUTS / ADVI / full-rank ADVI / MAP, ``summary``."""

    #: Deterministic variables reported by :meth:`summary` (one entry per group).
    summary_vars: tuple[str, ...] = ()
    #: The validated data type the model fits, and how users build it (for error messages).
    data_type: type = object
    data_constructors: str = ""

    def __init__(
        self,
        cohort_prior: str | None = None,
        priors: Mapping[str, Prior] | None = None,
        centered: bool | Mapping[str, bool] | None = None,
    ) -> None:
        check_cohort_prior(cohort_prior)
        self.cohort_prior = cohort_prior
        self.priors = dict(priors or {})
        merge_priors(self.default_priors(), self.priors)  # fail early on unknown names
        self.centered = centered
        self._fitted: dict[str, Any] = {}

    def __repr__(self) -> str:
        config = {
            name: ({k: v.to_dict() for k, v in value.items()} if name == "priors" else value)
            for name, value in vars(self).items()
            if not name.startswith("_")
        }
        arguments = ", ".join(f"{name}={value!r}" for name, value in config.items())
        return f"{type(self).__name__}({arguments})"

    # -- to implement ------------------------------------------------------------------

    @staticmethod
    @abstractmethod
    def default_priors(cohort_prior: str = "hierarchical") -> dict[str, Prior]:
        """Default priors by name for the given group prior."""

    @abstractmethod
    def build_model(self, data) -> pm.Model:
        """The PyMC model of ``data`` (validated input of the family's data type)."""

    def prepare(self, data):
        """Check that ``data`` is of :attr:`data_type` (subclasses may also adapt it)."""
        if not isinstance(data, self.data_type):
            raise TypeError(
                f"{type(self).__name__} fits {self.data_type.__name__}, got "
                f"{type(data).__name__}; build it with {self.data_constructors}"
            )
        return data

    def group_priors(self, groups) -> tuple[str, dict[str, Prior]]:
        """The group prior for these groups, and the priors with the user's overrides."""
        kind = resolve_cohort_prior(self.cohort_prior, groups)
        return kind, merge_priors(self.default_priors(kind), self.priors)

    # -- fitted state ------------------------------------------------------------------

    def _get(self, key: str):
        if key not in self._fitted:
            raise NotFittedError(f"{type(self).__name__} is not fitted yet; call .fit(data) first")
        return self._fitted[key]

    @property
    def idata(self):
        """ArviZ ``DataTree`` with the posterior (and sample stats after NUTS)."""
        return self._get("idata")

    @property
    def model(self) -> pm.Model:
        """The PyMC model that was fitted."""
        return self._get("model")

    @property
    def data(self):
        """The data the model was fitted on."""
        return self._get("data")

    @property
    def method(self) -> str:
        """How the posterior was approximated (nuts, advi, fullrank_advi or map)."""
        return self._get("method")

    @property
    def convergence(self) -> ConvergenceReport:
        """Diagnostics of the last fit (empty report for MAP and VI)."""
        return self._get("convergence")

    @property
    def is_fitted(self) -> bool:
        return "idata" in self._fitted

    # -- fitting -----------------------------------------------------------------------

    def fit(
        self,
        data,
        method: Method = "nuts",
        sampler: Sampler = None,
        draws: int = 1000,
        tune: int = 1000,
        chains: int = 4,
        random_seed: int | None = None,
        progressbar: bool = False,
        vi_iterations: int = 20_000,
        **sample_kwargs,
    ) -> Self:
        """Fit the model and store the posterior in :attr:`idata`.

        Parameters
        ----------
        data
            Validated data of the model family (e.g. :class:`~bayesltv.SurvivalData`).
        method : {"nuts", "advi", "fullrank_advi", "map"}
            NUTS (MCMC), mean-field or full-rank ADVI (variational), or the maximum a
            posteriori point (one "draw", no uncertainty).
        sampler : {None, "pymc", "nutpie", "numpyro"}
            NUTS implementation; ``None`` is PyMC's own. nutpie and numpyro need the
            ``bayesltv[nutpie]`` and ``bayesltv[jax]`` extras.
        draws, tune, chains : int
            NUTS draws and tuning steps per chain, and number of chains. For ADVI,
            ``draws`` is the number of draws taken from the fitted approximation.
        random_seed : int, optional
            Seed for reproducible fits.
        progressbar : bool
            Show PyMC's progress bar.
        vi_iterations : int
            ADVI iterations (Adam optimiser, learning rate 0.01); a warning says when the
            loss was still falling at the end.
        **sample_kwargs
            Passed to ``pm.sample`` (e.g. ``target_accept=0.95``).

        Returns
        -------
        self
        """
        if method not in METHODS:
            raise ValueError(f"method={method!r} is not one of {METHODS}")
        if sampler not in SAMPLERS:
            raise ValueError(f"sampler={sampler!r} is not one of {SAMPLERS}")
        if sampler is not None and method != "nuts":
            raise ValueError(f"sampler={sampler!r} applies to method='nuts', not {method!r}")
        _require_sampler(sampler)

        data = self.prepare(data)
        model = self.build_model(data)
        report = ConvergenceReport()
        with model:
            if method == "nuts":
                idata = pm.sample(
                    draws=draws,
                    tune=tune,
                    chains=chains,
                    cores=min(chains, os.cpu_count() or 1),
                    nuts_sampler=sampler or "pymc",
                    random_seed=random_seed,
                    progressbar=progressbar,
                    **sample_kwargs,
                )
                report = check_nuts(idata, self._free_var_names(model))
            elif method in ("advi", "fullrank_advi"):
                idata = _fit_vi(method, draws, random_seed, progressbar, vi_iterations)
            else:
                idata = _fit_map(model, progressbar)
        self._fitted = {
            "data": data,
            "model": model,
            "idata": idata,
            "method": method,
            "convergence": report,
        }
        return self

    @staticmethod
    def _free_var_names(model: pm.Model) -> list[str]:
        return [rv.name for rv in model.free_RVs]

    # -- reporting ---------------------------------------------------------------------

    def summary(self, hdi_prob: float = 0.94) -> pd.DataFrame:
        """Posterior mean, sd and highest-density interval of :attr:`summary_vars`.

        Returns
        -------
        pandas.DataFrame
            Index (``parameter``, then the variables' own dims such as ``group``; a level a
            variable lacks holds ""); columns ``mean``, ``sd``, ``hdi_low``, ``hdi_high``
            and, after NUTS, ``ess_bulk``, ``ess_tail`` and ``r_hat``. After MAP the mean
            is the mode and the spread columns are NaN (no uncertainty). Entries that are 0
            in every draw (transitions the mask forbids) are left out.
        """
        posterior = self.idata["posterior"].to_dataset()[list(self.summary_vars)]
        hdi = az.hdi(posterior, prob=hdi_prob) if self._n_draws() > 1 else None
        frames = [
            _summarise(posterior[name], None if hdi is None else hdi[name], self.method == "nuts")
            for name in self.summary_vars
        ]
        levels = list(dict.fromkeys(level for f in frames for level in f.index.names))
        long = [
            frame.reset_index().assign(parameter=name)
            for frame, name in zip(frames, self.summary_vars, strict=True)
        ]
        table = pd.concat(long, ignore_index=True)
        table[levels] = table[levels].fillna("")
        return table.set_index(["parameter", *levels])

    def _n_draws(self) -> int:
        posterior = self.idata["posterior"]
        return posterior.sizes["chain"] * posterior.sizes["draw"]


def _summarise(values, bounds, diagnostics: bool) -> pd.DataFrame:
    """Mean, sd, HDI (and NUTS diagnostics) of one variable, indexed by its own dims."""
    frame = pd.DataFrame(
        {
            "mean": values.mean(("chain", "draw")).to_series(),
            "sd": values.std(("chain", "draw")).to_series(),
        }
    )
    if bounds is not None:
        bound_dim = next(d for d in bounds.dims if d not in values.dims)
        frame["hdi_low"] = bounds.isel({bound_dim: 0}).to_series()
        frame["hdi_high"] = bounds.isel({bound_dim: 1}).to_series()
    else:  # a single (MAP) draw has no spread to report
        frame["sd"] = frame["hdi_low"] = frame["hdi_high"] = np.nan
    if diagnostics:
        with np.errstate(divide="ignore", invalid="ignore"):  # structural zeros, dropped below
            frame["ess_bulk"] = az.ess(values, method="bulk").to_series()
            frame["ess_tail"] = az.ess(values, method="tail").to_series()
            frame["r_hat"] = az.rhat(values).to_series()
    if values.ndim > 2:
        # entries that are exactly 0 in every draw are structural (disallowed transitions)
        structural = (values == 0).all(("chain", "draw")).to_series()
        frame = frame[~structural.reindex(frame.index).to_numpy()]
    return frame


def _require_sampler(sampler: str | None) -> None:
    if sampler not in _SAMPLER_PACKAGES:
        return
    package, extra = _SAMPLER_PACKAGES[sampler]
    try:
        __import__(package)
    except ImportError as error:
        raise ImportError(
            f"sampler={sampler!r} needs the {package!r} package: pip install 'bayesltv[{extra}]'"
        ) from error


def _fit_vi(method: str, draws: int, random_seed, progressbar: bool, iterations: int):
    """Mean-field or full-rank ADVI (Adam, learning rate 0.01) for ``iterations`` steps.

    Warns when the loss (negative ELBO) was still falling at the end: its mean over the
    last tenth of the run is lower than over the tenth before by more than three standard
    errors of that difference.
    """
    approx = pm.fit(
        n=iterations,
        method=method,
        obj_optimizer=pm.adam(learning_rate=0.01),
        random_seed=random_seed,
        progressbar=progressbar,
    )
    if _loss_still_falling(approx.hist):
        warnings.warn(
            f"{method} had not converged after {iterations} iterations (the loss was still "
            "falling); increase vi_iterations or use method='nuts'",
            ConvergenceWarning,
            stacklevel=3,
        )
    idata = approx.sample(draws, random_seed=random_seed)
    idata.attrs["vi_iterations"] = len(approx.hist)
    idata.attrs["vi_final_loss"] = float(np.mean(approx.hist[-max(len(approx.hist) // 10, 1) :]))
    return idata


def _loss_still_falling(loss: np.ndarray) -> bool:
    window = len(loss) // 10
    if window < 10:
        return True
    before, last = loss[-2 * window : -window], loss[-window:]
    drop = before.mean() - last.mean()
    standard_error = np.sqrt((before.var() + last.var()) / window)
    return bool(drop > 3 * standard_error)


def _fit_map(model: pm.Model, progressbar: bool):
    """The posterior mode as a one-draw posterior, so every downstream method works."""
    point = pm.find_MAP(progressbar=progressbar, include_transformed=False, tol=1e-12)
    dims = {name: list(d) for name, d in model.named_vars_to_dims.items() if d}
    names = [rv.name for rv in model.free_RVs] + [v.name for v in model.deterministics]
    posterior = {name: np.asarray(point[name])[None, None, ...] for name in names}
    return az.from_dict(
        {"posterior": posterior},
        coords={k: list(v) for k, v in model.coords.items()},
        dims=dims,
    )
