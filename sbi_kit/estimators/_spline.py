"""The rational-quadratic spline transformer of the spline flows, with a knot temperature.

flowjax's :class:`~flowjax.bijections.RationalQuadraticSpline` turns its unconstrained
parameters into all knot positions and all knot derivatives (a softplus each) before it looks
up the one bin a value falls in. A flow's conditioner makes a new spline per coordinate, draw
and layer, so that set-up is most of a spline flow's transformer cost. :class:`_Spline` has the
same parameters in the same order, with the same initial values and the same map (Durkan et
al., 2019, eq. 4 and its inverse), but computes only the knot positions it searches and the
two derivatives of the bin it uses. Measured on one CPU core (10⁵ splines of 10 knots, random
parameters at two scales, flowjax's then this one in one process): inverse 25 → 21 ms, forward
with log-determinant 25–26 → 21 ms, gradient of the log-determinants 62–63 → 51–53 ms. In a
whole GELU ``NSF`` the gradient of the loss on 512 pairs took 5.1–5.3 ms against 7.8–9.1 ms at
d = 2 and 18.9 ms against 35.4–37.4 ms at d = 10 (2026-12-06). The two splines agree to
float32 rounding: on those 10⁵ parameter sets the maps differ by at most 1e-5 and the
log-determinants by at most 3e-4 (where bins sit at the 1e-3 width floor).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from flowjax.bijections import AbstractBijection
from jaxtyping import Array

_MIN_WIDTH = 1e-3
"""Smallest bin width and height (flowjax's default)."""
_MIN_DERIVATIVE = 1e-3
"""Smallest knot derivative (flowjax's default)."""


class _Spline(AbstractBijection):
    """A scalar monotone rational-quadratic spline on ``[-interval, interval]``, identity outside.

    Parameters (unconstrained, as a conditioner outputs them): ``x_pos`` and ``y_pos`` give the
    ``knots + 1`` bin widths and heights as ``softmax(u / temperature)`` (shifted so no bin is
    narrower than ``1e-3``), ``derivatives`` the ``knots + 2`` knot derivatives as
    ``softplus(u) + 1e-3``. At zero parameters (plus the initial offsets) it is the identity.
    """

    knots: int = eqx.field(static=True)
    interval: tuple[float, float] = eqx.field(static=True)
    temperature: float = eqx.field(static=True)
    x_pos: Array
    y_pos: Array
    derivatives: Array
    shape = ()
    cond_shape = None

    def __init__(self, knots: int, interval: float, temperature: float = 1.0):
        self.knots = knots
        self.interval = (-float(interval), float(interval))
        self.temperature = float(temperature)
        self.x_pos = jnp.zeros(knots + 1)
        self.y_pos = jnp.zeros(knots + 1)
        # softplus(d) + 1e-3 = 1 at d = log(expm1(1 - 1e-3)): derivatives 1, the identity
        self.derivatives = jnp.full(knots + 2, jnp.log(jnp.expm1(1.0 - _MIN_DERIVATIVE)))

    def _knots(self, u: Array) -> Array:
        """The ``knots + 2`` knot positions whose gaps are ``softmax(u / temperature)``-wide."""
        lower, upper = self.interval
        free = upper - lower - _MIN_WIDTH * u.shape[-1]
        widths = _MIN_WIDTH + free * jax.nn.softmax(u / self.temperature)
        inner = jnp.cumsum(widths)[:-1] + lower
        return jnp.concatenate([jnp.array([lower]), inner, jnp.array([upper])])

    def _bin(self, value: Array, searched: int):
        """The bin of ``value`` among the knots of ``(x_pos, y_pos)[searched]``.

        Returns whether ``value`` is inside the interval, ``value`` clipped to it, and the
        bin's left x, width, left y, height and the derivatives at its two ends.
        """
        lower, upper = self.interval
        inside = (value >= lower) & (value <= upper)
        clipped = jnp.clip(value, lower, upper)
        x_knots, y_knots = self._knots(self.x_pos), self._knots(self.y_pos)
        edges = (x_knots, y_knots)[searched]
        k = jnp.clip(jnp.sum(edges[1:] < clipped), 0, self.knots)
        xk, xk1 = x_knots[k], x_knots[k + 1]
        yk, yk1 = y_knots[k], y_knots[k + 1]
        d = jax.nn.softplus(jax.lax.dynamic_slice_in_dim(self.derivatives, k, 2)) + _MIN_DERIVATIVE
        return inside, clipped, (xk, xk1 - xk, yk, yk1 - yk, d[0], d[1])

    def transform_and_log_det(self, x, condition=None):
        x = jnp.asarray(x)
        inside, clipped, (xk, wk, yk, hk, dk, dk1) = self._bin(x, 0)
        xi = (clipped - xk) / wk
        sk = hk / wk
        denominator = sk + (dk1 + dk - 2 * sk) * xi * (1 - xi)
        y = yk + hk * (sk * xi**2 + dk * xi * (1 - xi)) / denominator
        y = jnp.where(inside, jnp.clip(y, *self.interval), x)
        return y, jnp.log(_derivative(xi, sk, dk, dk1, denominator, inside))

    def inverse_and_log_det(self, y, condition=None):
        y = jnp.asarray(y)
        inside, clipped, (xk, wk, yk, hk, dk, dk1) = self._bin(y, 1)
        sk = hk / wk
        shifted = (clipped - yk) * (dk1 + dk - 2 * sk)
        a = hk * (sk - dk) + shifted
        b = hk * dk - shifted
        c = -sk * (clipped - yk)
        xi = 2 * c / (-b - jnp.sqrt(b**2 - 4 * a * c))
        x = jnp.where(inside, jnp.clip(xi * wk + xk, *self.interval), y)
        denominator = sk + (dk1 + dk - 2 * sk) * xi * (1 - xi)
        return x, -jnp.log(_derivative(xi, sk, dk, dk1, denominator, inside))


def _derivative(xi, sk, dk, dk1, denominator, inside) -> Array:
    """dy/dx of the forward map inside the bin (Durkan et al., 2019, eq. 5); 1 outside."""
    numerator = sk**2 * (dk1 * xi**2 + 2 * sk * xi * (1 - xi) + dk * (1 - xi) ** 2)
    return jnp.where(inside, numerator / denominator**2, 1.0)


def rational_quadratic_spline(
    knots: int, interval: float, knot_temperature: float = 1.0
) -> _Spline:
    """The scalar spline transformer with bin widths and heights ``softmax(u / knot_temperature)``.

    A flow's conditioner outputs the unconstrained ``u``. With a temperature ``T > 1`` the knots
    start closer to evenly spaced and, under Adam, move ``T`` times more slowly than the
    derivatives; the `sbi` package's splines (nflows) use ``T = sqrt(conditioner width)``.
    ``T = 1`` is flowjax's ``RationalQuadraticSpline(knots, interval)``: the same parameters
    and the same map.
    """
    if not knot_temperature > 0:
        raise ValueError(f"knot_temperature must be > 0, got {knot_temperature!r}.")
    return _Spline(knots, interval, knot_temperature)
