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
        null_dim: ``None``, or (for a network that also learns the unconditional field, see
            ``NPSE(unconditional_fraction=...)``) the size of an observation's context before
            the flag: every context then ends with a flag, 0 for an observation and 1 for
            "no observation" (:meth:`null_context`, zeros elsewhere).
    """

    field: eqx.Module
    embedding: eqx.Module | None
    null_dim: int | None = eqx.field(static=True, default=None)

    def context(self, x_std: Array) -> Array:
        """The context for one standardised observation, shape ``(cond_dim,)``."""
        context = jnp.ravel(x_std) if self.embedding is None else self.embedding(x_std)
        if self.null_dim is None:
            return context
        return jnp.append(context, jnp.zeros((), context.dtype))

    @property
    def has_null_context(self) -> bool:
        """Whether the network also learned the unconditional field (:meth:`null_context`)."""
        return self.null_dim is not None

    def null_context(self) -> Array:
        """The context that stands for "no observation" (zeros, then the flag 1).

        Raises:
            ValueError: the network was not trained with dropped observations.
        """
        if self.null_dim is None:
            raise ValueError(
                "FieldNet.null_context: this network was trained on observations only; train "
                "with NPSE(unconditional_fraction=...) > 0 to learn the unconditional score."
            )
        return jnp.zeros(self.null_dim + 1).at[-1].set(1.0)

    def __call__(self, theta: Array, t: Array, context: Array) -> Array:
        """f(θ, t, context) for one example; shape ``(dim_theta,)``."""
        return self.field(theta, t, context)


def build_field_net(
    key: Key,
    network,
    embedding: AbstractEmbedding | None,
    dim_theta: int,
    x_shape,
    *,
    null_context: bool = False,
) -> FieldNet:
    """A :class:`FieldNet` from a vector-field spec and an optional embedding spec; with
    ``null_context`` its contexts carry the observed / unobserved flag (one more input)."""
    key_emb, key_field = jax.random.split(key)
    if embedding is None:
        emb, cond_dim = None, math.prod(x_shape)
    else:
        emb, cond_dim = embedding.build(key_emb, x_shape), embedding.out_dim
    if not null_context:
        return FieldNet(network.build(key_field, dim_theta, cond_dim), emb)
    return FieldNet(network.build(key_field, dim_theta, cond_dim + 1), emb, cond_dim)


VECTOR_FIELD_TRAINING = Training(patience=100, validation_repeats=8, ema_decay=0.999)
"""NPSE's and FMPE's default training: as NPE's, with patience 100, the validation loss
averaged over 8 fixed draws per example (their Monte Carlo loss makes the validation loss noisy)
and an exponential moving average of the parameters (decay 0.999 per step) as the network that
is validated and kept; see the ``training`` argument of :class:`~sbi_kit.NPSE`."""
