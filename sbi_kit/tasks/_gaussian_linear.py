"""gaussian_linear (sbibm): a 10-d Gaussian prior and Gaussian likelihood, analytic posterior.

Prior ``θ ~ N(0, 0.1·I₁₀)``; simulator ``x ~ N(θ, 0.1·I₁₀)`` (variances, not standard deviations).
The posterior is Gaussian, ``N(μ, Σ)`` with ``Σ = (1/0.1 + 1/0.1)⁻¹·I = 0.05·I`` and
``μ = Σ·x/0.1 = x/2``.
"""

import jax
import jax.numpy as jnp
import numpyro.distributions as dist
from jaxtyping import Array

from .._types import Key
from ..simulators import Simulator

DIM = 10
PRIOR_VARIANCE = 0.1
NOISE_VARIANCE = 0.1


def _simulate(key: Key, theta: Array) -> Array:
    return theta + jnp.sqrt(NOISE_VARIANCE) * jax.random.normal(key, theta.shape)


def _log_likelihood(theta: Array, x: Array) -> Array:
    return dist.Normal(theta, jnp.sqrt(NOISE_VARIANCE)).log_prob(x).sum()


def simulator() -> Simulator:
    """Prior N(0, 0.1·I₁₀); x ~ N(θ, 0.1·I₁₀)."""
    prior = dist.Normal(jnp.zeros(DIM), jnp.sqrt(PRIOR_VARIANCE)).to_event(1)
    return Simulator(prior, _simulate, _log_likelihood)


def posterior_moments(x: Array) -> tuple[Array, Array]:
    """The analytic posterior of one observation.

    Args:
        x: one observation, shape ``(10,)``.

    Returns:
        the mean, shape ``(10,)``, and covariance, shape ``(10, 10)``.
    """
    x = jnp.asarray(x)
    variance = 1.0 / (1.0 / PRIOR_VARIANCE + 1.0 / NOISE_VARIANCE)
    return variance * x / NOISE_VARIANCE, variance * jnp.eye(DIM, dtype=x.dtype)


def sample_reference_posterior(key: Key, x: Array, num_samples: int) -> Array:
    """Exact samples of the (conjugate Gaussian) posterior given one observation.

    Args:
        key: a JAX PRNG key.
        x: one observation, shape ``(10,)``.
        num_samples: number of samples.

    Returns:
        samples, shape ``(num_samples, 10)``.
    """
    mean, cov = posterior_moments(x)
    return (
        mean + jax.random.normal(key, (num_samples, DIM), mean.dtype) @ jnp.linalg.cholesky(cov).T
    )
