"""Embedded data sets and simulators with known truth."""

from bayesltv.datasets.fader_hardie import fader_hardie
from bayesltv.datasets.simulate import simulate_survival

__all__ = ["fader_hardie", "simulate_survival"]
