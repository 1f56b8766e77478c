"""Test helpers for the value layer: posteriors set by hand, brute-force discounted sums."""

import numpy as np
import xarray as xr


def set_posterior(model, **variables: np.ndarray) -> None:
    """Replace a fitted model's posterior by the given draws (dims chain, draw, then the
    model's own dims as in the fitted posterior)."""
    fitted = model.idata["posterior"].to_dataset()
    data = {}
    for name, values in variables.items():
        template = fitted[name]
        values = np.asarray(values, dtype=float)
        coords = {d: template[d].values for d in template.dims[2:]}
        coords.update(chain=np.arange(values.shape[0]), draw=np.arange(values.shape[1]))
        data[name] = xr.DataArray(values, dims=template.dims, coords=coords)
    model._fitted["idata"] = xr.DataTree.from_dict({"posterior": xr.Dataset(data)})


def survival_product(alpha: float, beta: float, tenure: int, k: int) -> float:
    """S(t+k)/S(t) as the product of per-period retentions (β+t+j)/(α+β+t+j), j < k."""
    value = 1.0
    for j in range(k):
        value *= (beta + tenure + j) / (alpha + beta + tenure + j)
    return value


def shortest_interval_mass(values: np.ndarray, low: float, high: float) -> float:
    """Share of ``values`` inside [low, high] (with a relative tolerance on the bounds)."""
    tolerance = 1e-9 * max(1.0, abs(high))
    return float(np.mean((values >= low - tolerance) & (values <= high + tolerance)))
