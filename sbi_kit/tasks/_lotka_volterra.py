"""lotka_volterra (sbibm): a predator–prey ODE observed with log-normal noise.

Prior ``θ = (α, β, γ, δ) ~ LogNormal(μ, 0.5)`` with ``μ = (−0.125, −3, −0.125, −3)``. The ODE
``du/dt = α u − β u v``, ``dv/dt = −γ v + δ u v`` from ``(u, v)(0) = (30, 1)`` is solved with
diffrax's Tsit5 (``rtol = atol = 10⁻⁶``) at ``t = 0, 2.1, …, 18.9`` (sbibm saves every 0.1 and
keeps every 21st value). ``x`` holds the 10 prey values, then the 10 predator values, each
``~ LogNormal(log clip(value, 10⁻¹⁰, 10⁴), 0.1)``. A failed solve gives a NaN simulation, dropped by
``sk.simulate``.

Reference samples: importance sampling on the exact likelihood (through the ODE solve) with a
Laplace-fitted Student-t proposal (``_importance.py`` says how and why not NUTS).
"""

import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
from jaxtyping import Array

from .._types import Key
from ..simulators import ODE, ode_simulator
from ._importance import sample_by_importance

TIMES = 2.1 * np.arange(10)
PRIOR_LOC = (-0.125, -3.0, -0.125, -3.0)
PRIOR_SCALE = 0.5
NOISE_SCALE = 0.1


def _vector_field(t: Array, y: Array, theta: Array) -> Array:
    prey, predator = y
    alpha, beta, gamma, delta = theta
    return jnp.stack(
        [alpha * prey - beta * prey * predator, -gamma * predator + delta * prey * predator]
    )


def ode() -> ODE:
    """The ODE that the simulator solves (also ``sk.tasks.get(...).ode``)."""
    return ODE(_vector_field, y0=jnp.array([30.0, 1.0]), ts=TIMES, t0=0.0, rtol=1e-6, atol=1e-6)


def _observation(solution: Array, theta: Array) -> dist.Distribution:
    populations = jnp.clip(solution.T.reshape(-1), 1e-10, 1e4)  # prey at 10 times, then predator
    return dist.LogNormal(jnp.log(populations), NOISE_SCALE).to_event(1)


def simulator():
    """Prior over (α, β, γ, δ); x = 10 prey then 10 predator noisy counts, shape (20,)."""
    prior = dist.LogNormal(jnp.array(PRIOR_LOC), PRIOR_SCALE).to_event(1)
    return ode_simulator(prior, ode(), _observation, theta_names=("α", "β", "γ", "δ"))


def sample_reference_posterior(key: Key, x: Array, num_samples: int) -> Array:
    """Posterior samples by importance sampling on the exact likelihood.

    Args:
        key: a JAX PRNG key.
        x: one observation, shape ``(20,)``.
        num_samples: number of samples.

    Returns:
        samples, shape ``(num_samples, 4)``.
    """
    sim = simulator()
    assert sim.log_likelihood is not None
    return sample_by_importance(key, sim.prior, sim.log_likelihood, x, num_samples)
