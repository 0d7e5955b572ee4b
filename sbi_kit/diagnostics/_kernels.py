"""Stationary kernels for MMD, with the median heuristic for the lengthscale.

A kernel is a small ``eqx.Module``: ``kernel(a, b)`` evaluates one pair of points,
``kernel.gram(a, b)`` a whole matrix. A ``lengthscale`` of ``None`` means "set it from the
data with the median heuristic"; :func:`sbi_kit.diagnostics.mmd` does that on the pooled
samples (``kernel.resolve(z)`` does it by hand).
"""

from __future__ import annotations

import abc
import dataclasses
import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from .._checks import as_float_array, check_finite

_MAX_MEDIAN_POINTS = 1000


def median_heuristic(z: Array, *, max_points: int = _MAX_MEDIAN_POINTS) -> Array:
    """The median-heuristic lengthscale ``sqrt(median ‖a − b‖² / 2)`` over distinct pairs.

    Sets with more than ``max_points`` rows are thinned to ``max_points`` evenly spaced rows
    first (deterministic), so the cost stays ``O(max_points²)``.

    Args:
        z: points, shape ``(n, d)`` (or ``(n,)`` for scalars), ``n >= 2``.
        max_points: at most this many rows enter the median.

    Returns:
        the lengthscale, a scalar (positive unless all points coincide; then 1.0).

    Examples:
        >>> import jax.numpy as jnp, sbi_kit as sk
        >>> float(sk.diagnostics.median_heuristic(jnp.array([[0.0], [1.0], [3.0]])))
        1.4142135381698608
    """
    z = as_float_array(z, "z", "median_heuristic", (1, 2))
    z = z[:, None] if z.ndim == 1 else z
    n = z.shape[0]
    if n < 2:
        raise ValueError(f"median_heuristic: needs at least 2 points, got {n}.")
    return _median_heuristic(z, int(max_points))


@functools.partial(jax.jit, static_argnums=1)
def _median_heuristic(z: Array, max_points: int) -> Array:
    n = z.shape[0]
    if n > max_points:
        z = z[np.linspace(0, n - 1, max_points).astype(np.int32)]
        n = max_points
    sq = jnp.sum((z[:, None, :] - z[None, :, :]) ** 2, axis=-1)
    iu = np.triu_indices(n, k=1)
    ell = jnp.sqrt(jnp.median(sq[iu]) / 2.0)
    return jnp.where(ell > 0, ell, jnp.ones_like(ell))


def _safe_norm(sq: Array) -> Array:
    """sqrt with a finite gradient at 0."""
    pos = sq > 0
    return jnp.where(pos, jnp.sqrt(jnp.where(pos, sq, 1.0)), 0.0)


class AbstractKernel(eqx.Module):
    """A stationary kernel ``k(a, b) = φ(‖a − b‖ / ℓ)``; subclasses define ``φ`` on ``r²``.

    Attributes:
        lengthscale: ``ℓ`` (a positive scalar), or ``None`` for the median heuristic.
    """

    lengthscale: float | Array | None = None

    @abc.abstractmethod
    def profile(self, scaled_sq_dist: Array) -> Array:
        """``φ`` as a function of ``‖a − b‖² / ℓ²`` (any shape, elementwise)."""

    def resolve(self, z: Array) -> AbstractKernel:
        """This kernel with a lengthscale: its own, or the median heuristic on ``z`` (n, d)."""
        if self.lengthscale is not None:
            return self
        z = z[:, None] if z.ndim == 1 else z
        return dataclasses.replace(self, lengthscale=_median_heuristic(z, _MAX_MEDIAN_POINTS))

    def _ell(self) -> Array:
        if self.lengthscale is None:
            raise ValueError(
                f"{type(self).__name__} has no lengthscale; call `kernel.resolve(data)` (the "
                "median heuristic) or pass lengthscale=..."
            )
        return jnp.asarray(self.lengthscale)

    def __call__(self, a: Array, b: Array) -> Array:
        """``k(a, b)`` for two points of shape ``(d,)``; a scalar."""
        return self.profile(jnp.sum((a - b) ** 2) / self._ell() ** 2)

    def gram(self, a: Array, b: Array) -> Array:
        """The matrix ``K_ij = k(a_i, b_j)``, shape ``(n, m)``, for ``a`` (n, d), ``b`` (m, d)."""
        ell = self._ell()
        sq = jnp.sum(a**2, axis=1)[:, None] + jnp.sum(b**2, axis=1)[None, :] - 2.0 * a @ b.T
        return self.profile(jnp.maximum(sq, 0.0) / ell**2)

    def diagonal(self) -> Array:
        """``k(a, a)``, the same for every ``a`` (stationary kernel)."""
        return self.profile(jnp.zeros(()))


class GaussianKernel(AbstractKernel):
    """Gaussian (squared-exponential) kernel ``k(a, b) = exp(−‖a − b‖² / (2ℓ²))``.

    Args:
        lengthscale: ``ℓ``; ``None`` for the median heuristic.

    Examples:
        >>> import jax.numpy as jnp, sbi_kit as sk
        >>> k = sk.diagnostics.GaussianKernel(lengthscale=1.0)
        >>> round(float(k(jnp.zeros(2), jnp.ones(2))), 6)
        0.367879
    """

    def profile(self, scaled_sq_dist: Array) -> Array:
        return jnp.exp(-0.5 * scaled_sq_dist)


class MaternKernel(AbstractKernel):
    """Matérn kernel of smoothness ``nu`` ∈ {1/2, 3/2, 5/2}.

    With ``r = ‖a − b‖ / ℓ``: ``exp(−r)`` (ν = 1/2), ``(1 + √3 r) exp(−√3 r)`` (ν = 3/2),
    ``(1 + √5 r + 5r²/3) exp(−√5 r)`` (ν = 5/2).

    Args:
        nu: 0.5, 1.5 or 2.5.
        lengthscale: ``ℓ``; ``None`` for the median heuristic.

    Examples:
        >>> import jax.numpy as jnp, sbi_kit as sk
        >>> k = sk.diagnostics.MaternKernel(1.5, lengthscale=1.0)
        >>> round(float(k(jnp.zeros(1), jnp.ones(1))), 4)   # (1 + √3) exp(−√3)
        0.4834
    """

    nu: float = eqx.field(static=True, default=1.5)
    lengthscale: float | Array | None = None

    def __init__(self, nu: float = 1.5, lengthscale: float | Array | None = None):
        if nu not in (0.5, 1.5, 2.5):
            raise ValueError(f"MaternKernel: nu must be 0.5, 1.5 or 2.5, got {nu!r}.")
        self.nu = float(nu)
        self.lengthscale = lengthscale

    def profile(self, scaled_sq_dist: Array) -> Array:
        r = _safe_norm(scaled_sq_dist)
        if self.nu == 0.5:
            return jnp.exp(-r)
        if self.nu == 1.5:
            s = jnp.sqrt(3.0) * r
            return (1.0 + s) * jnp.exp(-s)
        s = jnp.sqrt(5.0) * r
        return (1.0 + s + s**2 / 3.0) * jnp.exp(-s)


class IMQKernel(AbstractKernel):
    """Inverse multiquadric kernel ``k(a, b) = (c² + ‖a − b‖² / ℓ²)^(−β)``.

    Heavy-tailed, characteristic for ``β > 0`` (Gorham & Mackey 2017 use ``c = 1``, ``β = 1/2``).

    Args:
        lengthscale: ``ℓ``; ``None`` for the median heuristic.
        c: offset, > 0.
        beta: exponent, > 0.

    Examples:
        >>> import jax.numpy as jnp, sbi_kit as sk
        >>> k = sk.diagnostics.IMQKernel(lengthscale=1.0)
        >>> round(float(k(jnp.zeros(1), jnp.full(1, jnp.sqrt(3.0)))), 6)
        0.5
    """

    lengthscale: float | Array | None = None
    c: float = eqx.field(static=True, default=1.0)
    beta: float = eqx.field(static=True, default=0.5)

    def __check_init__(self):
        if not (self.c > 0 and self.beta > 0):
            raise ValueError(f"IMQKernel: c and beta must be positive, got {self.c}, {self.beta}.")

    def profile(self, scaled_sq_dist: Array) -> Array:
        return (self.c**2 + scaled_sq_dist) ** (-self.beta)


def check_points(x, name: str, fn: str) -> Array:
    """A finite point set as ``(n, d)`` (a 1-D array is taken as ``n`` scalars)."""
    x = as_float_array(x, name, fn, (1, 2))
    x = x[:, None] if x.ndim == 1 else x
    if x.shape[0] < 1 or x.shape[1] < 1:
        raise ValueError(f"{fn}: `{name}` must have shape (n, d) with n, d ≥ 1, got {x.shape}.")
    return check_finite(x, name, fn)
