"""The network of NPSE and FMPE: an optional embedding of x and a time-conditioned field."""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array

from .._types import Key
from ..nn import AbstractEmbedding
from ..training import Training


class FieldNet(eqx.Module):
    """One network of NPSE or FMPE: an optional embedding of x and a vector field f(θ, t, c).

    Attributes:
        field: the time-conditioned network (built by a
            :class:`~sbi_kit.estimators.AbstractVectorField` spec).
        embedding: the embedding network of standardised observations, or ``None`` (the
            flattened observation is the context).
    """

    field: eqx.Module
    embedding: eqx.Module | None

    def context(self, x_std: Array) -> Array:
        """The context for one standardised observation, shape ``(cond_dim,)``."""
        return jnp.ravel(x_std) if self.embedding is None else self.embedding(x_std)

    def __call__(self, theta: Array, t: Array, context: Array) -> Array:
        """f(θ, t, context) for one example; shape ``(dim_theta,)``."""
        return self.field(theta, t, context)


def build_field_net(
    key: Key, network, embedding: AbstractEmbedding | None, dim_theta: int, x_shape
) -> FieldNet:
    """A :class:`FieldNet` from a vector-field spec and an optional embedding spec."""
    key_emb, key_field = jax.random.split(key)
    if embedding is None:
        emb, cond_dim = None, math.prod(x_shape)
    else:
        emb, cond_dim = embedding.build(key_emb, x_shape), embedding.out_dim
    return FieldNet(network.build(key_field, dim_theta, cond_dim), emb)


VECTOR_FIELD_TRAINING = Training(patience=100, validation_repeats=8, ema_decay=0.999)
"""NPSE's and FMPE's default training: as NPE's, with patience 100, the validation loss
averaged over 8 fixed draws per example (their Monte Carlo loss makes the validation loss noisy)
and an exponential moving average of the parameters (decay 0.999 per step) as the network that
is validated and kept; see the ``training`` argument of :class:`~sbi_kit.NPSE`."""
