"""sir (sbibm): an SIR epidemic ODE observed through binomial testing.

Prior ``β ~ LogNormal(log 0.4, 0.5)`` (contact rate), ``γ ~ LogNormal(log 0.125, 0.2)`` (recovery
rate, 1/days). The ODE ``dS/dt = −β S I / N``, ``dI/dt = β S I / N − γ I``, ``dR/dt = γ I`` with
``N = 10⁶`` and ``(S, I, R)(0) = (N − 1, 1, 0)`` is solved here in population fractions
``(s, i, r) = (S, I, R) / N`` (the same solution, better scaled for float32) with diffrax's Tsit5
(``rtol = 10⁻⁶``, ``atol = 10⁻¹⁰``). ``x`` holds 10 binomial test counts
``x_k ~ Binomial(1000, clip(i(t_k), 0, 1))`` at ``t_k = 0, 17, …, 153`` days (sbibm subsamples its
daily solution every 17 days). A failed solve gives a NaN simulation, dropped by ``sk.simulate``.

Reference samples: importance sampling on the exact likelihood (through the ODE solve) with a
Laplace-fitted Student-t proposal (``_importance.py`` says how and why not NUTS).
"""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
from jaxtyping import Array

from .._types import Key
from ..simulators import ODE, ode_simulator
from ._importance import sample_by_importance

POPULATION = 1_000_000
TOTAL_COUNT = 1000
TIMES = 17.0 * np.arange(10)
PRIOR_LOC = (float(np.log(0.4)), float(np.log(0.125)))
PRIOR_SCALE = (0.5, 0.2)


def _vector_field(t: Array, y: Array, theta: Array) -> Array:
    s, i, _ = y
    beta, gamma = theta
    infections = beta * s * i
    return jnp.stack([-infections, infections - gamma * i, gamma * i])


def ode() -> ODE:
    """The ODE that the simulator solves (also ``sk.tasks.get(...).ode``)."""
    y0 = jnp.array([1.0 - 1.0 / POPULATION, 1.0 / POPULATION, 0.0])
    return ODE(_vector_field, y0=y0, ts=TIMES, t0=0.0, rtol=1e-6, atol=1e-10)


class _Binomial(dist.BinomialProbs):
    """numpyro's binomial whose draws come from ``jax.random.binomial``.

    numpyro's own sampler (a rejection loop inside ``lax.map``) never returned for one chunk
    of ``sk.simulate(jax.random.key(1000003), sk.tasks.get("sir"), 100_000)`` on CPU
    (jax 0.10.2, numpyro 0.22): the XLA while loop kept running even when every loop was
    capped at 3 iterations, for a vmapped batch of 4 rows of that chunk and not for 1 or 2 of
    them. ``jax.random.binomial`` returns on the same inputs and on 10⁶ other rows. The
    density (``log_prob``) is numpyro's.
    """

    def sample(self, key, sample_shape=()):
        shape = tuple(sample_shape) + self.batch_shape
        return jax.random.binomial(key, self.total_count, self.probs, shape=shape)


def _observation(solution: Array, theta: Array) -> dist.Distribution:
    probs = jnp.clip(solution[:, 1], 0.0, 1.0)
    return _Binomial(probs, total_count=TOTAL_COUNT).to_event(1)


def simulator():
    """Prior over (β, γ); x = 10 binomial counts of infected individuals, shape (10,)."""
    prior = dist.LogNormal(jnp.array(PRIOR_LOC), jnp.array(PRIOR_SCALE)).to_event(1)
    return ode_simulator(prior, ode(), _observation, theta_names=("β", "γ"))


def sample_reference_posterior(key: Key, x: Array, num_samples: int) -> Array:
    """Posterior samples by importance sampling on the exact likelihood.

    Args:
        key: a JAX PRNG key.
        x: one observation, shape ``(10,)``.
        num_samples: number of samples.

    Returns:
        samples, shape ``(num_samples, 2)``.
    """
    sim = simulator()
    assert sim.log_likelihood is not None
    return sample_by_importance(key, sim.prior, sim.log_likelihood, x, num_samples)
