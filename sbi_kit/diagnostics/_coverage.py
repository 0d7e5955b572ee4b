"""Expected coverage of highest-posterior-density regions (Hermans et al., TMLR 2022)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from .._checks import as_float_array, is_concrete
from ._uniformity import ecdf_on_grid, grid, ks_uniform_pvalue


def _check_log_prob(x: Array, name: str, fn: str) -> Array:
    if is_concrete(x):
        v = np.asarray(x)
        if np.isnan(v).any() or (v == np.inf).any():
            raise ValueError(
                f"{fn}: `{name}` contains NaN or +inf values (−inf, outside the support, is "
                "allowed)."
            )
    return x


def hpd_counts(sample_log_prob: Array, theta_log_prob: Array) -> Array:
    """``c_i = Σ_l 1[log q(θ_il | x_i) > log q(θ*_i | x_i)]``, shape ``(n,)``, integers."""
    return jnp.sum(sample_log_prob > theta_log_prob[None], axis=0, dtype=jnp.int32)


def expected_coverage(
    sample_log_prob: Array,
    theta_log_prob: Array,
    *,
    num_levels: int | None = None,
) -> tuple[Array, Array]:
    """Empirical expected coverage of the posterior's highest-density regions.

    ``r*_i = (1/L) Σ_l 1[log q(θ_il | x_i) > log q(θ*_i | x_i)]`` is the credibility of the
    smallest HPD region that contains the truth; the truth lies in the HPD region of credibility
    ``c`` iff ``r*_i < c``. The expected coverage at level ``c`` is ``mean_i 1[r*_i < c]``; it
    equals ``c`` for the exact posterior. Below the diagonal the posterior is overconfident
    (its regions are too small), above it conservative (Hermans et al. 2022).

    Args:
        sample_log_prob: ``log q(θ_il | x_i)`` at ``L`` posterior samples per simulation,
            shape ``(L, num_sims)``.
        theta_log_prob: ``log q(θ*_i | x_i)`` at the true parameters, shape ``(num_sims,)``;
            ``-inf`` (outside the support) is allowed.
        num_levels: ``B``, the number of credibility intervals; default ``num_sims // 10``
            (at least 1).

    Returns:
        ``(levels, coverage)``, both of shape ``(B + 1,)``; levels from 0 to 1.

    Raises:
        ValueError: on mismatched shapes or NaN/+inf log-densities.

    Examples:
        >>> import jax, jax.numpy as jnp, sbi_kit as sk
        >>> k1, k2 = jax.random.split(jax.random.key(0))
        >>> theta = jax.random.normal(k1, (1000,))          # truth ~ N(0, 1), q = N(0, 0.5²):
        >>> samples = 0.5 * jax.random.normal(k2, (200, 1000))
        >>> logq = lambda t: -0.5 * (t / 0.5) ** 2
        >>> levels, cov = sk.diagnostics.expected_coverage(logq(samples), logq(theta))
        >>> bool(cov[len(cov) // 2] < 0.5)   # overconfident: 50% regions cover less than 50%
        True
    """
    fn = "expected_coverage"
    lp_samples = as_float_array(sample_log_prob, "sample_log_prob", fn, 2)
    lp_theta = as_float_array(theta_log_prob, "theta_log_prob", fn, 1)
    if lp_samples.shape[1] != lp_theta.shape[0]:
        raise ValueError(
            f"{fn}: `sample_log_prob` must have shape (L, num_sims) = (L, {lp_theta.shape[0]}), "
            f"got {lp_samples.shape}."
        )
    lp_samples = _check_log_prob(lp_samples, "sample_log_prob", fn)
    lp_theta = _check_log_prob(lp_theta, "theta_log_prob", fn)
    num_sims = lp_theta.shape[0]
    if num_levels is None:
        num_levels = max(1, num_sims // 10)
    if not isinstance(num_levels, int | np.integer) or num_levels < 1:
        raise ValueError(f"{fn}: num_levels must be a positive integer, got {num_levels!r}.")
    counts = jax.jit(hpd_counts)(lp_samples, lp_theta)
    coverage = ecdf_on_grid(counts, lp_samples.shape[0], int(num_levels))
    return grid(int(num_levels)).astype(coverage.dtype), coverage


def coverage_summary(levels: Array, coverage: Array, *, num_sims: int) -> tuple[float, float]:
    """Signed area between the coverage curve and the diagonal, and a KS p-value.

    Args:
        levels: shape ``(K,)`` from :func:`expected_coverage`.
        coverage: shape ``(K,)``.
        num_sims: number of simulations behind the curve.

    Returns:
        ``(area, p_value)``: ``area = ∫ (coverage(c) − c) dc`` (trapezoid rule; < 0:
        overconfident, > 0: conservative), and the one-sample Kolmogorov–Smirnov p-value of
        ``D = max |coverage − c|`` with ``n = num_sims``.

    Examples:
        >>> import jax.numpy as jnp, sbi_kit as sk
        >>> c = jnp.linspace(0, 1, 11)
        >>> sk.diagnostics.coverage_summary(c, c, num_sims=100)
        (0.0, 1.0)
    """
    levels = np.asarray(levels, dtype=np.float64)
    coverage = np.asarray(coverage, dtype=np.float64)
    if levels.ndim != 1 or coverage.shape != levels.shape:
        raise ValueError(
            f"coverage_summary: levels and coverage must have one shape (K,), got {levels.shape} "
            f"and {coverage.shape}."
        )
    if not (np.isfinite(levels).all() and np.isfinite(coverage).all()):
        raise ValueError("coverage_summary: levels and coverage must be finite.")
    area = float(np.trapezoid(coverage - levels, levels)) if levels.size > 1 else 0.0
    p = float(ks_uniform_pvalue(np.max(np.abs(coverage - levels)), int(num_sims)))
    return area, p
