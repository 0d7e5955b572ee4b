"""gaussian_linear (sbibm): a 10-d Gaussian prior and Gaussian likelihood, analytic posterior."""

import jax
import jax.numpy as jnp
import numpyro.distributions as dist

from ..simulators import Simulator

DIM = 10
PRIOR_VARIANCE = 0.1
NOISE_VARIANCE = 0.1


def _simulate(key, theta):
    return theta + jnp.sqrt(NOISE_VARIANCE) * jax.random.normal(key, theta.shape)


def _log_likelihood(theta, x):
    return dist.Normal(theta, jnp.sqrt(NOISE_VARIANCE)).log_prob(x).sum()


def simulator() -> Simulator:
    """Prior N(0, 0.1·I₁₀); x ~ N(θ, 0.1·I₁₀)."""
    prior = dist.Normal(jnp.zeros(DIM), jnp.sqrt(PRIOR_VARIANCE)).to_event(1)
    return Simulator(prior, _simulate, _log_likelihood)
