"""Simulation-based calibration (Talts, Betancourt, Simpson, Vehtari & Gelman 2018)."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from .._checks import as_float_array, check_finite, is_concrete
from ._uniformity import chi2_uniform_pvalues, shape_statistics


def _statistic_values(statistics, samples: Array, theta: Array, fn: str) -> tuple[Array, Array]:
    """Values of the extra test statistics: ``(L, n, k)`` for the samples, ``(n, k)`` for θ."""
    L, n, _ = samples.shape
    if callable(statistics):

        def f(t):
            return jnp.atleast_1d(statistics(t))

        s_samples = jax.vmap(jax.vmap(f))(samples)
        s_theta = jax.vmap(f)(theta)
    else:
        try:
            s_samples, s_theta = statistics
        except (TypeError, ValueError):
            raise TypeError(
                f"{fn}: `statistics` must be a callable f(theta) -> scalar or (k,), or a pair "
                "(values at the samples (L, n[, k]), values at theta (n[, k]))."
            ) from None
        s_samples = as_float_array(s_samples, "statistics[0]", fn, (2, 3))
        s_theta = as_float_array(s_theta, "statistics[1]", fn, (1, 2))
        s_samples = s_samples[..., None] if s_samples.ndim == 2 else s_samples
        s_theta = s_theta[..., None] if s_theta.ndim == 1 else s_theta
    if s_samples.shape[:2] != (L, n) or s_theta.shape != (n, s_samples.shape[2]):
        raise ValueError(
            f"{fn}: statistic values must have shapes (L, n, k) = ({L}, {n}, k) and (n, k); got "
            f"{s_samples.shape} and {s_theta.shape}."
        )
    # ±inf are legitimate statistic values (−log q is +inf outside the support); NaN is not
    s_samples = _refuse_nan(s_samples, "statistics (samples)", fn)
    s_theta = _refuse_nan(s_theta, "statistics (theta)", fn)
    return s_samples, s_theta


def _refuse_nan(x: Array, name: str, fn: str) -> Array:
    if is_concrete(x):
        if bool(jnp.any(jnp.isnan(x))):
            raise ValueError(f"{fn}: `{name}` contains NaN values.")
        return x
    return eqx.error_if(x, jnp.any(jnp.isnan(x)), f"{fn}: `{name}` contains NaN values.")


def ranks(samples: Array, truth: Array) -> Array:
    """``r_ij = Σ_l 1[samples_lij < truth_ij]`` for samples ``(L, n, k)``, truth ``(n, k)``."""
    return jnp.sum(samples < truth[None], axis=0, dtype=jnp.int32)


def sbc_ranks(
    samples: Array,
    theta: Array,
    *,
    statistics: Callable[[Array], Array] | tuple[Array, Array] | None = None,
) -> Array:
    """SBC ranks of the true parameters among posterior samples, per marginal and statistic.

    For simulation ``i`` with ``θ̃_i ~ prior``, ``x_i ~ simulator(θ̃_i)`` and ``L`` posterior
    samples ``θ_il ~ q(θ | x_i)``, the rank of a statistic ``f`` is
    ``r_i = Σ_l 1[f(θ_il) < f(θ̃_i)] ∈ {0, …, L}``; it is uniform when ``q`` is the exact
    posterior (Talts et al. 2018). Ranks are computed for each coordinate of θ and for each
    extra statistic.

    Args:
        samples: posterior samples, shape ``(L, num_sims, d)``.
        theta: the true parameters, shape ``(num_sims, d)``.
        statistics: extra test statistics: a callable ``f(θ) -> scalar or (k,)`` applied to one
            parameter vector, or a pair of precomputed values ``(at_samples, at_theta)`` of
            shapes ``(L, num_sims[, k])`` and ``(num_sims[, k])``, for statistics that depend
            on ``x_i`` such as ``−log q(θ | x_i)`` (pass
            ``(-log_q_samples, -log_q_theta)``).

    Returns:
        integer ranks in ``0..L``, shape ``(num_sims, d + k)``.

    Raises:
        ValueError: on mismatched shapes or NaN/inf values (statistics may be ±inf, not NaN).

    Examples:
        >>> import jax, sbi_kit as sk
        >>> k1, k2 = jax.random.split(jax.random.key(0))
        >>> theta = jax.random.normal(k1, (300, 2))
        >>> samples = jax.random.normal(k2, (99, 300, 2))
        >>> r = sk.diagnostics.sbc_ranks(samples, theta, statistics=lambda t: t @ t)
        >>> r.shape, int(r.max()) <= 99
        ((300, 3), True)
    """
    fn = "sbc_ranks"
    samples = as_float_array(samples, "samples", fn, 3)
    theta = as_float_array(theta, "theta", fn, 2)
    if samples.shape[1:] != theta.shape:
        raise ValueError(
            f"{fn}: `samples` must have shape (L, num_sims, d) = (L, {theta.shape[0]}, "
            f"{theta.shape[1]}) to match `theta` {theta.shape}, got {samples.shape}."
        )
    samples = check_finite(samples, "samples", fn)
    theta = check_finite(theta, "theta", fn)
    if statistics is None:
        return _ranks_jit(samples, theta)
    s_samples, s_theta = _statistic_values(statistics, samples, theta, fn)
    return jnp.concatenate([_ranks_jit(samples, theta), _ranks_jit(s_samples, s_theta)], axis=1)


_ranks_jit = jax.jit(ranks)


class SBCTest(NamedTuple):
    """Result of :func:`sbc_test`, one entry per column of the ranks.

    Attributes:
        p_values: χ² test of uniformity of the binned ranks.
        bias: z-score of the mean normalised rank against 1/2 (> 0: the truth tends to lie
            above the posterior samples, i.e. the posterior is biased low).
        dispersion: z-score of the spread of the normalised ranks (> 0: U-shaped histogram,
            an overconfident posterior; < 0: dome-shaped, an underconfident one).
    """

    p_values: np.ndarray
    bias: np.ndarray
    dispersion: np.ndarray


def default_rank_bins(num_sims: int, num_posterior_samples: int) -> int:
    """The default number of rank-histogram bins: about 20 simulations per bin.

    Between 2 and 50 bins, and at most ``L + 1`` (one bin per possible rank). :func:`sbc_test`,
    :func:`calibrate` and ``sk.plotting.rank_histogram`` use it when ``num_bins`` is not given.

    Args:
        num_sims: number of simulations (ranks per column).
        num_posterior_samples: ``L``, posterior samples per simulation.

    Returns:
        the number of bins.

    Examples:
        >>> import sbi_kit as sk
        >>> sk.diagnostics.default_rank_bins(1000, 1000), sk.diagnostics.default_rank_bins(100, 3)
        (50, 4)
    """
    return int(min(num_posterior_samples + 1, max(2, min(50, num_sims // 20))))


def sbc_test(ranks: Array, num_posterior_samples: int, *, num_bins: int | None = None) -> SBCTest:
    """Tests SBC ranks for uniformity, per column, and measures the shape of any departure.

    The ranks are binned into ``B`` bins (default: about 20 simulations per bin, at most 50)
    and compared with their exact expected frequencies by a χ² test. The bias and dispersion
    z-scores say in which direction the histogram departs: a U shape (``dispersion > 0``)
    means the truth falls in the tails of the posterior too often (overconfident); a dome
    (``dispersion < 0``) that it falls in the middle too often (underconfident).

    Args:
        ranks: integer ranks in ``0..L``, shape ``(num_sims, k)`` (from :func:`sbc_ranks`).
        num_posterior_samples: ``L``.
        num_bins: number of histogram bins ``B``.

    Returns:
        an :class:`SBCTest` of arrays of shape ``(k,)``.

    Examples:
        >>> import jax, sbi_kit as sk
        >>> k1, k2 = jax.random.split(jax.random.key(0))
        >>> theta = jax.random.normal(k1, (500, 1))
        >>> narrow = 0.5 * jax.random.normal(k2, (100, 500, 1))   # overconfident
        >>> t = sk.diagnostics.sbc_test(sk.diagnostics.sbc_ranks(narrow, theta), 100)
        >>> bool(t.p_values[0] < 1e-3), bool(t.dispersion[0] > 3)
        (True, True)
    """
    fn = "sbc_test"
    r = np.asarray(ranks)
    if r.ndim == 1:
        r = r[:, None]
    if r.ndim != 2 or r.shape[0] < 1:
        raise ValueError(f"{fn}: `ranks` must have shape (num_sims, k), got {np.shape(ranks)}.")
    if not isinstance(num_posterior_samples, int | np.integer) or num_posterior_samples < 1:
        raise ValueError(
            f"{fn}: num_posterior_samples must be a positive integer, got "
            f"{num_posterior_samples!r}."
        )
    if not np.issubdtype(r.dtype, np.integer):
        if not np.isfinite(r).all() or (r != np.round(r)).any():
            raise ValueError(f"{fn}: `ranks` must be finite integers.")
        r = r.astype(np.int64)
    if r.min() < 0 or r.max() > num_posterior_samples:
        raise ValueError(
            f"{fn}: ranks must lie in 0..{num_posterior_samples}, got values in "
            f"{r.min()}..{r.max()}."
        )
    if num_bins is None:
        num_bins = default_rank_bins(r.shape[0], num_posterior_samples)
    if not isinstance(num_bins, int | np.integer) or not 2 <= num_bins <= num_posterior_samples + 1:
        raise ValueError(
            f"{fn}: num_bins must be an integer in 2..{num_posterior_samples + 1}, got "
            f"{num_bins!r}."
        )
    p = chi2_uniform_pvalues(r, num_posterior_samples, int(num_bins))
    bias, dispersion = shape_statistics(r, num_posterior_samples)
    return SBCTest(p, bias, dispersion)
