"""The rational-quadratic spline transformer of the spline flows, with a knot temperature."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import paramax
from flowjax.bijections import RationalQuadraticSpline


def rational_quadratic_spline(
    knots: int, interval: float, knot_temperature: float = 1.0
) -> RationalQuadraticSpline:
    """flowjax's scalar spline whose bin widths and heights are ``softmax(u / knot_temperature)``.

    A flow's conditioner outputs the unconstrained ``u``. With a temperature ``T > 1`` the knots
    start closer to evenly spaced and, under Adam, move ``T`` times more slowly than the
    derivatives; the `sbi` package's splines (nflows) use ``T = sqrt(conditioner width)``.
    ``T = 1`` is flowjax's spline unchanged.
    """
    if not knot_temperature > 0:
        raise ValueError(f"knot_temperature must be > 0, got {knot_temperature!r}.")
    spline = RationalQuadraticSpline(knots=knots, interval=interval)
    if knot_temperature == 1.0:
        return spline
    temperature = float(knot_temperature)
    return eqx.tree_at(
        lambda s: (s.x_pos.arr, s.y_pos.arr),
        spline,
        replace_fn=lambda u: paramax.Parameterize(jnp.divide, u, temperature),
    )
