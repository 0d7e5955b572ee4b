"""Masked autoregressive flows whose inverse (used to sample) takes one coordinate per step.

flowjax's masked autoregressive bijection inverts in ``d`` sequential steps, and each step
evaluates the conditioner's full output and inverts the transformer for *all* ``d``
coordinates, keeping only one. For a spline transformer that is ``d`` times the necessary
spline work, and the conditioner's last layer computes ``d`` times the parameters it needs.
:class:`_OneCoordinateInverse` computes, in step ``r``, only coordinate ``r``'s transformer
parameters (its rows of the last layer) and inverts only that coordinate. Coordinate 0's
parameters depend on the context alone (the masks), so the first step evaluates the
conditioner on the context with zeros in place of the coordinates: when many draws share one
context (``flow.sample(key, (n,), condition=c)`` vectorises over draws with ``c`` unbatched),
that step runs once per call instead of once per draw. The result is the same bijection with
the same parameters (same leaves, so saved models load unchanged); only the inverse's
arithmetic differs (float32 rounding of a smaller matrix product). Measured on one CPU core,
10,000 draws of an NSF (5 layers, 50 × 2 conditioner, 10 knots) conditioned on a
``d``-dimensional context: d = 2 0.127 s → 0.042 s, d = 5 0.69 s → 0.10 s, d = 10
2.68 s → 0.21 s with the one-coordinate step; the shared first step then took GELU
conditioners from 45–53 ms to 23–31 ms at d = 2, 111–183 ms to 88–89 ms at d = 5 and
257–335 ms to 202–213 ms at d = 10 (2026-12-06, two alternating runs each, another job on
the other core), for up to 0.9 s more on the first call (compilation).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

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

    def inverse_and_log_det(self, y, condition=None):
        """The inverse: coordinate 0 from the context alone, then one coordinate per scan step.

        Coordinate 0's transformer parameters do not depend on ``y`` (the masks), so they are
        computed from the context with ``y`` replaced by zeros. Under ``vmap`` over draws that
        share one context that step is then evaluated once instead of once per draw.
        """
        params = self._coordinate_params(jnp.zeros(self.shape, y.dtype), condition, 0)
        x = y.at[0].set(self.transformer_constructor(params).inverse(y[0]))
        fn = partial(self.inv_scan_fn, condition=condition)
        (x, _), _ = jax.lax.scan(fn, (x, 1), None, length=self.shape[-1] - 1)
        log_det = self.transform_and_log_det(x, condition)[1]
        return x, -log_det

    def inv_scan_fn(self, init, _, condition):
        """Step ``rank`` of the inverse: coordinate ``rank`` from the coordinates before it."""
        y, rank = init
        params = self._coordinate_params(y, condition, rank)
        x = y.at[rank].set(self.transformer_constructor(params).inverse(y[rank]))
        return (x, rank + 1), None

    def _coordinate_params(self, y, condition, rank):
        """Coordinate ``rank``'s transformer parameters (its rows of the last layer only)."""
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
        return mlp.final_activation(params)


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
