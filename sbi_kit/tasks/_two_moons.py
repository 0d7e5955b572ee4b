"""two_moons (Greenberg et al. 2019; sbibm): a crescent-shaped, bimodal posterior."""

import jax
import jax.numpy as jnp
import numpyro.distributions as dist

from ..simulators import Simulator


def _simulate(key, theta):
    key_a, key_r = jax.random.split(key)
    a = jax.random.uniform(key_a, minval=-jnp.pi / 2, maxval=jnp.pi / 2)
    r = 0.1 + 0.01 * jax.random.normal(key_r)
    p = jnp.array([r * jnp.cos(a) + 0.25, r * jnp.sin(a)])
    shift = jnp.array(
        [-jnp.abs(theta[0] + theta[1]) / jnp.sqrt(2.0), (-theta[0] + theta[1]) / jnp.sqrt(2.0)]
    )
    return p + shift


def simulator() -> Simulator:
    """Prior U(−1, 1)²; x = (r cos a + 0.25, r sin a) + (−|θ1 + θ2|/√2, (−θ1 + θ2)/√2)."""
    prior = dist.Uniform(-jnp.ones(2), jnp.ones(2)).to_event(1)
    return Simulator(prior, _simulate)
