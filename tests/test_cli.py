"""The `bayesltv` command line, run in-process with fast fitting methods."""

import re

import pytest

from bayesltv.cli import main


def test_fader_hardie_example_prints_parameters_and_projection(capsys):
    assert main(["example", "fader-hardie", "--method", "map"]) == 0
    out = capsys.readouterr().out
    assert "Parameters (baseline factory per segment)" in out
    # MAP α of the regular segment next to Fader & Hardie's 0.704.
    assert re.search(r"alpha\s+regular\s+0\.70", out)
    # Years 8..12 are projected for both segments, with the held-out truth alongside.
    assert "Projected survival beyond the fit" in out
    assert re.search(r"high_end\s+8\s", out) and "0.173" in out
    # the active customers are valued per segment and in total (241 + 491 at year 7)
    assert "Residual lifetime value of the customers active at year 7" in out
    assert re.search(r"total\s+732\s", out)


@pytest.mark.slow
def test_streaming_example_prints_matrix_and_occupancy(capsys):
    assert main(["example", "streaming", "--method", "map"]) == 0
    out = capsys.readouterr().out
    assert "Population mean monthly transition matrix" in out
    assert "Plan shares of a new user after 12 months" in out
    assert re.search(r"deleted\s+0(\.0+)?\s+0(\.0+)?\s+0(\.0+)?.*1\.0", out)
    assert "lifetime value over 60 months by current plan" in out
    assert "from free to premium" in out


def test_unknown_command_is_rejected():
    with pytest.raises(SystemExit):
        main(["example", "nope"])
