"""Maximum mean discrepancy: U-, V-, linear-time and optimally-weighted estimators, and a
permutation test (Gretton et al. 2012; Bharti et al. 2023)."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array

from .._types import Key
from .._checks import as_float_array, check_finite, check_key
from ._kernels import AbstractKernel, GaussianKernel, check_points

_ESTIMATORS = ("u", "v", "linear")
_DIRECT = 1 << 22  # kernel entries computed at once before switching to row blocks


def _check_estimator(estimator: str, fn: str) -> str:
    if estimator not in _ESTIMATORS:
        raise ValueError(f"{fn}: estimator must be one of {_ESTIMATORS}, got {estimator!r}.")
    return estimator


def _check_kernel(kernel, fn: str) -> AbstractKernel:
    if kernel is None:
        return GaussianKernel()
    if not isinstance(kernel, AbstractKernel):
        raise TypeError(
            f"{fn}: `kernel` must be a kernel object such as GaussianKernel(), got "
            f"{type(kernel).__name__}."
        )
    return kernel


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


def _within(kernel: AbstractKernel, a: Array, estimator: str) -> Array:
    """The a–a term: U- (no diagonal) or V-statistic mean of ``k(a_i, a_j)``."""
    n = a.shape[0]
    ones = jnp.ones(n, a.dtype)
    total = kernel_sum(kernel, a, a, ones, ones)
    if estimator == "v":
        return total / n**2
    return (total - n * kernel.diagonal()) / (n * (n - 1))


def _linear(kernel: AbstractKernel, x: Array, y: Array) -> Array:
    half = min(x.shape[0], y.shape[0]) // 2
    x1, x2 = x[: 2 * half : 2], x[1 : 2 * half : 2]
    y1, y2 = y[: 2 * half : 2], y[1 : 2 * half : 2]
    k = jax.vmap(kernel)
    return jnp.mean(k(x1, x2) + k(y1, y2) - k(x1, y2) - k(x2, y1))


def _mmd(kernel: AbstractKernel, x: Array, y: Array, estimator: str, weights) -> Array:
    m, n = x.shape[0], y.shape[0]
    if estimator == "linear":
        return _linear(kernel, x, y)
    ones_y = jnp.ones(n, y.dtype) / n
    yy = _within(kernel, y, estimator)
    if weights is None:
        ones_x = jnp.ones(m, x.dtype) / m
        return _within(kernel, x, estimator) + yy - 2.0 * kernel_sum(kernel, x, y, ones_x, ones_y)
    xx = kernel_sum(kernel, x, x, weights, weights)
    return xx + yy - 2.0 * kernel_sum(kernel, x, y, weights, ones_y)


def mmd(
    x: Array,
    y: Array,
    *,
    kernel: AbstractKernel | None = None,
    estimator: str = "u",
    weights: Array | None = None,
) -> Array:
    """An estimate of the squared maximum mean discrepancy MMD²(P, Q) from ``x ~ P``, ``y ~ Q``.

    Estimators (Gretton et al. 2012), with ``K`` the kernel matrices:

    - ``"u"`` (default): the unbiased U-statistic, diagonals of ``K_xx`` and ``K_yy`` left out;
      it can be negative.
    - ``"v"``: the V-statistic (diagonals kept), biased upward by ``O(1/m + 1/n)``; ≥ 0.
    - ``"linear"``: the linear-time statistic on consecutive pairs of the first
      ``2·⌊min(m, n)/2⌋`` points; unbiased, higher variance.
    - ``weights=w`` (Bharti et al. 2023): the optimally-weighted estimator
      ``wᵀK_xx w − (2/n) Σ_ij w_i k(x_i, y_j) + (y–y term)`` for ``x_i = G_θ(u_i)`` with
      ``w = optimal_weights(u)``; the y–y term is the U-statistic (``estimator="u"``) or the
      V-statistic (``"v"``). It does not depend on θ, so minimum-distance estimation can skip it.

    A kernel whose lengthscale is ``None`` gets the median heuristic, on the pooled sample or,
    when ``weights`` are given, on ``y`` alone (the observed data, so that the kernel stays
    fixed across θ as in Bharti et al.).

    Args:
        x: samples from P, shape ``(m, d)`` (a 1-D array is taken as ``m`` scalars).
        y: samples from Q, shape ``(n, d)``.
        kernel: a kernel object (default ``GaussianKernel()``).
        estimator: ``"u"``, ``"v"`` or ``"linear"``.
        weights: optional weights for ``x``, shape ``(m,)`` (see :func:`optimal_weights`).

    Returns:
        the estimate, a scalar.

    Raises:
        ValueError: on shapes that do not match, too few points, or NaN/inf inputs.

    Examples:
        >>> import jax, sbi_kit as sk
        >>> kx, ky = jax.random.split(jax.random.key(0))
        >>> x = jax.random.normal(kx, (500, 2))
        >>> y = jax.random.normal(ky, (500, 2)) + 1.0
        >>> bool(sk.diagnostics.mmd(x, y) > 0.1), bool(abs(sk.diagnostics.mmd(x, x[::-1])) < 0.01)
        (True, True)
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
        if estimator == "linear":
            raise ValueError(f"{fn}: weights combine with estimator 'u' or 'v', not 'linear'.")
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
        kernel = kernel.resolve(jnp.concatenate([x, y]))
    else:
        weights = weights.astype(dtype)
        kernel = kernel.resolve(y)
    return _mmd(kernel, x, y, estimator, weights)


def mmd_test(
    key: Key,
    x: Array,
    y: Array,
    *,
    kernel: AbstractKernel | None = None,
    estimator: str = "u",
    num_permutations: int = 1000,
) -> tuple[Array, Array]:
    """Permutation two-sample test of ``P = Q`` with the MMD statistic.

    The pooled sample is permuted ``num_permutations`` times and the statistic recomputed; the
    p-value is ``(1 + #{permuted ≥ observed}) / (num_permutations + 1)``, exact in level for any
    sample size. The kernel's lengthscale (median heuristic on the pooled sample if ``None``) is
    fixed before permuting. The pooled kernel matrix is held in memory: ``(m + n)²`` entries.

    Args:
        key: PRNG key for the permutations.
        x: shape ``(m, d)``.
        y: shape ``(n, d)``.
        kernel: a kernel object (default ``GaussianKernel()``).
        estimator: ``"u"``, ``"v"`` or ``"linear"``.
        num_permutations: number of permutations.

    Returns:
        ``(statistic, p_value)``, two scalars.

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
    n = num - m
    observed = _mmd(kernel, z[:m], z[m:], estimator, None)
    keys = jax.random.split(key, num_permutations)

    def permuted_order(k):  # a uniformly random permutation: one sort of uniform keys
        return jnp.argsort(jax.random.uniform(k, (num,)))

    if estimator == "linear":

        def linear_statistic(k):
            p = z[permuted_order(k)]
            return _linear(kernel, p[:m], p[m:])

        statistic = linear_statistic

    else:
        gram = kernel.gram(z, z)
        row = jnp.sum(gram, axis=1)
        total, diag = jnp.sum(row), jnp.diagonal(gram)

        def gram_statistic(k):
            ex = jnp.zeros(num, z.dtype).at[permuted_order(k)[:m]].set(1.0)  # x-membership
            sxx = ex @ gram @ ex
            sx1 = ex @ row
            sxy = sx1 - sxx
            syy = total - 2.0 * sx1 + sxx
            if estimator == "v":
                return sxx / m**2 + syy / n**2 - 2.0 * sxy / (m * n)
            dx = ex @ diag
            dy = jnp.sum(diag) - dx
            return (sxx - dx) / (m * (m - 1)) + (syy - dy) / (n * (n - 1)) - 2.0 * sxy / (m * n)

        statistic = gram_statistic

    if num_permutations * num <= _DIRECT:
        permuted = jax.vmap(statistic)(keys)
    else:  # bound memory: chunks of permutations
        permuted = jax.lax.map(statistic, keys, batch_size=max(1, _DIRECT // num))
    p_value = (1.0 + jnp.sum(permuted >= observed)) / (num_permutations + 1.0)
    return observed, p_value
