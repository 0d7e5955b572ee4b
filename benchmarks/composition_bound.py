"""How well can *any* single-observation estimator compose on the 10-d Gaussian? (issue #12)

``benchmarks/compositional.py``'s ``gaussian10`` problem (prior N(0, I₁₀), x | θ ~ N(θ, I₁₀),
the same stack of 100 observations). Every compositional method here learns the posterior of
one observation from a budget of single-observation simulations and multiplies n of them. This
script replaces the network by the best estimator there is for this problem: the exact
parametric family θ | x ~ N(A x + b, S), fitted by least squares (the maximum-likelihood fit)
on the same simulations, composed exactly (product of the n Gaussians with the prior counted
once: precision n S⁻¹ − (n − 1) I). What is left is the statistical error of the simulations
themselves, amplified by the composition, which no network trained on them can be expected to
beat.

Per budget (10³, 10⁴, 10⁵) and n (1, 10, 30, 100), over ``--datasets`` training sets (the first
is the one ``compositional.py`` uses, key ``budget``; the others fold 1, 2, … into it):

* the composed mean's error in the exact posterior's standard deviations (Mahalanobis norm),
* the composed standard deviations over the exact ones (smallest and largest),
* the Bayes-optimal two-sample classifier's accuracy between the fitted and the exact
  posterior (the likelihood-ratio classifier, Monte Carlo over 200,000 draws of each): the
  C2ST that a perfect classifier would reach, median and range over the training sets,
* for the first training set, ``sk.diagnostics.c2st`` (sbibm's classifier) on 1,000 draws
  against 1,000 exact ones, as ``compositional.py`` measures its cells.

Results: ``benchmarks/results/composition_bound.{json,md}``; about four minutes on one core.

    python benchmarks/composition_bound.py
    python benchmarks/composition_bound.py --datasets 5 --out /tmp/bound_quick
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import (  # noqa: E402
    RESULTS_DIR,
    machine,
    machine_line,
    parse_int_list,
    table,
    versions,
    write_json,
    write_markdown,
)
from compositional import Gaussian10  # noqa: E402

import sbi_kit as sk  # noqa: E402

NAME = "composition_bound"
PROBLEM = Gaussian10()
DIM = PROBLEM.prior.event_shape[0]  # d = 10


def fitted_family(key, budget: int):
    """Least-squares fit of θ | x ~ N(A x + b, S) on ``budget`` simulations: (coef, S)."""
    theta, x = PROBLEM.simulate_single(key, budget)
    theta, x = np.asarray(theta, np.float64), np.asarray(x, np.float64)
    design = np.hstack([x, np.ones((budget, 1))])
    coef, *_ = np.linalg.lstsq(design, theta, rcond=None)
    resid = theta - design @ coef
    return coef, resid.T @ resid / (budget - DIM - 1)


def composed(coef, s, xs: np.ndarray):
    """Exact product of the n fitted single-observation Gaussians, prior N(0, I) counted once."""
    n = len(xs)
    means = np.hstack([xs, np.ones((n, 1))]) @ coef
    precision = np.linalg.inv(s)
    cov = np.linalg.inv(n * precision - (n - 1) * np.eye(DIM))
    return cov @ (precision @ means.sum(0)), cov


def log_normal(z, mean, cov):
    chol = np.linalg.cholesky(cov)
    white = np.linalg.solve(chol, (z - mean).T)
    return -0.5 * (white**2).sum(0) - np.log(np.diag(chol)).sum()


def bayes_c2st(rng, mean_a, cov_a, mean_b, cov_b, num: int = 200_000) -> float:
    """Accuracy of the likelihood-ratio classifier between two Gaussians, equal classes."""
    a = rng.multivariate_normal(mean_a, cov_a, num)
    b = rng.multivariate_normal(mean_b, cov_b, num)
    right_a = log_normal(a, mean_a, cov_a) > log_normal(a, mean_b, cov_b)
    right_b = log_normal(b, mean_b, cov_b) > log_normal(b, mean_a, cov_a)
    return float(0.5 * (right_a.mean() + right_b.mean()))


def run(budgets, ns, datasets: int) -> dict:
    observations = np.asarray(PROBLEM.observations(), np.float64)
    rng = np.random.default_rng(0)
    cells = {}
    for budget in budgets:
        base = jax.random.key(budget)
        keys = [base] + [jax.random.fold_in(base, i) for i in range(1, datasets)]
        fits = [fitted_family(k, budget) for k in keys]
        for n in ns:
            xs = observations[:n]
            exact_mean, exact_cov = xs.sum(0) / (n + 1), np.eye(DIM) / (n + 1)
            posteriors = [composed(coef, s, xs) for coef, s in fits]
            errors, ratios, optimal = [], [], []
            for mean, cov in posteriors:
                diff = mean - exact_mean
                errors.append(float(np.sqrt(diff @ np.linalg.solve(exact_cov, diff))))
                ratios.append(np.sqrt(np.diag(cov) * (n + 1)))
                optimal.append(bayes_c2st(rng, mean, cov, exact_mean, exact_cov))
            mean, cov = posteriors[0]  # the first training set, compositional.py's
            draws = rng.multivariate_normal(mean, cov, 1000).astype(np.float32)
            exact = rng.multivariate_normal(exact_mean, exact_cov, 1000).astype(np.float32)
            cells[f"{budget}/{n}"] = {
                "mean_error_sd": errors,
                "sd_ratio_min": float(np.min(ratios)),
                "sd_ratio_max": float(np.max(ratios)),
                "bayes_c2st": optimal,
                "c2st_first_dataset": float(sk.diagnostics.c2st(draws, exact)),
            }
            print(budget, n, cells[f"{budget}/{n}"]["c2st_first_dataset"], flush=True)
    return cells


def markdown(result: dict) -> str:
    s = result["settings"]
    lines = [
        "# The best any single-observation estimator can compose: the 10-d Gaussian",
        "",
        "Problem gaussian10 of `benchmarks/compositional.py` (the same 100 observations). "
        "The single-observation posterior is the exact family θ | x ~ N(A x + b, S) fitted by "
        "least squares on the budget's simulations, composed exactly. Over "
        f"{s['datasets']} training sets (the first is `compositional.py`'s): the composed "
        "mean's error in exact posterior sds (Mahalanobis), median (range); the composed sds "
        "over the exact (extremes over sets and dimensions); the Bayes-optimal classifier's "
        "accuracy (the C2ST a perfect classifier reaches), median (range); and "
        "`sk.diagnostics.c2st` (sbibm's classifier, 1,000 vs 1,000 draws) on the first set.",
        "",
    ]
    header = ["budget", "n", "mean error (sd)", "sd ratio", "Bayes-optimal C2ST", "C2ST, set 1"]
    rows = []
    for budget in s["budgets"]:
        for n in s["n"]:
            c = result["cells"][f"{budget}/{n}"]
            e, b = np.asarray(c["mean_error_sd"]), np.asarray(c["bayes_c2st"])
            rows.append(
                [
                    f"{budget:,}",
                    str(n),
                    f"{np.median(e):.2f} ({e.min():.2f}–{e.max():.2f})",
                    f"{c['sd_ratio_min']:.2f}–{c['sd_ratio_max']:.2f}",
                    f"{np.median(b):.3f} ({b.min():.3f}–{b.max():.3f})",
                    f"{c['c2st_first_dataset']:.3f}",
                ]
            )
    lines.append(table(header, rows))
    lines += ["", machine_line(result), ""]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", type=parse_int_list, default=[1000, 10000, 100000])
    parser.add_argument("--n", type=parse_int_list, default=[1, 10, 30, 100])
    parser.add_argument("--datasets", type=int, default=20)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / NAME)
    args = parser.parse_args(argv)
    result = {
        "benchmark": NAME,
        "machine": machine(),
        "versions": versions(["sbi_kit", "jax", "numpy"]),
        "settings": {"budgets": args.budgets, "n": args.n, "datasets": args.datasets},
        "cells": run(args.budgets, args.n, args.datasets),
    }
    write_json(args.out.with_suffix(".json"), result)
    write_markdown(args.out.with_suffix(".md"), markdown(result))


if __name__ == "__main__":
    main()
