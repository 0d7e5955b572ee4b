"""Exact (and deliberately mis-scaled) Gaussian posteriors with analytic answers."""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest

import sbi_kit as sk

NOISE_SD = 0.5  # θ ~ N(0, I₂), x ~ N(θ, NOISE_SD² I₂)
POST_VAR = NOISE_SD**2 / (1 + NOISE_SD**2)
PRIOR = dist.Normal(jnp.zeros(2), 1.0).to_event(1)


def _moments(scale, x_o):
    return x_o / (1 + NOISE_SD**2), jnp.sqrt(POST_VAR) * scale


def _sample(scale, key, x_o, num_samples):
    mean, sd = _moments(scale, x_o)
    return mean + sd * jax.random.normal(key, (num_samples, 2))


def _log_prob(scale, theta, x_o):
    mean, sd = _moments(scale, x_o)
    return dist.Normal(mean, sd).to_event(1).log_prob(theta)


def _set_fields(posterior, scale):
    """The exact posterior needs no network: identity z-scoring, no net, no method."""
    posterior.scale = jnp.asarray(scale)
    posterior.net = None
    posterior.prior = PRIOR
    posterior.theta_standardizer = sk.estimators.Standardizer.identity((2,))
    posterior.x_standardizer = sk.estimators.Standardizer.identity((2,))
    posterior.method = None


class GaussianPosterior(sk.inference.AbstractDensityPosterior):
    """The exact posterior of the conjugate problem, with its sd multiplied by ``scale``.

    ``sample`` and ``log_prob`` are the closed forms; there is no network to evaluate.
    """

    scale: jax.Array
    net: None
    prior: dist.Distribution
    theta_standardizer: sk.estimators.Standardizer
    x_standardizer: sk.estimators.Standardizer
    method: None

    def __init__(self, scale):
        _set_fields(self, scale)

    def sample(self, key, x_o, num_samples):
        return _sample(self.scale, key, x_o, num_samples)

    def draw(self, key, x_o, num_samples):
        return _sample(self.scale, key, x_o, num_samples)

    def log_prob(self, theta, x_o):
        return _log_prob(self.scale, theta, x_o)

    def net_log_prob(self, net, theta_std, x_std):
        raise NotImplementedError("GaussianPosterior computes log_prob in closed form.")

    def net_sample(self, net, key, x_std, num_samples):
        raise NotImplementedError("GaussianPosterior samples in closed form.")


class GaussianPotentialPosterior(sk.inference.AbstractPotentialPosterior):
    """The same, with a log-density known only up to a constant that depends on ``x_o``."""

    scale: jax.Array
    net: None
    prior: dist.Distribution
    theta_standardizer: sk.estimators.Standardizer
    x_standardizer: sk.estimators.Standardizer
    method: None

    def __init__(self, scale):
        _set_fields(self, scale)

    def sample(self, key, x_o, num_samples):
        return _sample(self.scale, key, x_o, num_samples)

    def draw(self, key, x_o, num_samples):
        return _sample(self.scale, key, x_o, num_samples)

    def log_prob(self, theta, x_o):
        return _log_prob(self.scale, theta, x_o) + 10.0 * jnp.sum(x_o) - 3.0

    def net_potential(self, net, theta_std, x_std):
        raise NotImplementedError("GaussianPotentialPosterior computes log_prob in closed form.")


class SamplesOnlyPosterior(sk.inference.AbstractPosterior):
    """The same, without a density (as a method that only samples)."""

    scale: jax.Array
    net: None
    prior: dist.Distribution
    theta_standardizer: sk.estimators.Standardizer
    x_standardizer: sk.estimators.Standardizer
    method: None

    def __init__(self, scale):
        _set_fields(self, scale)

    def sample(self, key, x_o, num_samples):
        return _sample(self.scale, key, x_o, num_samples)

    def draw(self, key, x_o, num_samples):
        return _sample(self.scale, key, x_o, num_samples)


@pytest.fixture(scope="session")
def conjugate_simulator():
    return sk.Simulator(PRIOR, lambda key, th: th + NOISE_SD * jax.random.normal(key, (2,)))


def gaussian_draws(seed, num_sims, num_samples, scale):
    """θ*, and posterior samples (L, n, 2) and log-densities for the conjugate problem.

    Drawn with NumPy (float64, returned as float32 JAX arrays): a jitted JAX version compiled
    its threefry draws once per (num_sims, num_samples), ≈ 1 s each on the 2-core machine.
    """
    rng = np.random.default_rng(seed)
    theta = rng.standard_normal((num_sims, 2))
    x = theta + NOISE_SD * rng.standard_normal((num_sims, 2))
    mean = x / (1 + NOISE_SD**2)
    sd = np.sqrt(POST_VAR) * scale
    samples = mean + sd * rng.standard_normal((num_samples, num_sims, 2))

    def log_q(v):
        return np.sum(-0.5 * ((v - mean) / sd) ** 2 - np.log(sd) - 0.5 * np.log(2 * np.pi), -1)

    arrays = (theta, samples, log_q(samples), log_q(theta))
    return tuple(jnp.asarray(a, dtype=jnp.float32) for a in arrays)
