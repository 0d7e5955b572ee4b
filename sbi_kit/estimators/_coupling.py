"""Coupling spline flows with residual conditioners and LU mixing (the layout `sbi` uses)."""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from flowjax.bijections import (
    AbstractBijection,
    Chain,
    Coupling,
    Invert,
    Permute,
    Scan,
    TriangularAffine,
)
from flowjax.distributions import Normal, Transformed

from .._types import Key
from ..nn import ResidualNet


def _layer(
    key: Key,
    dim: int,
    cond_dim: int,
    *,
    transformer: AbstractBijection,
    width: int,
    blocks: int,
    activation: Callable,
):
    """One layer: a spline coupling, a reversal of the coordinates, then an LU-affine map."""
    k_coupling, k_net = jax.random.split(key)
    untransformed = dim // 2
    coupling = Coupling(
        k_coupling,
        transformer=transformer,
        untransformed_dim=untransformed,
        dim=dim,
        cond_dim=cond_dim,
        nn_width=1,
        nn_depth=0,
    )
    # Replace flowjax's MLP conditioner by a context-gated residual network.
    conditioner = ResidualNet(
        k_net,
        in_size=untransformed + cond_dim,
        out_size=coupling.conditioner.out_size,
        width=width,
        blocks=blocks,
        context_dim=cond_dim,
        activation=activation,
    )
    coupling = eqx.tree_at(lambda c: c.conditioner, coupling, conditioner)
    if dim == 1:
        return coupling
    eye, zero = jnp.eye(dim), jnp.zeros(dim)
    return Chain(
        [
            coupling,
            Permute(jnp.arange(dim)[::-1]),
            TriangularAffine(zero, eye, lower=True),
            TriangularAffine(zero, eye, lower=False),
        ]
    )


def coupling_spline_flow(
    key: Key,
    dim: int,
    cond_dim: int,
    *,
    layers: int,
    transformer: AbstractBijection,
    width: int,
    blocks: int,
    activation: Callable,
) -> Transformed:
    """A conditional flow over ``dim`` variables given a ``cond_dim`` context.

    Each of the ``layers`` layers is a rational-quadratic spline coupling whose conditioner is a
    :class:`~sbi_kit.nn.ResidualNet`, then a reversal of the coordinates and a learned
    LU-factorised affine map (identity at initialisation). The layers are scanned, so the
    compile time does not grow with their number.
    """
    keys = jax.random.split(key, layers)
    stack = eqx.filter_vmap(
        lambda k: _layer(
            k,
            dim,
            cond_dim,
            transformer=transformer,
            width=width,
            blocks=blocks,
            activation=activation,
        )
    )(keys)
    # Invert: density evaluation runs each layer forwards, sampling runs them backwards.
    return Transformed(Normal(jnp.zeros(dim)), Invert(Scan(stack)))
