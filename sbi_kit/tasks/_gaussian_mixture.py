"""gaussian_mixture (sbibm): a 2-d mixture of a broad and a narrow Gaussian with a shared mean.

Prior ``θ ~ U(−10, 10)²``; simulator ``x ~ 0.5·N(θ, I) + 0.5·N(θ, 0.01·I)`` (standard deviations
1 and 0.1). As a function of θ the likelihood is the same mixture centred on x, so the posterior
is that mixture truncated to the prior's box; reference samples come by rejection.
"""

import jax
import jax.numpy as jnp
import numpyro.distributions as dist
from jax.scipy.special import logsumexp
from jaxtyping import Array

from .._types import Key
from ..simulators import Simulator
from ._rejection import sample_in_box

DIM = 2
BOUND = 10.0
SCALES = (1.0, 0.1)
WEIGHTS = (0.5, 0.5)


def _simulate(key: Key, theta: Array) -> Array:
    key_c, key_n = jax.random.split(key)
    narrow = jax.random.bernoulli(key_c, WEIGHTS[1])
    scale = jnp.where(narrow, SCALES[1], SCALES[0])
    return theta + scale * jax.random.normal(key_n, theta.shape, theta.dtype)


def _log_likelihood(theta: Array, x: Array) -> Array:
    terms = jnp.stack(
        [
            jnp.log(w) + dist.Normal(theta, s).log_prob(x).sum()
            for w, s in zip(WEIGHTS, SCALES, strict=True)
        ]
    )
    return logsumexp(terms)


def simulator() -> Simulator:
    """Prior U(−10, 10)²; x ~ 0.5·N(θ, I) + 0.5·N(θ, 0.01·I)."""
    prior = dist.Uniform(-BOUND * jnp.ones(DIM), BOUND * jnp.ones(DIM)).to_event(1)
    return Simulator(prior, _simulate, _log_likelihood)


def sample_reference_posterior(key: Key, x: Array, num_samples: int) -> Array:
    """Exact posterior samples: the mixture centred on x, truncated to the box, by rejection.

    Args:
        key: a JAX PRNG key.
        x: one observation, shape ``(2,)``.
        num_samples: number of samples.

    Returns:
        samples, shape ``(num_samples, 2)``.
    """
    x = jnp.asarray(x)

    def propose(k, n):
        key_c, key_n = jax.random.split(k)
        narrow = jax.random.bernoulli(key_c, WEIGHTS[1], (n, 1))
        scale = jnp.where(narrow, SCALES[1], SCALES[0]).astype(x.dtype)
        return x + scale * jax.random.normal(key_n, (n, DIM), x.dtype)

    return sample_in_box(key, propose, -BOUND, BOUND, num_samples)
