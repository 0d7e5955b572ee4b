"""How often ``sk.diagnostics.predictive_check`` fails a right posterior, and how often a wrong one.

For each sbibm task and observation 1–10: ``m`` draws from the task's reference posterior
(sbibm's, or this library's own where it computed one), each moved by ``k`` posterior standard
deviations in every coordinate (``k = 0``: the reference itself; larger ``k``: a misplaced
posterior, the failure of an estimator that converged to the wrong place), simulated once each,
and the p-value of ``x_o`` among those replicates. At ``k = 0`` a p-value below the level is a
false alarm; at ``k > 0`` it is a detection. Draws that leave the prior's support are moved
back to it by the prior's own bijection (the shift is applied in the unconstrained space where
the prior is bounded).

Part B (``--sequential-observations``, e.g. ``4,6``): real failures. SNLE on lotka_volterra
with 1,000 simulations in 10 rounds, keyed as ``benchmarks/sbibm.py --method snle`` keys its
cells (the same posterior as ``sbibm_snle_b50p100_lv``), its C2ST against the reference, and the
check's p-value under ten keys (the replicates differ; the posterior does not).

Writes ``benchmarks/results/predictive_check.{json,md}``::

    python benchmarks/predictive_check.py [--replicates 200] [--shifts 0,0.5,1,2]
        [--sequential-observations 4,6]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import (  # noqa: E402
    RESULTS_DIR,
    fmt,
    machine,
    machine_line,
    table,
    versions,
    write_json,
    write_markdown,
)

NAME = "predictive_check"
TASKS = ("two_moons", "gaussian_linear", "slcp", "sir", "lotka_volterra")
LEVEL = 0.05


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", default=",".join(TASKS))
    p.add_argument("--replicates", type=int, default=200, help="m (default: %(default)s)")
    p.add_argument("--shifts", default="0,0.5,1,2", help="k values (default: %(default)s)")
    p.add_argument(
        "--sequential-observations",
        default="",
        help="part B: lotka_volterra observations for SNLE (default: none)",
    )
    p.add_argument("--out", type=Path, default=RESULTS_DIR / NAME)
    return p.parse_args(argv)


def p_values(sk, jax, task, shift: float, m: int) -> list[float]:
    """The check's p-value for observations 1–10 with the reference moved by ``shift`` sd."""
    import jax.numpy as jnp
    from numpyro.distributions import biject_to

    bijection = biject_to(task.prior.support)
    out = []
    for i in range(1, 11):
        reference = jnp.asarray(np.asarray(task.reference_samples(i))[:m])
        u = bijection.inv(reference)
        u = u + shift * jnp.std(u, axis=0)
        theta = bijection(u)
        sims = sk.simulate(jax.random.key(i), task, m, theta=theta, progress=False)
        check = sk.diagnostics.predictive_check(sims.x, task.observation(i), level=LEVEL)
        out.append(check.p_value)
    return out


def sequential_case(sk, jax, i: int, m: int) -> dict:
    """SNLE on lotka_volterra observation ``i`` as sbibm.py runs it; C2ST and ten checks."""
    task = sk.tasks.get("lotka_volterra")
    _, key_fit, key_sample = jax.random.split(jax.random.key(0), 3)
    x_o = task.observation(i)
    result = sk.sequential(
        jax.random.fold_in(key_fit, i),
        sk.NLE(),
        task,
        x_o,
        rounds=10,
        simulations_per_round=100,
        progress=False,
    )
    samples, mcmc = result.posterior.sample(
        jax.random.fold_in(key_sample, i), x_o, 10_000, return_diagnostics=True
    )
    c2st = sk.diagnostics.c2st(np.asarray(samples), task.reference_samples(i))
    p = [
        sk.diagnostics.posterior_predictive_check(
            jax.random.key(100 + k), result.posterior, task, x_o, num_simulations=m, warn=False
        ).p_value
        for k in range(10)
    ]
    reference = np.asarray(task.reference_samples(i))
    return {
        "c2st": c2st,
        "max_r_hat": mcmc.max_r_hat,
        "p_values": p,
        "posterior_mean": np.asarray(samples).mean(0).tolist(),
        "reference_mean": reference.mean(0).tolist(),
        "reference_sd": reference.std(0).tolist(),
    }


def markdown(result: dict) -> str:
    shifts = result["settings"]["shifts"]
    m = result["settings"]["replicates"]
    lines = [
        "# Posterior predictive check: false alarms and detections on the sbibm tasks",
        "",
        f"`sk.diagnostics.predictive_check` with {m} replicates simulated at draws of each "
        "task's reference posterior, moved by k of its standard deviations in every coordinate "
        "(in the prior's unconstrained space); observations 1–10 per task. A cell: how many of "
        f"the 10 p-values are below the level {LEVEL} (at k = 0: false alarms; k > 0: "
        "detections), and the median p-value.",
        "",
    ]
    head = ["task"] + [f"k = {k:g}: failed / median p" for k in shifts]
    body = []
    for task, by_shift in result["p_values"].items():
        row = [task]
        for k in shifts:
            ps = by_shift[f"{k:g}"]
            failed = sum(p < LEVEL for p in ps)
            row.append(f"{failed} / {fmt(float(np.median(ps)))}")
        body.append(row)
    lines += [table(head, body), "", "## Per observation", ""]
    for task, by_shift in result["p_values"].items():
        lines += [f"**{task}**", ""]
        rows = [[f"{k:g}"] + [fmt(p) for p in by_shift[f"{k:g}"]] for k in shifts]
        lines += [table(["k"] + [str(i) for i in range(1, 11)], rows), ""]
    cases = result.get("sequential", {})
    if cases:
        lines += [
            "## Real failures: SNLE on lotka_volterra, 1,000 simulations in 10 rounds",
            "",
            "The posteriors of `benchmarks/sbibm.py --method snle` (same keys); p-values of "
            f"`posterior_predictive_check` ({m} replicates) under ten keys.",
            "",
        ]
        rows = []
        for i, case in cases.items():
            ps = case["p_values"]
            rows.append(
                [
                    i,
                    fmt(case["c2st"]),
                    fmt(case["max_r_hat"], 2),
                    f"{sum(p < LEVEL for p in ps)} of {len(ps)}",
                    fmt(float(np.median(ps))),
                    f"{min(ps):.3f}–{max(ps):.3f}",
                    ", ".join(f"{v:.3g}" for v in case["posterior_mean"]),
                    ", ".join(
                        f"{v:.3g} ± {e:.2g}"
                        for v, e in zip(case["reference_mean"], case["reference_sd"], strict=True)
                    ),
                ]
            )
        head = ["observation", "C2ST", "max R̂", f"failed (p < {LEVEL})", "median p", "range"]
        head += ["posterior mean", "reference mean ± sd"]
        lines += [table(head, rows), ""]
    lines += [machine_line(result)]
    return "\n".join(lines)


def main(argv=None) -> None:
    args = parse_args(argv)
    import jax

    import sbi_kit as sk

    shifts = [float(s) for s in args.shifts.split(",")]
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    result = {
        "benchmark": NAME,
        "machine": machine(),
        "versions": versions(["sbi_kit", "jax", "numpyro"]),
        "settings": {"replicates": args.replicates, "shifts": shifts, "level": LEVEL},
        "p_values": {},
    }
    for name in tasks:
        task = sk.tasks.get(name)
        result["p_values"][name] = {
            f"{k:g}": p_values(sk, jax, task, k, args.replicates) for k in shifts
        }
        print(name, {k: np.round(v, 3).tolist() for k, v in result["p_values"][name].items()})
    observations = [int(i) for i in args.sequential_observations.split(",") if i.strip()]
    if observations:
        result["sequential"] = {}
    for i in observations:
        result["sequential"][str(i)] = sequential_case(sk, jax, i, args.replicates)
        print(f"SNLE lotka_volterra {i}", result["sequential"][str(i)], flush=True)
        write_json(args.out.with_suffix(".json"), result)
    write_json(args.out.with_suffix(".json"), result)
    write_markdown(args.out.with_suffix(".md"), markdown(result))
    print(f"wrote {args.out}.json and .md")


if __name__ == "__main__":
    main()
