"""Exact (and deliberately mis-scaled) Gaussian posteriors with analytic answers."""

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpyro.distributions as dist
import pytest

import sbi_kit as sk

NOISE_SD = 0.5  # θ ~ N(0, I₂), x ~ N(θ, NOISE_SD² I₂)
POST_VAR = NOISE_SD**2 / (1 + NOISE_SD**2)


class GaussianPosterior(eqx.Module):
    """The exact posterior of the conjugate problem, with its sd multiplied by ``scale``."""

    scale: jax.Array

    @property
    def dim_theta(self) -> int:
        return 2

    def _moments(self, x_o):
        return x_o / (1 + NOISE_SD**2), jnp.sqrt(POST_VAR) * self.scale

    def sample(self, key, x_o, num_samples):
        mean, sd = self._moments(x_o)
        return mean + sd * jax.random.normal(key, (num_samples, 2))

    def log_prob(self, theta, x_o):
        mean, sd = self._moments(x_o)
        return dist.Normal(mean, sd).to_event(1).log_prob(theta)


class SamplesOnlyPosterior(GaussianPosterior):
    """The same, without a density (as a method that only samples)."""

    def log_prob(self, theta, x_o):
        raise NotImplementedError("no density")


@pytest.fixture(scope="session")
def conjugate_simulator():
    prior = dist.Normal(jnp.zeros(2), 1.0).to_event(1)
    return sk.Simulator(prior, lambda key, th: th + NOISE_SD * jax.random.normal(key, (2,)))


@functools.partial(jax.jit, static_argnums=(1, 2))
def gaussian_draws(key, num_sims, num_samples, scale):
    """θ*, and posterior samples (L, n, 2) and log-densities for the conjugate problem."""
    k1, k2, k3 = jax.random.split(key, 3)
    theta = jax.random.normal(k1, (num_sims, 2))
    x = theta + NOISE_SD * jax.random.normal(k2, (num_sims, 2))
    mean = x / (1 + NOISE_SD**2)
    sd = jnp.sqrt(POST_VAR) * scale
    samples = mean + sd * jax.random.normal(k3, (num_samples, num_sims, 2))
    logq = dist.Normal(mean, sd).to_event(1)
    return theta, samples, logq.log_prob(samples), logq.log_prob(theta)
