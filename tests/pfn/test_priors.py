"""Dataset priors for PFNs: GP (fixed and hyper-priors), BNN, LC-PFN learning curves, numpyro.

Monte-Carlo checks state their tolerance in standard errors (se) of the estimate; exact checks
(the GP predictive against two independent float64 computations) in relative error.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
import scipy.stats
from numpyro.infer.util import log_density

from sbi_kit.pfn._bnn import BNNPrior
from sbi_kit.pfn._gp import RBF, AbstractKernel, GPHyperPrior, GPPrior, Matern52, gp_predictive
from sbi_kit.pfn._learning_curve import (
    _FALLBACK,
    PARAMETER_NAMES,
    LearningCurvePrior,
    _curve,
    _draw,
    _is_valid,
    _unflatten,
    learning_curve_model,
)
from sbi_kit.pfn._numpyro_prior import NumpyroPrior
from sbi_kit.pfn._prior import AbstractDatasetPrior, Dataset

SIGMA = 0.1  # noise of the Bayesian linear regression


def linreg(X, y=None):
    """Bayesian linear regression: w ~ N(0, I_d), y ~ N(X w, SIGMA²)."""
    w = numpyro.sample("w", dist.Normal(0.0, 1.0).expand([X.shape[1]]).to_event(1))
    numpyro.sample("y", dist.Normal(X @ w, SIGMA).to_event(1), obs=y)


def hierarchical(X, y=None):
    """A global scale and one local latent per point."""
    tau = numpyro.sample("tau", dist.HalfNormal(1.0))
    with numpyro.plate("data", X.shape[0]):
        z = numpyro.sample("z", dist.Normal(0.0, tau))
        numpyro.sample("y", dist.Normal(z + X[:, 0], 0.1), obs=y)


@functools.partial(jax.jit, static_argnums=2)
def _batch(prior: AbstractDatasetPrior, keys, num_points: int) -> Dataset:
    """Datasets for each key; the prior is an argument, so priors that differ only in their
    numbers share one compilation."""
    return jax.vmap(lambda k: prior.sample(k, num_points))(keys)


def _keys(seed: int, num: int):
    """``num`` keys whose first two are equal (for the same-key check)."""
    keys = jax.random.split(jax.random.key(seed), num - 1)
    return jnp.concatenate([keys[:1], keys])


# name: (prior, datasets, points, x box); one batch per prior serves the contract and its
# statistical test (compiling is most of this file's time)
SETUPS = {
    "gp": (GPPrior(RBF(0.2, 1.0), 0.1), 32, 100, (0.0, 1.0)),
    "gp_hyper": (GPHyperPrior(input_dim=2, x_low=-1.0, x_high=2.0), 4000, 3, (-1.0, 2.0)),
    "bnn": (BNNPrior(), 1000, 30, (0.0, 1.0)),
    "learning_curve": (LearningCurvePrior(num_epochs=100), 3000, 40, (0.0, 1.0)),
    "numpyro": (NumpyroPrior(linreg, input_dim=2), 4000, 20, (0.0, 1.0)),
}


@functools.cache
def _draws(name: str) -> Dataset:
    prior, num, n, _ = SETUPS[name]
    return _batch(prior, _keys(10 + len(name), num), n)


# --- the shared contract -------------------------------------------------------------------


@pytest.mark.parametrize("name", list(SETUPS))
def test_contract_shapes_finite_keys(name):
    """Shapes, finiteness, x in its box; in one jit(vmap): same key -> same dataset, other keys
    -> different datasets."""
    prior, num, n, (low, high) = SETUPS[name]
    data = _draws(name)
    assert data.x.shape == (num, n, prior.input_dim) and data.y.shape == (num, n)
    assert bool(jnp.all(jnp.isfinite(data.x))) and bool(jnp.all(jnp.isfinite(data.y)))
    assert float(data.x.min()) >= low and float(data.x.max()) <= high
    np.testing.assert_array_equal(data.x[0], data.x[1])
    np.testing.assert_array_equal(data.y[0], data.y[1])
    assert float(jnp.min(jnp.abs(data.y[1] - data.y[2]))) > 0.0
    assert float(jnp.min(jnp.abs(data.y[2] - data.y[3]))) > 0.0
    names = prior.parameter_names
    if names:
        assert data.parameters is not None
        assert data.parameters.shape == (num, len(names))
        assert bool(jnp.all(jnp.isfinite(data.parameters)))
    else:
        assert data.parameters is None


# --- GP ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kernel", [RBF(0.3, 1.5), Matern52(0.4, 0.7)], ids=["rbf", "matern52"])
def test_gp_prior_covariance_matches_kernel_plus_noise(kernel):
    """Empirical covariance of y at 4 fixed inputs vs k(x, x) + σ² I: every entry within 5 se
    (se² = (Σ_ii Σ_jj + Σ_ij²) / N for a Gaussian), N = 20 000."""
    noise = 0.2
    prior = GPPrior(kernel, noise)
    x = jnp.array([[0.05], [0.2], [0.5], [0.9]])
    n = 20_000
    keys = jax.random.split(jax.random.key(1), n)
    y = np.asarray(jax.jit(jax.vmap(lambda k: prior.sample_y(k, x)))(keys), dtype=np.float64)
    cov = np.asarray(kernel.gram(x, x), dtype=np.float64) + noise**2 * np.eye(4)
    emp = np.cov(y, rowvar=False)
    se = np.sqrt((np.outer(np.diag(cov), np.diag(cov)) + cov**2) / n)
    assert np.all(np.abs(emp - cov) < 5 * se), (emp, cov)
    assert np.all(np.abs(y.mean(0)) < 5 * np.sqrt(np.diag(cov) / n))


def test_gp_prior_float32_singular_kernel_stays_finite():
    """Noise 0 and a long lengthscale: K is singular in float32; the jitter ladder keeps y
    finite, with variance k(x, x) = 1 over 32 datasets of 100 points (within 4 se)."""
    prior = GPPrior(RBF(2.0, 1.0), 0.0)
    data = _batch(prior, jax.random.split(jax.random.key(2), 32), 100)  # compiled for "gp"
    assert bool(jnp.all(jnp.isfinite(data.y)))
    assert abs(float(jnp.var(data.y[:, 0])) - 1.0) < 4 * math.sqrt(2 / 32)


def _np_rbf(a, b, lengthscale, outputscale):
    d2 = ((a[:, None, :] - b[None, :, :]) / lengthscale) ** 2
    return outputscale * np.exp(-0.5 * d2.sum(-1))


def _np_matern52(a, b, lengthscale, outputscale):
    r = np.sqrt((((a[:, None, :] - b[None, :, :]) / lengthscale) ** 2).sum(-1))
    return outputscale * (1 + np.sqrt(5) * r + 5 * r**2 / 3) * np.exp(-np.sqrt(5) * r)


GP_CASES = [
    (RBF(0.3, 1.3), lambda a, b: _np_rbf(a, b, 0.3, 1.3)),
    (
        Matern52(np.array([0.5, 0.2]), 0.8),
        lambda a, b: _np_matern52(a, b, np.array([0.5, 0.2]), 0.8),
    ),
]


@pytest.mark.parametrize(("kernel", "np_kernel"), GP_CASES, ids=["rbf", "matern52_ard"])
def test_gp_predictive_matches_brute_force_and_joint_gaussian(kernel, np_kernel):
    """Against (a) the formula with an explicit inverse and (b) conditioning the joint Gaussian
    of (y_context, y_query) by a linear solve: relative error < 1e-8 (float64)."""
    rng = np.random.default_rng(0)
    xc, xq = rng.uniform(size=(7, 2)), rng.uniform(size=(5, 2))
    yc = rng.normal(size=7)
    noise = 0.15
    mean, var = gp_predictive(kernel, noise, xc, yc, xq)
    assert mean.dtype == np.float64 and var.dtype == np.float64

    k_cc = np_kernel(xc, xc) + noise**2 * np.eye(7)
    k_cq, k_qq = np_kernel(xc, xq), np_kernel(xq, xq)
    inv = np.linalg.inv(k_cc)
    np.testing.assert_allclose(mean, k_cq.T @ inv @ yc, rtol=1e-8, atol=1e-12)
    brute_var = np.diag(k_qq) - np.einsum("iq,ij,jq->q", k_cq, inv, k_cq) + noise**2
    np.testing.assert_allclose(var, brute_var, rtol=1e-8)

    # the JAX evaluations (float32) used by the samplers agree with the same formulas
    gram, one = jax.jit(lambda a, b: (kernel.gram(a, b), kernel(a[0], b[1])))(xc, xq)
    np.testing.assert_allclose(gram, k_cq, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(one, k_cq[0, 1], rtol=1e-5, atol=1e-6)

    joint = np.block([[k_cc, k_cq], [k_cq.T, k_qq + noise**2 * np.eye(5)]])
    s_cc, s_cq, s_qq = joint[:7, :7], joint[:7, 7:], joint[7:, 7:]
    cond_mean = s_cq.T @ np.linalg.solve(s_cc, yc)
    cond_cov = s_qq - s_cq.T @ np.linalg.solve(s_cc, s_cq)
    np.testing.assert_allclose(mean, cond_mean, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(var, np.diag(cond_cov), rtol=1e-8)


class _Linear(AbstractKernel):
    """A non-stationary kernel: gp_predictive evaluates it in JAX with x64."""

    variance: float = 0.5

    def __call__(self, x1, x2):
        return self.variance * jnp.dot(x1, x2) + 0.1


def test_gp_predictive_generic_kernel_in_float64():
    """A kernel that is not stationary goes through JAX x64: same as NumPy to 1e-10."""
    rng = np.random.default_rng(1)
    xc, xq, yc = rng.uniform(size=(6, 3)), rng.uniform(size=(4, 3)), rng.normal(size=6)
    mean, var = gp_predictive(_Linear(), 0.3, xc, yc, xq)
    k_cc = 0.5 * xc @ xc.T + 0.1 + 0.09 * np.eye(6)
    k_cq, k_qq = 0.5 * xc @ xq.T + 0.1, 0.5 * xq @ xq.T + 0.1
    np.testing.assert_allclose(mean, k_cq.T @ np.linalg.solve(k_cc, yc), rtol=1e-10)
    brute = np.diag(k_qq - k_cq.T @ np.linalg.solve(k_cc, k_cq)) + 0.09
    np.testing.assert_allclose(var, brute, rtol=1e-10)


def test_gp_predictive_empty_context_is_the_prior():
    kernel = Matern52(0.3, 2.0)
    xq = np.linspace(0, 1, 6)[:, None]
    mean, var = gp_predictive(kernel, 0.1, np.zeros((0, 1)), np.zeros(0), xq)
    np.testing.assert_array_equal(mean, np.zeros(6))
    np.testing.assert_allclose(var, np.full(6, 2.0 + 0.01), rtol=1e-12)


def test_gp_predictive_interpolates_with_tiny_noise():
    """σ_n = 1e-4 at the context points: mean = y within 1e-6, variance ≈ σ_n² (2σ_n² at most)."""
    x = np.linspace(0, 1, 6)[:, None]
    y = np.sin(5 * x[:, 0])
    mean, var = gp_predictive(RBF(0.3, 1.0), 1e-4, x, y, x)
    np.testing.assert_allclose(mean, y, atol=1e-6)
    assert np.all(var <= 2e-8) and np.all(var >= 1e-8 * 0.999)


def test_gp_hyper_prior_parameters_and_y_variance():
    """Hyperparameter means vs the Gamma priors' (within 4 se), and Var y ≈ E[outputscale] +
    E[noise²] (within 4 se of 4000 datasets' first points)."""
    prior = SETUPS["gp_hyper"][0]
    data = _draws("gp_hyper")
    p = np.asarray(data.parameters, dtype=np.float64)[1:]  # row 0 repeats row 1
    n = len(p)
    for i, d in enumerate([prior.lengthscale_prior, prior.outputscale_prior, prior.noise_prior]):
        m, s = float(d.mean), math.sqrt(float(d.variance))
        assert abs(p[:, i].mean() - m) < 4 * s / math.sqrt(n), (i, p[:, i].mean(), m)
    y0 = np.asarray(data.y[1:, 0], dtype=np.float64)
    # y0 | θ ~ N(0, outputscale + noise²); compare with the sample's own θ (removes prior MC error)
    v = p[:, 1] + p[:, 2] ** 2
    z = y0 / np.sqrt(v)
    assert abs(z.mean()) < 4 / math.sqrt(n) and abs(z.var() - 1) < 4 * math.sqrt(2 / n)


# --- BNN ------------------------------------------------------------------------------------


def test_bnn_variance_sane_and_noise_exact():
    """Default BNN: Var y over datasets in [0.4, 1.2] and ≥ 0.08 within a dataset (measured
    0.76 / 0.14). With output_std = 0, y is pure noise: Var y = noise_std² within 4 se."""
    y = np.asarray(_draws("bnn").y, dtype=np.float64)[1:]
    assert 0.4 < y.var() < 1.2 and y.var(1).mean() > 0.08
    noise_only = BNNPrior(output_std=0.0, noise_std=0.3)  # shares the compilation of "bnn"
    y = np.asarray(_batch(noise_only, _keys(4, 1000), 30).y, dtype=np.float64)
    n = y.size
    assert abs(y.var() - 0.09) < 4 * 0.09 * math.sqrt(2 / n)


# --- learning curves ------------------------------------------------------------------------


def _np_curve(p: np.ndarray, t: np.ndarray) -> np.ndarray:
    """The LC-PFN curve from the 13 parameters, written again in float64 NumPy."""
    w = p[:3]
    c, a, alpha = p[3:6]
    j_alpha, j_beta, kappa, delta = p[6:10]
    i_c, i_a = p[10:12]
    pow3 = c - a * t ** (-alpha)
    jan = j_alpha - (j_alpha - j_beta) * np.exp(-kappa * t**delta)
    ilog2 = i_c - i_a / np.log(t + 1)
    return w[0] * pow3 + w[1] * jan + w[2] * ilog2


def test_learning_curves_valid_in_epoch_order_with_gaussian_noise():
    """3000 curves (m = 100, n = 40): the noiseless curve rebuilt from ``parameters`` is valid
    on t = 1..100 (in [0, 1] up to float32 rounding 1e-5, f(1) < f(100)); x = t/100 in order;
    (y − f)/σ has mean 0 (4 se) and variance 1 (4 se)."""
    prior = SETUPS["learning_curve"][0]
    assert prior.parameter_names == PARAMETER_NAMES and len(PARAMETER_NAMES) == 13
    data = _draws("learning_curve")
    np.testing.assert_allclose(data.x[7, :, 0], np.arange(1, 41) / 100, rtol=1e-6)
    p = np.asarray(data.parameters, dtype=np.float64)
    t = np.arange(1.0, 101.0)
    f = np.stack([_np_curve(row, t) for row in p])
    assert np.all(f >= -1e-5) and np.all(f <= 1 + 1e-5)
    assert np.all(f[:, 0] < f[:, -1])
    assert np.all((p[:, :3] >= 0) & (p[:, :3] <= 1))
    z = (np.asarray(data.y, dtype=np.float64) - f[:, :40]) / p[:, -1:]
    assert abs(z.mean()) < 4 / math.sqrt(z.size)
    assert abs(z.var() - 1) < 4 * math.sqrt(2 / z.size) + 1e-3  # + float32 rounding of f


def test_learning_curve_acceptance_rate():
    """P(a prior draw is accepted) on t = 1..100 ≥ 0.18 (measured 0.205; se here ≈ 0.004),
    from 10 000 unconditioned draws; and the fallback curve is valid."""

    @jax.jit
    def accepted(keys):
        t = jnp.arange(1.0, 101.0)
        return jax.vmap(lambda k: _is_valid(_curve(_unflatten(_draw(k)), t)))(keys)

    acceptance = float(jnp.mean(accepted(jax.random.split(jax.random.key(6), 10_000))))
    assert acceptance >= 0.18, acceptance
    f = _np_curve(np.asarray(_FALLBACK), np.arange(1.0, 101.0))
    assert f.min() >= 0 and f.max() <= 1 and f[0] < f[-1]


@functools.partial(jax.jit, static_argnums=3)
def _lc_log_density(params, t, y, truncate: bool):
    return log_density(learning_curve_model, (t, y), {"truncate": truncate}, params)[0]


def test_learning_curve_model_log_density_matches_the_prior():
    """``learning_curve_model``'s joint log density at a prior draw = Σ prior log densities
    (scipy) + Gaussian log-likelihood (relative error < 1e-4, float32); −inf for a curve that
    the LC-PFN prior rejects when truncated, finite when not."""
    data = _draws("learning_curve")
    theta = np.asarray(data.parameters[5], dtype=np.float64)
    y = np.asarray(data.y[5, :20], dtype=np.float64)
    params = {"w": jnp.asarray(theta[:3])} | {
        name: jnp.asarray(theta[i]) for i, name in enumerate(PARAMETER_NAMES) if i >= 3
    }
    t = jnp.arange(1.0, 21.0)
    logp = float(_lc_log_density(params, t, jnp.asarray(y), True))

    def lognormal(x, mu, s):
        return scipy.stats.lognorm.logpdf(x, s=s, scale=math.exp(mu))

    expected = (
        -math.log(1.25)  # pow3_c ~ U(0, 1.25); the weights' U(0, 1) densities are 1
        - math.log(1.2)  # pow3_a ~ U(-0.6, 0.6)
        + lognormal(theta[5], 0.0, 2.0)
        - math.log(2.0)  # janoschek_beta ~ U(0, 2); janoschek_alpha, ilog2_* have density 1
        + lognormal(theta[8], -2.0, 1.0)
        + lognormal(theta[9], 0.0, 0.5)
        + lognormal(theta[12], -4.0, 1.0)
    )
    f = _np_curve(theta, np.arange(1.0, 21.0))
    expected += scipy.stats.norm.logpdf(y, f, theta[12]).sum()
    assert abs(logp - expected) < 1e-4 * max(1.0, abs(expected)), (logp, expected)
    bad = params | {"w": jnp.array([1.0, 0.0, 0.0]), "pow3_c": 1.2, "pow3_a": -0.5}
    assert float(_lc_log_density(bad, t, jnp.asarray(y), True)) == -np.inf
    assert np.isfinite(float(_lc_log_density(bad, t, jnp.asarray(y), False)))

    # a traced num_epochs (MCMC's jit_model_args=True) gives the same densities
    @jax.jit
    def traced(params, num_epochs):
        kwargs = {"num_epochs": num_epochs}
        return log_density(learning_curve_model, (t, jnp.asarray(y)), kwargs, params)[0]

    assert abs(float(traced(params, 100)) - logp) < 1e-5 * max(1.0, abs(logp))
    assert float(traced(bad, 100)) == -np.inf
    # f(t) = 1.1 − 0.6/√t: 0.5 at t = 1, 0.91 at t = 10, above 1 from t = 37 on
    late = params | {"w": jnp.array([1.0, 0.0, 0.0]), "pow3_c": 1.1, "pow3_a": 0.6}
    late = late | {"pow3_alpha": 0.5}
    assert np.isfinite(float(traced(late, 10)))
    assert float(traced(late, 100)) == -np.inf


# --- numpyro models ---------------------------------------------------------------------------


def test_numpyro_prior_bayesian_linear_regression():
    """4000 datasets (d = 2, n = 20): mean of w within 4 se of 0, its covariance within 5 se of
    I, and the residual y − X w has variance σ² within 4 se."""
    prior = SETUPS["numpyro"][0]
    assert prior.parameter_names == ("w[0]", "w[1]") and prior.local_site_names == ()
    data = _draws("numpyro")
    w = np.asarray(data.parameters, dtype=np.float64)[1:]
    n = len(w)
    assert np.all(np.abs(w.mean(0)) < 4 / math.sqrt(n))
    se = np.array([[math.sqrt(2 / n), math.sqrt(1 / n)], [math.sqrt(1 / n), math.sqrt(2 / n)]])
    assert np.all(np.abs(np.cov(w, rowvar=False) - np.eye(2)) < 5 * se)
    x = np.asarray(data.x, dtype=np.float64)[1:]
    resid = np.asarray(data.y, dtype=np.float64)[1:] - np.einsum("bnd,bd->bn", x, w)
    assert abs(resid.var() - SIGMA**2) < 4 * SIGMA**2 * math.sqrt(2 / resid.size)


def test_numpyro_prior_local_latents_and_x_sampler():
    """A per-point latent stays out of ``parameters``; a custom x_sampler is used."""

    def grid(key, num_points):
        return jnp.linspace(0.0, 1.0, num_points)[:, None]

    prior = NumpyroPrior(hierarchical, input_dim=1, x_sampler=grid)
    assert prior.parameter_names == ("tau",) and prior.local_site_names == ("z",)
    data = prior.sample(jax.random.key(9), 5)
    np.testing.assert_allclose(data.x[:, 0], np.linspace(0, 1, 5), atol=1e-7)
    assert data.parameters is not None and data.parameters.shape == (1,)
    assert float(data.parameters[0]) > 0


# --- bad input ------------------------------------------------------------------------------


def _conditions_y(X, y=None):
    w = numpyro.sample("w", dist.Normal(0.0, 1.0))
    numpyro.sample("y", dist.Normal(X[:, 0] * w, 1.0), obs=jnp.zeros(X.shape[0]))


def _one_y(X, y=None):
    numpyro.sample("y", dist.Normal(0.0, 1.0), obs=y)


def _not_jittable(X, y=None):
    w = jnp.asarray(numpyro.sample("w", dist.Normal(0.0, 1.0)))
    if w > 0:  # Python control flow on a sampled value
        w = -w
    numpyro.sample("y", dist.Normal(X[:, 0] * w, 1.0).to_event(1), obs=y)


def _seeded(model, *args):
    return numpyro.handlers.seed(model, rng_seed=0)(*args)


_X3 = np.zeros((3, 1))
BAD = [
    ("model_not_callable", lambda: NumpyroPrior("linreg", 1), TypeError, "model"),
    ("model_not_jittable", lambda: NumpyroPrior(_not_jittable, 1), ValueError, "model"),
    ("observed_missing", lambda: NumpyroPrior(linreg, 1, observed="t"), ValueError, "observed"),
    ("observed_conditioned", lambda: NumpyroPrior(_conditions_y, 1), ValueError, "observed"),
    ("observed_not_per_point", lambda: NumpyroPrior(_one_y, 1), ValueError, "observed"),
    ("observed_not_str", lambda: NumpyroPrior(linreg, 1, observed=1), TypeError, "observed"),
    ("input_dim_zero", lambda: NumpyroPrior(linreg, 0), ValueError, "input_dim"),
    (
        "x_sampler_shape",
        lambda: NumpyroPrior(linreg, 2, x_sampler=lambda k, n: jnp.zeros((n, 3))),
        ValueError,
        "x_sampler",
    ),
    (
        "x_sampler_not_callable",
        lambda: NumpyroPrior(linreg, 1, x_sampler=3),
        TypeError,
        "x_sampler",
    ),
    ("kernel_not_kernel", lambda: GPPrior("rbf", 0.1), TypeError, "kernel"),
    ("noise_negative", lambda: GPPrior(RBF(), -0.1), ValueError, "noise_std"),
    ("lengthscale_zero", lambda: RBF(lengthscale=0.0), ValueError, "lengthscale"),
    ("outputscale_nan", lambda: Matern52(outputscale=float("nan")), ValueError, "outputscale"),
    ("x_bounds", lambda: GPPrior(RBF(), 0.1, x_low=1.0, x_high=0.0), ValueError, "x_low"),
    ("gp_input_dim", lambda: GPPrior(RBF(), 0.1, input_dim=0), ValueError, "input_dim"),
    ("hyper_not_dist", lambda: GPHyperPrior(lengthscale_prior=2.0), TypeError, "lengthscale_prior"),
    (
        "hyper_not_scalar",
        lambda: GPHyperPrior(noise_prior=dist.Gamma(jnp.ones(2), 1.0)),
        ValueError,
        "noise_prior",
    ),
    ("bnn_hidden", lambda: BNNPrior(hidden=0), ValueError, "hidden"),
    ("bnn_noise", lambda: BNNPrior(noise_std=-1.0), ValueError, "noise_std"),
    ("bnn_activation", lambda: BNNPrior(activation="tanh"), TypeError, "activation"),
    ("lc_num_epochs", lambda: LearningCurvePrior(num_epochs=1), ValueError, "num_epochs"),
    (
        "lc_num_points",
        lambda: LearningCurvePrior(num_epochs=10).sample(jax.random.key(0), 11),
        ValueError,
        "num_points",
    ),
    ("sample_key_int", lambda: BNNPrior().sample(0, 5), TypeError, "key"),
    (
        "sample_num_points",
        lambda: BNNPrior().sample(jax.random.key(0), 0),
        ValueError,
        "num_points",
    ),
    (
        "gp_sample_y_shape",
        lambda: GPPrior(RBF(), 0.1, input_dim=2).sample_y(jax.random.key(0), np.zeros((3, 1))),
        ValueError,
        "x",
    ),
    (
        "pred_y_shape",
        lambda: gp_predictive(RBF(), 0.1, _X3, np.zeros(4), _X3),
        ValueError,
        "y_context",
    ),
    (
        "pred_query_columns",
        lambda: gp_predictive(RBF(), 0.1, _X3, np.zeros(3), np.zeros((2, 2))),
        ValueError,
        "x_query",
    ),
    (
        "pred_y_nan",
        lambda: gp_predictive(RBF(), 0.1, _X3, np.array([0.0, np.nan, 1.0]), _X3),
        ValueError,
        "y_context",
    ),
    (
        "pred_x_1d",
        lambda: gp_predictive(RBF(), 0.1, np.zeros(3), np.zeros(3), _X3),
        ValueError,
        "x_context",
    ),
    (
        "pred_singular",
        lambda: gp_predictive(RBF(), 0.0, _X3, np.zeros(3), _X3),
        ValueError,
        "noise_std",
    ),
    ("pred_kernel", lambda: gp_predictive("rbf", 0.1, _X3, np.zeros(3), _X3), TypeError, "kernel"),
    ("lc_model_t_2d", lambda: _seeded(learning_curve_model, np.ones((2, 2))), ValueError, "`t`"),
    (
        "lc_model_y_shape",
        lambda: _seeded(learning_curve_model, np.ones(3), np.ones(2)),
        ValueError,
        "`y`",
    ),
]


@pytest.mark.parametrize(("call", "exc", "fragment"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input(call, exc, fragment):
    with pytest.raises(exc, match=fragment):
        call()
