"""Embedded data sets and simulators with known truth."""

from bayesltv.datasets.fader_hardie import fader_hardie
from bayesltv.datasets.simulate import simulate_survival
from bayesltv.datasets.streaming import StreamingPanel, StreamingTruth, simulate_streaming

__all__ = [
    "StreamingPanel",
    "StreamingTruth",
    "fader_hardie",
    "simulate_streaming",
    "simulate_survival",
]
