"""The Fader & Hardie (2007) customer retention data set."""

from __future__ import annotations

from importlib import resources

import pandas as pd


def fader_hardie() -> pd.DataFrame:
    """Survivors out of 1,000 customers acquired together, for two segments, years 0–12.

    From Fader, P. S. & Hardie, B. G. S. (2007), "How to Project Customer Retention",
    *Journal of Interactive Marketing* 21(1), 76–90. The paper fits years 1–7 and holds
    out years 8–12; its maximum-likelihood estimates are α = 0.704, β = 1.182 (regular)
    and α = 0.668, β = 3.806 (high end).

    Returns
    -------
    pandas.DataFrame
        Long table with columns ``segment`` ("regular", "high_end"), ``period`` (0–12) and
        ``survivors`` (customers still active at the start of the period).
    """
    with resources.files("bayesltv.datasets").joinpath("data/fader_hardie.csv").open() as f:
        table = pd.read_csv(f)
    table["segment"] = pd.Categorical(table["segment"], categories=["regular", "high_end"])
    return table
