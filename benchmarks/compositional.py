"""Composing NPSE scores over n i.i.d. observations: accuracy against n, per strategy.

Two problems (``--problem``), each with one true θ and one stack of 100 observations of which
the first n are used, n ∈ {1, 10, 30, 100}:

* ``gaussian10``: prior N(0, I₁₀), x | θ ~ N(θ, I₁₀); the posterior of n observations is
  N(Σx / (n + 1), I / (n + 1)), so the reference is exact. θ is drawn from the prior with a
  fixed key. Results: ``benchmarks/results/compositional.{json,md}``.
* ``slcp`` (sbibm's task: prior U(−3, 3)⁵, 8-d x): θ is sbibm's true parameter of observation
  1, the observations are simulated from it. Reference: NUTS on the exact likelihood summed
  over the n observations (``sk.mcmc.reference_posterior(..., iid=True)``), run as the task's
  own reference is, with θ3, θ4 ≥ 0 (one of the four sign-symmetric modes) and random sign
  flips afterwards. NPSE learns the box itself (``support=Rejection()``), so GAUSS, JAC and
  SMC use the box prior's analytic diffused score. Results:
  ``benchmarks/results/compositional_slcp.{json,md}``.
* ``slcp_bijection``: the same, with NPSE in the box's unconstrained space (no draw can leave
  the box) and the diffused prior's score learned (``unconditional_fraction=0.2``). Results:
  ``benchmarks/results/compositional_slcp_bijection.{json,md}``.

For each simulation budget (single-observation simulations) one ``sk.NPSE()`` (defaults: VP SDE,
residual network) is trained and its scores composed by GAUSS, JAC, F-NPSE and SMC (their defaults;
``--methods GAUSS-fit`` adds ``GAUSS(gaussian_below=0.05)``). Beside them, NPE trained on whole sets
of n observations with a DeepSet embedding at the same simulation budget (budget / n sets; skipped
below 100 sets), and NLE + NUTS: one ``sk.NLE()`` per budget on the same single-observation
simulations, its learned log-likelihoods summed over the n observations and sampled by its default
NUTS. Metrics on ``--samples`` draws against as many reference draws: C2ST (``sk.diagnostics.c2st``,
sbibm's classifier; 0.5 is ideal) and the sliced Wasserstein-1 distance (mean over 1,000 random unit
directions of the 1-d W1 between the sorted projections), in θ's units. Sampling time is the first
call (compilation included) on this machine.

Run from the repository root::

    python benchmarks/compositional.py                         # gaussian10, budgets 10^3, 10^4
    python benchmarks/compositional.py --problem slcp --budgets 10000
    python benchmarks/compositional.py --budgets 1000 --n 1,10 --out /tmp/comp_quick

Results are written after every cell; a rerun skips the cells already there (``--fresh``
starts over). Trained posteriors are kept in the git-ignored ``benchmarks/checkpoints/``.

Not yet here (issue #12 asks for it): the timing against the ``sbi`` package.
"""

from __future__ import annotations

import abc
import argparse
import dataclasses
import functools
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
import numpyro.distributions as dist

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import (  # noqa: E402
    RESULTS_DIR,
    fmt,
    machine,
    machine_line,
    parse_int_list,
    read_json,
    table,
    versions,
    write_json,
    write_markdown,
)

import sbi_kit as sk  # noqa: E402
from sbi_kit.inference import FNPSE, GAUSS, JAC, SMC  # noqa: E402

NAME = "compositional"
IMG = Path(__file__).resolve().parents[1] / "docs" / "img"
MAX_N = 100
CHECKPOINTS = Path(__file__).resolve().parent / "checkpoints"
STRATEGIES = {
    "GAUSS": GAUSS(),
    "GAUSS-fit": GAUSS(gaussian_below=0.05),  # the Gaussian fits' scores below t = 0.05
    "JAC": JAC(),
    "F-NPSE": FNPSE(),
    "SMC": SMC(),
}


def sliced_wasserstein(a: np.ndarray, b: np.ndarray, num_directions: int = 1000) -> float:
    directions = np.random.default_rng(3).standard_normal((num_directions, a.shape[1]))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    pa, pb = np.sort(a @ directions.T, axis=0), np.sort(b @ directions.T, axis=0)
    return float(np.mean(np.abs(pa - pb)))


class Problem(abc.ABC):
    """A prior, a simulator of single observations, 100 observations and their reference."""

    name: str
    title: str
    prior: dist.Distribution
    element_dim: int  # the size of one observation

    def npse(self) -> sk.NPSE:
        return sk.NPSE()

    @abc.abstractmethod
    def simulate_one(self, key, theta):
        """See the class docstring."""

    @abc.abstractmethod
    def observations(self) -> np.ndarray:
        """See the class docstring."""

    @abc.abstractmethod
    def reference(self, x: np.ndarray, num: int) -> np.ndarray:
        """See the class docstring."""

    def simulate_single(self, key, num: int):
        k_theta, k_x = jax.random.split(key)
        theta = self.prior.sample(k_theta, (num,))
        return theta, jax.vmap(self.simulate_one)(jax.random.split(k_x, num), theta)

    def simulate_sets(self, key, num_sets: int, n: int):
        k_theta, k_x = jax.random.split(key)
        theta = self.prior.sample(k_theta, (num_sets,))
        keys = jax.random.split(k_x, (num_sets, n))
        one_set = jax.vmap(self.simulate_one, in_axes=(0, None))
        return theta, jax.vmap(one_set)(keys, theta)


class Gaussian10(Problem):
    name, title, element_dim = "gaussian10", "Problem gaussian10", 10
    noise = 1.0
    prior = dist.Normal(jnp.zeros(10), 1.0).to_event(1)

    def simulate_one(self, key, theta):
        return theta + self.noise * jax.random.normal(key, theta.shape)

    def observations(self) -> np.ndarray:
        k_theta, k_x = jax.random.split(jax.random.key(2024))
        theta = self.prior.sample(k_theta)
        return np.asarray(theta + self.noise * jax.random.normal(k_x, (MAX_N, 10)))

    def reference(self, x: np.ndarray, num: int) -> np.ndarray:
        n = x.shape[0]
        precision = 1.0 + n / self.noise**2
        mean = x.sum(0) / self.noise**2 / precision
        z = np.random.default_rng(7).standard_normal((num, 10))
        return mean + z / np.sqrt(precision)


class SLCP(Problem):
    name, title, element_dim = "slcp", "Problem slcp", 8
    task = sk.tasks.get("slcp")
    prior = task.prior

    def npse(self) -> sk.NPSE:
        return sk.NPSE(support=sk.inference.Rejection())

    def simulate_one(self, key, theta):
        return self.task.simulator.simulate(key, theta)

    def observations(self) -> np.ndarray:
        theta = self.task.true_parameters(1)
        keys = jax.random.split(jax.random.key(2024), MAX_N)
        return np.asarray(jax.vmap(self.simulate_one, in_axes=(0, None))(keys, theta))

    @functools.cache  # noqa: B019 (one reference per stack, for the benchmark's lifetime)
    def _reference(self, n: int, num: int) -> np.ndarray:
        x = self.observations()[:n]
        bound = 3.0
        low = jnp.array([-bound, -bound, 0.0, 0.0, -bound])
        folded = sk.Simulator(
            dist.Uniform(low, bound * jnp.ones(5)).to_event(1),
            self.task.simulator.simulate,
            self.task.simulator.log_likelihood,
        )
        key_mcmc, key_sign = jax.random.split(jax.random.key(n))
        result = sk.mcmc.reference_posterior(
            key_mcmc, folded, jnp.asarray(x), num, iid=True, check=False
        )
        print(f"reference n = {n}: R-hat max {result.max_r_hat:.3f}", flush=True)
        signs = jnp.where(jax.random.bernoulli(key_sign, 0.5, (num, 2)), 1.0, -1.0)
        return np.asarray(result.samples.at[:, 2:4].multiply(signs))

    def reference(self, x: np.ndarray, num: int) -> np.ndarray:
        return self._reference(x.shape[0], num)


class SLCPBijection(SLCP):
    """slcp with NPSE in the unconstrained space of the box (``support=Bijection()``, the
    default), so no composed draw can leave the box; the diffused prior's score there is not
    analytic, so the network also learns the unconditional score (a fifth of the examples
    without their observation)."""

    name, title = "slcp_bijection", "Problem slcp, NPSE in unconstrained space"

    def npse(self) -> sk.NPSE:
        return sk.NPSE(unconditional_fraction=0.2)


PROBLEMS = {p.name: p for p in (Gaussian10(), SLCP(), SLCPBijection())}


@functools.cache  # one posterior per problem, method and budget, loaded or trained once
def single_observation_posterior(problem: Problem, method: str, budget: int):
    prefix = NAME if problem.name == "gaussian10" else f"{NAME}_{problem.name}"
    path = CHECKPOINTS / f"{prefix}_{method}_{budget}.sbi"
    if path.exists():
        return sk.load(path)
    theta, x = problem.simulate_single(jax.random.key(budget), budget)
    estimator = {"npse": problem.npse, "nle": sk.NLE}[method]()
    posterior = estimator.fit(jax.random.key(1), theta, x, prior=problem.prior, progress=False)
    CHECKPOINTS.mkdir(parents=True, exist_ok=True)
    sk.save(path, posterior)
    return posterior


def set_npe_posterior(problem: Problem, budget: int, n: int):
    num_sets = budget // n
    theta, x = problem.simulate_sets(jax.random.key(budget + n), num_sets, n)
    dim = problem.element_dim
    npe = sk.NPE(embedding=sk.nn.DeepSetEmbedding(element_dim=dim, out_dim=20))
    flat = x.reshape(num_sets, n * dim)
    return npe.fit(jax.random.key(1), theta, flat, prior=problem.prior, progress=False)


def rebuilt(posterior, net=None, **method_changes):
    """``posterior`` with its method's options changed (and optionally another network)."""
    method = dataclasses.replace(posterior.method, **method_changes)
    return method.posterior(
        posterior.net if net is None else net,
        posterior.prior,
        posterior.theta_standardizer,
        posterior.x_standardizer,
    )


def with_composition(posterior, composition):
    return rebuilt(posterior, composition=composition)


def evaluate(samples: np.ndarray, ref: np.ndarray, seconds: float, extra: dict) -> dict:
    finite = np.all(np.isfinite(samples), axis=1)
    out = {"seconds": seconds, "non_finite": int((~finite).sum()), **extra}
    if finite.sum() < 10:
        return out | {"c2st": None, "sliced_w1": None}
    samples = samples[finite]
    return out | {
        "c2st": sk.diagnostics.c2st(samples, ref[: len(samples)]),
        "sliced_w1": sliced_wasserstein(samples, ref[: len(samples)]),
    }


def run_cell(problem: Problem, budget: int, method: str, n: int, num: int) -> dict:
    x = problem.observations()
    stack = jnp.asarray(x[:n])
    ref = problem.reference(x[:n], num)
    key = jax.random.key(11)
    if method == "set-NPE":
        if budget // n < 100:
            return {"skipped": f"{budget // n} sets of {n} (< 100)"}
        posterior = set_npe_posterior(problem, budget, n)
        began = time.perf_counter()
        samples = np.asarray(posterior.sample(key, stack.reshape(-1), num))
        return evaluate(samples, ref, time.perf_counter() - began, {})
    if method == "NLE":
        posterior = single_observation_posterior(problem, "nle", budget)
        began = time.perf_counter()
        samples, mcmc = posterior.sample(key, stack, num, return_diagnostics=True)
        seconds = time.perf_counter() - began
        extra = {"max_r_hat": mcmc.max_r_hat, "min_ess": mcmc.min_ess}
        return evaluate(np.asarray(samples), ref, seconds, extra)
    npse = single_observation_posterior(problem, "npse", budget)
    posterior = with_composition(npse, STRATEGIES[method])
    began = time.perf_counter()
    try:
        samples, info = posterior.sample(key, stack, num, return_diagnostics=True)
    except (FloatingPointError, RuntimeError) as error:
        # FloatingPointError: diverged draws; RuntimeError: with support=Rejection(), too few
        # draws inside the box
        return {"failed": str(error)[:300], "seconds": time.perf_counter() - began}
    seconds = time.perf_counter() - began
    diagnostics = {k: float(v) for k, v in info.items()}
    return evaluate(np.asarray(samples), ref, seconds, {"diagnostics": diagnostics})


DESCRIPTIONS = {
    "gaussian10": "Problem gaussian10: prior N(0, I₁₀), x | θ ~ N(θ, I₁₀), exact posterior "
    "N(Σx/(n+1), I/(n+1)); one θ and one stack of 100 observations (first n used).",
    "slcp": "Problem slcp (sbibm; prior U(−3, 3)⁵): one stack of 100 observations simulated "
    "at sbibm's true θ of observation 1 (first n used); reference: NUTS on the exact "
    "likelihood of the n observations in one sign mode of θ3, θ4, with random sign flips. "
    "NPSE with `support=Rejection()` (the box's analytic diffused score).",
    "slcp_bijection": "Problem slcp (sbibm; prior U(−3, 3)⁵), observations and reference as "
    "for `slcp`; NPSE in the box's unconstrained space (`support=Bijection()`, the default) "
    "with `unconditional_fraction=0.2`, so GAUSS, JAC and SMC use the learned unconditional "
    "score as the diffused prior's.",
}


def markdown(result: dict) -> str:
    s = result["settings"]
    lines = [
        "# Composition over n i.i.d. observations (NPSE strategies vs set-NPE and NLE + NUTS)",
        "",
        DESCRIPTIONS[s.get("problem", "gaussian10")] + " "
        f"{s['samples']} draws per cell against as many reference draws. C2ST: sbibm's "
        "classifier "
        "(0.5 ideal); SW1: sliced Wasserstein-1 over 1,000 directions. Seconds: first sampling "
        "call, compilation included. Strategies at their defaults on one `sk.NPSE()` per "
        "budget; set-NPE: `sk.NPE()` with a DeepSet embedding on budget/n sets of n; NLE: "
        "one `sk.NLE()` per budget on the same simulations, NUTS on the summed learned "
        "log-likelihoods.",
        "",
    ]
    cells = result["cells"]
    for budget in s["budgets"]:
        lines += [f"## {budget:,} simulations", ""]
        head = ["method"] + [f"n = {n}: C2ST / SW1 / s" for n in s["n"]]
        body = []
        for method in s["methods"]:
            row = [method]
            for n in s["n"]:
                c = cells.get(f"{budget}/{method}/{n}")
                if c is None:
                    row.append("not run")
                elif "skipped" in c:
                    row.append(f"— ({c['skipped']})")
                elif "failed" in c:
                    why = "outside the box" if "Rejection" in c["failed"] else "non-finite"
                    row.append(f"failed ({why})")
                else:
                    row.append(
                        f"{fmt(c['c2st'], 3)} / {fmt(c['sliced_w1'], 3)} / {fmt(c['seconds'], 1)}"
                    )
            body.append(row)
        lines += [table(head, body), ""]
    lines.append(machine_line(result))
    return "\n".join(lines)


def figure(result: dict, path: Path) -> None:
    """C2ST and sliced W1 against n, one panel pair per budget, a line per method."""
    s = result["settings"]
    budgets = [b for b in s["budgets"] if any(k.startswith(f"{b}/") for k in result["cells"])]
    if not budgets:
        return
    fig, axes = plt.subplots(
        len(budgets), 2, figsize=(11, 3.6 * len(budgets)), squeeze=False, sharex=True
    )
    for row, budget in zip(axes, budgets, strict=True):
        for i, method in enumerate(s["methods"]):
            cells = [(n, result["cells"].get(f"{budget}/{method}/{n}")) for n in s["n"]]
            done = [(n, c) for n, c in cells if c is not None and c.get("c2st") is not None]
            if not done:
                continue
            ns = [n for n, _ in done]
            row[0].plot(ns, [c["c2st"] for _, c in done], "o-", color=f"C{i}", label=method)
            row[1].plot(ns, [c["sliced_w1"] for _, c in done], "o-", color=f"C{i}")
        row[0].axhline(0.5, color="k", lw=0.8, ls=":")
        row[0].set_ylabel("C2ST (0.5 = exact)")
        row[1].set_ylabel("sliced Wasserstein-1")
        row[1].set_yscale("log")
        for ax in row:
            ax.set_xscale("log")
            ax.set_title(f"{budget:,} single-observation simulations", fontsize=10)
            ax.grid(alpha=0.3)
    for ax in axes[-1]:
        ax.set_xlabel("number of i.i.d. observations n")
    legend = {}  # every method that has a line in some row, in the order of the methods
    for ax in axes[:, 0]:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            legend.setdefault(label, handle)
    fig.legend(legend.values(), legend.keys(), loc="lower center", ncol=len(legend), fontsize=9)
    fig.suptitle(f"{s.get('problem', 'gaussian10')}: accuracy of the composed posterior against n")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", type=parse_int_list, default=[1000, 10000])
    parser.add_argument("--n", type=parse_int_list, default=[1, 10, 30, 100])
    parser.add_argument("--methods", default="GAUSS,JAC,F-NPSE,SMC,set-NPE,NLE")
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--problem", choices=sorted(PROBLEMS), default="gaussian10")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--fresh", action="store_true")
    parser.add_argument(
        "--figure-only", action="store_true", help="redraw the figure from the results"
    )
    args = parser.parse_args(argv)
    methods = [m for m in args.methods.split(",") if m]
    problem = PROBLEMS[args.problem]
    if args.out is None:
        suffix = "" if problem.name == "gaussian10" else f"_{problem.name}"
        args.out = RESULTS_DIR / f"{NAME}{suffix}"
    previous = None if args.fresh else read_json(args.out.with_suffix(".json"))
    result = {
        "benchmark": NAME,
        "machine": machine(),
        "versions": versions(["sbi_kit", "jax", "flowjax"]),
        "settings": {
            "problem": problem.name,
            "budgets": args.budgets,
            "n": args.n,
            "methods": methods,
            "samples": args.samples,
        },
        "cells": {} if previous is None else previous.get("cells", {}),
    }
    image = IMG / f"compositional-{problem.name}.png"
    if args.figure_only:
        figure(result, image)
        return
    for budget in args.budgets:
        for n in args.n:
            for method in methods:
                name = f"{budget}/{method}/{n}"
                if name in result["cells"]:
                    continue
                cell = run_cell(problem, budget, method, n, args.samples)
                result["cells"][name] = cell
                print(name, cell, flush=True)
                result["machine"] = machine()
                write_json(args.out.with_suffix(".json"), result)
                write_markdown(args.out.with_suffix(".md"), markdown(result))
    figure(result, image)


if __name__ == "__main__":
    main()
