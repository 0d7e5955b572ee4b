"""Multilayer-perceptron embedding of observations."""

from __future__ import annotations

import math

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array

from .._types import Key
from ._activation import activation
from ._embedding import AbstractEmbedding


class _FlatMLP(eqx.Module):
    mlp: eqx.nn.MLP

    def __call__(self, x: Array) -> Array:
        return self.mlp(jnp.ravel(x))


class MLPEmbedding(AbstractEmbedding):
    """An MLP that maps one (flattened) observation to ``out_dim`` summary features.

    Args:
        out_dim: number of output features.
        width: hidden units per layer.
        depth: number of hidden layers.
        activation: activation name.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from sbi_kit.nn import MLPEmbedding
        >>> net = MLPEmbedding(out_dim=4).build(jax.random.key(0), (10,))
        >>> net(jnp.ones(10)).shape
        (4,)
    """

    out_dim: int = 20
    width: int = 64
    depth: int = 2
    activation: str = "relu"

    def build(self, key: Key, x_shape: tuple[int, ...]) -> eqx.Module:
        """The embedding network for observations of shape ``x_shape``."""
        mlp = eqx.nn.MLP(
            in_size=math.prod(x_shape),
            out_size=self.out_dim,
            width_size=self.width,
            depth=self.depth,
            activation=activation(self.activation),
            key=key,
        )
        return _FlatMLP(mlp)
