"""GP-PFN against the exact GP predictive, and a hyperprior GP-PFN against NUTS.

    python benchmarks/pfn_gp.py                      # fixed hyperparameters, shipped "gp" model
    python benchmarks/pfn_gp.py --hyper              # + Matérn-5/2 with hyperpriors vs NUTS

Part 1: on held-out datasets of the shipped model's prior (RBF, length-scale 0.2, output-scale 1,
noise sd 0.1, x ~ U[0, 1]), the NLL per test point of the PFN's predictive against the exact GP
posterior predictive (float64 Cholesky), for 2, 5, 10, 20 and 50 context points; ten test points
per dataset. Part 2 (``--hyper``): a PFN trained on ``GPHyperPrior`` (Matérn-5/2 with Gamma
hyperpriors; ``python benchmarks/train_pfn.py gp_hyper``) against NUTS over the three
hyperparameters with the GP marginal likelihood (the predictive is the mixture of the exact GP
predictives over the posterior draws), with wall time per dataset. Results:
``benchmarks/results/pfn_gp.{json,md}``.
"""

from __future__ import annotations

import argparse
import math
import os
import time
from pathlib import Path

import _report
import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist

import sbi_kit as sk

CHECKPOINTS = Path(__file__).resolve().parent / "checkpoints"
NAME = "pfn_gp"
NUM_TEST = 10


def _pfn_nll(trained, x, y, n):
    """Per-dataset mean NLL of the test points (the last NUM_TEST) given the first n, for all
    datasets in one jitted call; returns (nll (num_datasets,), seconds of the warm call)."""
    net, borders = trained.net, trained.borders

    @jax.jit
    def run(x, y):
        def one(xd, yd):
            logits, _ = net(xd[:n], yd[:n], jnp.ones(n, bool), xd[-NUM_TEST:])
            return -sk.pfn.BarDistribution(logits, borders).log_prob(yd[-NUM_TEST:]).mean()

        return jax.vmap(one)(x, y)

    run(x, y).block_until_ready()
    began = time.perf_counter()
    out = run(x, y).block_until_ready()
    return np.asarray(out), time.perf_counter() - began


def _single_latency(trained, x, y, n, repeats=20):
    """Warm wall time of one ``trained.predict`` call (one dataset, checks included)."""
    q = x[0, -NUM_TEST:]
    trained.predict(x[0, :n], y[0, :n], q).mean.block_until_ready()
    began = time.perf_counter()
    for i in range(repeats):
        trained.predict(x[i, :n], y[i, :n], q).mean.block_until_ready()
    return (time.perf_counter() - began) / repeats


def _gaussian_nll(y, mean, var):
    return 0.5 * np.log(2 * np.pi * var) + (y - mean) ** 2 / (2 * var)


def fixed_part(args) -> dict:
    trained = sk.PFN.pretrained("gp") if args.model is None else sk.pfn.load(args.model)
    kernel, noise = sk.pfn.RBF(lengthscale=0.2, outputscale=1.0), 0.1
    prior = sk.pfn.GPPrior(kernel, noise_std=noise)
    keys = jax.random.split(jax.random.key(args.seed), args.datasets)
    data = jax.jit(jax.vmap(lambda k: prior.sample(k, 50 + NUM_TEST)))(keys)
    x, y = np.asarray(data.x), np.asarray(data.y)
    rows = []
    for n in args.contexts:
        pfn_nll, pfn_seconds = _pfn_nll(trained, jnp.asarray(x), jnp.asarray(y), n)
        began = time.perf_counter()
        exact = []
        for i in range(args.datasets):
            m, v = sk.pfn.gp_predictive(kernel, noise, x[i, :n], y[i, :n], x[i, -NUM_TEST:])
            exact.append(_gaussian_nll(y[i, -NUM_TEST:], m, v).mean())
        exact_seconds = time.perf_counter() - began
        exact = np.asarray(exact)
        gap = pfn_nll - exact
        rows.append(
            {
                "context": n,
                "pfn_nll": float(pfn_nll.mean()),
                "exact_nll": float(exact.mean()),
                "gap": float(gap.mean()),
                "gap_stderr": float(gap.std(ddof=1) / math.sqrt(len(gap))),
                "pfn_seconds_per_dataset_batched": pfn_seconds / args.datasets,
                "pfn_seconds_single_predict": _single_latency(trained, x, y, n),
                "exact_seconds_per_dataset": exact_seconds / args.datasets,
            }
        )
        print(rows[-1], flush=True)
    return {
        "model": args.model or "sk.PFN.pretrained('gp')",
        "steps_done": trained.steps_done,
        "steps": trained.steps,
        "training_seconds": trained.history[-1][2] if trained.history else None,
        "datasets": args.datasets,
        "rows": rows,
    }


def _marginal_log_likelihood(theta, x, y):
    """log N(y | 0, k_Matérn(x, x; ℓ, s) + σ² I) in float32 with a small jitter."""
    kernel = sk.pfn.Matern52(theta[0], theta[1])
    cov = kernel.gram(x, x) + (theta[2] ** 2 + 1e-6) * jnp.eye(x.shape[0])
    chol = jnp.linalg.cholesky(cov)
    alpha = jax.scipy.linalg.solve_triangular(chol, y, lower=True)
    return -0.5 * alpha @ alpha - jnp.log(jnp.diag(chol)).sum() - 0.5 * len(y) * jnp.log(2 * jnp.pi)


def _predictive_nll(draws, x, y, xq, yq):
    """−log of the mixture over posterior draws of the GP predictive, per test point, mean."""

    def one(theta):
        kernel = sk.pfn.Matern52(theta[0], theta[1])
        cov = kernel.gram(x, x) + (theta[2] ** 2 + 1e-6) * jnp.eye(x.shape[0])
        k_star = kernel.gram(x, xq)
        chol = jnp.linalg.cholesky(cov)
        a = jax.scipy.linalg.cho_solve((chol, True), k_star)
        mean = a.T @ y
        var = theta[1] - jnp.sum(k_star * a, 0) + theta[2] ** 2
        return dist.Normal(mean, jnp.sqrt(jnp.maximum(var, 1e-10))).log_prob(yq)

    log_p = jax.vmap(one)(draws)  # (draws, NUM_TEST)
    return -(jax.scipy.special.logsumexp(log_p, 0) - jnp.log(draws.shape[0])).mean()


def hyper_part(args) -> dict:
    path = Path(args.hyper_model)
    trained = sk.pfn.load(path)
    prior = sk.pfn.GPHyperPrior()
    hyper = dist.Gamma(jnp.array([3.0, 2.0, 2.0]), jnp.array([6.0, 2.0, 20.0])).to_event(
        1
    )  # GPHyperPrior's defaults, as one distribution over (ℓ, s, σ)
    keys = jax.random.split(jax.random.key(args.seed + 1), args.hyper_datasets)
    data = jax.jit(jax.vmap(lambda k: prior.sample(k, 50 + NUM_TEST)))(keys)
    x, y = jnp.asarray(data.x), jnp.asarray(data.y)
    mcmc = dict(num_chains=4, num_warmup=args.nuts_warmup, num_draws=args.nuts_draws)
    rows = []
    for n in args.contexts:
        pfn_nll, pfn_seconds = _pfn_nll(trained, x, y, n)

        def nuts_one(key, xd, yd, n=n):
            xc, yc = xd[:n], yd[:n]
            density = jax.tree_util.Partial(
                lambda xc, yc, th: _marginal_log_likelihood(th, xc, yc) + hyper.log_prob(th),
                xc,
                yc,
            )
            chains, divergent = sk.mcmc.run_chains(key, density, hyper, **mcmc)
            draws = chains.reshape(-1, 3)
            return _predictive_nll(draws, xc, yc, xd[-NUM_TEST:], yd[-NUM_TEST:]), divergent

        run = jax.jit(nuts_one)
        k = jax.random.split(jax.random.key(args.seed + 2 + n), args.hyper_datasets)
        run(k[0], x[0], y[0])[0].block_until_ready()  # compile
        began = time.perf_counter()
        out = [run(k[i], x[i], y[i]) for i in range(args.hyper_datasets)]
        nuts_nll = np.asarray([float(o[0]) for o in out])
        nuts_seconds = (time.perf_counter() - began) / args.hyper_datasets
        divergences = int(sum(int(o[1]) for o in out))
        gap = pfn_nll - nuts_nll
        rows.append(
            {
                "context": n,
                "pfn_nll": float(pfn_nll.mean()),
                "nuts_nll": float(nuts_nll.mean()),
                "gap": float(gap.mean()),
                "gap_stderr": float(gap.std(ddof=1) / math.sqrt(len(gap))),
                "pfn_seconds_per_dataset_batched": pfn_seconds / args.hyper_datasets,
                "pfn_seconds_single_predict": _single_latency(trained, x, y, n),
                "nuts_seconds_per_dataset": nuts_seconds,
                "nuts_divergences": divergences,
            }
        )
        print(rows[-1], flush=True)
    return {
        "model": str(path),
        "steps_done": trained.steps_done,
        "steps": trained.steps,
        "training_seconds": trained.history[-1][2] if trained.history else None,
        "datasets": args.hyper_datasets,
        "nuts": {**mcmc, "sampler": "sk.mcmc.NUTS (numpyro), one dataset per call"},
        "rows": rows,
    }


def markdown(result: dict) -> str:
    f = _report.fmt
    out = ["# GP-PFN against the exact GP and NUTS", ""]
    fixed = result["fixed"]
    out += [
        f"Model: {fixed['model']} ({fixed['steps_done']}/{fixed['steps']} training steps, "
        f"{f(fixed['training_seconds'], 0)} s). Prior: RBF length-scale 0.2, output-scale 1, "
        f"noise sd 0.1, x ~ U[0, 1]. {fixed['datasets']} held-out datasets, {NUM_TEST} test "
        "points each; NLL per test point (nats, mean over datasets; gap ± standard error). "
        "PFN time: one jitted call over all datasets divided by their number, and one warm "
        "`predict` call; exact: float64 Cholesky in NumPy per dataset. Goal: gap ≤ 0.05.",
        "",
    ]
    out.append(
        _report.table(
            [
                "context",
                "PFN NLL",
                "exact NLL",
                "gap",
                "PFN s/dataset (batched)",
                "PFN s (one predict)",
                "exact s/dataset",
            ],
            [
                [
                    str(r["context"]),
                    f(r["pfn_nll"]),
                    f(r["exact_nll"]),
                    f"{r['gap']:+.3f} ± {r['gap_stderr']:.3f}",
                    f"{r['pfn_seconds_per_dataset_batched']:.2e}",
                    f"{r['pfn_seconds_single_predict']:.2e}",
                    f"{r['exact_seconds_per_dataset']:.2e}",
                ]
                for r in fixed["rows"]
            ],
        )
    )
    hyper = result.get("hyper")
    if hyper:
        out += [
            "",
            "## With hyperpriors: Matérn-5/2, Gamma priors on length-scale, output-scale, noise",
            "",
            f"Model: {hyper['model']} ({hyper['steps_done']}/{hyper['steps']} steps, "
            f"{f(hyper['training_seconds'], 0)} s of training). {hyper['datasets']} datasets "
            f"from the same prior. NUTS: {hyper['nuts']['num_chains']} chains × "
            f"({hyper['nuts']['num_warmup']} warm-up + {hyper['nuts']['num_draws']} draws) on "
            "the marginal likelihood; predictive = mixture of exact GP predictives over the "
            "draws. Goal: PFN NLL ≤ NUTS NLL at ≥ 1000× less time per dataset.",
            "",
            _report.table(
                [
                    "context",
                    "PFN NLL",
                    "NUTS NLL",
                    "gap",
                    "PFN s/dataset (batched)",
                    "PFN s (one predict)",
                    "NUTS s/dataset",
                    "speed-up (one predict)",
                    "divergences",
                ],
                [
                    [
                        str(r["context"]),
                        f(r["pfn_nll"]),
                        f(r["nuts_nll"]),
                        f"{r['gap']:+.3f} ± {r['gap_stderr']:.3f}",
                        f"{r['pfn_seconds_per_dataset_batched']:.2e}",
                        f"{r['pfn_seconds_single_predict']:.2e}",
                        f"{r['nuts_seconds_per_dataset']:.2e}",
                        f"{r['nuts_seconds_per_dataset'] / r['pfn_seconds_single_predict']:.0f}×",
                        str(r["nuts_divergences"]),
                    ]
                    for r in hyper["rows"]
                ],
            ),
        ]
    out += ["", _report.machine_line(result)]
    return "\n".join(out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="a .pfn/.ckpt file instead of 'gp'")
    parser.add_argument("--datasets", type=int, default=1000)
    parser.add_argument("--contexts", type=_report.parse_int_list, default=[2, 5, 10, 20, 50])
    parser.add_argument("--hyper", action="store_true")
    parser.add_argument("--hyper-model", default=str(CHECKPOINTS / "gp_hyper.ckpt"))
    parser.add_argument("--hyper-datasets", type=int, default=50)
    parser.add_argument("--nuts-warmup", type=int, default=300)
    parser.add_argument("--nuts-draws", type=int, default=250)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--out", type=Path, default=_report.RESULTS_DIR)
    args = parser.parse_args(argv)
    result = {
        "machine": _report.machine(),
        "load_average": os.getloadavg(),
        "fixed": fixed_part(args),
    }
    if args.hyper:
        result["hyper"] = hyper_part(args)
    _report.write_json(args.out / f"{NAME}.json", result)
    _report.write_markdown(args.out / f"{NAME}.md", markdown(result))


if __name__ == "__main__":
    main()
