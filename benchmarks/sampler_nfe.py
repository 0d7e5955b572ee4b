"""NPSE samplers: accuracy against the number of network evaluations (NFE).

One ``sk.NPSE()`` (defaults: VP SDE, residual network, 10,000 simulations) on the 10-d Gaussian
problem of ``benchmarks/compositional.py`` (prior N(0, I₁₀), x | θ ~ N(θ, I₁₀); the same
trained posterior, loaded from its checkpoint or trained the same way), one observation (the
first of that script's stack), so the exact posterior N(x/2, I/2) is the reference. Each
sampler setting draws ``--samples`` particles; C2ST (``sk.diagnostics.c2st``) and the sliced
Wasserstein-1 distance against as many exact draws. NFE is counted, not assumed: the network
is wrapped so that every evaluation calls back to Python, and the count over the batched solve
is divided by the particles (for the adaptive ODE, whose particles are solved together, that is
the slowest particle's count: what the batch costs). Seconds: a second, warm call without the
counter.

Samplers: ``DPMSolver`` (order 2 = DPM-Solver++(2M), order 1 = DDIM) at 5-100 steps,
``ReverseSDE`` (Euler-Maruyama) at 50-1,000 steps and the adaptive ``ProbabilityFlowODE``
(Tsit5) at tolerances 10⁻²-10⁻⁵.

Run from the repository root::

    python benchmarks/sampler_nfe.py        # results/sampler_nfe.{json,md}, docs/img/npse-nfe.png

A rerun skips the settings already in the results (``--fresh`` starts over).
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import (  # noqa: E402
    RESULTS_DIR,
    fmt,
    machine,
    machine_line,
    read_json,
    table,
    versions,
    write_json,
    write_markdown,
)
from compositional import (  # noqa: E402
    PROBLEMS,
    rebuilt,
    single_observation_posterior,
    sliced_wasserstein,
)

import sbi_kit as sk  # noqa: E402
from sbi_kit.inference import DPMSolver, ProbabilityFlowODE, ReverseSDE  # noqa: E402

NAME = "sampler_nfe"
IMG = Path(__file__).resolve().parents[1] / "docs" / "img" / "npse-nfe.png"
BUDGET = 10_000
DIM = 10
SETTINGS = {
    "DPM-Solver++(2M)": [(f"{k} steps", DPMSolver(num_steps=k)) for k in (5, 10, 20, 50)],
    "DDIM (DPM-Solver order 1)": [
        (f"{k} steps", DPMSolver(num_steps=k, order=1)) for k in (10, 20, 50, 100)
    ],
    "reverse SDE (Euler-Maruyama)": [
        (f"{k} steps", ReverseSDE(num_steps=k)) for k in (50, 200, 500, 1000)
    ],
    "probability-flow ODE (Tsit5, adaptive)": [
        (f"tol {tol:g}", ProbabilityFlowODE(rtol=tol, atol=tol)) for tol in (1e-2, 1e-3, 1e-4, 1e-5)
    ],
}

_CALLS = [0]
_LOCK = threading.Lock()


def _count(theta):
    # under vmap the callback may see one particle's θ or the whole batch: count particles;
    # XLA may run callbacks on several threads at once, hence the lock
    with _LOCK:
        _CALLS[0] += int(np.size(theta)) // DIM


class Counted(eqx.Module):
    """A vector-field network that reports each evaluation to :func:`_count`."""

    inner: eqx.Module

    def __call__(self, theta, t, context):
        jax.debug.callback(_count, theta)
        return self.inner(theta, t, context)


def with_sampler(posterior, sampler, counted: bool = False):
    net = posterior.net
    if counted:
        net = eqx.tree_at(lambda n: n.field, net, Counted(net.field))
    return rebuilt(posterior, net, sampler=sampler)


def run_setting(posterior, sampler, x_o, ref, num: int) -> dict:
    key = jax.random.key(5)
    _CALLS[0] = 0
    samples = np.asarray(with_sampler(posterior, sampler, counted=True).sample(key, x_o, num))
    nfe = _CALLS[0] / num
    plain = with_sampler(posterior, sampler)
    plain.sample(key, x_o, num).block_until_ready()  # compile
    began = time.perf_counter()
    again = np.asarray(plain.sample(key, x_o, num))
    seconds = time.perf_counter() - began
    return {
        "nfe": nfe,
        "seconds": seconds,
        "same_draws_without_counter": bool(np.allclose(again, samples, atol=1e-5)),
        "c2st": sk.diagnostics.c2st(samples, ref),
        "sliced_w1": sliced_wasserstein(samples, ref),
    }


def figure(result: dict) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for i, family in enumerate(SETTINGS):
        rows = [result["cells"].get(f"{family}/{label}") for label, _ in SETTINGS[family]]
        rows = [r for r in rows if r is not None]
        nfe = [r["nfe"] for r in rows]
        for ax, metric in zip(axes, ("c2st", "sliced_w1"), strict=True):
            ax.plot(nfe, [r[metric] for r in rows], "o-", color=f"C{i}", label=family)
    for ax, label in zip(axes, ("C2ST (0.5 = exact)", "sliced Wasserstein-1"), strict=True):
        ax.set_xscale("log")
        ax.set_xlabel("network evaluations per particle")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].axhline(0.5, color="k", lw=0.8, ls=":")
    axes[0].legend(fontsize=8)
    fig.suptitle(
        "NPSE (10,000 simulations) on a 10-d Gaussian, one observation: accuracy against cost"
    )
    fig.tight_layout()
    IMG.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(IMG, dpi=110)


def markdown(result: dict) -> str:
    s = result["settings"]
    lines = [
        "# NPSE samplers: accuracy against network evaluations",
        "",
        "`sk.NPSE()` trained on 10,000 simulations of the 10-d Gaussian problem of "
        "`benchmarks/compositional.py`, its first observation; exact posterior as reference. "
        f"{s['samples']} draws per setting against as many exact ones. NFE: network "
        "evaluations per particle, counted (for the adaptive ODE: the batch's, i.e. the "
        "slowest particle's). Seconds: warm call, no counter. Figure: `docs/img/npse-nfe.png`.",
        "",
    ]
    body = []
    for family, settings in SETTINGS.items():
        for label, _ in settings:
            c = result["cells"].get(f"{family}/{label}")
            if c is None:
                body.append([family, label, "not run", "", "", ""])
                continue
            body.append(
                [
                    family,
                    label,
                    fmt(c["nfe"], 0),
                    fmt(c["c2st"], 3),
                    fmt(c["sliced_w1"], 3),
                    fmt(c["seconds"], 2),
                ]
            )
    lines += [table(["sampler", "setting", "NFE", "C2ST", "SW1", "s"], body), ""]
    lines.append(machine_line(result))
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / NAME)
    parser.add_argument("--fresh", action="store_true")
    args = parser.parse_args(argv)
    previous = None if args.fresh else read_json(args.out.with_suffix(".json"))
    result = {
        "benchmark": NAME,
        "machine": machine(),
        "versions": versions(["sbi_kit", "jax", "diffrax"]),
        "settings": {"budget": BUDGET, "samples": args.samples},
        "cells": {} if previous is None else previous.get("cells", {}),
    }
    problem = PROBLEMS["gaussian10"]
    posterior = single_observation_posterior(problem, "npse", BUDGET)
    x = problem.observations()[:1]
    ref = problem.reference(x, args.samples)
    for family, settings in SETTINGS.items():
        for label, sampler in settings:
            name = f"{family}/{label}"
            if name in result["cells"]:
                continue
            cell = run_setting(posterior, sampler, jnp.asarray(x[0]), ref, args.samples)
            result["cells"][name] = cell
            print(name, cell, flush=True)
            result["machine"] = machine()
            write_json(args.out.with_suffix(".json"), result)
            write_markdown(args.out.with_suffix(".md"), markdown(result))
    figure(result)


if __name__ == "__main__":
    main()
