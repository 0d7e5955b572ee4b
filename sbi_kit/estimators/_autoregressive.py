"""Masked autoregressive flows whose inverse (used to sample) takes one coordinate per step.

flowjax's masked autoregressive bijection inverts in ``d`` sequential steps, and each step
evaluates the conditioner's full output and inverts the transformer for *all* ``d``
coordinates, keeping only one. For a spline transformer that is ``d`` times the necessary
spline work, and the conditioner's last layer computes ``d`` times the parameters it needs.
:class:`_OneCoordinateInverse` computes, in step ``r``, only coordinate ``r``'s transformer
parameters (its rows of the last layer) and inverts only that coordinate. The result is the
same bijection with the same parameters (same leaves, so saved models load unchanged); only
the inverse's arithmetic differs (float32 rounding of a smaller matrix product). Measured on
one CPU core, 10,000 draws of an NSF (5 layers, 50 × 2 conditioner, 10 knots) conditioned on
a ``d``-dimensional context: d = 2 0.127 s → 0.042 s, d = 5 0.69 s → 0.10 s, d = 10
2.68 s → 0.21 s.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import paramax
from flowjax.bijections import AbstractBijection, MaskedAutoregressive
from flowjax.distributions import Normal, Transformed
from flowjax.flows import masked_autoregressive_flow

from .._types import Key


class _OneCoordinateInverse(MaskedAutoregressive):
    """flowjax's :class:`MaskedAutoregressive`, with an inverse step that inverts one coordinate."""

    def __init__(self, layer: MaskedAutoregressive):
        self.shape = layer.shape
        self.cond_shape = layer.cond_shape
        self.transformer_constructor = layer.transformer_constructor
        self.masked_autoregressive_mlp = layer.masked_autoregressive_mlp

    def inv_scan_fn(self, init, _, condition):
        """Step ``rank`` of the inverse: coordinate ``rank`` from the coordinates before it."""
        y, rank = init
        h = y if condition is None else jnp.hstack((y, condition))
        mlp = paramax.unwrap(self.masked_autoregressive_mlp)
        for layer in mlp.layers[:-1]:
            h = mlp.activation(layer(h))
        last = mlp.layers[-1]
        per_coordinate = last.weight.shape[0] // self.shape[-1]
        start = rank * per_coordinate
        params = jax.lax.dynamic_slice_in_dim(last.weight, start, per_coordinate) @ h
        if last.bias is not None:
            params = params + jax.lax.dynamic_slice_in_dim(last.bias, start, per_coordinate)
        transformer = self.transformer_constructor(mlp.final_activation(params))
        x = y.at[rank].set(transformer.inverse(y[rank]))
        return (x, rank + 1), None


def masked_autoregressive(
    key: Key,
    dim: int,
    cond_dim: int,
    *,
    transformer: AbstractBijection,
    layers: int,
    width: int,
    depth: int,
    activation: Callable,
) -> Transformed:
    """flowjax's masked autoregressive flow (density direction fast) with the faster inverse."""
    flow = masked_autoregressive_flow(
        key,
        base_dist=Normal(jnp.zeros(dim)),
        transformer=transformer,
        cond_dim=cond_dim,
        flow_layers=layers,
        nn_width=width,
        nn_depth=depth,
        nn_activation=activation,
    )

    def is_layer(node) -> bool:
        return isinstance(node, MaskedAutoregressive)

    return jax.tree_util.tree_map(
        lambda node: _OneCoordinateInverse(node) if is_layer(node) else node,
        flow,
        is_leaf=is_layer,
    )
