"""Where GAUSS's error on the 10-d Gaussian at n = 100 comes from (issue #12's diagnosis).

The problem and network are ``benchmarks/compositional.py``'s ``gaussian10`` at 10,000
simulations (``--budget`` another; one ``sk.NPSE()``; ``--data-key`` picks the training set,
``--ensemble`` the number of members; with the defaults for budget and data key the network is
the one ``compositional.py`` trains). Three experiments, each printed as it finishes:

* ``bias``: the single-observation posteriors' mean errors (2,000 draws for each of 10 of the
  100 observations, against the exact x/2), then GAUSS at n = 10, 30, 100: mean error and sd
  ratio per dimension, sliced W1 and C2ST against exact draws.
* ``hybrid``: GAUSS at n with the learned single-observation score used only below (or only
  above) a diffusion time t*, the exact score elsewhere: which noise levels do the damage.
* ``gaussfit``: GAUSS at n with each observation's score replaced below t* by the score of a
  Gaussian fitted to that observation's learned posterior (mean and covariance of 1,000 draws,
  DPM-Solver++(2M), 20 steps); t* = 2 means the Gaussian fits everywhere, i.e. the exact
  product of the network's single-observation posteriors' Gaussian fits.

It reaches into sbi_kit's private composition helpers (the per-observation score and the
DPM-Solver++ moments) on purpose: it is a diagnosis of their internals, not a use of the API.
Results (the printed lines) are kept in ``benchmarks/results/composition_error_sources.md``.

    python benchmarks/composition_error_sources.py bias
    python benchmarks/composition_error_sources.py bias --ensemble 5
    python benchmarks/composition_error_sources.py bias --data-key 20000
    python benchmarks/composition_error_sources.py bias --budget 100000
    python benchmarks/composition_error_sources.py hybrid --n 100
    python benchmarks/composition_error_sources.py gaussfit --n 100
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from compositional import CHECKPOINTS, Gaussian10, sliced_wasserstein  # noqa: E402

import sbi_kit as sk  # noqa: E402
from sbi_kit.inference import GAUSS  # noqa: E402
from sbi_kit.inference._composition import sample_moments, standardized_prior  # noqa: E402

PROBLEM = Gaussian10()
BUDGET = 10_000


def trained(data_key: int, ensemble: int, budget: int = BUDGET):
    size = "" if budget == BUDGET else f"_b{budget}"
    path = CHECKPOINTS / f"error_sources_{data_key}{size}_e{ensemble}.sbi"
    if path.exists():
        return sk.load(path)
    theta, x = PROBLEM.simulate_single(jax.random.key(data_key), budget)
    began = time.perf_counter()
    posterior = sk.NPSE(ensemble_size=ensemble).fit(
        jax.random.key(1), theta, x, prior=PROBLEM.prior, progress=False
    )
    print(f"trained in {time.perf_counter() - began:.1f} s", flush=True)
    CHECKPOINTS.mkdir(parents=True, exist_ok=True)
    sk.save(path, posterior)
    return posterior


def report(label: str, theta: np.ndarray, xs: np.ndarray) -> None:
    n = xs.shape[0]
    mean, sd = xs.sum(0) / (n + 1), 1 / np.sqrt(n + 1)
    ref = PROBLEM.reference(xs, len(theta))
    err = (theta.mean(0) - mean) / sd
    print(
        f"{label}: |mean error|/sd rms {np.sqrt((err**2).mean()):.2f} max {np.abs(err).max():.2f}; "
        f"sd ratio {theta.std(0).mean() / sd:.2f}; SW1 {sliced_wasserstein(theta, ref):.3f}; "
        f"C2ST {sk.diagnostics.c2st(theta, ref):.3f}",
        flush=True,
    )


def bias(posterior) -> None:
    xs = PROBLEM.observations()
    errors = []
    for j in range(0, 100, 10):
        key = jax.random.fold_in(jax.random.key(5), j)
        draws = np.asarray(posterior.sample(key, jnp.asarray(xs[j]), 2000))
        errors.append(draws.mean(0) - xs[j] / 2)
    errors = np.array(errors)
    print(
        f"single-observation mean error: rms {np.sqrt((errors**2).mean()):.4f}; mean over "
        f"observations per dimension {np.round(errors.mean(0), 3).tolist()}",
        flush=True,
    )
    for n in (10, 30, 100):
        draws = np.asarray(posterior.sample(jax.random.key(11), jnp.asarray(xs[:n]), 1000))
        report(f"GAUSS n = {n}", draws, xs[:n])


class Composer:
    """GAUSS on the posterior's per-observation scores, with a replacement by diffusion time."""

    def __init__(self, posterior, n: int):
        self.post = posterior
        self.sde = posterior.method.sde
        self.loc = posterior.theta_standardizer.loc
        self.scale = posterior.theta_standardizer.scale
        self.xs = PROBLEM.observations()[:n]
        x = jnp.asarray(self.xs)
        x_std = jax.vmap(posterior.x_standardizer)(x)
        self.ctx = jax.vmap(
            lambda row: eqx.filter_vmap(lambda net: net.context(row))(posterior.net)
        )(x_std)
        self.x = x
        self.prior = standardized_prior(
            posterior.prior, posterior._transform(), posterior.theta_standardizer
        )

    def gaussian_score(self, y, t, mean, cov):
        m, s = self.sde.mean_coeff(t), self.sde.std(t)
        eye = jnp.eye(mean.shape[0])
        return -jnp.linalg.solve(m**2 * cov + s**2 * eye, y - m * mean)

    def exact_moments(self, xj):
        """The exact single-observation posterior N(x/2, I/2) in standardised coordinates."""
        return (xj / 2 - self.loc) / self.scale, jnp.diag(0.5 / self.scale**2)

    def fitted_moments(self, key):
        def one(c, k):
            return sample_moments(
                k, lambda y, t: self.post._obs_score(y, t, c), self.sde, self.loc.shape[0], 1000, 20
            )

        return jax.jit(jax.vmap(one))(self.ctx, jax.random.split(key, self.x.shape[0]))

    def run(self, label: str, replace_below: bool, t_star: float, moments) -> None:
        def score(y, t, c):
            ctx_j, mean, cov = c
            learned = self.post._obs_score(y, t, ctx_j)
            other = self.gaussian_score(y, t, mean, cov)
            use_other = (t < t_star) if replace_below else (t >= t_star)
            return jnp.where(use_other, other, learned)

        contexts = (self.ctx, *moments)
        sample = jax.jit(
            lambda k: GAUSS().sample(k, score, contexts, self.prior, self.sde, 1000)[0]
        )
        theta = np.asarray(self.loc + self.scale * sample(jax.random.key(11)))
        report(label, theta, self.xs)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment", choices=("bias", "hybrid", "gaussfit"))
    parser.add_argument("--budget", type=int, default=BUDGET, help="simulations (10,000)")
    parser.add_argument("--data-key", type=int, default=None, help="default: the budget")
    parser.add_argument("--ensemble", type=int, default=1)
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument(
        "--t-star",
        type=lambda text: [float(v) for v in text.split(",")],
        default=[0.0, 0.02, 0.05, 2.0],
        help="gaussfit: the diffusion times t* below which the fits replace the scores",
    )
    args = parser.parse_args(argv)
    data_key = args.budget if args.data_key is None else args.data_key
    posterior = trained(data_key, args.ensemble, args.budget)
    if args.experiment == "bias":
        bias(posterior)
        return
    composer = Composer(posterior, args.n)
    if args.experiment == "hybrid":
        exact = jax.vmap(composer.exact_moments)(composer.x)
        composer.run(f"n = {args.n}, learned nowhere", True, 2.0, exact)
        composer.run(f"n = {args.n}, learned everywhere", True, 0.0, exact)
        for t_star in (0.02, 0.05, 0.1, 0.2, 0.4):  # learned only below t*, exact above
            composer.run(f"n = {args.n}, learned below t* = {t_star}", False, t_star, exact)
        for t_star in (0.05, 0.2):  # learned only above t*, exact below
            composer.run(f"n = {args.n}, learned above t* = {t_star}", True, t_star, exact)
    else:
        fitted = composer.fitted_moments(jax.random.key(3))
        for t_star in args.t_star:
            composer.run(f"n = {args.n}, Gaussian fits below t* = {t_star}", True, t_star, fitted)


if __name__ == "__main__":
    main()
