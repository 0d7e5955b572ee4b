"""Simulations per second: vmapped diffrax vs a Python loop over scipy, and black-box overhead.

Part 1, the ODE tasks ``sir`` and ``lotka_volterra``: ``sk.simulate(key, sk.tasks.get(name), n)``
(diffrax Tsit5, vmapped and jitted, float32) against a plain Python loop over
``scipy.integrate.solve_ivp`` (method ``RK45``, the Dormand–Prince 5(4) pair: the same order and
the same kind of embedded error estimate as Tsit5; float64) with the task's tolerances, initial
state and observation times (taken from the task's own ``ODE`` object, ``t_eval`` = the
observation times) and the same observation noise drawn with NumPy. diffrax: the first call at
each size (incl. tracing and XLA compilation, whose share ``jax.monitoring`` reports) and the
median of ``--repeats`` warm calls with other keys. scipy: one loop over ``n`` simulations at
the same θ (drawn from the task's prior outside the timing); sizes above ``--scipy-max`` are
extrapolated from the largest loop that ran, and marked so. The agreement check solves the
noise-free ODE for ``--agreement`` shared θ with both and with a tight DOP853 reference.

Part 2, black-box executor overhead: ``sk.simulators.BlackBoxSimulator`` with two NumPy
simulators defined in this module (``cheap``: a few NumPy ops; ``sir_rk4``: the SIR model with
a fixed-step RK4 in plain Python floats, binomial noise), run by ``sk.simulate`` serially, on a
``concurrent.futures.ProcessPoolExecutor(2)`` ("forkserver" workers) and on a Dask
``LocalCluster(n_workers=2, threads_per_worker=1)`` through ``client.get_executor()``, with the
default ``batch_size`` and with 4 chunks per worker. Executors are started and warmed up once
(worker imports are not in the timings); the modes alternate per (simulator, size).

Every timed run records wall and CPU time (of this process) and the 1-minute load average
before and after it, and the average number of busy cores of the whole machine (``/proc/stat``).
Resumable: results are written after each measurement and a rerun skips what is on disk
(``--fresh`` starts over). Writes ``benchmarks/results/simulation_throughput.{json,md}``.

    python benchmarks/simulation_throughput.py [--sizes 1000 10000 100000] [--scipy-max 10000]
        [--black-box-sizes 1000 10000] [--parts ode agreement black_box] [--repeats 3]
        [--quick] [--fresh] [--out DIR]
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import contextlib
import hashlib
import math
import multiprocessing
import os
import statistics
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from scipy.integrate import solve_ivp

import sbi_kit as sk

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _jax_compile_time import CompileTimer  # noqa: E402
from _report import (  # noqa: E402
    RESULTS_DIR,
    fmt,
    machine,
    read_json,
    table,
    versions,
    write_json,
    write_markdown,
)

NAME = "simulation_throughput"
TASKS = ("sir", "lotka_volterra")
SCIPY_METHOD = "RK45"
GOAL = 100.0
WORKERS = 2
START_METHOD = "forkserver"

# ---------------------------------------------------------------------------------------------
# Part 1: the ODE tasks in NumPy / scipy


# The observation models' constants (sbibm's task definitions, ../shared/REFERENCES.md): the
# sir task observes Binomial(1000, I/N) counts of a population of 10^6; lotka_volterra adds
# log-normal noise of scale 0.1. The ODEs themselves come from the tasks (Task.ode).
SIR_POPULATION = 1_000_000
SIR_TOTAL_COUNT = 1000
LOTKA_VOLTERRA_NOISE = 0.1


def sir_rhs(t, y, beta, gamma):
    s, i, _ = y
    infections = beta * s * i
    return [-infections, infections - gamma * i, gamma * i]


def lotka_volterra_rhs(t, y, alpha, beta, gamma, delta):
    prey, predator = y
    return [alpha * prey - beta * prey * predator, -gamma * predator + delta * prey * predator]


def sir_observe(rng: np.random.Generator, y: np.ndarray) -> np.ndarray:
    """``Binomial(1000, clip(i, 0, 1))`` at each time, as the sir task's observation model."""
    return rng.binomial(SIR_TOTAL_COUNT, np.clip(y[:, 1], 0.0, 1.0)).astype(np.float64)


def lotka_volterra_observe(rng: np.random.Generator, y: np.ndarray) -> np.ndarray:
    """``LogNormal(log clip(value, 1e-10, 1e4), 0.1)``, prey then predator, as the task."""
    populations = np.clip(y.T.reshape(-1), 1e-10, 1e4)
    return rng.lognormal(np.log(populations), LOTKA_VOLTERRA_NOISE)


@dataclass(frozen=True)
class ScipyProblem:
    """The task's IVP for solve_ivp; y0, times and tolerances come from the task's diffrax ODE."""

    ode: sk.simulators.ODE
    rhs: object
    observe: object

    @property
    def y0(self) -> np.ndarray:
        return np.asarray(self.ode.y0, np.float64)

    @property
    def times(self) -> np.ndarray:
        return np.asarray(self.ode.ts, np.float64)

    @property
    def t0(self) -> float:
        return float(self.times[0] if self.ode.t0 is None else self.ode.t0)

    def solve(self, theta: np.ndarray, method: str = SCIPY_METHOD, rtol=None, atol=None):
        return solve_ivp(
            self.rhs,
            (self.t0, float(self.times[-1])),
            self.y0,
            method=method,
            t_eval=self.times,
            rtol=self.ode.rtol if rtol is None else rtol,
            atol=self.ode.atol if atol is None else atol,
            args=tuple(float(v) for v in theta),
        )


PROBLEMS = {
    # Task.ode is the very ODE object that the task's simulator solves.
    "sir": ScipyProblem(sk.tasks.get("sir").ode, sir_rhs, sir_observe),
    "lotka_volterra": ScipyProblem(
        sk.tasks.get("lotka_volterra").ode, lotka_volterra_rhs, lotka_volterra_observe
    ),
}


def scipy_loop(problem: ScipyProblem, theta: np.ndarray, seed: int) -> dict:
    """One solve_ivp call and one noise draw per θ, in a plain Python loop."""
    rng = np.random.default_rng(seed)
    xs, failed, nfev = [], 0, 0
    for row in theta:
        solution = problem.solve(row)
        nfev += int(solution.nfev)
        if not solution.success or not np.all(np.isfinite(solution.y)):
            failed += 1
            xs.append(None)
            continue
        xs.append(problem.observe(rng, solution.y.T))
    return {"failed": failed, "nfev_mean": nfev / len(theta), "x": xs}


# ---------------------------------------------------------------------------------------------
# Part 2: black-box simulators (module level, so that worker processes can unpickle them)

BLACK_BOX_TIMES = 17.0 * np.arange(10)


def cheap_simulate(seed: int, theta: np.ndarray) -> np.ndarray:
    """A few NumPy ops: a decaying curve plus Gaussian noise (tens of µs)."""
    rng = np.random.default_rng(seed)
    curve = theta[0] * np.exp(-theta[1] * BLACK_BOX_TIMES / 17.0)
    return curve + 0.05 * rng.standard_normal(BLACK_BOX_TIMES.shape)


SIR_RK4_DT = 0.5


def sir_rk4_simulate(seed: int, theta: np.ndarray) -> np.ndarray:
    """The sir task's model with a fixed-step RK4 (dt = 0.5 day) in plain Python floats and
    binomial test counts at t = 0, 17, ..., 153 (about a millisecond)."""
    beta, gamma = float(theta[0]), float(theta[1])

    def field(s, i):
        infections = beta * s * i
        return -infections, infections - gamma * i

    s, i = 1.0 - 1.0 / SIR_POPULATION, 1.0 / SIR_POPULATION
    steps_between = round(17.0 / SIR_RK4_DT)
    h = SIR_RK4_DT
    infected = [i]
    for _ in range(len(BLACK_BOX_TIMES) - 1):
        for _ in range(steps_between):
            k1s, k1i = field(s, i)
            k2s, k2i = field(s + 0.5 * h * k1s, i + 0.5 * h * k1i)
            k3s, k3i = field(s + 0.5 * h * k2s, i + 0.5 * h * k2i)
            k4s, k4i = field(s + h * k3s, i + h * k3i)
            s += h / 6.0 * (k1s + 2.0 * k2s + 2.0 * k3s + k4s)
            i += h / 6.0 * (k1i + 2.0 * k2i + 2.0 * k3i + k4i)
        infected.append(i)
    rng = np.random.default_rng(seed)
    probs = np.clip(np.asarray(infected), 0.0, 1.0)
    return rng.binomial(SIR_TOTAL_COUNT, probs).astype(np.float64)


BLACK_BOX = {"cheap": cheap_simulate, "sir_rk4": sir_rk4_simulate}

# ---------------------------------------------------------------------------------------------
# Timing


def _cpu_jiffies() -> tuple[int, int] | None:
    """(busy, total) jiffies of the whole machine from /proc/stat, or None."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def timed(fn):
    """Runs ``fn()``; returns its value and wall / CPU seconds, load averages, busy cores."""
    load_before = os.getloadavg()[0]
    jiffies_before = _cpu_jiffies()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    value = fn()
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    jiffies_after = _cpu_jiffies()
    load_after = os.getloadavg()[0]
    busy = None
    if jiffies_before and jiffies_after:
        ticks = os.sysconf("SC_CLK_TCK")
        busy = (jiffies_after[0] - jiffies_before[0]) / ticks / wall
    return value, {
        "seconds": wall,
        "cpu_seconds": cpu,
        "load_average": [load_before, load_after],
        "machine_busy_cores": busy,
    }


def _hash(x) -> str:
    return hashlib.sha256(np.ascontiguousarray(np.asarray(x)).tobytes()).hexdigest()[:16]


def _simulate_quietly(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # dropped rows: counted in the result
        return sk.simulate(*args, progress=False, **kwargs)


# ---------------------------------------------------------------------------------------------
# Measurements


def measure_diffrax(task, n: int, repeats: int, seed: int) -> dict:
    with CompileTimer() as compile_timer:
        result, first = timed(lambda: _simulate_quietly(jax.random.key(seed), task, n))
    first["compile"] = compile_timer.as_dict()
    first["num_dropped"] = result.num_dropped
    warm = []
    for r in range(repeats):
        result, t = timed(lambda r=r: _simulate_quietly(jax.random.key(seed + 1 + r), task, n))
        t["num_dropped"] = result.num_dropped
        warm.append(t)
    return {
        "first": first,
        "warm": warm,
        "warm_seconds_median": statistics.median(t["seconds"] for t in warm),
    }


def measure_scipy(task, n: int, seed: int) -> dict:
    theta = np.asarray(task.prior.sample(jax.random.key(seed), (n,)), np.float64)
    out, t = timed(lambda: scipy_loop(PROBLEMS[task.name], theta, seed))
    t.update(failed=out["failed"], nfev_mean=out["nfev_mean"])
    return t


def _relative_stats(a: np.ndarray, ref: np.ndarray, times: np.ndarray) -> dict:
    """Absolute relative differences |a - ref| / |ref| over the entries with ref != 0, and
    where the largest one is (θ row, time, state component, reference value)."""
    ok = (ref != 0) & np.isfinite(a) & np.isfinite(ref)
    rel = np.abs(a[ok] - ref[ok]) / np.abs(ref[ok])
    row, k, component = (int(v) for v in np.argwhere(ok)[int(np.argmax(rel))])
    return {
        "largest_at": {
            "theta_row": row,
            "time": float(times[k]),
            "component": component,
            "reference_value": float(ref[row, k, component]),
            "value": float(a[row, k, component]),
        },
        "mean": float(rel.mean()),
        "median": float(np.median(rel)),
        "p99": float(np.quantile(rel, 0.99)),
        "max": float(rel.max()),
        "entries": int(ok.sum()),
        "excluded_entries": int((~ok).sum()),
    }


def measure_agreement(task, num: int, seed: int) -> dict:
    """Noise-free solutions at the observation times: diffrax (the task's ODE, float32, as
    sk.simulate runs it) vs solve_ivp (RK45, same tolerances), and both vs a tight DOP853."""
    problem = PROBLEMS[task.name]
    theta = np.asarray(task.prior.sample(jax.random.key(seed), (num,)), np.float64)
    ys = jax.jit(jax.vmap(problem.ode.solve))(jnp.asarray(theta))
    diffrax_y = np.asarray(ys, np.float64)
    scipy_y = np.stack([problem.solve(row).y.T for row in theta])
    tight = {"method": "DOP853", "rtol": 1e-12, "atol": problem.ode.atol * 1e-6}
    tight_y = np.stack(
        [problem.solve(row, tight["method"], tight["rtol"], tight["atol"]).y.T for row in theta]
    )
    failed = int((~np.isfinite(diffrax_y).all(axis=(1, 2))).sum())
    return {
        "num_theta": num,
        "diffrax_dtype": str(ys.dtype),
        "diffrax_failed": failed,
        "diffrax_vs_scipy": _relative_stats(diffrax_y, scipy_y, problem.times),
        "diffrax_vs_tight": _relative_stats(diffrax_y, tight_y, problem.times),
        "scipy_vs_tight": _relative_stats(scipy_y, tight_y, problem.times),
        "tight_reference": tight,
    }


@contextlib.contextmanager
def executors(needed: set[str]):
    """The executors by mode (``None`` for serial), started and warmed up; closes them."""
    out: dict = {"serial": None}
    startup: dict = {}
    with contextlib.ExitStack() as stack:
        if "process_pool" in needed:
            context = multiprocessing.get_context(START_METHOD)
            start = time.perf_counter()
            pool = stack.enter_context(cf.ProcessPoolExecutor(WORKERS, mp_context=context))
            out["process_pool"] = pool
            startup["process_pool"] = {"start_seconds": time.perf_counter() - start}
        if "dask" in needed:
            import dask
            from distributed import Client, LocalCluster

            start = time.perf_counter()
            cluster = stack.enter_context(
                LocalCluster(
                    n_workers=WORKERS,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                    silence_logs=40,
                )
            )
            client = stack.enter_context(Client(cluster))
            out["dask"] = client.get_executor()
            startup["dask"] = {
                "start_seconds": time.perf_counter() - start,
                "multiprocessing_method": dask.config.get(
                    "distributed.worker.multiprocessing-method"
                ),
            }
        warm_sim = black_box_simulator("cheap")
        for mode, executor in out.items():
            if executor is None:
                continue
            start = time.perf_counter()  # worker imports (sbi_kit, JAX) and first pickles
            for simulate_fn in BLACK_BOX.values():
                sim = sk.simulators.BlackBoxSimulator(warm_sim.prior, simulate_fn)
                _simulate_quietly(
                    jax.random.key(0), sim, 4 * WORKERS, executor=executor, batch_size=1
                )
            startup[mode]["warm_up_seconds"] = time.perf_counter() - start
        yield out, startup


def black_box_simulator(name: str):
    return sk.simulators.BlackBoxSimulator(sk.tasks.get("sir").prior, BLACK_BOX[name])


def default_batch_size(n: int) -> int:
    """sk.simulate's default rows per future for a black box (max_in_flight = 256)."""
    return max(1, math.ceil(n / (4 * 256)))


# ---------------------------------------------------------------------------------------------
# Markdown


def _rate(n, seconds):
    return None if not seconds else n / seconds


def _si(value) -> str:
    if value is None:
        return "-"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _load(t: dict | None) -> str:
    if not t:
        return "-"
    a, b = t["load_average"]
    return f"{a:.2f}→{b:.2f}"


STATE_NAMES = {"sir": ("s", "i", "r"), "lotka_volterra": ("prey", "predator")}


def _largest(task: str, at: dict) -> str:
    state = STATE_NAMES[task][at["component"]]
    return f"t={at['time']:g}, {state}, {at['value']:.3g} / {at['reference_value']:.3g}"


def _scipy_rate(entries: dict, n: int) -> tuple[float | None, str]:
    """scipy sims/s at ``n``: measured, or extrapolated from the largest loop that ran."""
    entry = entries.get(str(n))
    if entry:
        return _rate(n, entry["seconds"]), "measured"
    measured = [int(k) for k in entries]
    if not measured:
        return None, "-"
    m = max(measured)
    return _rate(m, entries[str(m)]["seconds"]), f"extrapolated from {m:,}"


def markdown(results: dict) -> str:
    ode = results.get("ode", {})
    parts = [
        "# Simulation throughput: vmapped diffrax vs a scipy loop, and black-box executors",
        "Produced by `python benchmarks/simulation_throughput.py` (settings in the JSON). "
        "Issue #10 goal: vmapped diffrax ≥ "
        f"{GOAL:.0f}× the simulations per second of a plain Python loop over "
        "`scipy.integrate.solve_ivp` on CPU.",
    ]
    m = results["machine"]
    start_load = results.get("load_average_at_start")
    busy = [
        t.get("machine_busy_cores")
        for t in _all_timings(results)
        if t.get("machine_busy_cores") is not None
    ]
    shared = start_load is not None and start_load >= 0.5
    machine_line = (
        f"Machine: {m['cpu']}, {m['cpu_count']} cores, {m['date']}. "
        f"1-minute load average when the run started: {fmt(start_load, 2)}"
    )
    if shared:
        machine_line += (
            " — **the machine was shared**: other jobs were running when the benchmark "
            "started, so the timings were taken with part of the cores busy elsewhere. Each "
            "timed run lists the load average before→after it; the JSON also has the CPU time "
            "of this process and the machine's busy cores during each run"
        )
    if results.get("note"):
        machine_line += f". {results['note'].rstrip('.')}"
    if busy:
        machine_line += (
            f". Busy cores of the whole machine during the timed runs: {min(busy):.2f}–"
            f"{max(busy):.2f} of {m['cpu_count']}"
        )
    parts.append(machine_line + ".")

    if ode:
        rows, verdicts = [], []
        for name in TASKS:
            entries = ode.get(name, {})
            diffrax = entries.get("diffrax", {})
            scipy = entries.get("scipy", {})
            for key in sorted(diffrax, key=int):
                n = int(key)
                d = diffrax[key]
                warm = [t["seconds"] for t in d["warm"]]
                first_rate = _rate(n, d["first"]["seconds"])
                median_rate = _rate(n, d["warm_seconds_median"])
                mean_rate = _rate(n, statistics.mean(warm))
                s_rate, how = _scipy_rate(scipy, n)
                warm_load = d["warm"][len(d["warm"]) // 2] if d["warm"] else None
                dropped = [d["first"]["num_dropped"], *(t["num_dropped"] for t in d["warm"])]
                ratio_median = median_rate / s_rate if s_rate else None
                ratio_mean = mean_rate / s_rate if s_rate else None
                rows.append(
                    [
                        name,
                        f"{n:,}",
                        f"{d['first']['seconds']:.2f} ({d['first']['compile']['seconds']:.2f})",
                        _si(first_rate),
                        f"{d['warm_seconds_median']:.3f} [{min(warm):.3f}–{max(warm):.3f}]",
                        f"{_si(median_rate)} / {_si(mean_rate)}",
                        _si(s_rate) + ("" if how in ("measured", "-") else f" ({how})"),
                        f"**{_si(ratio_median)}** / {_si(ratio_mean)}",
                        _si(first_rate / s_rate) if first_rate and s_rate else "-",
                        ", ".join(str(v) for v in dropped),
                        f"{_load(d['first'])} / {_load(warm_load)} / {_load(scipy.get(key))}",
                    ]
                )
                if ratio_median:
                    verdicts.append((name, n, ratio_median, how == "measured"))
        header = [
            "task",
            "n",
            "diffrax first call s (of which compile)",
            "first sims/s",
            f"diffrax warm s: median [min–max] of {results['settings']['repeats']}",
            "warm sims/s: median / mean",
            f"scipy {SCIPY_METHOD} loop sims/s",
            "warm / scipy: median / mean",
            "first / scipy",
            "rows dropped: first, warm…",
            "load avg: first / warm / scipy",
        ]
        parts += ["## ODE tasks: simulations per second", table(header, rows)]
        if verdicts:
            met = all(ratio >= GOAL for _, _, ratio, _ in verdicts)
            parts.append(
                f"**Goal ≥ {GOAL:.0f}×: {'met' if met else 'NOT met'}.** Warm vmapped diffrax "
                "over the scipy loop (median warm call): "
                + "; ".join(
                    f"{name} {n:,}: {ratio:.0f}×" + ("" if measured else " (scipy extrapolated)")
                    for name, n, ratio, measured in verdicts
                )
                + ". CPU time of this process / wall time: "
                + _cores_used(ode)
                + " (1.0 = one core busy: the ratio then compares one core with one core)."
            )
        scipy_rows = []
        for name in TASKS:
            for key, s in sorted(
                ode.get(name, {}).get("scipy", {}).items(), key=lambda kv: int(kv[0])
            ):
                scipy_rows.append(
                    [
                        name,
                        f"{int(key):,}",
                        f"{s['seconds']:.1f}",
                        f"{1e3 * s['seconds'] / int(key):.2f}",
                        f"{s['nfev_mean']:.0f}",
                        str(s["failed"]),
                        _load(s),
                    ]
                )
        if scipy_rows:
            parts += [
                "scipy loops (every one measured in full, none extrapolated, unless the table "
                "above says so):",
                table(
                    [
                        "task",
                        "n",
                        "seconds",
                        "ms / sim",
                        "mean RHS evaluations",
                        "failed",
                        "load avg",
                    ],
                    scipy_rows,
                ),
            ]
        agreement_rows = []
        for name in TASKS:
            a = ode.get(name, {}).get("agreement")
            if a:
                ds, dt, st = a["diffrax_vs_scipy"], a["diffrax_vs_tight"], a["scipy_vs_tight"]
                agreement_rows.append(
                    [
                        name,
                        str(a["num_theta"]),
                        f"{ds['mean']:.2e}",
                        f"{ds['median']:.2e}",
                        f"{ds['p99']:.2e}",
                        f"{ds['max']:.2e}",
                        _largest(name, ds["largest_at"]),
                        f"{dt['mean']:.2e} / {dt['median']:.2e}",
                        f"{st['mean']:.2e} / {st['median']:.2e}",
                        str(a["diffrax_failed"]),
                    ]
                )
        if agreement_rows:
            parts += [
                "## Agreement of the noise-free ODE solutions",
                "Absolute relative difference |diffrax − scipy| / |scipy| over every state "
                "component at every observation time (entries where scipy's value is exactly 0, "
                "i.e. r(0) of SIR, left out), for θ drawn from the prior, both at the task's "
                "tolerances; and the error of each against a tight DOP853 solution "
                "(rtol 1e-12, atol = task atol × 1e-6).",
                table(
                    [
                        "task",
                        "θ",
                        "mean",
                        "median",
                        "99th pct",
                        "max",
                        "largest at: t, state, diffrax / scipy",
                        "diffrax vs tight: mean / median",
                        "scipy vs tight: mean / median",
                        "diffrax failed",
                    ],
                    agreement_rows,
                ),
                "The median is the solvers' agreement at these tolerances. The mean and the "
                "maximum come from a few entries; the columns against the tight solution show "
                "whether those are a mismatch between the two implementations (one far from "
                "it, the other not) or the global error of adaptive solvers at these "
                "tolerances (both about equally far). diffrax runs in float32 (JAX's default, "
                "as `sk.simulate` runs it), scipy in float64.",
            ]

    bb = results.get("black_box", {})
    if bb:
        rows = []
        for sim_name in BLACK_BOX:
            for key in sorted(bb.get(sim_name, {}), key=int):
                n = int(key)
                entries = bb[sim_name][key]
                serial = entries.get("serial/default")
                for label, e in entries.items():
                    mode, batch = label.split("/")
                    per_sim = e["seconds"] / n
                    overhead = per_sim - serial["seconds"] / n if serial else None
                    rows.append(
                        [
                            sim_name,
                            f"{n:,}",
                            mode,
                            f"{e['batch_size']} ({e['chunks']} chunks)",
                            f"{e['seconds']:.2f}",
                            f"{1e6 * per_sim:.1f}",
                            _si(n / e["seconds"]),
                            "-"
                            if mode == "serial" or overhead is None
                            else f"{1e6 * overhead:+.1f}",
                            "-"
                            if mode == "serial" or overhead is None
                            else f"{1e3 * overhead * n / e['chunks']:+.3f}",
                            "-"
                            if mode == "serial" or not serial
                            else f"{serial['seconds'] / e['seconds']:.2f}",
                            "-"
                            if not serial
                            else ("yes" if e["x_hash"] == serial["x_hash"] else "NO"),
                            _load(e),
                        ]
                    )
        startup = results.get("black_box_startup", {})
        startup_line = "; ".join(
            f"{mode}: started in {s['start_seconds']:.1f} s, warm-up (workers import sbi_kit "
            f"and JAX) {s.get('warm_up_seconds', float('nan')):.1f} s"
            + (
                f", worker start method {s['multiprocessing_method']}"
                if "multiprocessing_method" in s
                else f", start method {START_METHOD}"
            )
            for mode, s in startup.items()
        )
        parts += [
            "## Black-box simulators: executor overhead",
            f"`sk.simulate(key, BlackBoxSimulator(prior, simulate), n, executor=..., "
            f"batch_size=...)` with {WORKERS} workers. `cheap`: a few NumPy ops; `sir_rk4`: "
            f"the SIR model with fixed-step RK4 (dt = {SIR_RK4_DT} day) in Python floats. "
            "Overhead = wall time per simulation minus serial's (negative: the workers ran "
            "in parallel faster than the overhead cost); per future = the same total divided "
            "by the number of chunks. Speed-up = serial / this (2 workers on 2 cores: at "
            "most 2). The "
            "default batch_size is ⌈n / 1024⌉ rows (max_in_flight 256), so both sizes make "
            "1,000 futures; the second setting makes 4 chunks per worker. "
            '"identical": the same x as serial bit for bit (same key).',
            table(
                [
                    "simulator",
                    "n",
                    "executor",
                    "batch_size",
                    f"wall s (median of {results['settings']['repeats']})",
                    "µs / sim",
                    "sims/s",
                    "overhead µs / sim",
                    "overhead ms / future",
                    "speed-up",
                    "identical",
                    "load avg",
                ],
                rows,
            ),
        ]
        if startup_line:
            parts.append("Executors (not in the timings above): " + startup_line + ".")

    notes = [
        "Notes:",
        f'- scipy: `solve_ivp(method="{SCIPY_METHOD}", t_eval=observation times, rtol, '
        "atol = the task's)`, right-hand side in plain Python floats, one call per θ, noise "
        "with `numpy.random.Generator` (SIR: binomial(1000, clip(i)); LV: lognormal(log "
        "clip(y, 1e-10, 1e4), 0.1)). θ are drawn from the task prior outside the timing "
        "(inside it for diffrax, where `sk.simulate` draws them).",
        "- diffrax: `sk.simulate(key, sk.tasks.get(name), n)` (Tsit5, PIDController, vmapped "
        "and jitted in chunks of 10,000 rows, float32). The first call at a size compiles a "
        "new chunk shape when n ≤ 10,000; n = 100,000 reuses the 10,000-row chunk compiled "
        "just before, so its first call compiles nothing. On CPU each chunk runs as a loop "
        "over vmapped blocks of 512 rows (sk.simulate's CPU_BLOCK_ROWS). Under vmap an "
        "adaptive solve steps all rows of a block together until the slowest is done (a row "
        "that hits max_steps = 4096 costs its block that many steps).",
        "- Rows dropped (failed solves, NaN) are in the JSON (`num_dropped`, scipy `failed`)."
        + _dropped_note(results),
        "- Load average: the machine's 1-minute load average before→after each timed run "
        "(our own run adds up to ~1 to it).",
    ]
    parts.append("\n".join(notes))
    return "\n\n".join(parts)


def _cores_used(ode: dict) -> str:
    """Range of this process's CPU time / wall time in the warm diffrax and the scipy runs."""
    warm = [t for task in ode.values() for d in task.get("diffrax", {}).values() for t in d["warm"]]
    scipy = [t for task in ode.values() for t in task.get("scipy", {}).values()]
    out = []
    for label, runs in (("warm diffrax", warm), ("scipy", scipy)):
        ratios = [t["cpu_seconds"] / t["seconds"] for t in runs if t["seconds"] > 0]
        if ratios:
            out.append(f"{label} {min(ratios):.2f}–{max(ratios):.2f}")
    return ", ".join(out) or "-"


def _dropped_note(results: dict) -> str:
    """Warm diffrax calls that dropped a row vs those that did not, where both occurred."""
    parts = []
    for name, task in results.get("ode", {}).items():
        for key, d in sorted(task.get("diffrax", {}).items(), key=lambda kv: int(kv[0])):
            bad = [t["seconds"] for t in d["warm"] if t["num_dropped"]]
            good = [t["seconds"] for t in d["warm"] if not t["num_dropped"]]
            if bad and good:
                parts.append(
                    f"{name} {int(key):,}: {', '.join(f'{v:.2f}' for v in bad)} s with a "
                    f"dropped row vs {', '.join(f'{v:.2f}' for v in good)} s without"
                )
    if not parts:
        return ""
    return (
        " Warm calls in which a solve failed (a NaN row, dropped) took longer: under vmap "
        "that row's block of 512 keeps stepping until the row stops at max_steps = 4096: "
        + "; ".join(parts)
        + ". The median warm call hides this; the mean column shows it."
    )


def _all_timings(results: dict):
    for task in results.get("ode", {}).values():
        for d in task.get("diffrax", {}).values():
            yield d["first"]
            yield from d["warm"]
        yield from task.get("scipy", {}).values()
    for sim in results.get("black_box", {}).values():
        for entries in sim.values():
            for entry in entries.values():
                yield from entry.get("runs", [entry])


# ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument(
        "--scipy-max",
        type=int,
        default=10_000,
        help="largest n for which the scipy loop runs; larger sizes are extrapolated",
    )
    parser.add_argument("--black-box-sizes", type=int, nargs="+", default=[1_000, 10_000])
    parser.add_argument(
        "--parts",
        nargs="+",
        default=["ode", "agreement", "black_box"],
        choices=["ode", "agreement", "black_box"],
    )
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="warm diffrax calls per size, and runs of each black-box measurement",
    )
    parser.add_argument("--agreement", type=int, default=100, help="θ for the agreement check")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="10^3 simulations only, 1 warm repeat, 20 θ; writes to /tmp unless --out",
    )
    parser.add_argument("--fresh", action="store_true", help="ignore results already on disk")
    parser.add_argument(
        "--note", default=None, help="a sentence on the machine's state, for the md"
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.black_box_sizes = [1_000], [1_000]
        args.repeats, args.agreement = 1, 20
        args.out = args.out or Path("/tmp") / f"{NAME}_quick"
    out_dir = args.out or RESULTS_DIR
    json_path, md_path = out_dir / f"{NAME}.json", out_dir / f"{NAME}.md"

    start_load = os.getloadavg()[0]
    results = (None if args.fresh else read_json(json_path)) or {}
    results.setdefault("machine", machine())  # the first run's (a resumed run keeps it)
    results["versions"] = versions(
        ["sbi_kit", "jax", "jaxlib", "diffrax", "scipy", "numpy", "distributed"]
    )
    results.setdefault("load_average_at_start", start_load)
    if args.note:
        results["note"] = args.note
    results["settings"] = {
        "sizes": args.sizes,
        "scipy_max": args.scipy_max,
        "black_box_sizes": args.black_box_sizes,
        "repeats": args.repeats,
        "agreement_theta": args.agreement,
        "scipy_method": SCIPY_METHOD,
        "workers": WORKERS,
        "process_pool_start_method": START_METHOD,
        "jax_enable_x64": bool(jax.config.jax_enable_x64),
        "jax_devices": [str(d) for d in jax.devices()],
        "tolerances": {
            name: {"rtol": p.ode.rtol, "atol": p.ode.atol, "times": p.times.tolist()}
            for name, p in PROBLEMS.items()
        },
    }

    def save():
        write_json(json_path, results)
        write_markdown(md_path, markdown(results))

    for name in args.tasks:
        task = sk.tasks.get(name)  # one object: its simulator's jitted code is reused
        if not {"ode", "agreement"} & set(args.parts):
            break
        entry = results.setdefault("ode", {}).setdefault(name, {})
        if "ode" in args.parts:
            for n in sorted(args.sizes):
                diffrax = entry.setdefault("diffrax", {})
                if str(n) not in diffrax:
                    diffrax[str(n)] = d = measure_diffrax(task, n, args.repeats, seed=10 * n)
                    print(
                        f"{name} n={n}: diffrax first {d['first']['seconds']:.2f} s, warm "
                        f"{d['warm_seconds_median']:.3f} s",
                        flush=True,
                    )
                    save()
                scipy = entry.setdefault("scipy", {})
                if n <= args.scipy_max and str(n) not in scipy:
                    scipy[str(n)] = s = measure_scipy(task, n, seed=10 * n)
                    print(f"{name} n={n}: scipy {s['seconds']:.1f} s", flush=True)
                    save()
        if "agreement" in args.parts and "agreement" not in entry:
            entry["agreement"] = a = measure_agreement(task, args.agreement, seed=1)
            print(f"{name}: agreement {a['diffrax_vs_scipy']}", flush=True)
            save()

    if "black_box" in args.parts:
        bb = results.setdefault("black_box", {})
        todo = [
            (sim_name, n, mode, batch)
            for sim_name in BLACK_BOX
            for n in sorted(args.black_box_sizes)
            for mode, batch in [
                ("serial", "default"),
                ("process_pool", "default"),
                ("dask", "default"),
                ("process_pool", "4_per_worker"),
                ("dask", "4_per_worker"),
            ]
            if f"{mode}/{batch}" not in bb.get(sim_name, {}).get(str(n), {})
        ]
        if todo:
            with executors({mode for _, _, mode, _ in todo}) as (pools, startup):
                results.setdefault("black_box_startup", {}).update(startup)
                primed: set[int] = set()
                for sim_name, n, mode, batch in todo:
                    sim = black_box_simulator(sim_name)
                    if n not in primed:  # compile sk.simulate's JAX ops (prior, seeds) for n
                        _simulate_quietly(jax.random.key(1), black_box_simulator("cheap"), n)
                        primed.add(n)
                    size = (
                        default_batch_size(n)
                        if batch == "default"
                        else math.ceil(n / (4 * WORKERS))
                    )
                    runs = []
                    for _ in range(args.repeats):
                        result, t = timed(
                            lambda sim=sim, n=n, mode=mode, size=size: _simulate_quietly(
                                jax.random.key(n), sim, n, executor=pools[mode], batch_size=size
                            )
                        )
                        t.update(num_dropped=result.num_dropped, x_hash=_hash(result.x))
                        runs.append(t)
                    median_run = sorted(runs, key=lambda r: r["seconds"])[len(runs) // 2]
                    t = {
                        "batch_size": size,
                        "chunks": math.ceil(n / size),
                        "seconds": statistics.median(r["seconds"] for r in runs),
                        "load_average": median_run["load_average"],
                        "x_hash": runs[0]["x_hash"]
                        if len({r["x_hash"] for r in runs}) == 1
                        else "differs between repeats",
                        "runs": runs,
                    }
                    bb.setdefault(sim_name, {}).setdefault(str(n), {})[f"{mode}/{batch}"] = t
                    print(
                        f"{sim_name} n={n} {mode}/{batch}: {t['seconds']:.2f} s "
                        f"({1e6 * t['seconds'] / n:.1f} µs/sim)",
                        flush=True,
                    )
                    save()
    save()


if __name__ == "__main__":
    main()
