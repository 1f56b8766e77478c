"""Plumbing shared by the benchmark scripts: size lists, worker results, markdown tables."""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence

#: A table column: (header, key in a result dict, format string).
Column = tuple[str, str, str]


def parse_sizes(text: str, minimum: int = 1) -> list[int]:
    """``"1e4,1e5,1e6"`` → ``[10000, 100000, 1000000]``; each at least ``minimum``."""
    try:
        sizes = [int(float(part)) for part in text.split(",") if part.strip()]
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {text!r}") from error
    if not sizes or min(sizes) < minimum:
        raise argparse.ArgumentTypeError(f"need sizes of at least {minimum} users: {text!r}")
    return sizes


def worker_result(lines: Sequence[str], returncode: int, prefix: str, what: str) -> dict:
    """The JSON a worker printed after ``prefix`` (its last such line); an error with the
    worker's whole output when it failed or printed none."""
    results = [line for line in lines if line.startswith(prefix)]
    if returncode != 0 or not results:
        raise RuntimeError(
            f"{what} failed (exit code {returncode}):\n" + "".join(f"{line}\n" for line in lines)
        )
    return json.loads(results[-1][len(prefix) :])


def cell(result: dict, key: str, fmt: str) -> str:
    """One formatted value; "—" where the result lacks it."""
    value = result.get(key)
    if value is None:
        return "—"
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return fmt.format(value)


def markdown_table(results: Sequence[dict], columns: Sequence[Column]) -> str:
    header = "| " + " | ".join(name for name, _, _ in columns) + " |"
    rule = "|" + "|".join("---:" for _ in columns) + "|"
    rows = [
        "| " + " | ".join(cell(result, key, fmt) for _, key, fmt in columns) + " |"
        for result in results
    ]
    return "\n".join([header, rule, *rows])
