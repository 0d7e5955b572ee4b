"""Shared pieces of the calibration tests: empirical CDFs on a grid and uniformity p-values.

TARP, SBC and HPD coverage all reduce to a statistic that is uniform under exact inference: a
count ``c ∈ {0, …, L}`` out of ``L`` posterior samples. The ECDF helpers compare counts with
grid levels in integer arithmetic, so ties are resolved exactly; the p-values are computed on
the host with scipy (exact Kolmogorov distribution, χ²).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array


def ecdf_on_grid(counts: Array, num_samples: int, num_bins: int) -> Array:
    """``ECDF_k = mean_i[c_i / L < k / B]`` for ``k = 0..B`` (the last level counts ``≤``).

    Args:
        counts: integer counts ``c_i`` in ``0..L``, shape ``(..., n)``.
        num_samples: ``L``.
        num_bins: ``B``.

    Returns:
        shape ``(..., B + 1)``, from 0 at level 0 to 1 at level 1.
    """
    counts = jnp.asarray(counts, jnp.int32)
    k = jnp.arange(num_bins + 1, dtype=jnp.int32)
    # c / L < k / B  ⟺  c·B < k·L  (exact in integers)
    below = counts[..., None, :] * num_bins < k[:, None] * num_samples
    below = below | (k[:, None] == num_bins)
    return jnp.mean(below, axis=-1, dtype=jnp.result_type(float))


def grid(num_bins: int) -> Array:
    """``B + 1`` evenly spaced levels from 0 to 1."""
    return jnp.linspace(0.0, 1.0, num_bins + 1)


def ks_uniform_pvalue(statistic, n: int):
    """p-value of the one-sample Kolmogorov–Smirnov statistic ``D`` for ``n`` draws (scipy)."""
    from scipy.stats import kstwo

    return kstwo.sf(np.asarray(statistic, dtype=np.float64), n)


def discrete_uniform_moments(num_samples: int) -> tuple[float, float, float, float]:
    """Mean and variance of ``v = r/L`` and of ``(v − 1/2)²`` for ``r`` uniform on ``0..L``."""
    v = np.arange(num_samples + 1, dtype=np.float64) / num_samples
    s = (v - 0.5) ** 2
    return float(v.mean()), float(v.var()), float(s.mean()), float(s.var())


def shape_statistics(counts: np.ndarray, num_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """z-scores of the location and the spread of uniform counts (per column).

    Args:
        counts: shape ``(n, k)``, integers in ``0..L``.
        num_samples: ``L``.

    Returns:
        ``(bias, dispersion)``, each of shape ``(k,)``: ``bias`` is the z-score of the mean of
        ``v = c/L`` against 1/2; ``dispersion`` the z-score of the mean of ``(v − 1/2)²``
        against its value under uniformity. ``dispersion > 0`` means too many extreme values
        (U-shaped histogram), ``< 0`` too few (dome-shaped).
    """
    counts = np.asarray(counts, dtype=np.float64)
    n = counts.shape[0]
    mean_v, var_v, mean_s, var_s = discrete_uniform_moments(num_samples)
    v = counts / num_samples
    bias = (v.mean(axis=0) - mean_v) / np.sqrt(var_v / n)
    dispersion = (((v - 0.5) ** 2).mean(axis=0) - mean_s) / np.sqrt(var_s / n)
    return bias, dispersion


def chi2_uniform_pvalues(counts: np.ndarray, num_samples: int, num_bins: int) -> np.ndarray:
    """χ² goodness-of-fit p-values of counts in ``0..L`` against the discrete uniform.

    Counts are binned by ``⌊c·B/(L + 1)⌋``; the expected frequency of each bin is its exact
    share of the ``L + 1`` possible values, so unequal bins are handled.

    Args:
        counts: shape ``(n, k)``.
        num_samples: ``L``.
        num_bins: ``B`` (at most ``L + 1``).

    Returns:
        shape ``(k,)``.
    """
    from scipy.stats import chi2

    counts = np.asarray(counts, dtype=np.int64)
    n = counts.shape[0]
    bins = counts * num_bins // (num_samples + 1)
    share = np.bincount(
        np.arange(num_samples + 1) * num_bins // (num_samples + 1), minlength=num_bins
    ) / (num_samples + 1)
    expected = n * share
    out = []
    for j in range(counts.shape[1]):
        observed = np.bincount(bins[:, j], minlength=num_bins)
        stat = np.sum((observed - expected) ** 2 / expected)
        out.append(chi2.sf(stat, num_bins - 1))
    return np.asarray(out)
