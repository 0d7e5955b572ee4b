"""Composed NPSE posteriors of n i.i.d. observations: sbi_kit against the ``sbi`` package.

The 10-d Gaussian problem of ``benchmarks/compositional.py`` (prior N(0, I₁₀), x | θ ~ N(θ,
I₁₀), exact posterior of n observations N(Σx/(n+1), I/(n+1))), n = 30 of its observation
stack, the same 10,000 single-observation simulations for both libraries:

* sbi_kit: ``sk.NPSE()`` at its defaults (VP SDE; the posterior ``compositional.py`` trains,
  loaded from its checkpoint when there), ``posterior.sample(key, x_stack, 10_000)`` with the
  default composition, GAUSS (DPM-Solver++(2M), its default steps, after fitting each observation's
  covariance from 1,000 draws).
* sbi: ``sbi.inference.NPSE(prior)`` at its defaults (VE SDE), trained with ``.train()``,
  ``posterior.sample((10_000,), x=x_stack)`` with its default i.i.d. method (``auto_gauss``,
  Euler-Maruyama, 500 steps).

Both on ONE core (``taskset`` by the caller; torch 1 thread; XLA single-threaded through
``XLA_FLAGS``, set by the caller). Timed: training, and sampling as a first call (with
compilation) and a second, warm call. Accuracy: C2ST (``sk.diagnostics.c2st``) and sliced
Wasserstein-1 of the first 2,000 draws against 2,000 exact draws.

Run from the repository root, in the benchmark environment (``pip install -e '.[bench]'``)::

    XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1" \\
        taskset -c 1 python benchmarks/compositional_vs_sbi.py

Results: ``benchmarks/results/compositional_vs_sbi.{json,md}`` (each library's part is kept
once done; ``--fresh`` starts over).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

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
    single_observation_posterior,
    sliced_wasserstein,
    with_composition,
)

import sbi_kit as sk  # noqa: E402
from sbi_kit.inference import GAUSS  # noqa: E402

NAME = "compositional_vs_sbi"
BUDGET, N_OBS, NUM, EVAL = 10_000, 30, 10_000, 2_000


def accuracy(samples: np.ndarray, ref: np.ndarray) -> dict:
    finite = np.all(np.isfinite(samples), axis=1)
    kept = samples[finite][:EVAL]
    return {
        "non_finite": int((~finite).sum()),
        "c2st": sk.diagnostics.c2st(kept, ref[: len(kept)]),
        "sliced_w1": sliced_wasserstein(kept, ref[: len(kept)]),
    }


def run_sbi_kit(problem, x_stack: np.ndarray, ref: np.ndarray) -> dict:
    began = time.perf_counter()
    posterior = single_observation_posterior(problem, "npse", BUDGET)
    # a loaded checkpoint keeps the composition it was saved with: use today's default
    posterior = with_composition(posterior, GAUSS())
    train = time.perf_counter() - began
    stack = jnp.asarray(x_stack)
    began = time.perf_counter()
    first = posterior.sample(jax.random.key(11), stack, NUM).block_until_ready()
    first_s = time.perf_counter() - began
    began = time.perf_counter()
    warm = np.asarray(posterior.sample(jax.random.key(12), stack, NUM))
    warm_s = time.perf_counter() - began
    return {
        "train_seconds_or_load": train,
        "first_call_seconds": first_s,
        "warm_call_seconds": warm_s,
        "first_call_draws_finite": bool(np.all(np.isfinite(np.asarray(first)))),
        **accuracy(warm, ref),
    }


def run_sbi(problem, x_stack: np.ndarray, ref: np.ndarray) -> dict:
    import torch
    from sbi.inference import NPSE

    torch.set_num_threads(1)
    torch.manual_seed(0)
    theta, x = problem.simulate_single(jax.random.key(BUDGET), BUDGET)  # compositional's data
    prior = torch.distributions.MultivariateNormal(torch.zeros(10), torch.eye(10))
    inference = NPSE(prior=prior, show_progress_bars=False)
    began = time.perf_counter()
    inference.append_simulations(
        torch.as_tensor(np.asarray(theta)), torch.as_tensor(np.asarray(x))
    ).train()
    train = time.perf_counter() - began
    posterior = inference.build_posterior()
    xs = torch.as_tensor(x_stack)
    began = time.perf_counter()
    posterior.sample((NUM,), x=xs, show_progress_bars=False)
    first_s = time.perf_counter() - began
    began = time.perf_counter()
    warm = posterior.sample((NUM,), x=xs, show_progress_bars=False).numpy()
    warm_s = time.perf_counter() - began
    return {
        "train_seconds_or_load": train,
        "first_call_seconds": first_s,
        "warm_call_seconds": warm_s,
        "epochs": int(inference.summary["epochs_trained"][-1]),
        **accuracy(warm, ref),
    }


def markdown(result: dict) -> str:
    rows = []
    for lib in ("sbi_kit", "sbi"):
        c = result["runs"].get(lib)
        if c is None:
            rows.append([lib, "not run", "", "", "", ""])
            continue
        rows.append(
            [
                lib,
                fmt(c["train_seconds_or_load"], 1),
                fmt(c["first_call_seconds"], 1),
                fmt(c["warm_call_seconds"], 1),
                fmt(c["c2st"], 3),
                fmt(c["sliced_w1"], 3),
            ]
        )
    both = all(lib in result["runs"] for lib in ("sbi_kit", "sbi"))
    ratio = (
        result["runs"]["sbi"]["warm_call_seconds"] / result["runs"]["sbi_kit"]["warm_call_seconds"]
        if both
        else None
    )
    lines = [
        "# Composed NPSE posterior of 30 i.i.d. observations: sbi_kit vs sbi",
        "",
        "10-d Gaussian of `benchmarks/compositional.py`, n = 30, the same 10,000 simulations; "
        "10,000 draws. sbi_kit: `sk.NPSE()` defaults, GAUSS composition. sbi: "
        "`sbi.inference.NPSE` defaults (VE SDE), its default i.i.d. method (auto_gauss). One "
        "core each. Training column: sbi_kit's posterior is the checkpoint of "
        "compositional.py when present (then it is the load time). C2ST / SW1: first "
        f"{EVAL:,} draws of the warm call against as many exact draws.",
        "",
        table(["library", "train s", "sample s (first)", "sample s (warm)", "C2ST", "SW1"], rows),
        "",
        f"Warm sampling, sbi / sbi_kit: {fmt(ratio, 1)}×." if both else "",
        "",
        machine_line(result),
    ]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / NAME)
    parser.add_argument("--fresh", action="store_true")
    args = parser.parse_args(argv)
    previous = None if args.fresh else read_json(args.out.with_suffix(".json"))
    result = {
        "benchmark": NAME,
        "machine": machine(),
        "versions": versions(["sbi_kit", "jax", "sbi", "torch"]),
        "settings": {"budget": BUDGET, "n_obs": N_OBS, "samples": NUM, "evaluated": EVAL},
        "runs": {} if previous is None else previous.get("runs", {}),
    }
    problem = PROBLEMS["gaussian10"]
    x_stack = problem.observations()[:N_OBS]
    ref = problem.reference(x_stack, EVAL)
    for lib, run in (("sbi_kit", run_sbi_kit), ("sbi", run_sbi)):
        if lib in result["runs"]:
            continue
        result["runs"][lib] = run(problem, x_stack, ref)
        print(lib, result["runs"][lib], flush=True)
        result["machine"] = machine()
        write_json(args.out.with_suffix(".json"), result)
        write_markdown(args.out.with_suffix(".md"), markdown(result))


if __name__ == "__main__":
    main()
