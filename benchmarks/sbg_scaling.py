"""Scaling of the shifted beta-geometric survival model with the number of users.

The sBG likelihood only sees sufficient statistics: counts of churn, censoring and entry per
(cell, period), where a cell is a cohort × categorical covariate combination (DESIGN.md §2).
Fitting should therefore cost O(cells × periods), flat in the number of users; only the
aggregation :meth:`bayesltv.SurvivalData.from_users` should grow with the users.

Data: :func:`bayesltv.datasets.simulate_survival` with 12 monthly cohorts (cohort ``c`` is
observed for ``12 - c`` periods, the simulator's default windows), a mild drift of α
(0.8 → 1.1) and β (3.0 → 2.6) across cohorts, one categorical covariate ``plan`` with three
levels, and 10% of users left-truncated (``entry_share=0.1``, entry in 1..3). The requested
number of users is split evenly across cohorts; left truncation then drops the users who
churned before their entry, so slightly fewer users are observed.

Each size runs in a fresh subprocess (so peak memory and PyTensor's in-process caches do not
leak between sizes), which measures, in this order:

- ``simulate s``: simulation wall time (reported, not counted anywhere else);
- ``aggregate s``: wall time of ``SurvivalData.from_users(...)``; it is then repeated once,
  untimed, under :mod:`tracemalloc` for ``agg tracemalloc MiB`` (peak of Python/NumPy
  allocations; buffers Arrow allocates for string columns are not traced), while
  ``agg ΔRSS MiB`` is the polled RSS high-water during the timed call minus the RSS
  before it (a lower bound: freed memory that the allocator reuses is not new RSS);
- ``users``, ``cells`` (``data.n_cells``), ``count rows`` (``len(data.counts)``);
- ``warm-up s``: a tiny fit (1 chain, 20 tuning steps + 20 draws) of the same model on the
  same data, so first-time compilation (C code, shared on disk across sizes) is *not*
  included in the timed fit;
- ``fit s``: wall time of ``BetaGeometric(cohort_prior="random_walk").fit(data,
  method="nuts", ...)``, everything included (model build, per-process graph compilation,
  multiprocess start-up, sampling, convergence diagnostics); ``sampling s`` is PyMC's own
  ``sampling_time`` (tuning + draws);
- ``steps/draw``: mean leapfrog steps per kept draw (posterior geometry, which changes
  with the amount of data and drives ``fit s`` independently of the likelihood's cost);
- ``logp+grad µs``: time of one evaluation of the compiled log-density and its gradient
  at the initial point (the per-step cost, which must not depend on the users);
- ``divergences`` and ``max R-hat`` from ``model.convergence``;
- ``peak RSS MiB``: kernel high-water RSS of the worker process (``ru_maxrss``) over all of
  the above (sampler processes not included); ``fit peak PSS tree MiB``: highest sum of
  proportional set size (PSS: pages shared with forked sampler processes are split between
  them, not double counted) over the worker and all its descendants during the timed fit.
  The driver process polls it with psutil every 0.1 s from *outside* the worker: a polling
  thread inside the worker competes for the GIL with PyMC's sampler coordination and was
  seen to slow the fit by about 40%. ``agg ΔRSS MiB`` is polled in-process every 5 ms, but
  only around the aggregation.

Run from the repository root (several minutes with the defaults)::

    .venv/bin/python benchmarks/sbg_scaling.py
    .venv/bin/python benchmarks/sbg_scaling.py --users 1e4,1e6 --draws 500 --tune 500

A markdown table (one row per size) is printed, then a one-line verdict comparing the fit
time at the largest and the smallest size.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
import tracemalloc
import warnings
from collections.abc import Sequence

import numpy as np
from _memory import PeakMemory, peak_rss_self
from _report import markdown_table, parse_sizes, worker_result

N_COHORTS = 12
ALPHA = np.linspace(0.8, 1.1, N_COHORTS)
BETA = np.linspace(3.0, 2.6, N_COHORTS)
PLAN_EFFECTS = {"plan": {"basic": (0.0, 0.0), "plus": (-0.3, 0.2), "pro": (-0.6, 0.4)}}
ENTRY_SHARE = 0.1
WARMUP_ITERATIONS = 20
TREE_POLL_SECONDS = 0.1
AGGREGATE_POLL_SECONDS = 0.005
LOGP_REPEATS = 500
LOGP_BATCHES = 5
RESULT_PREFIX = "SBG_SCALING_RESULT "
PHASE_PREFIX = "SBG_SCALING_PHASE "
FLAT_RATIO = 1.25
MIB = 2**20

COLUMNS = [
    ("users", "requested", "{:,}"),
    ("observed users", "n_users", "{:,}"),
    ("cells", "n_cells", "{}"),
    ("count rows", "count_rows", "{}"),
    ("simulate s", "simulate_s", "{:.2f}"),
    ("aggregate s", "aggregate_s", "{:.3f}"),
    ("agg tracemalloc MiB", "aggregate_tracemalloc_mib", "{:.1f}"),
    ("agg ΔRSS MiB", "aggregate_rss_delta_mib", "{:.1f}"),
    ("warm-up s", "warmup_s", "{:.1f}"),
    ("fit s", "fit_s", "{:.1f}"),
    ("sampling s", "sampling_s", "{:.1f}"),
    ("steps/draw", "steps_per_draw", "{:.1f}"),
    ("logp+grad µs", "logp_grad_us", "{:.0f}"),
    ("divergences", "divergences", "{}"),
    ("max R-hat", "max_rhat", "{:.3f}"),
    ("peak RSS MiB", "peak_rss_mib", "{:.0f}"),
    ("fit peak PSS tree MiB", "fit_peak_pss_tree_mib", "{:.0f}"),
]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--users",
        type=lambda text: parse_sizes(text, N_COHORTS),
        default=parse_sizes("1e4,1e5,1e6", N_COHORTS),
        help='comma-separated total numbers of users (default "1e4,1e5,1e6")',
    )
    parser.add_argument("--draws", type=int, default=1000, help="NUTS draws per chain")
    parser.add_argument("--tune", type=int, default=1000, help="NUTS tuning steps per chain")
    parser.add_argument("--chains", type=int, default=4, help="NUTS chains")
    parser.add_argument("--seed", type=int, default=2024, help="simulation and sampler seed")
    parser.add_argument("--worker", type=int, metavar="USERS", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# -- one size (worker subprocess) ------------------------------------------------------


def simulate(n_users: int, seed: int):
    import bayesltv as bl

    per_cohort = np.full(N_COHORTS, n_users // N_COHORTS)
    per_cohort[: n_users % N_COHORTS] += 1
    return bl.datasets.simulate_survival(
        alpha=ALPHA,
        beta=BETA,
        users_per_cohort=per_cohort,
        covariate_effects=PLAN_EFFECTS,
        entry_share=ENTRY_SHARE,
        random_seed=seed,
    )


def aggregate(df):
    import bayesltv as bl

    return bl.SurvivalData.from_users(
        df,
        duration="duration",
        churned="churned",
        cohort="cohort",
        entry="entry",
        covariates=["plan"],
        user="user",
    )


def fit(data, draws: int, tune: int, chains: int, seed: int):
    import bayesltv as bl

    return bl.BetaGeometric(cohort_prior="random_walk").fit(
        data, method="nuts", draws=draws, tune=tune, chains=chains, random_seed=seed
    )


def logp_grad_seconds(model, repeats: int = LOGP_REPEATS) -> float:
    """Seconds per evaluation of the compiled log-density and gradient at the initial point.

    The best of :data:`LOGP_BATCHES` batches of ``repeats`` calls, as :mod:`timeit` advises.
    """
    from pymc.blocking import DictToArrayBijection

    function = model.logp_dlogp_function(ravel_inputs=True)
    function.set_extra_values({})
    point = model.initial_point()
    x = DictToArrayBijection.map({v.name: point[v.name] for v in model.value_vars}).data
    function(x)
    best = float("inf")
    for _ in range(LOGP_BATCHES):
        start = time.perf_counter()
        for _ in range(repeats):
            function(x)
        best = min(best, (time.perf_counter() - start) / repeats)
    return best


def phase(name: str) -> None:
    """Tell the driver, which polls this process tree's memory, what is running now."""
    print(PHASE_PREFIX + name, flush=True)


def measure(n_users: int, draws: int, tune: int, chains: int, seed: int) -> dict:
    """All figures for one size; run in a fresh process."""
    phase("simulate")
    start = time.perf_counter()
    df = simulate(n_users, seed)
    simulate_s = time.perf_counter() - start

    phase("aggregate")
    with PeakMemory(os.getpid(), AGGREGATE_POLL_SECONDS, tree=False) as memory:
        rss_before = memory.current()
        start = time.perf_counter()
        data = aggregate(df)
        aggregate_s = time.perf_counter() - start
    aggregate_rss_delta = max(memory.peak.values()) - rss_before

    tracemalloc.start()
    aggregate(df)
    _, aggregate_traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    phase("warm-up")
    start = time.perf_counter()
    fit(data, WARMUP_ITERATIONS, WARMUP_ITERATIONS, 1, seed)
    warmup_s = time.perf_counter() - start

    phase("fit")
    start = time.perf_counter()
    model = fit(data, draws, tune, chains, seed)
    fit_s = time.perf_counter() - start
    phase("report")

    posterior = model.idata["posterior"]
    n_steps = model.idata["sample_stats"]["n_steps"]
    report = model.convergence
    return {
        "requested": n_users,
        "n_rows": len(df),
        "n_users": data.n_users,
        "n_cells": data.n_cells,
        "count_rows": len(data.counts),
        "simulate_s": simulate_s,
        "aggregate_s": aggregate_s,
        "aggregate_tracemalloc_mib": aggregate_traced_peak / MIB,
        "aggregate_rss_delta_mib": aggregate_rss_delta / MIB,
        "warmup_s": warmup_s,
        "fit_s": fit_s,
        "sampling_s": float(posterior.attrs.get("sampling_time", float("nan"))),
        "steps_per_draw": float(n_steps.mean()),
        "logp_grad_us": logp_grad_seconds(model.model) * 1e6,
        "divergences": report.divergences,
        "max_rhat": report.max_rhat,
        "min_ess_bulk": report.min_ess_bulk,
        "problems": report.problems,
        "peak_rss_mib": peak_rss_self() / MIB,
    }


def worker(args: argparse.Namespace) -> None:
    """Measure one size and print the figures as one JSON line on stdout."""
    import bayesltv  # noqa: F401  (imported before timing; PyMC sets its log level on import)

    logging.getLogger("pymc").setLevel(logging.CRITICAL)
    warnings.simplefilter("ignore")  # problems are reported through model.convergence
    result = measure(args.worker, args.draws, args.tune, args.chains, args.seed)
    print(RESULT_PREFIX + json.dumps(result), flush=True)


# -- driver ----------------------------------------------------------------------------


def run_size(n_users: int, args: argparse.Namespace) -> dict:
    command = [
        sys.executable,
        os.path.abspath(__file__),
        "--worker",
        str(n_users),
        "--draws",
        str(args.draws),
        "--tune",
        str(args.tune),
        "--chains",
        str(args.chains),
        "--seed",
        str(args.seed),
    ]
    output = []
    with (
        subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as worker_process,
        PeakMemory(worker_process.pid, TREE_POLL_SECONDS, tree=True) as memory,
    ):
        for line in worker_process.stdout:
            if line.startswith(PHASE_PREFIX):
                memory.enter(line[len(PHASE_PREFIX) :].strip())
            else:
                output.append(line)
    lines = [line.rstrip("\n") for line in output]
    what = f"worker for {n_users:,} users"
    result = worker_result(lines, worker_process.returncode, RESULT_PREFIX, what)
    result["fit_peak_pss_tree_mib"] = memory.peak.get("fit", 0) / MIB
    result["peak_pss_tree_mib"] = max(memory.peak.values()) / MIB
    return result


def verdict(results: list[dict]) -> str:
    small = min(results, key=lambda r: r["requested"])
    large = max(results, key=lambda r: r["requested"])
    if small is large:
        return f"Verdict: only one size ({small['requested']:,} users); nothing to compare."
    ratio = large["fit_s"] / small["fit_s"]
    step_ratio = large["logp_grad_us"] / small["logp_grad_us"]
    shape = "flat" if ratio <= FLAT_RATIO else "NOT flat"
    why = ""
    if ratio > FLAT_RATIO and step_ratio <= FLAT_RATIO:
        why = (
            ", although the cost of one logp+grad evaluation is: the difference comes from "
            "posterior geometry (steps per draw), not from the number of users"
        )
    return (
        f"Verdict: NUTS fit time at {large['requested']:,} users is {ratio:.2f}× that at "
        f"{small['requested']:,} users ({large['fit_s']:.1f} s vs {small['fit_s']:.1f} s; "
        f"logp+grad {step_ratio:.2f}×, steps/draw {small['steps_per_draw']:.1f} → "
        f"{large['steps_per_draw']:.1f}, count rows {small['count_rows']} → "
        f"{large['count_rows']}): {shape} in the number of users (threshold {FLAT_RATIO}×)"
        f"{why}."
    )


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker is not None:
        worker(args)
        return
    print(
        f"sBG scaling: {N_COHORTS} cohorts, covariate plan (3 levels), entry_share "
        f"{ENTRY_SHARE}; NUTS {args.chains} chains × {args.draws} draws ({args.tune} tune), "
        f"seed {args.seed}; {os.cpu_count()} CPUs",
        flush=True,
    )
    results = []
    for n_users in args.users:
        print(f"  running {n_users:,} users ...", file=sys.stderr, flush=True)
        results.append(run_size(n_users, args))
    print()
    print(markdown_table(results, COLUMNS))
    print()
    print(verdict(results))
    for result in results:
        for problem in result["problems"]:
            print(f"  {result['requested']:,} users: {problem}")


if __name__ == "__main__":
    main()
