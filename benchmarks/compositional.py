"""Composing NPSE scores over n i.i.d. observations: accuracy against n, per strategy.

Problem ``gaussian10``: prior N(0, I₁₀), x | θ ~ N(θ, I₁₀); the posterior of n observations is
N(Σx / (n + 1), I / (n + 1)), so the reference is exact. One true θ (drawn from the prior with a
fixed key) and one stack of 100 observations; the first n are used for n ∈ {1, 10, 30, 100}.

For each simulation budget (single-observation simulations) one ``sk.NPSE()`` (defaults: VP
SDE, residual network) is trained and its scores composed by GAUSS, JAC, F-NPSE and SMC (their
defaults). Beside them, NPE trained on whole sets of n observations with a DeepSet embedding
at the same simulation budget (budget / n sets; skipped below 100 sets), and NLE + NUTS: one
``sk.NLE()`` per budget on the same single-observation simulations, its learned log-likelihoods
summed over the n observations and sampled by its default NUTS. Metrics on
``--samples`` draws against as many exact draws: C2ST (``sk.diagnostics.c2st``, sbibm's
classifier; 0.5 is ideal) and the sliced Wasserstein-1 distance (mean over 1,000 random unit
directions of the 1-d W1 between the sorted projections), in θ's units. Sampling time is the
first call (compilation included) on this machine.

Run from the repository root::

    python benchmarks/compositional.py                         # budgets 10^3 and 10^4
    python benchmarks/compositional.py --budgets 1000 --n 1,10 --out /tmp/comp_quick

Results: ``benchmarks/results/compositional.{json,md}``, written after every cell; a rerun
skips the cells already there (``--fresh`` starts over). Trained posteriors are kept in the
git-ignored ``benchmarks/checkpoints/``.

Not yet here (issue #12 asks for them): slcp with a NUTS reference and the timing against the
``sbi`` package.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist

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
DIM, NOISE, MAX_N = 10, 1.0, 100
CHECKPOINTS = Path(__file__).resolve().parent / "checkpoints"
STRATEGIES = {"GAUSS": GAUSS(), "JAC": JAC(), "F-NPSE": FNPSE(), "SMC": SMC()}
PRIOR = dist.Normal(jnp.zeros(DIM), 1.0).to_event(1)


def observations() -> tuple[np.ndarray, np.ndarray]:
    k_theta, k_x = jax.random.split(jax.random.key(2024))
    theta = PRIOR.sample(k_theta)
    x = theta + NOISE * jax.random.normal(k_x, (MAX_N, DIM))
    return np.asarray(theta), np.asarray(x)


def reference(x: np.ndarray, num: int) -> np.ndarray:
    n = x.shape[0]
    precision = 1.0 + n / NOISE**2
    mean = x.sum(0) / NOISE**2 / precision
    z = np.random.default_rng(7).standard_normal((num, DIM))
    return mean + z / np.sqrt(precision)


def sliced_wasserstein(a: np.ndarray, b: np.ndarray, num_directions: int = 1000) -> float:
    directions = np.random.default_rng(3).standard_normal((num_directions, a.shape[1]))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    pa, pb = np.sort(a @ directions.T, axis=0), np.sort(b @ directions.T, axis=0)
    return float(np.mean(np.abs(pa - pb)))


def simulate_single(key, num: int):
    k_theta, k_x = jax.random.split(key)
    theta = PRIOR.sample(k_theta, (num,))
    return theta, theta + NOISE * jax.random.normal(k_x, theta.shape)


@functools.cache  # one posterior per method and budget, loaded or trained once
def single_observation_posterior(method: str, budget: int):
    path = CHECKPOINTS / f"{NAME}_{method}_{budget}.sbi"
    if path.exists():
        return sk.load(path)
    theta, x = simulate_single(jax.random.key(budget), budget)
    estimator = {"npse": sk.NPSE, "nle": sk.NLE}[method]()
    posterior = estimator.fit(jax.random.key(1), theta, x, prior=PRIOR, progress=False)
    CHECKPOINTS.mkdir(parents=True, exist_ok=True)
    sk.save(path, posterior)
    return posterior


def set_npe_posterior(budget: int, n: int):
    num_sets = budget // n
    k_theta, k_x = jax.random.split(jax.random.key(budget + n))
    theta = PRIOR.sample(k_theta, (num_sets,))
    x = theta[:, None, :] + NOISE * jax.random.normal(k_x, (num_sets, n, DIM))
    npe = sk.NPE(embedding=sk.nn.DeepSetEmbedding(element_dim=DIM, out_dim=20))
    flat = x.reshape(num_sets, n * DIM)
    return npe.fit(jax.random.key(1), theta, flat, prior=PRIOR, progress=False)


def with_composition(posterior, composition):
    method = dataclasses.replace(posterior.method, composition=composition)
    return method.posterior(
        posterior.net, posterior.prior, posterior.theta_standardizer, posterior.x_standardizer
    )


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


def run_cell(budget: int, method: str, n: int, x: np.ndarray, num: int) -> dict:
    stack = jnp.asarray(x[:n])
    ref = reference(x[:n], num)
    key = jax.random.key(11)
    if method == "set-NPE":
        if budget // n < 100:
            return {"skipped": f"{budget // n} sets of {n} (< 100)"}
        posterior = set_npe_posterior(budget, n)
        began = time.perf_counter()
        samples = np.asarray(posterior.sample(key, stack.reshape(-1), num))
        return evaluate(samples, ref, time.perf_counter() - began, {})
    if method == "NLE":
        posterior = single_observation_posterior("nle", budget)
        began = time.perf_counter()
        samples, mcmc = posterior.sample(key, stack, num, return_diagnostics=True)
        seconds = time.perf_counter() - began
        extra = {"max_r_hat": mcmc.max_r_hat, "min_ess": mcmc.min_ess}
        return evaluate(np.asarray(samples), ref, seconds, extra)
    posterior = with_composition(single_observation_posterior("npse", budget), STRATEGIES[method])
    began = time.perf_counter()
    try:
        samples, info = posterior.sample(key, stack, num, return_diagnostics=True)
    except FloatingPointError as error:
        return {"failed": str(error)[:300], "seconds": time.perf_counter() - began}
    seconds = time.perf_counter() - began
    diagnostics = {k: float(v) for k, v in info.items()}
    return evaluate(np.asarray(samples), ref, seconds, {"diagnostics": diagnostics})


def markdown(result: dict) -> str:
    s = result["settings"]
    lines = [
        "# Composition over n i.i.d. observations (NPSE strategies vs set-NPE and NLE + NUTS)",
        "",
        "Problem gaussian10: prior N(0, I₁₀), x | θ ~ N(θ, I₁₀), exact posterior "
        "N(Σx/(n+1), I/(n+1)); one θ and one stack of 100 observations (first n used). "
        f"{s['samples']} draws per cell against as many exact draws. C2ST: sbibm's classifier "
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
                    row.append("failed (non-finite)")
                else:
                    row.append(
                        f"{fmt(c['c2st'], 3)} / {fmt(c['sliced_w1'], 3)} / {fmt(c['seconds'], 1)}"
                    )
            body.append(row)
        lines += [table(head, body), ""]
    lines.append(machine_line(result))
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", type=parse_int_list, default=[1000, 10000])
    parser.add_argument("--n", type=parse_int_list, default=[1, 10, 30, 100])
    parser.add_argument("--methods", default="GAUSS,JAC,F-NPSE,SMC,set-NPE,NLE")
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / NAME)
    parser.add_argument("--fresh", action="store_true")
    args = parser.parse_args(argv)
    methods = [m for m in args.methods.split(",") if m]
    previous = None if args.fresh else read_json(args.out.with_suffix(".json"))
    result = {
        "benchmark": NAME,
        "machine": machine(),
        "versions": versions(["sbi_kit", "jax", "flowjax"]),
        "settings": {
            "budgets": args.budgets,
            "n": args.n,
            "methods": methods,
            "samples": args.samples,
        },
        "cells": {} if previous is None else previous.get("cells", {}),
    }
    _, x = observations()
    for budget in args.budgets:
        for n in args.n:
            for method in methods:
                name = f"{budget}/{method}/{n}"
                if name in result["cells"]:
                    continue
                cell = run_cell(budget, method, n, x, args.samples)
                result["cells"][name] = cell
                print(name, cell, flush=True)
                result["machine"] = machine()
                write_json(args.out.with_suffix(".json"), result)
                write_markdown(args.out.with_suffix(".md"), markdown(result))


if __name__ == "__main__":
    main()
