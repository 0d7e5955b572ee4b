"""Z-scoring learned from training data."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array


class Standardizer(eqx.Module):
    """An elementwise affine z-score ``(v - loc) / scale`` learned from data.

    Components whose standard deviation is (near) zero keep scale 1, so constant features pass
    through unchanged instead of being divided by zero.
    """

    loc: Array
    scale: Array

    @classmethod
    def fit(cls, data: Array) -> Standardizer:
        """Fits loc and scale on ``data`` of shape ``(n, *event_shape)``."""
        loc = jnp.mean(data, axis=0)
        std = jnp.std(data, axis=0)
        return cls(loc, jnp.where(std < 1e-8, 1.0, std))

    @classmethod
    def identity(cls, event_shape: tuple[int, ...]) -> Standardizer:
        """The identity (loc 0, scale 1); used as a skeleton before loading saved values."""
        return cls(jnp.zeros(event_shape), jnp.ones(event_shape))

    def __call__(self, v: Array) -> Array:
        return (v - self.loc) / self.scale

    def inverse(self, v: Array) -> Array:
        return v * self.scale + self.loc

    def log_scale(self) -> Array:
        """``sum(log scale)``: the log-Jacobian of :meth:`inverse`."""
        return jnp.sum(jnp.log(self.scale))
