"""A permutation-invariant (DeepSet) embedding of observations made of i.i.d. draws."""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array

from .._types import Key
from ._activation import activation
from ._embedding import AbstractEmbedding


class _DeepSet(eqx.Module):
    element: eqx.nn.MLP
    pooled: eqx.nn.MLP
    element_dim: int = eqx.field(static=True)

    def __call__(self, x: Array) -> Array:
        elements = jnp.reshape(x, (-1, self.element_dim))
        features = jax.vmap(self.element)(elements)
        return self.pooled(jnp.mean(features, axis=0))


class DeepSetEmbedding(AbstractEmbedding):
    """Embeds an observation made of exchangeable draws, invariant to their order.

    ``ρ(mean_j φ(x_j))`` (Zaheer et al., 2017): the observation is read as a set of draws of
    ``element_dim`` numbers each (a flat ``(n · element_dim,)`` vector in draw-major order, or an
    ``(n, element_dim)`` array), every draw goes through the same network φ, the features are
    averaged, and ρ maps the average to ``out_dim`` summaries. For simulators whose output is
    several i.i.d. draws (sbibm's slcp returns four 2-d draws) this builds the symmetry into
    the network instead of asking it to learn it from data.

    Args:
        element_dim: numbers per draw (the only positional argument; the rest are keywords).
        out_dim: number of output features.
        width: hidden units of φ and ρ.
        depth: hidden layers of φ and of ρ.
        features: size of the averaged per-draw features.
        activation: activation name.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from sbi_kit.nn import DeepSetEmbedding
        >>> net = DeepSetEmbedding(element_dim=2, out_dim=4).build(jax.random.key(0), (8,))
        >>> x = jnp.arange(8.0)
        >>> bool(jnp.allclose(net(x), net(x.reshape(4, 2)[::-1].ravel())))
        True
    """

    element_dim: int
    out_dim: int = eqx.field(default=20, kw_only=True)
    width: int = eqx.field(default=64, kw_only=True)
    depth: int = eqx.field(default=2, kw_only=True)
    features: int = eqx.field(default=64, kw_only=True)
    activation: str = eqx.field(default="relu", kw_only=True)

    def build(self, key: Key, x_shape: tuple[int, ...]) -> eqx.Module:
        """The embedding network for observations of shape ``x_shape``."""
        size = math.prod(x_shape)
        if self.element_dim < 1 or size % self.element_dim:
            raise ValueError(
                f"DeepSetEmbedding: observations of shape {x_shape} ({size} numbers) do not "
                f"split into draws of element_dim={self.element_dim} numbers."
            )
        k_element, k_pooled = jax.random.split(key)
        act = activation(self.activation)
        element = eqx.nn.MLP(
            self.element_dim, self.features, self.width, self.depth, activation=act, key=k_element
        )
        pooled = eqx.nn.MLP(
            self.features, self.out_dim, self.width, self.depth, activation=act, key=k_pooled
        )
        return _DeepSet(element, pooled, self.element_dim)
