"""LC-PFN against NUTS on the same parametric learning-curve prior.

    python benchmarks/lc_pfn.py                    # 1,000 curves for the PFN, 20 for NUTS

Curves of 100 epochs are drawn from ``sk.pfn.LearningCurvePrior`` (held-out seed), cut after
10, 20, 40 and 80 epochs; the score is the log-likelihood of the remaining epochs' values, per
point, averaged over curves (as in Adriaensen et al. 2023, table 1). The PFN is the shipped
``sk.PFN.pretrained("lc")``. The MCMC baseline is numpyro NUTS on ``learning_curve_model``
(the same prior, truncated as the PFN's prior is, and the Gaussian likelihood) with the
predictive of each remaining point the mixture over posterior draws of N(f_θ(t), σ²); NUTS runs
on the first ``--mcmc-curves`` curves (its run length is in the table), and the PFN's score is
reported on those curves too. Results: ``benchmarks/results/lc_pfn.{json,md}``.
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import time
from pathlib import Path

import _report
import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp
from numpyro.infer import MCMC, NUTS, Predictive, init_to_sample

import sbi_kit as sk

NAME = "lc_pfn"
EPOCHS = 100


def pfn_scores(trained, y, n):
    """Per-curve mean log-likelihood of epochs n+1..100 given epochs 1..n (one jitted call over
    all curves) and the warm seconds of that call."""
    net, borders = trained.net, trained.borders
    x = (jnp.arange(1, EPOCHS + 1, dtype=jnp.float32) / EPOCHS)[:, None]

    @jax.jit
    def run(y):
        def one(yd):
            logits, _ = net(x[:n], yd[:n], jnp.ones(n, bool), x[n:])
            return sk.pfn.BarDistribution(logits, borders).log_prob(yd[n:]).mean()

        return jax.vmap(one)(y)

    run(y).block_until_ready()
    began = time.perf_counter()
    out = run(y).block_until_ready()
    return np.asarray(out), time.perf_counter() - began


def single_latency(trained, y, n, repeats=20):
    """Warm wall time of one ``sk.pfn.extrapolate`` call (one curve, checks included)."""
    sk.pfn.extrapolate(trained, y[0, :n])
    began = time.perf_counter()
    for i in range(repeats):
        sk.pfn.extrapolate(trained, y[i, :n])
    return (time.perf_counter() - began) / repeats


class NutsScorer:
    """NUTS on the first n epochs of a curve, then the mean log predictive density of the rest;
    the sampler and the predictive compile once per cut-off (new curves reuse them)."""

    def __init__(self, n, args):
        self.n = n
        model = functools.partial(sk.pfn.learning_curve_model, num_epochs=EPOCHS)
        self.t_obs = jnp.arange(1.0, n + 1.0)
        t_new = jnp.arange(n + 1.0, EPOCHS + 1.0)
        self.mcmc = MCMC(
            NUTS(model, init_strategy=init_to_sample),
            num_warmup=args.nuts_warmup,
            num_samples=args.nuts_samples,
            num_chains=args.nuts_chains,
            chain_method="vectorized",
            progress_bar=False,
            jit_model_args=True,
        )

        @jax.jit
        def score(key, draws, y_rest):
            f = Predictive(model, posterior_samples=draws, return_sites=["f"])(key, t_new)["f"]
            sigma = draws["sigma"][:, None]
            z = (y_rest - f) / sigma
            log_p = -0.5 * z**2 - jnp.log(sigma) - 0.5 * math.log(2 * math.pi)
            return (logsumexp(log_p, axis=0) - math.log(f.shape[0])).mean()

        self.score = score

    def __call__(self, key, y):
        k_run, k_pred = jax.random.split(key)
        self.mcmc.run(k_run, self.t_obs, y=jnp.asarray(y[: self.n]))
        draws = self.mcmc.get_samples()
        divergences = int(np.asarray(self.mcmc.get_extra_fields()["diverging"]).sum())
        return float(self.score(k_pred, draws, jnp.asarray(y[self.n :]))), divergences


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="a .pfn/.ckpt file instead of 'lc'")
    parser.add_argument("--curves", type=int, default=1000)
    parser.add_argument("--mcmc-curves", type=int, default=20)
    parser.add_argument("--cutoffs", type=_report.parse_int_list, default=[10, 20, 40, 80])
    parser.add_argument("--nuts-warmup", type=int, default=500)
    parser.add_argument("--nuts-samples", type=int, default=500)
    parser.add_argument("--nuts-chains", type=int, default=2)
    parser.add_argument("--seed", type=int, default=2027)
    parser.add_argument("--out", default=str(_report.RESULTS_DIR))
    args = parser.parse_args(argv)
    trained = sk.PFN.pretrained("lc") if args.model is None else sk.pfn.load(args.model)
    prior = sk.pfn.LearningCurvePrior(num_epochs=EPOCHS)
    keys = jax.random.split(jax.random.key(args.seed), args.curves)
    y = np.asarray(jax.jit(jax.vmap(lambda k: prior.sample(k, EPOCHS)))(keys).y)
    rows = []
    for n in args.cutoffs:
        scores, seconds = pfn_scores(trained, jnp.asarray(y), n)
        m = args.mcmc_curves
        nuts, divergences, began = [], 0, time.perf_counter()
        scorer = NutsScorer(n, args)
        for i in range(m):
            s, d = scorer(jax.random.key(10_000 * n + i), y[i])
            nuts.append(s)
            divergences += d
            if i == 0:  # the first run compiles; time the others
                began = time.perf_counter()
        nuts_seconds = (time.perf_counter() - began) / max(m - 1, 1)
        nuts = np.asarray(nuts)
        diff = scores[:m] - nuts
        rows.append(
            {
                "cutoff": n,
                "pfn_ll": float(scores.mean()),
                "pfn_ll_stderr": float(scores.std(ddof=1) / math.sqrt(len(scores))),
                "pfn_ll_mcmc_curves": float(scores[:m].mean()),
                "nuts_ll": float(nuts.mean()),
                "difference": float(diff.mean()),
                "difference_stderr": float(diff.std(ddof=1) / math.sqrt(m)),
                "difference_median": float(np.median(diff)),
                "nuts_per_curve": nuts.tolist(),
                "pfn_per_curve": scores[:m].tolist(),
                "pfn_seconds_per_curve_batched": seconds / args.curves,
                "pfn_seconds_one_extrapolate": single_latency(trained, y, n),
                "nuts_seconds_per_curve": nuts_seconds,
                "nuts_divergences": divergences,
            }
        )
        print(rows[-1], flush=True)
        _write(args, trained, rows)


def _write(args, trained, rows) -> None:
    result = {
        "machine": _report.machine(),
        "load_average": os.getloadavg(),
        "model": args.model or "sk.PFN.pretrained('lc')",
        "steps_done": trained.steps_done,
        "steps": trained.steps,
        "training_seconds": trained.history[-1][2] if trained.history else None,
        "curves": args.curves,
        "mcmc_curves": args.mcmc_curves,
        "nuts": {
            "chains": args.nuts_chains,
            "warmup": args.nuts_warmup,
            "samples": args.nuts_samples,
            "sampler": "numpyro NUTS, init_to_sample, truncated prior as a factor",
        },
        "paper": {
            "lc_pfn_small": [1.65, 2.04, 2.35, 2.49],
            "mcmc_best": [1.64, 1.96, 2.29, 2.49],
            "cutoffs_percent": [10, 20, 40, 80],
        },
        "rows": rows,
    }
    out = Path(args.out)
    _report.write_json(out / f"{NAME}.json", result)
    _report.write_markdown(out / f"{NAME}.md", markdown(result))


def markdown(r: dict) -> str:
    f = _report.fmt
    nuts = r["nuts"]
    lines = [
        "# LC-PFN against NUTS on the learning-curve prior",
        "",
        f"Model: {r['model']} ({r['steps_done']}/{r['steps']} training steps, "
        f"{f(r['training_seconds'], 0)} s). Curves of 100 epochs from "
        f"`LearningCurvePrior` (held-out seed); score: mean log-likelihood per remaining point "
        f"(higher is better). PFN on {r['curves']} curves (± standard error) and on the first "
        f"{r['mcmc_curves']}, where NUTS ran ({nuts['chains']} chains × ({nuts['warmup']} "
        f"warm-up + {nuts['samples']} draws), {nuts['sampler']}). Difference = PFN − NUTS on "
        "the same curves. Goal: PFN ≥ NUTS at every cut-off, ≥ 1000× faster. The paper "
        "(small LC-PFN / best MCMC): 1.65 / 1.64, 2.04 / 1.96, 2.35 / 2.29, 2.49 / 2.49.",
        "",
        _report.table(
            [
                "cut-off (epochs)",
                "PFN (all curves)",
                "PFN (NUTS curves)",
                "NUTS",
                "PFN − NUTS (mean)",
                "PFN − NUTS (median)",
                "PFN s/curve (batched)",
                "PFN s (one extrapolate)",
                "NUTS s/curve",
                "speed-up (one call)",
                "divergences",
            ],
            [
                [
                    str(row["cutoff"]),
                    f"{row['pfn_ll']:.3f} ± {row['pfn_ll_stderr']:.3f}",
                    f(row["pfn_ll_mcmc_curves"]),
                    f(row["nuts_ll"]),
                    f"{row['difference']:+.3f} ± {row['difference_stderr']:.3f}",
                    f"{row['difference_median']:+.3f}",
                    f"{row['pfn_seconds_per_curve_batched']:.2e}",
                    f"{row['pfn_seconds_one_extrapolate']:.2e}",
                    f"{row['nuts_seconds_per_curve']:.2f}",
                    f"{row['nuts_seconds_per_curve'] / row['pfn_seconds_one_extrapolate']:.0f}×",
                    str(row["nuts_divergences"]),
                ]
                for row in r["rows"]
            ],
        ),
        "",
        _report.machine_line(r),
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
