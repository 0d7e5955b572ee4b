"""ornstein_uhlenbeck (this project): an SDE task whose likelihood is exact.

The parameters are ``θ = (log κ, μ, log σ)`` with independent Gaussian priors
``log κ ~ N(0, 0.5²)`` (κ: mean-reversion rate), ``μ ~ N(0, 1)`` (long-run mean) and
``log σ ~ N(log 0.5, 0.3²)`` (σ: noise scale). The process ``dy = κ (μ − y) dt + σ dW`` starts at
``y(0) = 0`` and is observed without noise at ``t = 0.5, 1, …, 10`` (20 values). The simulator
solves the SDE with diffrax (Euler–Maruyama, step 0.01, ``VirtualBrownianTree`` noise).

The likelihood is exact: the transitions are Gaussian,
``y(t + Δ) | y(t) ~ N(μ + (y(t) − μ) e^{−κΔ}, σ² (1 − e^{−2κΔ}) / (2κ))``. The Euler–Maruyama
paths follow it up to the step's discretisation error: for the variance a relative
``κ·dt/2`` (0.5 % at κ = 1), far inside the posterior's width at 20 observations. Reference
samples: NUTS on this likelihood. The 10 observations and their true parameters are this
project's own (drawn from the prior and simulated with fixed seeds; sbibm has no such task).
"""

import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
from jaxtyping import Array

from .._types import Key
from ..simulators import SDE, Simulator, sde_simulator
from ._mcmc import reference_nuts

INTERVAL = 0.5
NUM_TIMES = 20
TIMES = INTERVAL * np.arange(1, NUM_TIMES + 1)
STEP = 0.01


PRIOR_LOC = (0.0, 0.0, float(np.log(0.5)))
PRIOR_SCALE = (0.5, 1.0, 0.3)


def _drift(t: Array, y: Array, theta: Array) -> Array:
    log_kappa, mu, _ = theta
    return jnp.exp(log_kappa) * (mu - y)


def _diffusion(t: Array, y: Array, theta: Array) -> Array:
    return jnp.broadcast_to(jnp.exp(theta[2]), (1, 1))


def _sde() -> SDE:
    return SDE(_drift, _diffusion, y0=jnp.zeros(1), ts=TIMES, t0=0.0, noise_dim=1, dt=STEP)


def _log_likelihood(theta: Array, x: Array) -> Array:
    kappa, mu, sigma = jnp.exp(theta[0]), theta[1], jnp.exp(theta[2])
    previous = jnp.concatenate([jnp.zeros(1, x.dtype), x[:-1]])
    decay = jnp.exp(-kappa * INTERVAL)
    mean = mu + (previous - mu) * decay
    variance = sigma**2 * -jnp.expm1(-2.0 * kappa * INTERVAL) / (2.0 * kappa)
    return dist.Normal(mean, jnp.sqrt(variance)).log_prob(x).sum()


def _prior() -> dist.Distribution:
    return dist.Normal(jnp.array(PRIOR_LOC), jnp.array(PRIOR_SCALE)).to_event(1)


def simulator() -> Simulator:
    """Prior over (log κ, μ, log σ); x = the path at 20 times, shape (20,)."""
    sim = sde_simulator(_prior(), _sde(), theta_names=("log κ", "μ", "log σ"))
    return Simulator(sim.prior, sim.simulate, _log_likelihood, theta_names=sim.theta_names)


def sample_reference_posterior(key: Key, x: Array, num_samples: int) -> Array:
    """Posterior samples by NUTS on the exact (Gaussian-transition) likelihood.

    Args:
        key: a JAX PRNG key.
        x: one observation, shape ``(20,)``.
        num_samples: number of samples (a multiple of 20).

    Returns:
        samples, shape ``(num_samples, 3)``.
    """
    return reference_nuts(key, _prior(), _log_likelihood, x, num_samples)
