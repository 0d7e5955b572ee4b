"""Simulators written on a base space: ``x = G_θ(u)`` with ``u`` uniform or standard normal.

Writing a simulator as a deterministic generator ``G`` of the parameters and of base-space
noise ``u`` makes common random numbers trivial (the same ``u`` for every θ), gives gradients
of the simulated data with respect to θ, and enables the optimally-weighted MMD estimator of
Bharti et al. (2023), whose weights depend on ``u`` only
(:func:`sbi_kit.diagnostics.optimal_weights`).
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpyro.distributions as dist
from jaxtyping import Array

from .._types import Key

_BASES = ("uniform", "gaussian")


class BaseSpaceSimulator(eqx.Module):
    """A simulator ``x = G_θ(u)``, ``u ~ Unif[0, 1]^{d_u}`` or ``N(0, I_{d_u})``.

    Args:
        generator: ``generator(theta, u) -> x`` for ONE parameter vector ``theta`` (p,) and ONE
            base-space draw ``u`` (d_u,); returns one observation ``x`` (d_x,). Must be
            traceable by JAX (it is vmapped, jitted and differentiated).
        base: ``"uniform"`` or ``"gaussian"``.
        base_dim: ``d_u``.
        prior: optional numpyro prior over θ (event shape ``(p,)``), used by ABC.
        name: a label for tables and plots.

    Examples:
        >>> import jax, jax.numpy as jnp, sbi_kit as sk
        >>> from sbi_kit.simulators._base_space import BaseSpaceSimulator
        >>> sim = BaseSpaceSimulator(lambda th, u: th + u, base="gaussian", base_dim=2)
        >>> u, x = sim.sample(jax.random.key(0), jnp.array([1.0, -1.0]), 5)
        >>> u.shape, x.shape
        ((5, 2), (5, 2))
    """

    generator: Callable[[Array, Array], Array]
    base: str = eqx.field(static=True)
    base_dim: int = eqx.field(static=True)
    prior: dist.Distribution | None = None
    name: str = eqx.field(static=True, default="base-space simulator")

    def __check_init__(self):
        if self.base not in _BASES:
            raise ValueError(
                f"BaseSpaceSimulator: base must be one of {_BASES}, got {self.base!r}."
            )
        if not isinstance(self.base_dim, int) or self.base_dim < 1:
            raise ValueError(
                f"BaseSpaceSimulator: base_dim must be a positive integer, got {self.base_dim!r}."
            )
        if not callable(self.generator):
            raise TypeError("BaseSpaceSimulator: `generator` must be callable generator(theta, u).")

    def sample_base(self, key: Key, num: int) -> Array:
        """``num`` base-space draws, shape ``(num, base_dim)``."""
        shape = (num, self.base_dim)
        if self.base == "uniform":
            return jax.random.uniform(key, shape)
        return jax.random.normal(key, shape)

    def generate(self, theta: Array, u: Array) -> Array:
        """``G_θ(u_i)`` for each row of ``u`` (num, base_dim); shape ``(num, d_x)``."""
        theta = jnp.asarray(theta)
        u = jnp.asarray(u)
        if u.ndim != 2 or u.shape[1] != self.base_dim:
            raise ValueError(
                f"{self.name}: `u` must have shape (num, {self.base_dim}), got {u.shape}."
            )
        return jax.vmap(self.generator, in_axes=(None, 0))(theta, u)

    def sample(self, key: Key, theta: Array, num: int) -> tuple[Array, Array]:
        """Draws ``u``; returns ``(u, G_θ(u))``, shapes ``(num, base_dim)`` and ``(num, d_x)``."""
        u = self.sample_base(key, num)
        return u, self.generate(theta, u)
