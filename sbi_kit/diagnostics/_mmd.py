"""Maximum mean discrepancy: U-, V-, linear-time and optimally-weighted estimators, and a
permutation test (Gretton et al. 2012; Bharti et al. 2023).

An estimator is an object (:class:`UStatistic`, :class:`VStatistic`, :class:`LinearStatistic`)
that computes its estimate and its permutation statistic; :func:`mmd` and :func:`mmd_test` check
the inputs, set the kernel's lengthscale and call it inside one jitted function.
"""

from __future__ import annotations

import abc
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array

from .._checks import as_float_array, check_finite, check_key
from .._types import Key
from ._kernels import AbstractKernel, GaussianKernel, check_points

_DIRECT = 1 << 22  # kernel entries computed at once before switching to row blocks


def kernel_sum(kernel: AbstractKernel, a: Array, b: Array, wa: Array, wb: Array) -> Array:
    """``Σ_ij wa_i wb_j k(a_i, b_j)`` without holding more than ~4M kernel entries at once."""
    n, m = a.shape[0], b.shape[0]
    if n * m <= _DIRECT:
        return wa @ (kernel.gram(a, b) @ wb)
    rows = max(1, _DIRECT // m)
    num_blocks = -(-n // rows)
    pad = num_blocks * rows - n
    a_blocks = jnp.pad(a, ((0, pad), (0, 0))).reshape(num_blocks, rows, a.shape[1])
    w_blocks = jnp.pad(wa, (0, pad)).reshape(num_blocks, rows)

    def body(total, blk):
        ab, wab = blk
        return total + wab @ (kernel.gram(ab, b) @ wb), None

    total, _ = jax.lax.scan(body, jnp.zeros((), a.dtype), (a_blocks, w_blocks))
    return total


class AbstractMMDEstimator(eqx.Module):
    """An estimator of MMD²(P, Q) from samples ``x ~ P`` and ``y ~ Q``.

    Concrete estimators are final classes without fields: :class:`UStatistic`,
    :class:`VStatistic` and :class:`LinearStatistic`. Pass one to :func:`mmd` or
    :func:`mmd_test` as ``estimator=``. The methods take a kernel whose lengthscale is set
    (``kernel.resolve(data)``) and points of shape ``(m, d)`` and ``(n, d)``; they are jittable.
    """

    @abc.abstractmethod
    def estimate(self, kernel: AbstractKernel, x: Array, y: Array) -> Array:
        """The MMD² estimate from ``x`` (m, d) and ``y`` (n, d), a scalar."""

    @abc.abstractmethod
    def permutation_statistic(
        self, kernel: AbstractKernel, z: Array, m: int
    ) -> Callable[[Array], Array]:
        """The statistic of a permuted split of the pooled sample ``z`` (m + n, d).

        Returns a function of a permutation ``order`` of ``0..m+n−1`` that gives the estimate
        for ``x = z[order[:m]]``, ``y = z[order[m:]]`` (work shared by all permutations, such as
        the pooled kernel matrix, is done once here).
        """


class AbstractQuadraticStatistic(AbstractMMDEstimator):
    """An estimator built from the full kernel sums ``Σ_ij k(a_i, b_j)`` (U- and V-statistics).

    Subclasses say how a within-sample sum becomes the mean ``E k(a, a′)``
    (:meth:`within_mean`); the rest is shared. These estimators also serve as the y–y term of
    the optimally-weighted estimator (:meth:`weighted_estimate`).
    """

    @abc.abstractmethod
    def within_mean(self, total: Array, diagonal: Array, n: int) -> Array:
        """``E k(a, a′)`` from ``total = Σ_ij k(a_i, a_j)`` and ``diagonal = Σ_i k(a_i, a_i)``."""

    def within(self, kernel: AbstractKernel, a: Array) -> Array:
        """The a–a term of the estimate: the mean of ``k(a_i, a_j)`` over pairs of ``a`` (n, d).

        It does not depend on the other sample, so it can be computed once and reused (as the
        y–y term in minimum-distance estimation).
        """
        n = a.shape[0]
        ones = jnp.ones(n, a.dtype)
        return self.within_mean(kernel_sum(kernel, a, a, ones, ones), n * kernel.diagonal(), n)

    def estimate(self, kernel: AbstractKernel, x: Array, y: Array) -> Array:
        m, n = x.shape[0], y.shape[0]
        ones_x = jnp.ones(m, x.dtype) / m
        ones_y = jnp.ones(n, y.dtype) / n
        yy = self.within(kernel, y)
        return self.within(kernel, x) + yy - 2.0 * kernel_sum(kernel, x, y, ones_x, ones_y)

    def weighted_estimate(
        self, kernel: AbstractKernel, x: Array, y: Array, weights: Array
    ) -> Array:
        """``wᵀK_xx w − (2/n) Σ_ij w_i k(x_i, y_j) + (this estimator's y–y term)``."""
        n = y.shape[0]
        ones_y = jnp.ones(n, y.dtype) / n
        yy = self.within(kernel, y)
        xx = kernel_sum(kernel, x, x, weights, weights)
        return xx + yy - 2.0 * kernel_sum(kernel, x, y, weights, ones_y)

    def permutation_statistic(
        self, kernel: AbstractKernel, z: Array, m: int
    ) -> Callable[[Array], Array]:
        num = z.shape[0]
        n = num - m
        gram = kernel.gram(z, z)
        row = jnp.sum(gram, axis=1)
        total, diag = jnp.sum(row), jnp.diagonal(gram)

        def statistic(order: Array) -> Array:
            ex = jnp.zeros(num, z.dtype).at[order[:m]].set(1.0)  # x-membership
            sxx = ex @ gram @ ex
            sx1 = ex @ row
            sxy = sx1 - sxx
            syy = total - 2.0 * sx1 + sxx
            dx = ex @ diag
            dy = jnp.sum(diag) - dx
            return self.within_mean(sxx, dx, m) + self.within_mean(syy, dy, n) - 2.0 * sxy / (m * n)

        return statistic


class UStatistic(AbstractQuadraticStatistic):
    """The unbiased U-statistic (Gretton et al. 2012): the diagonals of ``K_xx``, ``K_yy`` left out.

    ``Σ_{i≠j} k(x_i, x_j)/(m(m−1)) + Σ_{i≠j} k(y_i, y_j)/(n(n−1)) − 2 Σ_ij k(x_i, y_j)/(mn)``;
    it can be negative.

    Examples:
        >>> import jax, sbi_kit as sk
        >>> x = jax.random.normal(jax.random.key(0), (200, 2))
        >>> est = sk.diagnostics.mmd(x, x[::-1], estimator=sk.diagnostics.UStatistic())
        >>> bool(abs(est) < 0.01)   # the same points: the U-statistic is about 0, maybe below
        True
    """

    def within_mean(self, total: Array, diagonal: Array, n: int) -> Array:
        return (total - diagonal) / (n * (n - 1))


class VStatistic(AbstractQuadraticStatistic):
    """The V-statistic: the same sums as the U-statistic with the diagonals, over m², n², mn.

    Non-negative, biased upward by ``O(1/m + 1/n)``.

    Examples:
        >>> import jax, sbi_kit as sk
        >>> x = jax.random.normal(jax.random.key(0), (200, 2))
        >>> est = sk.diagnostics.mmd(x, x[::-1], estimator=sk.diagnostics.VStatistic())
        >>> bool(abs(est) < 1e-6)   # the same points: exactly 0 up to rounding
        True
    """

    def within_mean(self, total: Array, diagonal: Array, n: int) -> Array:
        return total / n**2


class LinearStatistic(AbstractMMDEstimator):
    """The linear-time statistic on consecutive pairs of the first ``2·⌊min(m, n)/2⌋`` points.

    ``(1/h) Σ_i [k(x_{2i−1}, x_{2i}) + k(y_{2i−1}, y_{2i}) − k(x_{2i−1}, y_{2i}) −
    k(x_{2i}, y_{2i−1})]``, ``h = ⌊min(m, n)/2⌋``: unbiased, ``O(m + n)`` time, higher variance.

    Examples:
        >>> import jax, sbi_kit as sk
        >>> kx, ky = jax.random.split(jax.random.key(0))
        >>> x = jax.random.normal(kx, (2000, 2))
        >>> y = jax.random.normal(ky, (2000, 2)) + 1.0
        >>> bool(sk.diagnostics.mmd(x, y, estimator=sk.diagnostics.LinearStatistic()) > 0.1)
        True
    """

    def estimate(self, kernel: AbstractKernel, x: Array, y: Array) -> Array:
        half = min(x.shape[0], y.shape[0]) // 2
        x1, x2 = x[: 2 * half : 2], x[1 : 2 * half : 2]
        y1, y2 = y[: 2 * half : 2], y[1 : 2 * half : 2]
        k = jax.vmap(kernel)
        return jnp.mean(k(x1, x2) + k(y1, y2) - k(x1, y2) - k(x2, y1))

    def permutation_statistic(
        self, kernel: AbstractKernel, z: Array, m: int
    ) -> Callable[[Array], Array]:
        def statistic(order: Array) -> Array:
            p = z[order]
            return self.estimate(kernel, p[:m], p[m:])

        return statistic


_DEFAULT_ESTIMATOR = UStatistic()
_STRING_ESTIMATORS = {"u": "UStatistic()", "v": "VStatistic()", "linear": "LinearStatistic()"}


def _check_estimator(estimator, fn: str) -> AbstractMMDEstimator:
    if isinstance(estimator, AbstractMMDEstimator):
        return estimator
    hint = ""
    if isinstance(estimator, str) and estimator in _STRING_ESTIMATORS:
        hint = f" (for {estimator!r} pass sk.diagnostics.{_STRING_ESTIMATORS[estimator]})"
    raise TypeError(
        f"{fn}: `estimator` must be an MMD estimator object, sk.diagnostics.UStatistic(), "
        f"VStatistic() or LinearStatistic(); got {type(estimator).__name__} {estimator!r}{hint}."
    )


def _check_kernel(kernel, fn: str) -> AbstractKernel:
    if kernel is None:
        return GaussianKernel()
    if not isinstance(kernel, AbstractKernel):
        raise TypeError(
            f"{fn}: `kernel` must be a kernel object such as GaussianKernel(), got "
            f"{type(kernel).__name__}."
        )
    return kernel


def mmd(
    x: Array,
    y: Array,
    *,
    kernel: AbstractKernel | None = None,
    estimator: AbstractMMDEstimator = _DEFAULT_ESTIMATOR,
    weights: Array | None = None,
) -> Array:
    """An estimate of the squared maximum mean discrepancy MMD²(P, Q) from ``x ~ P``, ``y ~ Q``.

    Estimators (Gretton et al. 2012), with ``K`` the kernel matrices:

    - :class:`UStatistic` ``()`` (default): unbiased, diagonals of ``K_xx`` and ``K_yy`` left
      out; it can be negative.
    - :class:`VStatistic` ``()``: diagonals kept, biased upward by ``O(1/m + 1/n)``; ≥ 0.
    - :class:`LinearStatistic` ``()``: consecutive pairs of the first ``2·⌊min(m, n)/2⌋``
      points; unbiased, linear time, higher variance.
    - ``weights=w`` (Bharti et al. 2023): the optimally-weighted estimator
      ``wᵀK_xx w − (2/n) Σ_ij w_i k(x_i, y_j) + (y–y term)`` for ``x_i = G_θ(u_i)`` with
      ``w = optimal_weights(u)``; the y–y term is that of ``estimator``, the U-statistic
      (default) or the V-statistic. It does not depend on θ, so minimum-distance estimation
      can skip it.

    A kernel whose lengthscale is ``None`` gets the median heuristic, on the pooled sample or,
    when ``weights`` are given, on ``y`` alone (the observed data, so that the kernel stays
    fixed across θ as in Bharti et al.).

    Args:
        x: samples from P, shape ``(m, d)`` (a 1-D array is taken as ``m`` scalars).
        y: samples from Q, shape ``(n, d)``.
        kernel: a kernel object (default ``GaussianKernel()``).
        estimator: an estimator object: ``UStatistic()``, ``VStatistic()`` or
            ``LinearStatistic()``.
        weights: optional weights for ``x``, shape ``(m,)`` (see :func:`optimal_weights`);
            they combine with ``UStatistic()`` or ``VStatistic()``.

    Returns:
        the estimate, a scalar.

    Raises:
        TypeError: if ``estimator`` or ``kernel`` is not an object of the right kind (e.g. the
            old strings ``"u"``, ``"v"``, ``"linear"``).
        ValueError: on shapes that do not match, too few points, NaN/inf inputs, or weights
            with ``LinearStatistic()``.

    Examples:
        >>> import jax, sbi_kit as sk
        >>> kx, ky = jax.random.split(jax.random.key(0))
        >>> x = jax.random.normal(kx, (500, 2))
        >>> y = jax.random.normal(ky, (500, 2)) + 1.0
        >>> bool(sk.diagnostics.mmd(x, y) > 0.1), bool(abs(sk.diagnostics.mmd(x, x[::-1])) < 0.01)
        (True, True)
        >>> v = sk.diagnostics.mmd(x, y, estimator=sk.diagnostics.VStatistic())
        >>> bool(v >= sk.diagnostics.mmd(x, y))   # the V-statistic's diagonal bias is positive
        True
    """
    fn = "mmd"
    estimator = _check_estimator(estimator, fn)
    kernel = _check_kernel(kernel, fn)
    x, y = check_points(x, "x", fn), check_points(y, "y", fn)
    if x.shape[1] != y.shape[1]:
        raise ValueError(
            f"{fn}: x and y must have the same dimension d, got {x.shape} and {y.shape}."
        )
    m, n = x.shape[0], y.shape[0]
    minimum = 1 if weights is not None else 2
    if m < minimum or n < 2:
        raise ValueError(f"{fn}: needs at least 2 points in x and in y, got {m} and {n}.")
    if weights is not None:
        if not isinstance(estimator, AbstractQuadraticStatistic):
            raise ValueError(
                f"{fn}: weights combine with estimator=UStatistic() or VStatistic() (the y–y "
                f"term), not {estimator!r}."
            )
        weights = as_float_array(weights, "weights", fn, 1)
        if weights.shape != (m,):
            raise ValueError(
                f"{fn}: `weights` must have shape ({m},) to match x, got {weights.shape}."
            )
        weights = check_finite(weights, "weights", fn)
    return _mmd_jit(kernel, x, y, estimator, weights)


@eqx.filter_jit
def _mmd_jit(kernel, x, y, estimator, weights):
    dtype = jnp.result_type(x.dtype, y.dtype)
    x, y = x.astype(dtype), y.astype(dtype)
    if weights is None:
        return estimator.estimate(kernel.resolve(jnp.concatenate([x, y])), x, y)
    return estimator.weighted_estimate(kernel.resolve(y), x, y, weights.astype(dtype))


def mmd_test(
    key: Key,
    x: Array,
    y: Array,
    *,
    kernel: AbstractKernel | None = None,
    estimator: AbstractMMDEstimator = _DEFAULT_ESTIMATOR,
    num_permutations: int = 1000,
) -> tuple[Array, Array]:
    """Permutation two-sample test of ``P = Q`` with the MMD statistic.

    The pooled sample is permuted ``num_permutations`` times and the statistic recomputed; the
    p-value is ``(1 + #{permuted ≥ observed}) / (num_permutations + 1)``, exact in level for any
    sample size. The kernel's lengthscale (median heuristic on the pooled sample if ``None``) is
    fixed before permuting. With ``UStatistic()`` or ``VStatistic()`` the pooled kernel matrix
    is held in memory: ``(m + n)²`` entries.

    Args:
        key: PRNG key for the permutations.
        x: shape ``(m, d)``.
        y: shape ``(n, d)``.
        kernel: a kernel object (default ``GaussianKernel()``).
        estimator: an estimator object: ``UStatistic()``, ``VStatistic()`` or
            ``LinearStatistic()``.
        num_permutations: number of permutations.

    Returns:
        ``(statistic, p_value)``, two scalars.

    Raises:
        TypeError: if ``estimator`` or ``kernel`` is not an object of the right kind.
        ValueError: on shapes that do not match, too few points, or NaN/inf inputs.

    Examples:
        >>> import jax, sbi_kit as sk
        >>> kx, ky = jax.random.split(jax.random.key(0))
        >>> x, y = jax.random.normal(kx, (100, 2)), jax.random.normal(ky, (100, 2)) + 1.0
        >>> stat, p = sk.diagnostics.mmd_test(jax.random.key(1), x, y, num_permutations=200)
        >>> float(p) < 0.01
        True
    """
    fn = "mmd_test"
    check_key(key, fn)
    estimator = _check_estimator(estimator, fn)
    kernel = _check_kernel(kernel, fn)
    x, y = check_points(x, "x", fn), check_points(y, "y", fn)
    if x.shape[1] != y.shape[1]:
        raise ValueError(
            f"{fn}: x and y must have the same dimension d, got {x.shape} and {y.shape}."
        )
    if x.shape[0] < 2 or y.shape[0] < 2:
        raise ValueError(
            f"{fn}: needs at least 2 points in x and in y, got {x.shape[0]}, {y.shape[0]}."
        )
    if not isinstance(num_permutations, int) or num_permutations < 1:
        raise ValueError(
            f"{fn}: num_permutations must be a positive integer, got {num_permutations!r}."
        )
    return _mmd_test(key, kernel, x, y, estimator, num_permutations)


@eqx.filter_jit
def _mmd_test(key, kernel, x, y, estimator, num_permutations):
    dtype = jnp.result_type(x.dtype, y.dtype)
    z = jnp.concatenate([x, y]).astype(dtype)
    kernel = kernel.resolve(z)
    m, num = x.shape[0], z.shape[0]
    observed = estimator.estimate(kernel, z[:m], z[m:])
    keys = jax.random.split(key, num_permutations)
    permuted_statistic = estimator.permutation_statistic(kernel, z, m)

    def statistic(k):  # a uniformly random permutation: one sort of uniform keys
        return permuted_statistic(jnp.argsort(jax.random.uniform(k, (num,))))

    if num_permutations * num <= _DIRECT:
        permuted = jax.vmap(statistic)(keys)
    else:  # bound memory: chunks of permutations
        permuted = jax.lax.map(statistic, keys, batch_size=max(1, _DIRECT // num))
    p_value = (1.0 + jnp.sum(permuted >= observed)) / (num_permutations + 1.0)
    return observed, p_value
