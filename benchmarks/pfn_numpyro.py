"""A PFN over a numpyro model: Bayesian linear regression, against the analytic posterior and NUTS.

    python benchmarks/pfn_numpyro.py                  # trains (resumable), then evaluates
    python benchmarks/pfn_numpyro.py --steps 3000 --out /tmp/blr   # the earlier, shorter run

The model is ``w ~ N(0, I_2)``, ``y ~ N(X w, 0.3²)`` with ``X ~ U[-1, 1]²`` (conjugate: the
posterior of ``w`` and the predictive of a new ``y`` are Gaussian and known). A PFN with a
parameter head is trained on ``sk.pfn.NumpyroPrior(model, input_dim=2)``; on held-out datasets
with 1 to 30 points it is compared with the analytic posterior (the head's marginals of ``w[0]``,
``w[1]``: mean error in posterior sd, sd ratio, NLL of the true ``w`` against the exact marginal's)
and with NUTS (the predictive NLL of 10 test points: PFN, NUTS mixture, exact). Results:
``benchmarks/results/pfn_numpyro.{json,md}``.
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
import numpyro
import numpyro.distributions as dist
from numpyro.infer import MCMC, NUTS

import sbi_kit as sk

NAME = "pfn_numpyro"
NOISE = 0.3
NUM_TEST = 10
CHECKPOINTS = Path(__file__).resolve().parent / "checkpoints"
CONFIG = sk.PFN(
    width=64,
    depth=3,
    num_heads=4,
    hidden=128,
    num_buckets=128,
    num_parameter_buckets=64,
    max_context=30,
    num_points=40,
    batch_size=64,
    learning_rate=1e-3,
    steps_per_call=100,
)
STEPS = 10_000
"""Gradient steps (64 datasets each); the checkpoint is ``checkpoints/blr_<steps>.ckpt``."""


def regression(X, y=None):
    """Bayesian linear regression through the origin with known noise."""
    w = numpyro.sample("w", dist.Normal(0.0, 1.0).expand([X.shape[1]]).to_event(1))
    numpyro.sample("y", dist.Normal(X @ w, NOISE).to_event(1), obs=y)


def exact_posterior(x, y):
    """Mean and covariance of w given (x, y)."""
    precision = np.eye(x.shape[1]) + x.T @ x / NOISE**2
    cov = np.linalg.inv(precision)
    return cov @ x.T @ y / NOISE**2, cov


def _stderr(values) -> float:
    return float(np.std(values) / math.sqrt(len(values)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=500)
    parser.add_argument("--nuts-datasets", type=int, default=30)
    parser.add_argument("--contexts", type=_report.parse_int_list, default=[1, 3, 10, 30])
    parser.add_argument("--steps", type=int, default=STEPS, help="(default: %(default)s)")
    parser.add_argument("--time-limit", type=float, default=None)
    parser.add_argument("--out", default=str(_report.RESULTS_DIR))
    args = parser.parse_args(argv)
    prior = sk.pfn.NumpyroPrior(regression, input_dim=2, x_low=-1.0, x_high=1.0)
    checkpoint = CHECKPOINTS / f"blr_{args.steps}.ckpt"
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    trained = CONFIG.fit(
        jax.random.key(0),
        prior,
        steps=args.steps,
        checkpoint=checkpoint,
        resume_from=checkpoint if checkpoint.exists() else None,
        time_limit=args.time_limit,
        metadata={"script": "benchmarks/pfn_numpyro.py", "seed": 0},
    )
    if not trained.complete:
        print(f"stopped at {trained.steps_done}/{trained.steps} steps; run again to resume")
        return
    keys = jax.random.split(jax.random.key(99), args.datasets)
    data = jax.jit(jax.vmap(lambda k: prior.sample(k, 30 + NUM_TEST)))(keys)
    x, y, w = (np.asarray(a, np.float64) for a in (data.x, data.y, data.parameters))
    mcmc = MCMC(
        NUTS(regression),
        num_warmup=500,
        num_samples=1000,
        progress_bar=False,
        jit_model_args=True,
    )
    rows = []
    for n in args.contexts:
        mean_err, sd_ratio, head_gap, pred_gap, nuts_gap, pfn_s, nuts_s = ([] for _ in range(7))
        for i in range(args.datasets):
            xc, yc, xq, yq = x[i, :n], y[i, :n], x[i, -NUM_TEST:], y[i, -NUM_TEST:]
            m, cov = exact_posterior(xc, yc)
            sd = np.sqrt(np.diag(cov))
            began = time.perf_counter()
            head = trained.parameter_posterior(xc, yc)
            predictive = trained.predict(xc, yc, xq)
            head_mean = np.asarray(head.mean)
            pfn_s.append(time.perf_counter() - began)
            mean_err.extend(np.abs(head_mean - m) / sd)
            sd_ratio.extend(np.sqrt(np.asarray(head.variance)) / sd)
            exact_head = -dist.Normal(m, sd).log_prob(w[i]).sum()
            head_gap.append(float(-head.log_prob(jnp.asarray(w[i])).sum() - exact_head))
            pm, pv = xq @ m, np.einsum("ij,jk,ik->i", xq, cov, xq) + NOISE**2
            exact_pred = -dist.Normal(pm, np.sqrt(pv)).log_prob(yq).mean()
            pred_gap.append(float(-predictive.log_prob(jnp.asarray(yq)).mean() - exact_pred))
            if i < args.nuts_datasets:
                began = time.perf_counter()
                mcmc.run(jax.random.key(i), jnp.asarray(xc), y=jnp.asarray(yc))
                draws = np.asarray(mcmc.get_samples()["w"], np.float64)
                nuts_s.append(time.perf_counter() - began)
                log_p = dist.Normal(draws @ xq.T, NOISE).log_prob(yq)  # (draws, NUM_TEST)
                mix = jax.scipy.special.logsumexp(log_p, 0) - math.log(draws.shape[0])
                nuts_gap.append(float(-mix.mean() - exact_pred))
        rows.append(
            {
                "context": n,
                "head_mean_error_sd_median": float(np.median(mean_err)),
                "head_mean_error_sd_90": float(np.quantile(mean_err, 0.9)),
                "head_sd_ratio_median": float(np.median(sd_ratio)),
                "head_nll_gap": float(np.mean(head_gap)),
                "head_nll_gap_stderr": float(np.std(head_gap) / math.sqrt(len(head_gap))),
                "pfn_predictive_nll_gap": float(np.mean(pred_gap)),
                "pfn_predictive_nll_gap_stderr": _stderr(pred_gap),
                "nuts_predictive_nll_gap": float(np.mean(nuts_gap)),
                "nuts_predictive_nll_gap_stderr": _stderr(nuts_gap),
                "pfn_seconds_per_dataset": float(np.median(pfn_s[1:])),
                "nuts_seconds_per_dataset": float(np.median(nuts_s[1:])),
            }
        )
        print(rows[-1], flush=True)
    result = {
        "machine": _report.machine(),
        "load_average": os.getloadavg(),
        "steps": trained.steps,
        "training_seconds": trained.history[-1][2],
        "settings": str(CONFIG),
        "datasets": args.datasets,
        "nuts_datasets": args.nuts_datasets,
        "rows": rows,
    }
    out = Path(args.out)
    _report.write_json(out / f"{NAME}.json", result)
    _report.write_markdown(out / f"{NAME}.md", markdown(result))


def markdown(r: dict) -> str:
    f = _report.fmt
    return "\n".join(
        [
            "# A PFN over a numpyro model: Bayesian linear regression",
            "",
            f"`w ~ N(0, I₂)`, `y ~ N(Xw, {NOISE}²)`, `X ~ U[-1, 1]²`; PFN trained "
            f"{r['steps']} steps ({f(r['training_seconds'], 0)} s) on "
            "`sk.pfn.NumpyroPrior(regression, input_dim=2)`. Parameter head against the exact "
            f"posterior on {r['datasets']} held-out datasets: absolute mean error in posterior sd "
            "(median, 90th percentile), sd ratio (median), and NLL of the true w (sum of the "
            "two marginals) minus the exact marginals' NLL. Predictive NLL per test point "
            f"({NUM_TEST} per dataset) minus the exact predictive's: PFN on all datasets, "
            f"NUTS (500 warm-up + 1000 draws) on the first {r['nuts_datasets']}. Times: median "
            "per dataset (PFN: head + predictive, two calls).",
            "",
            _report.table(
                [
                    "context",
                    "head abs. mean error / sd (median, 90 %)",
                    "head sd ratio",
                    "head NLL gap",
                    "PFN pred. NLL gap",
                    "NUTS pred. NLL gap",
                    "PFN s",
                    "NUTS s",
                ],
                [
                    [
                        str(row["context"]),
                        f"{row['head_mean_error_sd_median']:.2f}, "
                        f"{row['head_mean_error_sd_90']:.2f}",
                        f(row["head_sd_ratio_median"], 2),
                        f"{row['head_nll_gap']:+.3f} ± {row['head_nll_gap_stderr']:.3f}",
                        f"{row['pfn_predictive_nll_gap']:+.3f} ± "
                        f"{row['pfn_predictive_nll_gap_stderr']:.3f}",
                        f"{row['nuts_predictive_nll_gap']:+.3f} ± "
                        f"{row['nuts_predictive_nll_gap_stderr']:.3f}",
                        f"{row['pfn_seconds_per_dataset']:.2e}",
                        f"{row['nuts_seconds_per_dataset']:.2f}",
                    ]
                    for row in r["rows"]
                ],
            ),
            "",
            _report.machine_line(r),
        ]
    )


if __name__ == "__main__":
    main()
