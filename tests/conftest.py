"""Shared fixtures: the Fader–Hardie data and matplotlib without a screen."""

import matplotlib
import pytest

import bayesltv as bl

matplotlib.use("Agg")

#: Fader & Hardie (2007), survivors out of 1,000 per year (DESIGN.md §8), typed in here
#: independently of the packaged CSV so the data set itself is under test.
FADER_HARDIE = {
    "regular": [1000, 631, 468, 382, 326, 289, 262, 241, 223, 207, 194, 183, 173],
    "high_end": [1000, 869, 743, 653, 593, 551, 517, 491, 468, 445, 427, 409, 394],
}


@pytest.fixture(scope="session")
def fh_train() -> bl.SurvivalData:
    """Fader–Hardie years 0..7 (the paper's fitting window)."""
    table = bl.datasets.fader_hardie()
    return bl.SurvivalData.from_survivors(
        table[table["period"] <= 7], survivors="survivors", period="period", group="segment"
    )


@pytest.fixture(scope="session")
def fh_full() -> bl.SurvivalData:
    """Fader–Hardie years 0..12 (fit and hold-out years)."""
    table = bl.datasets.fader_hardie()
    return bl.SurvivalData.from_survivors(
        table, survivors="survivors", period="period", group="segment"
    )
