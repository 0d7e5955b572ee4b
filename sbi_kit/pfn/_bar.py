"""The bar distribution ("Riemann distribution") that a PFN predicts, and its bucket borders.

A prior-data fitted network (Müller, Hollmann, Pineda Arango, Grabocka & Hutter, "Transformers
Can Do Bayesian Inference", ICLR 2022) predicts a one-dimensional target ``y`` as a
classification over ``K`` buckets: the borders ``b_0 < b_1 < ... < b_K`` are fixed before
training so that every bucket holds the same mass under a large sample of ``y`` from the prior
(:func:`bucket_borders`), and the network outputs ``K`` logits. The density is piecewise
constant, ``softmax(logits)_k / (b_{k+1} - b_k)`` inside an inner bucket ``k``.

For a support on the whole real line, the two OUTER buckets are replaced by half-normal tails
(the paper's construction): the first bucket's probability ``p_0`` is spread over
``(-inf, b_1]`` as a half-normal anchored at ``b_1`` that extends to the left, and the last
bucket's ``p_{K-1}`` over ``[b_{K-1}, +inf)`` as a half-normal anchored at ``b_{K-1}`` that
extends to the right. Each tail's scale is ``width / Φ⁻¹(0.75)`` with ``width`` the width of the
bucket it replaces, so that the tail's median sits at that bucket's outer border (``b_0`` or
``b_K``). :class:`BarDistribution` is this distribution as a numpyro ``Distribution``: usable as
``numpyro.sample(..., obs=...)`` in a model, a pytree for ``jit``, with analytic moments, CDF and
inverse CDF.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
from jax.scipy.special import ndtr, ndtri
from jaxtyping import Array
from numpyro.distributions import constraints

__all__ = ["BarDistribution", "bucket_borders"]

_PHI_INV_075 = 0.6744897501960817  # Φ⁻¹(0.75): the median of a standard half-normal
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)  # mean of a standard half-normal
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
_LOG_2 = math.log(2.0)
_TIE_EPSILON = 1e-6  # a repeated quantile is moved up by this fraction of the range of y


# ----------------------------------------------------------------------------------------------
# bucket borders
# ----------------------------------------------------------------------------------------------


def _strictly_increasing(q: np.ndarray, delta: float) -> np.ndarray:
    """``q`` (sorted, one dtype) made strictly increasing: each value is at least the previous
    one plus ``delta``, and at least the next representable number above it."""
    b = q.copy()
    for i in range(1, b.shape[0]):
        if b[i] <= b[i - 1]:
            nudged = b.dtype.type(b[i - 1] + delta)
            b[i] = nudged if nudged > b[i - 1] else np.nextafter(b[i - 1], b.dtype.type(np.inf))
    return b


def _borders_1d(values: np.ndarray, num_buckets: int, dtype: np.dtype, where: str) -> np.ndarray:
    finite = values[np.isfinite(values)]
    if finite.shape[0] < 2 * num_buckets:
        raise ValueError(
            f"bucket_borders: `y`{where} must hold at least 2 * num_buckets = {2 * num_buckets} "
            f"finite values, got {finite.shape[0]} (of {values.shape[0]})."
        )
    low, high = finite.min(), finite.max()
    if not high > low:
        raise ValueError(
            f"bucket_borders: `y`{where} must hold at least two distinct finite values, got only "
            f"{float(low)!r}."
        )
    q = np.quantile(finite, np.linspace(0.0, 1.0, num_buckets + 1)).astype(dtype)
    delta = _TIE_EPSILON * float(high - low)
    return _strictly_increasing(np.sort(q), delta)


def bucket_borders(y, num_buckets: int, *, axis: int | None = None) -> Array:
    """Borders of ``num_buckets`` buckets that hold equal mass under a sample ``y``.

    The borders are the ``0, 1/K, ..., 1`` quantiles of the finite values of ``y`` (linear
    interpolation, as ``numpy.quantile``), so the outer borders are the sample's minimum and
    maximum. Non-finite values (NaN, ±inf) are dropped. Repeated values (ties) would make equal
    quantiles and zero-width buckets; instead the borders are made strictly increasing: a border
    that is not above the previous one is moved to the previous border plus ``1e-6`` times the
    range of ``y`` (or to the next representable number, whichever is larger), in the output
    dtype. Such nudged buckets then no longer hold equal mass, which no choice could give with
    ties. Runs on concrete values (NumPy), not inside ``jit``.

    Args:
        y: a large sample of the target, any shape. With ``axis=None`` it is flattened; with an
            integer ``axis`` the borders are computed separately for each position of the other
            axes, e.g. per column of a ``(num_samples, p)`` array with ``axis=0`` (the borders of
            per-parameter heads).
        num_buckets: the number of buckets ``K``, an int >= 2.
        axis: ``None`` (one set of borders), or the axis of ``y`` that holds the sample.

    Returns:
        Strictly increasing borders of shape ``(num_buckets + 1,)`` with ``axis=None``, otherwise
        of shape ``(*other_shape, num_buckets + 1)`` where ``other_shape`` is ``y.shape`` without
        ``axis`` (``(p, num_buckets + 1)`` for ``y`` of shape ``(num_samples, p)`` and
        ``axis=0``). Floating dtype: JAX's default (float32 unless x64 is enabled).

    Raises:
        TypeError: ``y`` is not a real-valued array (or is a tracer inside ``jit``),
            ``num_buckets`` is not an int, ``axis`` is not an int or ``None``.
        ValueError: ``num_buckets < 2``; ``axis`` out of range; fewer than ``2 * num_buckets``
            finite values (in some column) or only one distinct value.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from sbi_kit.pfn import bucket_borders
        >>> y = jax.random.normal(jax.random.key(0), (10_000,))
        >>> borders = bucket_borders(y, 4)
        >>> borders.shape, bool(jnp.all(jnp.diff(borders) > 0))
        ((5,), True)
        >>> quartiles = jnp.array([-0.674, 0.0, 0.674])  # of the standard normal
        >>> bool(jnp.allclose(borders[1:-1], quartiles, atol=0.05))
        True
        >>> bucket_borders(jnp.stack([y, 10.0 * y], axis=1), 4, axis=0).shape  # per column
        (2, 5)
    """
    fn = "bucket_borders"
    if isinstance(num_buckets, bool) or not isinstance(num_buckets, int | np.integer):
        raise TypeError(
            f"{fn}: `num_buckets` must be an int >= 2, got {type(num_buckets).__name__} "
            f"{num_buckets!r}."
        )
    num_buckets = int(num_buckets)
    if num_buckets < 2:
        raise ValueError(f"{fn}: `num_buckets` must be an int >= 2, got {num_buckets}.")
    if isinstance(y, jax.core.Tracer):
        raise TypeError(
            f"{fn}: `y` must hold concrete values (it drops non-finite values, which changes the "
            "shape), got a tracer; call it outside jit/vmap."
        )
    try:
        arr = np.asarray(y)
    except (TypeError, ValueError) as e:
        raise TypeError(
            f"{fn}: `y` must be an array of real numbers, got {type(y).__name__} ({e})."
        ) from None
    if not (
        np.issubdtype(arr.dtype, np.floating)
        or np.issubdtype(arr.dtype, np.integer)
        or arr.dtype == np.bool_
    ):
        raise TypeError(f"{fn}: `y` must hold real numbers, got dtype {arr.dtype}.")
    dtype = np.dtype(jax.dtypes.canonicalize_dtype(np.result_type(arr.dtype, np.float32)))
    values = arr.astype(np.float64)
    if axis is None:
        return jnp.asarray(_borders_1d(values.reshape(-1), num_buckets, dtype, ""))
    if isinstance(axis, bool) or not isinstance(axis, int | np.integer):
        raise TypeError(f"{fn}: `axis` must be an int or None, got {type(axis).__name__} {axis!r}.")
    if not -arr.ndim <= axis < arr.ndim:
        raise ValueError(
            f"{fn}: `axis` must be in [{-arr.ndim}, {arr.ndim}) for `y` of shape {arr.shape}, "
            f"got {axis}."
        )
    moved = np.moveaxis(values, int(axis), -1)
    other_shape = moved.shape[:-1]
    rows = moved.reshape(-1, moved.shape[-1])
    out = np.zeros((rows.shape[0], num_buckets + 1), dtype)
    for i, row in enumerate(rows):
        index = tuple(int(j) for j in np.unravel_index(i, other_shape))
        at = index[0] if len(index) == 1 else index
        where = f" (at position {at} of the axes other than axis={axis})"
        out[i] = _borders_1d(row, num_buckets, dtype, where)
    return jnp.asarray(out.reshape(*other_shape, num_buckets + 1))


# ----------------------------------------------------------------------------------------------
# the distribution: one example (logits (K,), borders (K + 1,), a scalar); batched by vectorize
# ----------------------------------------------------------------------------------------------


def _tail_scales(borders: Array) -> tuple[Array, Array]:
    """Scales of the left and right half-normal tails: outer bucket width / Φ⁻¹(0.75)."""
    return (borders[1] - borders[0]) / _PHI_INV_075, (borders[-1] - borders[-2]) / _PHI_INV_075


def _inner_index(borders: Array, value: Array) -> Array:
    """Index of the bucket holding ``value``, clipped to the inner buckets ``1 .. K - 2``."""
    k = borders.shape[0] - 1
    idx = jnp.searchsorted(borders, value, side="right") - 1
    return jnp.clip(idx, 1, max(k - 2, 1))


def _cumulative(log_p: Array) -> Array:
    """``[0, p_0, p_0 + p_1, ..., sum p]`` (shape ``(K + 1,)``), non-decreasing by construction."""
    c = jax.lax.cummax(jnp.cumsum(jnp.exp(log_p)), axis=0)
    return jnp.concatenate([jnp.zeros((1,), c.dtype), c])


def _tail(borders: Array, log_p: Array, left: Array):
    """The half-normal tail on the side ``left`` (a bool; the right one otherwise): its anchor,
    scale, log-mass and the direction ``sign`` (-1 left, +1 right) in which it extends."""
    s_left, s_right = _tail_scales(borders)
    anchor = jnp.where(left, borders[1], borders[-2])
    scale = jnp.where(left, s_left, s_right)
    log_mass = jnp.where(left, log_p[0], log_p[-1])
    sign = jnp.where(left, -1.0, 1.0)
    return anchor, scale, log_mass, sign


def _log_prob_one(logits: Array, borders: Array, value: Array) -> Array:
    log_p = jax.nn.log_softmax(logits)
    width = jnp.diff(borders)
    idx = _inner_index(borders, value)
    inner = log_p[idx] - jnp.log(width[idx])
    # tails in log space: log(2 p) + log N(z; 0, 1) - log(scale), finite far out
    in_left = value < borders[1]
    anchor, scale, log_mass, sign = _tail(borders, log_p, in_left)
    z = sign * (value - anchor) / scale
    tail = _LOG_2 + log_mass - jnp.log(scale) - _HALF_LOG_2PI - 0.5 * z**2
    out = jnp.where(in_left | (value >= borders[-2]), tail, inner)
    return jnp.where(jnp.isnan(value), jnp.nan, out)


def _cdf_one(logits: Array, borders: Array, value: Array) -> Array:
    log_p = jax.nn.log_softmax(logits)
    c = _cumulative(log_p)
    width = jnp.diff(borders)
    idx = _inner_index(borders, value)
    frac = jnp.clip((value - borders[idx]) / width[idx], 0.0, 1.0)
    inner = jnp.clip(c[idx] + jnp.exp(log_p[idx]) * frac, c[idx], c[idx + 1])
    # tails: the mass beyond value, away from the anchor, is 2 p Φ(-|value - anchor| / scale)
    in_left = value < borders[1]
    anchor, scale, log_mass, sign = _tail(borders, log_p, in_left)
    beyond = 2.0 * jnp.exp(log_mass) * ndtr(-sign * (value - anchor) / scale)
    tail = jnp.where(in_left, jnp.minimum(beyond, c[1]), jnp.maximum(1.0 - beyond, c[-2]))
    out = jnp.clip(jnp.where(in_left | (value >= borders[-2]), tail, inner), 0.0, 1.0)
    return jnp.where(jnp.isnan(value), jnp.nan, out)


def _icdf_one(logits: Array, borders: Array, q: Array) -> Array:
    log_p = jax.nn.log_softmax(logits)
    c = _cumulative(log_p)
    width = jnp.diff(borders)
    # inner buckets: linear within the bucket
    k = borders.shape[0] - 1
    idx = jnp.clip(jnp.searchsorted(c, q, side="right") - 1, 1, max(k - 2, 1))
    mass = c[idx + 1] - c[idx]
    frac = jnp.where(mass > 0, (q - c[idx]) / jnp.where(mass > 0, mass, 1.0), 0.0)
    inner = borders[idx] + width[idx] * jnp.clip(frac, 0.0, 1.0)
    # tails: solve 2 p Φ(-|y - anchor| / scale) = r with r = q (left) or 1 - q (right)
    in_left = q < c[1]
    anchor, scale, log_mass, sign = _tail(borders, log_p, in_left)
    p_tail = jnp.exp(log_mass)
    r = jnp.where(in_left, q, 1.0 - q)
    r = jnp.where(p_tail > 0, r / jnp.where(p_tail > 0, 2.0 * p_tail, 1.0), 0.0)
    # (clipped below at the smallest normal number: a subnormal ratio may be flushed to zero,
    # which would give an infinite quantile for q > 0)
    tail = anchor - sign * scale * ndtri(jnp.clip(r, jnp.finfo(q.dtype).tiny, 0.5))
    out = jnp.where(in_left | (q >= c[-2]), tail, inner)
    out = jnp.where(q <= 0.0, -jnp.inf, jnp.where(q >= 1.0, jnp.inf, out))
    return jnp.where(jnp.isnan(q) | (q < 0.0) | (q > 1.0), jnp.nan, out)


def _components(logits: Array, borders: Array) -> tuple[Array, Array, Array]:
    """Per bucket: probability ``p``, mean and variance of the bucket's piece (``(K,)`` each);
    uniform for the inner buckets, half-normal for the first and last."""
    p = jax.nn.softmax(logits)
    s_left, s_right = _tail_scales(borders)
    mean = 0.5 * (borders[:-1] + borders[1:])
    var = jnp.diff(borders) ** 2 / 12.0
    half_normal_var = 1.0 - 2.0 / math.pi
    mean = mean.at[0].set(borders[1] - _SQRT_2_OVER_PI * s_left)
    mean = mean.at[-1].set(borders[-2] + _SQRT_2_OVER_PI * s_right)
    var = var.at[0].set(half_normal_var * s_left**2).at[-1].set(half_normal_var * s_right**2)
    return p, mean, var


def _mean_one(logits: Array, borders: Array) -> Array:
    p, mean, _ = _components(logits, borders)
    return jnp.sum(p * mean)


def _variance_one(logits: Array, borders: Array) -> Array:
    # law of total variance: no cancellation when the borders sit far from zero
    p, mean, var = _components(logits, borders)
    mu = jnp.sum(p * mean)
    return jnp.sum(p * (var + (mean - mu) ** 2))


def _entropy_one(logits: Array, borders: Array) -> Array:
    log_p = jax.nn.log_softmax(logits)
    p = jnp.exp(log_p)
    s_left, s_right = _tail_scales(borders)
    log_width = jnp.log(jnp.diff(borders))
    half_normal = 0.5 * math.log(math.pi / 2.0) + 0.5  # entropy of a unit half-normal
    piece = log_width.at[0].set(jnp.log(s_left) + half_normal)
    piece = piece.at[-1].set(jnp.log(s_right) + half_normal)
    return jnp.sum(jnp.where(p > 0, p * (piece - log_p), 0.0))


# Batched versions: one jitted program per shape, rather than one dispatch per primitive when
# called eagerly; under an outer jit they are inlined.
_SIG_VALUE = "(k),(n),()->()"
_SIG_MOMENT = "(k),(n)->()"
_log_prob = jax.jit(jnp.vectorize(_log_prob_one, signature=_SIG_VALUE))
_cdf = jax.jit(jnp.vectorize(_cdf_one, signature=_SIG_VALUE))
_icdf = jax.jit(jnp.vectorize(_icdf_one, signature=_SIG_VALUE))
_mean = jax.jit(jnp.vectorize(_mean_one, signature=_SIG_MOMENT))
_variance = jax.jit(jnp.vectorize(_variance_one, signature=_SIG_MOMENT))
_entropy = jax.jit(jnp.vectorize(_entropy_one, signature=_SIG_MOMENT))


def _check_args(logits, borders) -> tuple[Array, Array, tuple[int, ...]]:
    """Shape, dtype and (where concrete) value checks; returns float arrays and batch shape."""
    fn = "BarDistribution"
    arrays = []
    for name, value in (("logits", logits), ("borders", borders)):
        try:
            arr = jnp.asarray(value)
        except (TypeError, ValueError) as e:
            raise TypeError(
                f"{fn}: `{name}` must be an array of real numbers, got {type(value).__name__} "
                f"({e})."
            ) from None
        if not (jnp.issubdtype(arr.dtype, jnp.floating) or jnp.issubdtype(arr.dtype, jnp.integer)):
            raise TypeError(f"{fn}: `{name}` must hold real numbers, got dtype {arr.dtype}.")
        arrays.append(arr)
    logits, borders = arrays
    if logits.ndim < 1 or logits.shape[-1] < 2:
        raise ValueError(
            f"{fn}: `logits` must have shape (..., K) with K >= 2 buckets, got shape "
            f"{logits.shape}."
        )
    k = logits.shape[-1]
    if borders.ndim < 1 or borders.shape[-1] != k + 1:
        raise ValueError(
            f"{fn}: `borders` must have shape (..., K + 1) = (..., {k + 1}) for `logits` with "
            f"K = {k} buckets (shape {logits.shape}), got shape {borders.shape}."
        )
    try:
        batch_shape = jnp.broadcast_shapes(logits.shape[:-1], borders.shape[:-1])
    except ValueError:
        raise ValueError(
            f"{fn}: the batch shapes of `logits` {logits.shape[:-1]} and `borders` "
            f"{borders.shape[:-1]} (all but the last axis) do not broadcast."
        ) from None
    if not isinstance(borders, jax.core.Tracer):
        b = np.asarray(borders, dtype=np.float64)
        if not np.isfinite(b).all():
            raise ValueError(
                f"{fn}: `borders` must be finite, got {int((~np.isfinite(b)).sum())} NaN or inf "
                "value(s)."
            )
        steps = np.diff(b, axis=-1)
        if not (steps > 0).all():
            raise ValueError(
                f"{fn}: `borders` must be strictly increasing along the last axis, got "
                f"{int((steps <= 0).sum())} step(s) that are not > 0 (use bucket_borders, which "
                "removes ties)."
            )
    dtype = jnp.result_type(logits.dtype, borders.dtype, float)
    logits = jnp.broadcast_to(logits.astype(dtype), (*batch_shape, k))
    borders = jnp.broadcast_to(borders.astype(dtype), (*batch_shape, k + 1))
    return logits, borders, tuple(batch_shape)


class BarDistribution(dist.Distribution):
    """The bar ("Riemann") distribution of a PFN: buckets with half-normal tails.

    With borders ``b_0 < ... < b_K`` and probabilities ``p = softmax(logits)`` the density is

    - ``p_k / (b_{k+1} - b_k)`` on an inner bucket ``[b_k, b_{k+1})``, ``k = 1 .. K - 2``;
    - ``2 p_0 / s_0 · φ((b_1 - y) / s_0)`` for ``y < b_1`` (left tail, a half-normal anchored at
      ``b_1``) with ``s_0 = (b_1 - b_0) / Φ⁻¹(0.75)``;
    - ``2 p_{K-1} / s_1 · φ((y - b_{K-1}) / s_1)`` for ``y >= b_{K-1}`` (right tail) with
      ``s_1 = (b_K - b_{K-1}) / Φ⁻¹(0.75)``;

    so each tail carries its bucket's mass and has its median at the bucket's outer border, and
    the support is the whole real line (Müller et al., ICLR 2022). ``log_prob`` works in log
    space (``log(2 p) + log φ``), so it stays finite far outside the borders (at ``±1e6``
    bucket widths) where the density underflows. A value exactly on a border belongs to the
    bucket above it. NaN in ``value`` (or ``q``) gives NaN, without raising, also under
    ``jit``.

    Batch shape: the broadcast of ``logits.shape[:-1]`` and ``borders.shape[:-1]`` (both arrays
    are stored broadcast to it); event shape ``()``. Every method is vectorised over sample and
    batch shapes (``jnp.vectorize`` over a one-example implementation) and is jit-able; the
    distribution is a pytree (numpyro registers it with ``logits`` and ``borders`` as leaves).

    Args:
        logits: unnormalised log-probabilities of the ``K >= 2`` buckets, shape ``(..., K)``.
        borders: the bucket borders, strictly increasing along the last axis and finite, shape
            ``(..., K + 1)``: usually ``(K + 1,)`` shared by all, or ``(p, K + 1)`` per parameter
            (see :func:`bucket_borders`).
        validate_args: numpyro's validation of the arguments against ``arg_constraints``
            (``None``: numpyro's default); see :meth:`log_prob` for values.

    Raises:
        TypeError: ``logits`` or ``borders`` is not a real-valued array.
        ValueError: the last axes do not have lengths ``K`` and ``K + 1`` with ``K >= 2``; the
            batch shapes do not broadcast; ``borders`` (when concrete, i.e. outside ``jit``) is
            not finite or not strictly increasing.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from sbi_kit.pfn import BarDistribution
        >>> d = BarDistribution(jnp.zeros(4), jnp.array([-2.0, -1.0, 0.0, 1.0, 2.0]))
        >>> d.batch_shape, round(float(d.mean), 4)
        ((), 0.0)
        >>> float(jnp.exp(d.log_prob(0.5)))  # inner bucket [0, 1): 0.25 / 1
        0.25
        >>> float(d.cdf(-1.0)), float(d.icdf(0.5))  # the left tail ends at b_1 = -1
        (0.25, 0.0)
        >>> float(d.icdf(0.125))  # median of the left tail: the outer border b_0
        -2.0
        >>> d.sample(jax.random.key(0), (3,)).shape
        (3,)
    """

    arg_constraints = {"logits": constraints.real_vector, "borders": constraints.ordered_vector}
    support = constraints.real

    def __init__(self, logits, borders, *, validate_args: bool | None = None):
        self.logits, self.borders, batch_shape = _check_args(logits, borders)
        super().__init__(batch_shape=batch_shape, event_shape=(), validate_args=validate_args)

    def validate_args(self, strict: bool = True) -> None:
        """numpyro's argument validation (``logits`` finite, ``borders`` finite and strictly
        increasing: ``arg_constraints``), on the host with NumPy rather than with one small
        compiled JAX program per check and shape; same messages and behaviour under ``jit``."""
        for name in ("logits", "borders"):
            value = getattr(self, name)
            if isinstance(value, jax.core.Tracer):
                if strict:
                    raise RuntimeError("Cannot validate arguments inside jitted code.")
                continue
            v = np.asarray(value)
            ok = np.isfinite(v).all() and (name == "logits" or (np.diff(v, axis=-1) > 0).all())
            if not ok:
                raise ValueError(
                    f"{type(self).__name__} distribution got invalid {name} parameter."
                )

    @property
    def num_buckets(self) -> int:
        """The number of buckets ``K``."""
        return self.logits.shape[-1]

    @property
    def probs(self) -> Array:
        """The buckets' probabilities ``softmax(logits)``, shape ``(*batch_shape, K)``."""
        return jax.nn.softmax(self.logits, axis=-1)

    def _value(self, value) -> Array:
        return jnp.asarray(value, dtype=self.logits.dtype)

    def log_prob(self, value) -> Array:
        """Log density at ``value`` (shape broadcasting against ``batch_shape``).

        Finite for every finite ``value``, however far outside the borders; ``-inf`` at
        ``±inf``; NaN at NaN. Unlike numpyro's validated distributions it does not turn values
        outside the support into ``-inf`` with a warning: the support is the whole real line, so
        the only such value is NaN, and a NaN observation is propagated rather than scored.
        """
        return _log_prob(self.logits, self.borders, self._value(value))

    def cdf(self, value) -> Array:
        """``P(Y <= value)``, in ``[0, 1]`` and non-decreasing (shape as ``log_prob``)."""
        return _cdf(self.logits, self.borders, self._value(value))

    def icdf(self, q) -> Array:
        """The quantile function: ``y`` with ``cdf(y) = q`` for ``q`` in ``[0, 1]``.

        ``q`` broadcasts against ``batch_shape``. ``icdf(0) = -inf`` and ``icdf(1) = +inf`` (the
        support is the real line); ``q`` strictly inside ``(0, 1)``, however close to 0 or 1,
        gives a finite value. ``q`` outside ``[0, 1]`` or NaN gives NaN.
        """
        return _icdf(self.logits, self.borders, self._value(q))

    def quantile(self, q) -> Array:
        """Alias of :meth:`icdf`."""
        return self.icdf(q)

    def sample(self, key, sample_shape=()) -> Array:
        """Draws of shape ``(*sample_shape, *batch_shape)`` by the inverse CDF of a uniform in
        ``[tiny, 1)`` (so never ``±inf``)."""
        # the leaves' shape rather than the static batch_shape, which is stale under a vmap
        shape = tuple(sample_shape) + self.logits.shape[:-1]
        dtype = self.logits.dtype
        u = jax.random.uniform(key, shape, dtype=dtype, minval=jnp.finfo(dtype).tiny, maxval=1.0)
        return self.icdf(u)

    @property
    def mean(self) -> Array:
        """Analytic mean (uniform buckets, half-normal tails), shape ``batch_shape``."""
        return _mean(self.logits, self.borders)

    @property
    def variance(self) -> Array:
        """Analytic variance (law of total variance over the buckets), shape ``batch_shape``."""
        return _variance(self.logits, self.borders)

    def entropy(self) -> Array:
        """Differential entropy in nats, shape ``batch_shape``."""
        return _entropy(self.logits, self.borders)
