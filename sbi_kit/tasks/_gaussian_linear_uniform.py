"""gaussian_linear_uniform (sbibm): a uniform prior and a Gaussian likelihood in 10 dimensions.

Prior ``θ ~ U(−1, 1)¹⁰``; simulator ``x ~ N(θ, 0.1·I₁₀)`` (variance 0.1). The posterior is
``N(x, 0.1·I)`` truncated to the prior's box; reference samples come by rejection.
"""

import jax
import jax.numpy as jnp
import numpyro.distributions as dist
from jaxtyping import Array

from .._types import Key
from ..simulators import Simulator
from ._rejection import sample_in_box

DIM = 10
BOUND = 1.0
NOISE_VARIANCE = 0.1


def _simulate(key: Key, theta: Array) -> Array:
    return theta + jnp.sqrt(NOISE_VARIANCE) * jax.random.normal(key, theta.shape)


def _log_likelihood(theta: Array, x: Array) -> Array:
    return dist.Normal(theta, jnp.sqrt(NOISE_VARIANCE)).log_prob(x).sum()


def simulator() -> Simulator:
    """Prior U(−1, 1)¹⁰; x ~ N(θ, 0.1·I₁₀)."""
    prior = dist.Uniform(-BOUND * jnp.ones(DIM), BOUND * jnp.ones(DIM)).to_event(1)
    return Simulator(prior, _simulate, _log_likelihood)


def sample_reference_posterior(key: Key, x: Array, num_samples: int) -> Array:
    """Exact posterior samples: ``N(x, 0.1·I)`` truncated to ``[−1, 1]¹⁰``, by rejection.

    Args:
        key: a JAX PRNG key.
        x: one observation, shape ``(10,)``.
        num_samples: number of samples.

    Returns:
        samples, shape ``(num_samples, 10)``.
    """
    x = jnp.asarray(x)

    def propose(k, n):
        return x + jnp.sqrt(NOISE_VARIANCE) * jax.random.normal(k, (n, DIM), x.dtype)

    return sample_in_box(key, propose, -BOUND, BOUND, num_samples)
