"""Z-scoring learned from training data, with statistics that cannot overflow or underflow."""

from __future__ import annotations

import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

CONSTANT_ULPS = 4.0
"""A column is constant when its standard deviation is at most ``CONSTANT_ULPS`` machine
epsilons of its largest magnitude: what rounding alone produces (a relative threshold, so a
column of well-resolved values at any scale, 1e-9 or 1e30, is scaled)."""

BULK_SHARE = 0.01
MIN_BULK_SPREAD = 1e-3
"""A column is dominated by extreme values when, z-scored, its values without the
``BULK_SHARE`` smallest and largest (at least one of each) span less than ``MIN_BULK_SPREAD``:
a few rows set the scale and the network sees the others as one value."""


class Standardizer(eqx.Module):
    """An elementwise affine z-score ``(v - loc) / scale`` learned from data.

    :meth:`fit` computes the mean and standard deviation per component in the data's dtype
    when that is exact enough, and otherwise (values so large that their squares overflow, or
    so small that they underflow) in float64 on the host after scaling each column by its
    largest magnitude, so that ``x * 1e30`` and ``x * 1e-9`` are z-scored like ``x``.
    Constant components (a standard deviation within rounding of zero, relative to the
    values) keep scale 1 and pass through unchanged.

    Attributes:
        loc: the mean, shape ``event_shape``.
        scale: the standard deviation (1 for constant components), shape ``event_shape``.

    Examples:
        >>> import jax.numpy as jnp
        >>> from sbi_kit.estimators import Standardizer
        >>> data = jnp.array([[1.0, 1e30, 1e-9], [3.0, 3e30, 3e-9]])
        >>> s = Standardizer.fit(data, name="x")
        >>> (s.scale / jnp.array([1.0, 1e30, 1e-9])).round(5).tolist()
        [1.0, 1.0, 1.0]
        >>> s(data).round(5).tolist()
        [[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]]
    """

    loc: Array
    scale: Array

    @classmethod
    def fit(cls, data: Array, *, name: str = "data", fn: str = "Standardizer.fit") -> Standardizer:
        """Fits loc and scale on ``data`` of shape ``(n, *event_shape)``.

        Args:
            data: the training values, shape ``(n, *event_shape)`` with ``n >= 1``; finite.
            name: the argument the data came from, for messages (``"x"``, ``"theta"``).
            fn: the public function that is fitting, for messages (``"NPE.fit"``).

        Returns:
            the fitted :class:`Standardizer`.

        Raises:
            ValueError: if a component cannot be z-scored in the data's dtype (its
                standardised values would overflow); the message names the component.

        Warns:
            UserWarning: once, naming the constant components (they carry no information);
                once naming the components whose scale is set by a few extreme values; and
                once naming the nearly constant ones, which take one value in all but a few
                rows (at most ``BULK_SHARE`` of them at each end).
        """
        data = jnp.asarray(data)
        # The statistics every existing posterior was trained with: kept bit for bit where exact.
        loc = jnp.mean(data, axis=0)
        std = jnp.std(data, axis=0)
        if isinstance(data, jax.core.Tracer):  # inside jit: no values to check
            tiny = CONSTANT_ULPS * jnp.finfo(data.dtype).eps * jnp.max(jnp.abs(data), axis=0)
            return cls(loc, jnp.where(std <= tiny, jnp.ones_like(std), std))
        return cls(*_host_statistics(data, np.asarray(loc), np.asarray(std), name, fn))

    @classmethod
    def identity(cls, event_shape: tuple[int, ...]) -> Standardizer:
        """The identity (loc 0, scale 1); used as a skeleton before loading saved values."""
        return cls(jnp.zeros(event_shape), jnp.ones(event_shape))

    def __call__(self, v: Array) -> Array:
        return (v - self.loc) / self.scale

    def inverse(self, v: Array) -> Array:
        return v * self.scale + self.loc

    def log_scale(self) -> Array:
        """``sum(log scale)``: the log-Jacobian of :meth:`inverse`."""
        return jnp.sum(jnp.log(self.scale))


def _host_statistics(data: Array, loc: np.ndarray, std: np.ndarray, name: str, fn: str):
    """Checked ``(loc, scale)`` of concrete ``data``; see :meth:`Standardizer.fit`."""
    dtype = np.dtype(data.dtype)
    event_shape = tuple(data.shape[1:])
    n = int(data.shape[0])
    values = np.asarray(data).reshape(n, -1)
    loc, std = loc.reshape(-1).copy(), std.reshape(-1).copy()
    lo, hi = values.min(axis=0), values.max(axis=0)
    finfo = np.finfo(dtype)
    # Deviations whose squares (summed over n rows) overflow, or underflow to subnormals: the
    # dtype's two-pass statistics are wrong there, so redo those columns in float64.
    with np.errstate(over="ignore", invalid="ignore"):
        peak = np.maximum(hi.astype(np.float64) - loc, loc - lo.astype(np.float64))
        big = np.sqrt(float(finfo.max) / max(n, 1)) / 4.0
        small = np.sqrt(float(finfo.tiny)) * 1e4
        redo = ~np.isfinite(loc) | ~np.isfinite(std) | (peak > big) | ((peak > 0) & (peak < small))
    if redo.any():
        v = values[:, redo].astype(np.float64)
        s = np.max(np.abs(v), axis=0)
        s = np.where(s > 0, s, 1.0)
        u = v / s
        mu = u.mean(axis=0)
        loc[redo] = (mu * s).astype(dtype)
        std[redo] = (np.sqrt(np.mean((u - mu) ** 2, axis=0)) * s).astype(dtype)
    magnitude = np.maximum(np.abs(lo), np.abs(hi)).astype(np.float64)
    constant = (lo == hi) | (std <= CONSTANT_ULPS * float(finfo.eps) * magnitude)
    scale = np.where(constant, np.ones_like(std), std)
    exact = lo == hi  # truly constant: loc is the value itself, so the z-score is exactly 0
    loc = np.where(exact, lo.astype(loc.dtype), loc)

    with np.errstate(over="ignore", invalid="ignore"):
        z = (values - loc.astype(dtype)) / scale.astype(dtype)
    bad = ~np.isfinite(z).all(axis=0) | ~np.isfinite(loc) | ~np.isfinite(scale)
    if bad.any():
        j = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{fn}: {_columns(np.flatnonzero(bad), event_shape, name)} cannot be z-scored in "
            f"{dtype.name}: {_column(j, event_shape, name)} spans [{lo[j]:.3g}, {hi[j]:.3g}], and "
            f"its standardised values overflow. Rescale it (e.g. divide by a constant or take a "
            f"log) before fitting."
        )
    if constant.any():
        warnings.warn(
            f"{fn}: {_columns(np.flatnonzero(constant), event_shape, name, ARE)} constant across "
            f"all {n} simulations (first value {values[0, np.flatnonzero(constant)[0]]:.6g}); "
            "constant values carry no information and are passed through unscaled.",
            UserWarning,
            stacklevel=4,
        )
    varying = np.flatnonzero(~constant)
    k = max(1, round(BULK_SHARE * n))  # rows left out at each end
    if varying.size and n > 2 * k + 1:
        ordered = np.partition(values[:, varying], (k, n - 1 - k), axis=0)
        bulk = (ordered[n - 1 - k].astype(np.float64) - ordered[k]) / scale[varying]
        dominated = (bulk > 0) & (bulk < MIN_BULK_SPREAD)
        lumped = bulk == 0  # all but at most 2k rows share one value
        if lumped.any():
            _warn_nearly_constant(
                varying[lumped], values, z, ordered[k, lumped], event_shape, name, fn
            )
        if dominated.any():
            cols = varying[dominated]
            j, b = int(cols[0]), float(bulk[dominated][0])
            first = "it" if cols.size == 1 else _column(j, event_shape, name)
            warnings.warn(
                f"{fn}: {_columns(cols, event_shape, name, ARE)} dominated by a few extreme "
                f"values: {first} has standard deviation {scale[j]:.3g} while "
                f"all but the {k} smallest and {k} largest of its {n} values span "
                f"{b * scale[j]:.3g}, so z-scored they differ by {b:.2g} and the network "
                "barely sees them. Check the simulator for outliers, or transform the column "
                "(e.g. a log) before fitting.",
                UserWarning,
                stacklevel=4,
            )
    return (
        jnp.asarray(loc.astype(dtype).reshape(event_shape)),
        jnp.asarray(scale.astype(dtype).reshape(event_shape)),
    )


ARE = ("is", "are")


def _warn_nearly_constant(
    cols, values, z, common, event_shape: tuple[int, ...], name: str, fn: str
) -> None:
    """One warning for columns that take one value (``common``) in all but a few rows."""
    j = int(cols[0])
    others = int(np.sum(values[:, j] != common[0]))
    far = float(np.max(np.abs(z[:, j])))
    first = "it" if cols.size == 1 else _column(j, event_shape, name)
    n = values.shape[0]
    rest = "the other one lies" if others == 1 else f"the other {others} lie up to"
    warnings.warn(
        f"{fn}: {_columns(cols, event_shape, name, ARE)} nearly constant: {first} takes the "
        f"value {common[0]:.6g} in {n - others} of its {n} simulations, and z-scored "
        f"{rest} {far:.3g} standard deviations out. Such a column carries little "
        "information, and a flow can fit a spike at the common value, so that a rare value in "
        "the validation set makes the loss non-finite. Consider dropping it before fitting.",
        UserWarning,
        stacklevel=5,
    )


def _column(j: int, event_shape: tuple[int, ...], name: str) -> str:
    """``"column 3 of `x`"`` (flat events) or ``"element (1, 2) of `x`"``."""
    if len(event_shape) <= 1:
        return f"column {j} of `{name}`"
    return f"element {tuple(int(i) for i in np.unravel_index(j, event_shape))} of `{name}`"


def _columns(js, event_shape: tuple[int, ...], name: str, verb: tuple[str, str] = ("", "")) -> str:
    """``"column 3 of `x`"`` / ``"2 columns [0, 3] of `x`"`` (at most 10 listed), then the
    singular or plural ``verb`` (``("is", "are")``)."""
    js = [int(j) for j in js]
    if len(js) == 1:
        return " ".join(filter(None, (_column(js[0], event_shape, name), verb[0])))
    if len(event_shape) <= 1:
        shown = js[:10]
    else:
        shown = [tuple(int(i) for i in np.unravel_index(j, event_shape)) for j in js[:10]]
    more = f" and {len(js) - 10} more" if len(js) > 10 else ""
    what = "columns" if len(event_shape) <= 1 else "elements"
    return " ".join(filter(None, (f"{len(js)} {what} {shown}{more} of `{name}`", verb[1])))
