"""slcp (Papamakarios et al. 2019; sbibm): simple likelihood, complex posterior.

Prior ``θ ~ U(−3, 3)⁵``. The simulator draws 4 i.i.d. 2-d Gaussian points with mean ``(θ1, θ2)``
and covariance ``[[s1², ρ s1 s2], [ρ s1 s2, s2²]] + 10⁻⁶·I`` where ``s1 = θ3²``, ``s2 = θ4²``,
``ρ = tanh θ5``, and returns them flattened point by point: ``x = (x₁₁, x₁₂, x₂₁, …, x₄₂)``.

The likelihood depends on θ3 and θ4 only through their squares, so the posterior has four
sign-symmetric modes. Reference samples run NUTS with θ3, θ4 restricted to ``(0, 3)`` (one mode)
and then flip the signs of θ3 and θ4 independently at random, which covers all four modes with
equal weight.
"""

import jax
import jax.numpy as jnp
import numpyro.distributions as dist
from jaxtyping import Array

from .._types import Key
from ..simulators import Simulator
from ._mcmc import reference_nuts

DIM = 5
NUM_POINTS = 4
BOUND = 3.0
EPS = 1e-6


def _moments(theta: Array) -> tuple[Array, Array, Array, Array, Array]:
    """Mean, the covariance entries and the determinant (written to stay accurate as |ρ| → 1)."""
    mean = theta[:2]
    s1, s2 = theta[2] ** 2, theta[3] ** 2
    rho = jnp.tanh(theta[4])
    one_minus_rho2 = 1.0 / jnp.cosh(theta[4]) ** 2
    c00, c11, c01 = s1**2 + EPS, s2**2 + EPS, rho * s1 * s2
    det = s1**2 * s2**2 * one_minus_rho2 + EPS * (s1**2 + s2**2) + EPS**2
    return mean, c00, c11, c01, det


def _simulate(key: Key, theta: Array) -> Array:
    mean, c00, c11, c01, det = _moments(theta)
    l00 = jnp.sqrt(c00)
    l10 = c01 / l00
    l11 = jnp.sqrt(det / c00)
    z = jax.random.normal(key, (NUM_POINTS, 2), theta.dtype)
    points = mean + jnp.stack([l00 * z[:, 0], l10 * z[:, 0] + l11 * z[:, 1]], axis=-1)
    return points.reshape(2 * NUM_POINTS)


def _log_likelihood(theta: Array, x: Array) -> Array:
    mean, c00, c11, c01, det = _moments(theta)
    d = x.reshape(NUM_POINTS, 2) - mean
    quad = (c11 * d[:, 0] ** 2 - 2.0 * c01 * d[:, 0] * d[:, 1] + c00 * d[:, 1] ** 2) / det
    return jnp.sum(-jnp.log(2.0 * jnp.pi) - 0.5 * jnp.log(det) - 0.5 * quad)


def simulator() -> Simulator:
    """Prior U(−3, 3)⁵; x = 4 i.i.d. 2-d Gaussian draws (see the module docstring), shape (8,)."""
    prior = dist.Uniform(-BOUND * jnp.ones(DIM), BOUND * jnp.ones(DIM)).to_event(1)
    return Simulator(prior, _simulate, _log_likelihood)


def sample_reference_posterior(key: Key, x: Array, num_samples: int) -> Array:
    """Posterior samples by NUTS in one sign mode, then random sign flips of θ3 and θ4.

    Args:
        key: a JAX PRNG key.
        x: one observation, shape ``(8,)``.
        num_samples: number of samples (a multiple of 20).

    Returns:
        samples, shape ``(num_samples, 5)``.
    """
    key_mcmc, key_sign = jax.random.split(key)
    low = jnp.array([-BOUND, -BOUND, 0.0, 0.0, -BOUND])
    folded_prior = dist.Uniform(low, BOUND * jnp.ones(DIM)).to_event(1)
    samples = reference_nuts(key_mcmc, folded_prior, _log_likelihood, x, num_samples)
    signs = jnp.where(jax.random.bernoulli(key_sign, 0.5, (num_samples, 2)), 1.0, -1.0)
    return samples.at[:, 2:4].multiply(signs.astype(samples.dtype))
