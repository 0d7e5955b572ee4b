"""Bayesian-quadrature weights on a simulator's base space (Bharti et al., ICML 2023).

For a simulator written as ``x = G_θ(u)`` with ``u ~ U`` (``UniformBase()``: uniform on
``[0, 1]^d``; ``GaussianBase()``: standard normal), the optimally-weighted MMD estimator
replaces the equal weights ``1/m`` of ``x_1..x_m`` by ``w = (C + δI)⁻¹ z``, where
``C_ij = c(u_i, u_j)`` is a Gaussian kernel on the base space and ``z_i = ∫ c(u, u_i) U(du)``
its kernel mean, known in closed form (``base.kernel_mean``):

- uniform ``U``: ``z_i = Π_d √(2π) ℓ [Φ((1 − u_id)/ℓ) − Φ(−u_id/ℓ)]``;
- Gaussian ``U``: ``z_i = (ℓ²/(ℓ² + 1))^{d/2} exp(−‖u_i‖² / (2(ℓ² + 1)))``.

``Σ_i w_i f(u_i)`` is then the Bayesian-quadrature estimate of ``∫ f dU``, exact for every
``f`` in the span of ``c(·, u_j)``. The weights depend on ``u`` only, so one set serves every θ.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array

from .._checks import as_float_array, check_finite, is_concrete
from ..simulators import AbstractBaseMeasure, UniformBase
from ._kernels import median_heuristic

_DEFAULT_BASE = UniformBase()


def _check_base(base, fn: str) -> AbstractBaseMeasure:
    if not isinstance(base, AbstractBaseMeasure):
        raise TypeError(
            f"{fn}: `base` must be a base-measure object, sk.simulators.UniformBase() or "
            f"sk.simulators.GaussianBase(); got {type(base).__name__} {base!r}."
        )
    return base


def kernel_mean(u: Array, lengthscale: float | Array, base: AbstractBaseMeasure) -> Array:
    """The kernel mean ``z_i = ∫ c(v, u_i) U(dv)`` of the Gaussian kernel ``c`` on the base space.

    ``c(v, u) = exp(−‖v − u‖² / (2ℓ²))``; the integral is in closed form for each base
    measure (see :class:`~sbi_kit.simulators.UniformBase` and
    :class:`~sbi_kit.simulators.GaussianBase`). These are the ``z`` of
    :func:`optimal_weights`.

    Args:
        u: base-space points, shape ``(m, d_u)``.
        lengthscale: ``ℓ``, positive.
        base: the base measure ``U``, e.g. ``sk.simulators.UniformBase()``.

    Returns:
        ``z``, shape ``(m,)``.

    Raises:
        TypeError: if ``base`` is not a base-measure object (e.g. the old string ``"uniform"``).

    Examples:
        >>> import jax.numpy as jnp, sbi_kit as sk
        >>> z = sk.diagnostics.kernel_mean(jnp.zeros((1, 2)), 1.0, sk.simulators.GaussianBase())
        >>> float(z[0])   # (ℓ²/(ℓ² + 1))^{d/2} = 1/2
        0.5
    """
    base = _check_base(base, "kernel_mean")
    return base.kernel_mean(u, lengthscale)


def _gram(u: Array, ell: Array) -> Array:
    sq = jnp.sum((u[:, None, :] - u[None, :, :]) ** 2, axis=-1)
    return jnp.exp(-sq / (2.0 * ell**2))


def _solve(c: Array, z: Array, nugget: Array) -> Array:
    """``(C + δI)⁻¹ z`` by Cholesky; δ grows ×10 (up to 1e-2 · mean diag) until it succeeds."""
    eye = jnp.eye(c.shape[0], dtype=c.dtype)
    cap = 1e-2 * jnp.mean(jnp.diagonal(c))

    def attempt(delta):
        chol = jnp.linalg.cholesky(c + delta * eye)
        return chol, jnp.all(jnp.isfinite(chol))

    def cond(state):
        delta, _, ok = state
        return (~ok) & (delta < cap)

    def body(state):
        delta = state[0] * 10.0
        chol, ok = attempt(delta)
        return delta, chol, ok

    chol, ok = attempt(nugget)
    _, chol, _ = jax.lax.while_loop(cond, body, (nugget, chol, ok))
    return jax.scipy.linalg.cho_solve((chol, True), z)


def _weights(u: Array, base: AbstractBaseMeasure, lengthscale, nugget) -> Array:
    ell = median_heuristic(u) if lengthscale is None else jnp.asarray(lengthscale, u.dtype)
    return _solve(_gram(u, ell), base.kernel_mean(u, ell), jnp.asarray(nugget, u.dtype))


def optimal_weights(
    u: Array,
    *,
    base: AbstractBaseMeasure = _DEFAULT_BASE,
    lengthscale: float | None = None,
    nugget: float = 1e-8,
) -> Array:
    """Optimal (Bayesian-quadrature) weights ``w = (C + δI)⁻¹ z`` for base-space draws ``u``.

    ``C`` is badly conditioned, so the Cholesky factorisation runs in float64 (inside
    ``jax.enable_x64``) with jitter ``δ = nugget``, multiplied by 10 until the factorisation
    succeeds. The weights come back in the default float dtype (float32 unless x64 is on).
    Under an outer ``jit`` without x64, the computation runs in the traced dtype instead.

    Args:
        u: base-space draws, shape ``(m, d_u)`` (a 1-D array is taken as ``m`` scalars), in the
            support of ``base`` (``[0, 1]^{d_u}`` for ``UniformBase()``).
        base: the base measure ``U``: ``sk.simulators.UniformBase()`` (``Unif[0, 1]^{d_u}``,
            the default) or ``sk.simulators.GaussianBase()`` (``N(0, I)``); a
            ``BaseSpaceSimulator`` carries its own as ``simulator.base``.
        lengthscale: lengthscale ``ℓ`` of the Gaussian kernel ``c`` on the base space;
            ``None`` for the median heuristic on ``u``.
        nugget: the jitter ``δ`` added to the diagonal of ``C``.

    Returns:
        the weights, shape ``(m,)``. Use them as ``mmd(x, y, weights=w)`` with ``x_i = G_θ(u_i)``.

    Raises:
        TypeError: if ``base`` is not a base-measure object (e.g. the old string ``"uniform"``).
        ValueError: on NaN/inf draws, or draws outside the support of ``base``.

    Examples:
        >>> import jax, jax.numpy as jnp, sbi_kit as sk
        >>> u = jax.random.uniform(jax.random.key(0), (64, 1))
        >>> w = sk.diagnostics.optimal_weights(u)
        >>> # exact for functions in the kernel's span, e.g. f = c(·, u_0):
        >>> ell = sk.diagnostics.median_heuristic(u)
        >>> f = jnp.exp(-(u[:, 0] - u[0, 0]) ** 2 / (2 * ell**2))
        >>> exact = sk.diagnostics.kernel_mean(u[:1], ell, sk.simulators.UniformBase())[0]
        >>> bool(abs(w @ f - exact) < 1e-4)
        True
    """
    fn = "optimal_weights"
    base = _check_base(base, fn)
    u = as_float_array(u, "u", fn, (1, 2))
    u = u[:, None] if u.ndim == 1 else u
    if u.shape[0] < 1 or u.shape[1] < 1:
        raise ValueError(f"{fn}: `u` must have shape (m, d_u) with m, d_u ≥ 1, got {u.shape}.")
    if lengthscale is not None and is_concrete(lengthscale) and not float(lengthscale) > 0:
        raise ValueError(f"{fn}: lengthscale must be positive, got {lengthscale!r}.")
    if not float(nugget) >= 0:
        raise ValueError(f"{fn}: nugget must be ≥ 0, got {nugget!r}.")
    u = check_finite(u, "u", fn)
    if not is_concrete(u):
        return _weights(u, base, lengthscale, nugget)
    if not bool(base.contains(u)):
        raise ValueError(
            f"{fn}: the base-space draws `u` must lie in the support {base.support} of {base!r}."
        )
    out_dtype = jnp.result_type(float)
    with jax.enable_x64(True):
        u64 = jnp.asarray(jax.device_get(u), dtype=jnp.float64)
        w = jax.device_get(_weights_jit(u64, base, lengthscale, nugget))
    return jnp.asarray(w, dtype=out_dtype)


_weights_jit = jax.jit(_weights, static_argnums=(1,))
