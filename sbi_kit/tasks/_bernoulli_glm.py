"""bernoulli_glm (sbibm): a Bernoulli generalised linear model of a neuron's spikes.

θ = (β₀, h₁, …, h₉): an offset and a 9-tap temporal filter. The stimulus is 100 time bins of
Gaussian white noise (``numpy.random.RandomState(42).randn(100)``, float32, as in sbibm). The
design matrix ``X`` (100 × 10) has a column of ones and the lagged stimulus,
``X[t, 1 + j] = I[t − j]`` (zero for ``t < j``). Spikes ``y_t ~ Bernoulli(σ(X_t · θ))`` and the
summary statistics are ``x = Xᵀ y``: the spike count and the 9 spike-triggered sums (sbibm's
convolution summary, identical to ``Xᵀ y``).

Prior ``θ ~ N(0, B⁻¹)`` given by its precision ``B``: 0.5 for the offset and ``FᵀF`` for the
filter, ``F = D² + diag(√(i/9))``, i = 0..8, with ``D`` the first-difference matrix (a
smoothness prior on the filter).

Because ``x = Xᵀ y`` is sufficient, the log-probability of x is the Bernoulli log-likelihood of
the spike train, ``θ·x − Σ_t log(1 + exp(X_t θ))`` (a continuous stimulus makes distinct spike
trains give distinct x). The posterior is log-concave; references come from NUTS.
"""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
from jaxtyping import Array

from .._types import Key
from ..simulators import Simulator
from ._mcmc import reference_nuts

DIM = 10
NUM_BINS = 100
STIMULUS_SEED = 42


def stimulus() -> np.ndarray:
    """The frozen white-noise stimulus, shape ``(100,)`` (float32)."""
    return np.random.RandomState(STIMULUS_SEED).randn(NUM_BINS).astype(np.float32)


def design_matrix() -> np.ndarray:
    """The design matrix ``X``, shape ``(100, 10)`` (float32): ones, then lags 0..8."""
    stim = stimulus()
    x = np.zeros((NUM_BINS, DIM), np.float32)
    x[:, 0] = 1.0
    for j in range(DIM - 1):
        x[j:, 1 + j] = stim[: NUM_BINS - j]
    return x


def prior_precision() -> np.ndarray:
    """The prior precision ``B``, shape ``(10, 10)``."""
    m = DIM - 1
    diff = np.eye(m) - np.eye(m, k=-1)
    f = diff @ diff + np.diag(np.sqrt(np.arange(m) / m))
    precision = np.zeros((DIM, DIM))
    precision[0, 0] = 0.5
    precision[1:, 1:] = f.T @ f
    return precision


_X = design_matrix()


def _simulate(key: Key, theta: Array) -> Array:
    design = jnp.asarray(_X, theta.dtype)
    spikes = jax.random.bernoulli(key, jax.nn.sigmoid(design @ theta)).astype(theta.dtype)
    return design.T @ spikes


def _log_likelihood(theta: Array, x: Array) -> Array:
    design = jnp.asarray(_X, theta.dtype)
    return theta @ x - jnp.sum(jax.nn.softplus(design @ theta))


def simulator() -> Simulator:
    """Prior N(0, B⁻¹) (smoothness prior); x = Xᵀ y, y_t ~ Bernoulli(σ(X_t θ)), shape (10,)."""
    prior = dist.MultivariateNormal(jnp.zeros(DIM), precision_matrix=jnp.asarray(prior_precision()))
    names = ("offset", *(f"filter_{j + 1}" for j in range(DIM - 1)))
    return Simulator(prior, _simulate, _log_likelihood, theta_names=names)


def sample_reference_posterior(key: Key, x: Array, num_samples: int) -> Array:
    """Posterior samples by NUTS (the posterior is log-concave).

    Args:
        key: a JAX PRNG key.
        x: one observation, shape ``(10,)``.
        num_samples: number of samples (a multiple of 20).

    Returns:
        samples, shape ``(num_samples, 10)``.
    """
    return reference_nuts(key, simulator().prior, _log_likelihood, x, num_samples)
