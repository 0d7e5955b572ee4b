"""A residual network whose blocks are gated by a context vector (a conditioner for flows)."""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array

from .._types import Key


class _GatedBlock(eqx.Module):
    """h ↦ h + GLU(W₂ σ(W₁ σ(h)), V c): two layers, gated by the context c."""

    first: eqx.nn.Linear
    second: eqx.nn.Linear
    gate: eqx.nn.Linear | None
    activation: Callable = eqx.field(static=True)

    def __init__(self, key: Key, width: int, context_dim: int, activation: Callable):
        k1, k2, k3, k4 = jax.random.split(key, 4)
        self.first = eqx.nn.Linear(width, width, key=k1)
        second = eqx.nn.Linear(width, width, key=k2)
        # Near-zero last layer: every block starts close to the identity.
        small = jax.random.uniform(k3, second.weight.shape, minval=-1e-3, maxval=1e-3)
        self.second = eqx.tree_at(lambda m: (m.weight, m.bias), second, (small, jnp.zeros(width)))
        self.gate = eqx.nn.Linear(context_dim, width, key=k4) if context_dim else None
        self.activation = activation

    def __call__(self, h: Array, context: Array) -> Array:
        out = self.second(self.activation(self.first(self.activation(h))))
        if self.gate is not None:
            out = out * jax.nn.sigmoid(self.gate(context))
        return h + out


class ResidualNet(eqx.Module):
    """A residual MLP for one input vector whose last ``context_dim`` entries are a context.

    The whole input goes through a first linear layer; every residual block is then gated
    by the context (a gated linear unit, as in the conditioners of Durkan et al., 2019), and a
    last linear layer gives ``out_size`` outputs.

    Args:
        key: PRNG key for the initialisation.
        in_size: length of the input vector, context included.
        out_size: number of outputs.
        width: hidden units.
        blocks: number of residual blocks (two linear layers each).
        context_dim: how many of the input's last entries are the context (0: no gating).
        activation: the activation function.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from sbi_kit.nn import ResidualNet
        >>> net = ResidualNet(jax.random.key(0), in_size=5, out_size=3, context_dim=4)
        >>> net(jnp.ones(5)).shape
        (3,)
    """

    first: eqx.nn.Linear
    blocks: tuple[_GatedBlock, ...]
    last: eqx.nn.Linear
    context_dim: int = eqx.field(static=True)

    def __init__(
        self,
        key: Key,
        *,
        in_size: int,
        out_size: int,
        width: int = 50,
        blocks: int = 2,
        context_dim: int = 0,
        activation: Callable = jax.nn.relu,
    ):
        if not 0 <= context_dim <= in_size:
            raise ValueError(
                f"ResidualNet: context_dim must lie in [0, in_size={in_size}], got {context_dim}."
            )
        k_first, k_last, *k_blocks = jax.random.split(key, blocks + 2)
        self.first = eqx.nn.Linear(in_size, width, key=k_first)
        self.blocks = tuple(_GatedBlock(k, width, context_dim, activation) for k in k_blocks)
        self.last = eqx.nn.Linear(width, out_size, key=k_last)
        self.context_dim = context_dim

    def __call__(self, x: Array) -> Array:
        """Outputs for one input vector of length ``in_size``; shape ``(out_size,)``."""
        context = x[x.shape[0] - self.context_dim :]
        h = self.first(x)
        for block in self.blocks:
            h = block(h, context)
        return self.last(h)
