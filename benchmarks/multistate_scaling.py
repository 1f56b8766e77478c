"""Scaling of the Dirichlet multi-state model with the number of users.

The Dirichlet-multinomial path likelihood factorises over origin states, and users sharing a
(cell, origin, row of transition counts) contribute identical terms, so
:meth:`bayesltv.StateSequences.from_panel` collapses the user × period panel to unique
*patterns* with weights (DESIGN.md §3). One evaluation of the log-density should therefore
cost O(unique patterns), not O(users); only the pattern building should grow with the panel.
Unlike the sBG's sufficient statistics, the number of unique patterns is not bounded by a
fixed number of cells: it keeps growing with the users, but much more slowly.

Data: :func:`bayesltv.datasets.simulate_streaming` (a Dirichlet-heterogeneous Markov chain
with known truth, two countries ``SE``/``US`` with the simulator's default country effect).
**24 periods**: ``n_cohorts=24`` makes the data 24 calendar months long and
``users_per_cohort=[N, 0, …, 0]`` acquires all N users in month 0, so every user is observed
for all 24 months (24 rows, 23 transitions) unless deleted earlier (then the deletion month
is their last row; about 21 rows per user on average). There is thus a single acquisition
cohort (the model's cohort prior resolves to ``"pooled"``) and one categorical covariate,
``country`` (2 cells). **6 states**: the simulator has 7 states and no option to drop one,
so ``student`` is merged into ``premium`` in the panel (a plan merger: a student subscription
counted as premium) before building the patterns, leaving ``premium``, ``duo``, ``family``,
``free``, ``lapsed`` and the absorbing ``deleted``. Every user and every row is kept, and
every merged transition (student → premium/free/lapsed, free → student) is one the
simulator's mask already allows from/to premium, so the mask passed to ``from_panel`` is the
simulator's :data:`~bayesltv.datasets.streaming.ALLOWED` without the student row and column
(20 free η, 5 κ). The merged data are no longer exactly from the model (a user's "premium"
row mixes their student and premium dice), which may change the posterior geometry a little
but not the cost of one log-density evaluation.

Each size runs in a fresh subprocess (so peak memory and PyTensor's in-process caches do not
leak between sizes), which measures, in this order:

- ``simulate s``: simulation and student → premium merge wall time (reported, not counted
  anywhere else); ``sim peak RSS MiB``: the worker's kernel high-water RSS (``ru_maxrss``)
  right after it, before the patterns are built;
- ``users`` (requested; ``observed users`` is ``data.n_users``), ``panel rows`` (user ×
  month rows), ``user-origin rows`` (per-user count rows before collapsing: the sum of the
  pattern weights) and ``patterns`` (unique (cell, origin, counts) rows, ``len(data.patterns)``:
  the likelihood's size);
- ``patterns s``: wall time of ``StateSequences.from_panel(...)`` (validation, sorting,
  counting and collapsing); it is then repeated once, untimed, under :mod:`tracemalloc` for
  ``pat tracemalloc MiB`` (peak of Python/NumPy/pandas allocations), while ``pat ΔRSS MiB`` is
  the polled RSS high-water during the timed call minus the RSS before it (a lower bound:
  freed memory that the allocator reuses is not new RSS). The panel is then deleted;
- ``warm-up s``: a tiny ADVI fit (50 iterations) and a tiny NUTS fit (1 chain, 20 tuning
  steps + 20 draws) of the same model on the same data, so first-time compilation (C code,
  shared on disk across sizes) is *not* included in the timed fits;
- ``ADVI s``: wall time of ``DirichletMarkov().fit(data, method="advi")`` with the defaults:
  20 000 iterations of mean-field ADVI (Adam, learning rate 0.01), then 1000 draws from the
  approximation; everything included (model build, graph compilation, optimisation,
  drawing). ``ADVI ms/iter`` is ``ADVI s`` / iterations (an upper bound on the per-iteration
  cost; the fixed costs are included). ``ADVI conv.`` is "no" when the fit warned that the
  loss was still falling at the end, else "yes";
- ``NUTS s``: wall time of ``DirichletMarkov().fit(data, method="nuts", chains=2, draws=500,
  tune=500)`` (PyMC's NUTS, one process per chain on this machine's cores), everything
  included (model build, per-process compilation, multiprocess start-up, sampling,
  convergence diagnostics); ``sampling s`` is PyMC's own ``sampling_time`` (tuning + draws);
  ``steps/draw`` is the mean number of leapfrog steps per kept draw (posterior geometry,
  which changes with the amount of data and drives ``NUTS s`` independently of the
  likelihood's cost); ``divergences``, ``max R-hat`` and ``min ESS bulk`` come from
  ``model.convergence``. NUTS is skipped (—) at sizes left out of ``--nuts-sizes``;
- ``logp+grad µs``: wall time of one evaluation of the compiled log-density and its gradient
  at the model's initial point (best of 5 batches of 200 calls): the per-step cost of both
  ADVI and NUTS, which should follow ``patterns``; ``logp CPU µs`` is the same in process
  CPU time (best of 5 batches), less sensitive to other processes competing for the cores;
  ``ns/pattern`` is ``logp CPU µs`` divided by ``patterns``;
- ``peak RSS MiB``: ``ru_maxrss`` of the worker over all of the above (sampler processes not
  included); ``ADVI/NUTS peak PSS tree MiB``: highest sum of proportional set size (PSS:
  pages shared with forked sampler processes are split between them, not double counted)
  over the worker and all its descendants during the timed ADVI / NUTS fit. The driver
  process polls it with psutil every 0.1 s from *outside* the worker (a polling thread
  inside the worker competes for the GIL with PyMC's sampler coordination and slows it);
  ``pat ΔRSS MiB`` is polled in-process every 5 ms, but only around the pattern building;
- ``max load``: the highest 1-minute load average the driver saw at the worker's phase
  changes. The worker itself accounts for about 1 (about 2–3 during NUTS); more means other
  processes shared the cores and the wall times above are inflated.

Run from the repository root::

    .venv/bin/python benchmarks/multistate_scaling.py --users 1e4,1e5,1e6 --nuts-sizes 1e4,1e5
    .venv/bin/python benchmarks/multistate_scaling.py  # NUTS everywhere: over an hour

On 2 (shared) cores the first command took about 32 minutes: the NUTS fit alone took about
4 minutes at 10⁴ users and 21 minutes at 10⁵ (its steps per draw grew from 68 to 265), so
NUTS at 10⁶ users is left out by ``--nuts-sizes``; ADVI and the logp+grad timing run at
every size.

A markdown table (one row per size) is printed, then a verdict comparing how the CPU time of
one logp+grad evaluation (and the ADVI wall time per iteration) grew from the smallest to the
largest size against how the unique patterns and the users grew. Each size's row is also
written to stderr as soon as it is done, so an interrupted run keeps the finished sizes.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
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

N_MONTHS = 24
MERGED = {"student": "premium"}
COUNTRIES = ("SE", "US")
WARMUP_VI_ITERATIONS = 50
WARMUP_ITERATIONS = 20
TREE_POLL_SECONDS = 0.1
PATTERN_POLL_SECONDS = 0.005
LOGP_REPEATS = 200
LOGP_BATCHES = 5
RESULT_PREFIX = "MULTISTATE_SCALING_RESULT "
PHASE_PREFIX = "MULTISTATE_SCALING_PHASE "
FOLLOW_RATIO = 1.25
MIB = 2**20

COLUMNS = [
    ("users", "requested", "{:,}"),
    ("observed users", "n_users", "{:,}"),
    ("panel rows", "panel_rows", "{:,}"),
    ("user-origin rows", "user_origin_rows", "{:,}"),
    ("patterns", "n_patterns", "{:,}"),
    ("simulate s", "simulate_s", "{:.2f}"),
    ("sim peak RSS MiB", "simulate_peak_rss_mib", "{:.0f}"),
    ("patterns s", "patterns_s", "{:.2f}"),
    ("pat tracemalloc MiB", "patterns_tracemalloc_mib", "{:.0f}"),
    ("pat ΔRSS MiB", "patterns_rss_delta_mib", "{:.0f}"),
    ("warm-up s", "warmup_s", "{:.1f}"),
    ("logp+grad µs", "logp_grad_us", "{:.0f}"),
    ("logp CPU µs", "logp_grad_cpu_us", "{:.0f}"),
    ("ns/pattern", "ns_per_pattern", "{:.0f}"),
    ("ADVI s", "advi_s", "{:.1f}"),
    ("ADVI ms/iter", "advi_ms_per_iter", "{:.2f}"),
    ("ADVI conv.", "advi_converged", "{}"),
    ("NUTS s", "nuts_s", "{:.1f}"),
    ("sampling s", "sampling_s", "{:.1f}"),
    ("steps/draw", "steps_per_draw", "{:.1f}"),
    ("divergences", "divergences", "{}"),
    ("max R-hat", "max_rhat", "{:.3f}"),
    ("min ESS bulk", "min_ess_bulk", "{:.0f}"),
    ("peak RSS MiB", "peak_rss_mib", "{:.0f}"),
    ("ADVI peak PSS tree MiB", "advi_peak_pss_tree_mib", "{:.0f}"),
    ("NUTS peak PSS tree MiB", "nuts_peak_pss_tree_mib", "{:.0f}"),
    ("max load", "max_load", "{:.1f}"),
]


def parse_nuts_sizes(text: str) -> list[int]:
    """Like :func:`parse_sizes`, but ``"none"`` or ``""`` skips NUTS everywhere."""
    return [] if text.strip().lower() in ("", "none") else parse_sizes(text)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--users",
        type=parse_sizes,
        default=parse_sizes("1e4,1e5,1e6"),
        help='comma-separated total numbers of users (default "1e4,1e5,1e6")',
    )
    parser.add_argument(
        "--nuts-sizes",
        type=parse_nuts_sizes,
        default=None,
        help='sizes (among --users) that also get a NUTS fit (default: all; "none": none)',
    )
    parser.add_argument("--draws", type=int, default=500, help="NUTS draws per chain")
    parser.add_argument("--tune", type=int, default=500, help="NUTS tuning steps per chain")
    parser.add_argument("--chains", type=int, default=2, help="NUTS chains")
    parser.add_argument(
        "--vi-iterations", type=int, default=20_000, help="ADVI iterations (fit's default)"
    )
    parser.add_argument("--seed", type=int, default=2024, help="simulation and sampler seed")
    parser.add_argument("--worker", type=int, metavar="USERS", help=argparse.SUPPRESS)
    parser.add_argument("--nuts", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# -- one size (worker subprocess) ------------------------------------------------------


def six_states() -> tuple[list[str], np.ndarray]:
    """The 6 states left after the merge, in the simulator's order, and their mask."""
    from bayesltv.datasets.streaming import ALLOWED, STATES

    keep = [n for n, state in enumerate(STATES) if state not in MERGED]
    return [STATES[n] for n in keep], ALLOWED[np.ix_(keep, keep)]


def simulate(n_users: int, seed: int):
    """The streaming panel of ``n_users`` users acquired in month 0, over 24 months, with
    ``student`` merged into ``premium``."""
    import pandas as pd

    from bayesltv.datasets import simulate_streaming
    from bayesltv.datasets.streaming import STATES

    panel = simulate_streaming(
        users_per_cohort=[n_users] + [0] * (N_MONTHS - 1),
        n_cohorts=N_MONTHS,
        countries=COUNTRIES,
        random_seed=seed,
    ).panel
    states, _ = six_states()
    recode = np.array([states.index(MERGED.get(state, state)) for state in STATES], np.int8)
    codes = recode[panel["state"].cat.codes.to_numpy()]
    panel["state"] = pd.Categorical.from_codes(codes, categories=states)
    return panel


def build_patterns(panel):
    import bayesltv as bl

    states, allowed = six_states()
    return bl.StateSequences.from_panel(
        panel,
        user="user",
        period="month",
        state="state",
        states=states,
        absorbing=["deleted"],
        covariates=["country"],
        allowed=allowed,
    )


def fit(data, method: str, seed: int, **kwargs):
    import bayesltv as bl

    return bl.DirichletMarkov().fit(data, method=method, random_seed=seed, **kwargs)


def logp_grad_seconds(model, repeats: int = LOGP_REPEATS) -> tuple[float, float]:
    """Wall and CPU seconds per evaluation of the compiled log-density and gradient at the
    initial point.

    Each the best of :data:`LOGP_BATCHES` batches of ``repeats`` calls, as :mod:`timeit`
    advises.
    """
    from pymc.blocking import DictToArrayBijection

    function = model.logp_dlogp_function(ravel_inputs=True)
    function.set_extra_values({})
    point = model.initial_point()
    x = DictToArrayBijection.map({v.name: point[v.name] for v in model.value_vars}).data
    function(x)
    best_wall = best_cpu = float("inf")
    for _ in range(LOGP_BATCHES):
        start, start_cpu = time.perf_counter(), time.process_time()
        for _ in range(repeats):
            function(x)
        best_cpu = min(best_cpu, (time.process_time() - start_cpu) / repeats)
        best_wall = min(best_wall, (time.perf_counter() - start) / repeats)
    return best_wall, best_cpu


def phase(name: str) -> None:
    """Tell the driver, which polls this process tree's memory, what is running now."""
    print(PHASE_PREFIX + name, flush=True)


def measure(n_users: int, args: argparse.Namespace) -> dict:
    """All figures for one size; run in a fresh process."""
    from bayesltv.errors import ConvergenceWarning

    phase("simulate")
    start = time.perf_counter()
    panel = simulate(n_users, args.seed)
    simulate_s = time.perf_counter() - start
    simulate_peak_rss = peak_rss_self()
    panel_rows = len(panel)

    phase("patterns")
    with PeakMemory(os.getpid(), PATTERN_POLL_SECONDS, tree=False) as memory:
        rss_before = memory.current()
        start = time.perf_counter()
        data = build_patterns(panel)
        patterns_s = time.perf_counter() - start
    patterns_rss_delta = max(memory.peak.values()) - rss_before

    tracemalloc.start()
    build_patterns(panel)
    _, patterns_traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del panel

    phase("warm-up")
    start = time.perf_counter()
    fit(data, "advi", args.seed, vi_iterations=WARMUP_VI_ITERATIONS, draws=10)
    fit(data, "nuts", args.seed, draws=WARMUP_ITERATIONS, tune=WARMUP_ITERATIONS, chains=1)
    warmup_s = time.perf_counter() - start

    phase("advi")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        start = time.perf_counter()
        advi = fit(data, "advi", args.seed, vi_iterations=args.vi_iterations)
        advi_s = time.perf_counter() - start
    advi_warnings = [str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)]
    advi_iterations = int(advi.idata.attrs.get("vi_iterations", args.vi_iterations))
    phase("report")

    result = {
        "requested": n_users,
        "n_users": data.n_users,
        "panel_rows": panel_rows,
        "user_origin_rows": int(data.patterns["weight"].sum()),
        "n_patterns": len(data.patterns),
        "n_cells": len(data.cells),
        "simulate_s": simulate_s,
        "simulate_peak_rss_mib": simulate_peak_rss / MIB,
        "patterns_s": patterns_s,
        "patterns_tracemalloc_mib": patterns_traced_peak / MIB,
        "patterns_rss_delta_mib": patterns_rss_delta / MIB,
        "warmup_s": warmup_s,
        "advi_s": advi_s,
        "advi_ms_per_iter": advi_s / advi_iterations * 1e3,
        "advi_converged": "no" if advi_warnings else "yes",
        "advi_final_loss": float(advi.idata.attrs.get("vi_final_loss", float("nan"))),
        "problems": [f"ADVI: {message}" for message in advi_warnings],
    }
    wall, cpu = logp_grad_seconds(advi.model)
    result["logp_grad_us"], result["logp_grad_cpu_us"] = wall * 1e6, cpu * 1e6
    result["ns_per_pattern"] = cpu * 1e9 / max(result["n_patterns"], 1)
    del advi

    if args.nuts:
        phase("nuts")
        start = time.perf_counter()
        nuts = fit(data, "nuts", args.seed, draws=args.draws, tune=args.tune, chains=args.chains)
        nuts_s = time.perf_counter() - start
        phase("report")
        report = nuts.convergence
        result.update(
            nuts_s=nuts_s,
            sampling_s=float(nuts.idata["posterior"].attrs.get("sampling_time", float("nan"))),
            steps_per_draw=float(nuts.idata["sample_stats"]["n_steps"].mean()),
            divergences=report.divergences,
            max_rhat=report.max_rhat,
            min_ess_bulk=report.min_ess_bulk,
        )
        result["problems"] += [f"NUTS: {problem}" for problem in report.problems]
    result["peak_rss_mib"] = peak_rss_self() / MIB
    return result


def worker(args: argparse.Namespace) -> None:
    """Measure one size and print the figures as one JSON line on stdout."""
    import bayesltv  # noqa: F401  (imported before timing; PyMC sets its log level on import)

    logging.getLogger("pymc").setLevel(logging.CRITICAL)
    warnings.simplefilter("ignore")  # problems are reported through the result's "problems"
    result = measure(args.worker, args)
    print(RESULT_PREFIX + json.dumps(result), flush=True)


# -- driver ----------------------------------------------------------------------------


def run_size(n_users: int, nuts: bool, args: argparse.Namespace) -> dict:
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
        "--vi-iterations",
        str(args.vi_iterations),
        "--seed",
        str(args.seed),
        *(["--nuts"] if nuts else []),
    ]
    output = []
    load = [os.getloadavg()[0]]
    with (
        subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as worker_process,
        PeakMemory(worker_process.pid, TREE_POLL_SECONDS, tree=True) as memory,
    ):
        for line in worker_process.stdout:
            if line.startswith(PHASE_PREFIX):
                name = line[len(PHASE_PREFIX) :].strip()
                memory.enter(name)
                load.append(os.getloadavg()[0])
                print(f"    {n_users:,} users: {name}", file=sys.stderr, flush=True)
            else:
                output.append(line)
    lines = [line.rstrip("\n") for line in output]
    what = f"worker for {n_users:,} users"
    result = worker_result(lines, worker_process.returncode, RESULT_PREFIX, what)
    result["advi_peak_pss_tree_mib"] = memory.peak.get("advi", 0) / MIB
    if nuts:
        result["nuts_peak_pss_tree_mib"] = memory.peak.get("nuts", 0) / MIB
    result["peak_pss_tree_mib"] = max(memory.peak.values()) / MIB
    result["max_load"] = max([*load, os.getloadavg()[0]])
    return result


def verdict(results: list[dict]) -> str:
    small = min(results, key=lambda r: r["requested"])
    large = max(results, key=lambda r: r["requested"])
    if small is large:
        return f"Verdict: only one size ({small['requested']:,} users); nothing to compare."
    users = large["n_users"] / small["n_users"]
    patterns = large["n_patterns"] / small["n_patterns"]
    logp = large["logp_grad_cpu_us"] / small["logp_grad_cpu_us"]
    advi = large["advi_ms_per_iter"] / small["advi_ms_per_iter"]
    slope_patterns = math.log(logp) / math.log(patterns) if patterns > 1 else float("nan")
    slope_users = math.log(logp) / math.log(users) if users > 1 else float("nan")
    lines = [
        f"Verdict: from {small['requested']:,} to {large['requested']:,} users, observed users "
        f"grew {users:.1f}×, unique patterns {patterns:.2f}× ({small['n_patterns']:,} → "
        f"{large['n_patterns']:,}), the CPU time of one logp+grad evaluation {logp:.2f}× "
        f"({small['logp_grad_cpu_us']:.0f} → {large['logp_grad_cpu_us']:.0f} µs) and the ADVI "
        f"wall time per iteration {advi:.2f}× (log-log slope of logp+grad: "
        f"{slope_patterns:.2f} against patterns, {slope_users:.2f} against users)."
    ]
    if patterns * FOLLOW_RATIO >= users:
        lines.append(
            "  The patterns grew about as fast as the users here, so these sizes cannot tell "
            "the two apart."
        )
    elif logp <= patterns * FOLLOW_RATIO:
        lines.append(
            f"  The likelihood cost follows the number of unique patterns (within "
            f"{FOLLOW_RATIO}× of their growth, below it where a fixed per-evaluation overhead "
            f"still weighs), not the number of users ({users:.0f}× more)."
        )
    else:
        lines.append(
            f"  The likelihood cost grew more than the unique patterns (by more than "
            f"{FOLLOW_RATIO}×): something besides the patterns scales with the data."
        )
    nuts = [r for r in (small, large) if r.get("nuts_s") is not None]
    if len(nuts) == 2:
        lines.append(
            f"  NUTS fit time {large['nuts_s'] / small['nuts_s']:.2f}× (steps/draw "
            f"{small['steps_per_draw']:.1f} → {large['steps_per_draw']:.1f}: more data, a "
            "narrower posterior, a different step size)."
        )
    else:
        with_nuts = [r["requested"] for r in results if r.get("nuts_s") is not None]
        sizes = ", ".join(f"{n:,}" for n in with_nuts) or "none"
        lines.append(f"  NUTS was run only at: {sizes} users.")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker is not None:
        worker(args)
        return
    nuts_sizes = set(args.users if args.nuts_sizes is None else args.nuts_sizes)
    states, _ = six_states()
    print(
        f"Multi-state scaling: {len(states)} states ({', '.join(states)}; student merged into "
        f"premium), {N_MONTHS} months, all users acquired in month 0, countries "
        f"{'/'.join(COUNTRIES)}; ADVI {args.vi_iterations:,} iterations; NUTS {args.chains} "
        f"chains × {args.draws} draws ({args.tune} tune); seed {args.seed}; "
        f"{os.cpu_count()} CPUs",
        flush=True,
    )
    results = []
    for n_users in args.users:
        nuts = n_users in nuts_sizes
        print(
            f"  running {n_users:,} users ({'ADVI + NUTS' if nuts else 'ADVI only'}) ...",
            file=sys.stderr,
            flush=True,
        )
        results.append(run_size(n_users, nuts, args))
        # each size's row as soon as it is done, so that an interrupted run keeps them
        print(
            "  " + markdown_table(results[-1:], COLUMNS).splitlines()[-1],
            file=sys.stderr,
            flush=True,
        )
    print()
    print(markdown_table(results, COLUMNS))
    print()
    print(verdict(results))
    for result in results:
        for problem in result["problems"]:
            print(f"  {result['requested']:,} users: {problem}")


if __name__ == "__main__":
    main()
