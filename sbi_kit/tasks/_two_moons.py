"""two_moons (Greenberg et al. 2019; sbibm): a crescent-shaped, bimodal posterior.

Prior ``θ ~ U(−1, 1)²``. The simulator draws ``a ~ U(−π/2, π/2)`` and ``r ~ N(0.1, 0.01²)``,
sets ``p = (r cos a + 0.25, r sin a)`` and returns ``x = p + (−|θ1 + θ2|/√2, (−θ1 + θ2)/√2)``.

The likelihood is tractable: ``p = x − shift(θ)`` has density ``N(r; 0.1, 0.01²) / (π r)`` in polar
coordinates ``(r, a)`` around ``(0.25, 0)`` on the half-plane ``p₁ > 0.25``. Reference samples
invert the simulator exactly (as sbibm does): draw ``p``, solve for the rotated coordinates of θ,
choose the sign of ``θ1 + θ2`` at random, and keep the draws inside the prior's box.
"""

import jax
import jax.numpy as jnp
import numpyro.distributions as dist
from jaxtyping import Array

from .._types import Key
from ..simulators import Simulator
from ._rejection import sample_in_box

BOUND = 1.0
R_LOC = 0.1
R_SCALE = 0.01
OFFSET = 0.25
_SQRT2 = 2.0**0.5


def _noise(key: Key, shape: tuple[int, ...], dtype) -> Array:
    """Draws of ``p = (r cos a + 0.25, r sin a)``, shape ``(*shape, 2)``."""
    key_a, key_r = jax.random.split(key)
    a = jax.random.uniform(key_a, shape, dtype, minval=-jnp.pi / 2, maxval=jnp.pi / 2)
    r = R_LOC + R_SCALE * jax.random.normal(key_r, shape, dtype)
    return jnp.stack([r * jnp.cos(a) + OFFSET, r * jnp.sin(a)], axis=-1)


def _shift(theta: Array) -> Array:
    z0 = (theta[..., 0] + theta[..., 1]) / _SQRT2
    z1 = (-theta[..., 0] + theta[..., 1]) / _SQRT2
    return jnp.stack([-jnp.abs(z0), z1], axis=-1)


def _simulate(key: Key, theta: Array) -> Array:
    return _noise(key, (), theta.dtype) + _shift(theta)


def _log_likelihood(theta: Array, x: Array) -> Array:
    p = x - _shift(theta)
    u, v = p[0] - OFFSET, p[1]
    valid = u > 0
    r = jnp.sqrt(jnp.where(valid, u**2 + v**2, 1.0))
    log_density = dist.Normal(R_LOC, R_SCALE).log_prob(r) - jnp.log(jnp.pi * r)
    return jnp.where(valid, log_density, -jnp.inf)


def simulator() -> Simulator:
    """Prior U(−1, 1)²; x = (r cos a + 0.25, r sin a) + (−|θ1 + θ2|/√2, (−θ1 + θ2)/√2)."""
    prior = dist.Uniform(-BOUND * jnp.ones(2), BOUND * jnp.ones(2)).to_event(1)
    return Simulator(prior, _simulate, _log_likelihood)


def sample_reference_posterior(key: Key, x: Array, num_samples: int) -> Array:
    """Exact posterior samples by inverting the simulator, then rejecting outside the prior.

    Args:
        key: a JAX PRNG key.
        x: one observation, shape ``(2,)``.
        num_samples: number of samples.

    Returns:
        samples, shape ``(num_samples, 2)``.
    """
    x = jnp.asarray(x)

    def propose(k, n):
        key_p, key_s = jax.random.split(k)
        p = _noise(key_p, (n,), x.dtype)
        abs_z0 = p[:, 0] - x[0]  # x₀ = p₀ − |z0|; negative values have no preimage
        sign = jnp.where(jax.random.bernoulli(key_s, 0.5, (n,)), 1.0, -1.0).astype(x.dtype)
        z0 = jnp.where(abs_z0 >= 0, sign * abs_z0, jnp.nan)
        z1 = x[1] - p[:, 1]
        return jnp.stack([(z0 - z1) / _SQRT2, (z0 + z1) / _SQRT2], axis=-1)

    return sample_in_box(key, propose, -BOUND, BOUND, num_samples)
