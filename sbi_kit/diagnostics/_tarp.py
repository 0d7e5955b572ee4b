"""TARP: tests of accuracy with random points (Lemos, Coogan, Hezaveh & Perreault-Levasseur,
ICML 2023)."""

from __future__ import annotations

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from .._checks import as_float_array, check_finite, check_key, is_concrete
from .._types import Key
from ._uniformity import ecdf_on_grid, grid, ks_uniform_pvalue


class AbstractDistance(eqx.Module):
    """The distance TARP measures from reference points: ``d(a, b) = g(Σ_j t(a_j − b_j))``.

    TARP only compares distances, so a distance is given by its coordinate term ``t`` (and
    any increasing ``g``). Concrete distances are final classes without fields:
    :class:`EuclideanDistance` and :class:`ManhattanDistance`.
    """

    @abc.abstractmethod
    def coordinate_term(self, diff: Array) -> Array:
        """``t`` applied elementwise to coordinate differences (any shape)."""


class EuclideanDistance(AbstractDistance):
    """The Euclidean distance (compared through its square, ``Σ_j (a_j − b_j)²``).

    Examples:
        >>> import jax, sbi_kit as sk
        >>> k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
        >>> theta = jax.random.normal(k1, (100, 2))
        >>> samples = jax.random.normal(k2, (50, 100, 2))
        >>> ecp, alpha = sk.diagnostics.tarp(k3, samples, theta,
        ...                                  metric=sk.diagnostics.EuclideanDistance())
        >>> ecp.shape
        (11,)
    """

    def coordinate_term(self, diff: Array) -> Array:
        return diff * diff


class ManhattanDistance(AbstractDistance):
    """The L1 (Manhattan) distance ``Σ_j |a_j − b_j|``.

    Examples:
        >>> import jax, sbi_kit as sk
        >>> k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
        >>> theta = jax.random.normal(k1, (100, 2))
        >>> samples = jax.random.normal(k2, (50, 100, 2))
        >>> ecp, alpha = sk.diagnostics.tarp(k3, samples, theta,
        ...                                  metric=sk.diagnostics.ManhattanDistance())
        >>> float(ecp[-1])
        1.0
    """

    def coordinate_term(self, diff: Array) -> Array:
        return jnp.abs(diff)


_DEFAULT_METRIC = EuclideanDistance()
_STRING_METRICS = {"euclidean": "EuclideanDistance()", "manhattan": "ManhattanDistance()"}


def check_metric(metric, fn: str) -> AbstractDistance:
    """``metric`` if it is a TARP distance object; a TypeError that names the choices otherwise."""
    if isinstance(metric, AbstractDistance):
        return metric
    hint = ""
    if isinstance(metric, str) and metric in _STRING_METRICS:
        hint = f" (for {metric!r} pass sk.diagnostics.{_STRING_METRICS[metric]})"
    raise TypeError(
        f"{fn}: `metric` must be a distance object, sk.diagnostics.EuclideanDistance() or "
        f"ManhattanDistance(); got {type(metric).__name__} {metric!r}{hint}."
    )


def _check_inputs(samples, theta, fn: str) -> tuple[Array, Array]:
    samples = as_float_array(samples, "samples", fn, 3)
    theta = as_float_array(theta, "theta", fn, 2)
    if samples.shape[1:] != theta.shape:
        raise ValueError(
            f"{fn}: `samples` must have shape (num_samples, num_sims, d) = (L, "
            f"{theta.shape[0]}, {theta.shape[1]}) to match `theta` {theta.shape}, got "
            f"{samples.shape}."
        )
    if samples.shape[0] < 1 or theta.shape[0] < 1:
        raise ValueError(
            f"{fn}: needs at least one simulation and one sample, got {samples.shape}."
        )
    return samples, theta


def _distance(a: Array, b: Array, metric: AbstractDistance) -> tuple[Array, Array]:
    """A monotone transform of the distance, ``Σ_j t(a_j − b_j)`` (comparisons are all TARP
    needs), and the sum of the coordinate differences, which is finite exactly when every
    coordinate is (used to flag NaN/inf in the same pass). Small ``d`` is unrolled, which XLA
    fuses into one pass instead of reducing over a short minor axis."""
    d = a.shape[-1]
    term = metric.coordinate_term
    if d <= 16:
        diffs = [a[..., j] - b[..., j] for j in range(d)]
        return sum(term(u) for u in diffs), sum(diffs)
    diff = a - b
    return jnp.sum(term(diff), axis=-1), jnp.sum(diff, axis=-1)


def tarp_counts(
    key: Key,
    samples: Array,
    theta: Array,
    references,
    metric: AbstractDistance,
    normalize: bool,
) -> Array:
    """Per simulation, the number of samples closer to the reference point than θ*; (n,) int.

    ``f_i = counts_i / L`` is the credibility of the smallest ball around ``r_i`` that holds
    ``θ*_i``. A simulation with a NaN or inf among its samples gets a count above ``L`` (the
    check rides in the same pass over the samples; callers test ``counts <= L``). Low-level,
    jittable; see :func:`tarp` for the arguments.
    """
    lo, hi = jnp.min(theta, axis=0), jnp.max(theta, axis=0)
    scale = hi - lo + 1e-10
    if isinstance(references, str):
        unit = jax.random.uniform(key, theta.shape, dtype=theta.dtype)
        # uniform on θ's bounding box, in whichever coordinates the distances are taken
        references = unit if normalize else lo + unit * (hi - lo)
    elif normalize:
        references = (references - lo) / scale
    if normalize:
        samples = (samples - lo) / scale
        theta = (theta - lo) / scale
    d_samples, total = _distance(samples, references[None], metric)  # (L, n) each
    d_theta, _ = _distance(theta, references, metric)  # (n,)
    num_samples = samples.shape[0]
    closer = (d_samples < d_theta[None]).astype(jnp.int32)
    return jnp.sum(jnp.where(jnp.isfinite(total), closer, num_samples + 1), axis=0)


@eqx.filter_jit
def _tarp(key, samples, theta, references, metric, num_bins, normalize, num_bootstrap):
    """(ecp, alpha, [samples, theta, references] all finite) in one compiled call."""
    dtype = jnp.result_type(samples.dtype, theta.dtype)
    samples, theta = samples.astype(dtype), theta.astype(dtype)
    finite = [jnp.bool_(True), jnp.all(jnp.isfinite(theta))]
    if not isinstance(references, str):
        references = references.astype(dtype)
        finite.append(jnp.all(jnp.isfinite(references)))
    key_ref, key_boot = jax.random.split(key)
    counts = tarp_counts(key_ref, samples, theta, references, metric, normalize)
    # blame the samples only when θ and the references are finite (normalising by a NaN range
    # would spoil every sample)
    finite[0] = jnp.all(counts <= samples.shape[0]) | ~jnp.all(jnp.stack(finite[1:]))
    num_samples = samples.shape[0]
    if num_bootstrap > 0:
        n = counts.shape[0]
        idx = jax.vmap(lambda k: jax.random.randint(k, (n,), 0, n))(
            jax.random.split(key_boot, num_bootstrap)
        )
        counts = counts[idx]
    ecp = ecdf_on_grid(counts, num_samples, num_bins)
    return ecp, grid(num_bins).astype(ecp.dtype), jnp.stack(finite)


def tarp(
    key: Key,
    samples: Array,
    theta: Array,
    *,
    references: str | Array = "random",
    metric: AbstractDistance = _DEFAULT_METRIC,
    num_bins: int | None = None,
    normalize: bool = True,
    num_bootstrap: int = 0,
) -> tuple[Array, Array]:
    """Expected coverage probabilities of TARP regions (Lemos et al. 2023).

    For simulation ``i`` with true parameters ``θ*_i``, posterior samples ``θ_ij`` and a
    reference point ``r_i``, ``f_i = (1/L) Σ_j 1[d(θ_ij, r_i) < d(θ*_i, r_i)]``; the expected
    coverage at credibility level ``α`` is ``ECP(α) = mean_i 1[f_i < α]`` on ``B + 1`` levels
    spanning ``[0, 1]`` (``ECP(1) = 1``). A calibrated posterior gives ``ECP(α) ≈ α``; a curve
    above the diagonal for α > 1/2 means an underconfident (too wide) posterior, below it an
    overconfident (too narrow) one.

    With ``normalize=False`` and the same reference points, this matches the ``tarp`` package's
    ``get_tarp_coverage`` wherever that package's grid spans ``[0, 1]``. Unlike that package:
    reference points given by the user are rescaled together with the samples; the grid always
    spans ``[0, 1]`` (the package spans ``[min f, max f]``); and bootstrap replicates are
    independent resamples of the simulations (with replacement), each with its own key.

    Args:
        key: PRNG key (random reference points and bootstrap resamples).
        samples: posterior samples, shape ``(L, num_sims, d)``: ``samples[:, i]`` are the
            ``L`` draws given the ``i``-th simulated observation.
        theta: the true parameters, shape ``(num_sims, d)``.
        references: ``"random"`` (uniform on the bounding box of ``theta``, one per simulation)
            or an array of shape ``(num_sims, d)``, in the coordinates of ``theta``.
        metric: the distance: ``EuclideanDistance()`` (default) or ``ManhattanDistance()``.
        num_bins: ``B``, the number of credibility intervals; default ``num_sims // 10``
            (at least 1).
        normalize: min–max scale samples, θ and references by the range of ``theta`` per
            dimension before taking distances.
        num_bootstrap: number of bootstrap replicates; 0 for none.

    Returns:
        ``(ecp, alpha)``: ``alpha`` of shape ``(B + 1,)`` from 0 to 1, and ``ecp`` of shape
        ``(B + 1,)``, or ``(num_bootstrap, B + 1)`` with bootstrap replicates.

    Raises:
        TypeError: if ``metric`` is not a distance object (e.g. the old string ``"euclidean"``).
        ValueError: on mismatched shapes or NaN/inf inputs.

    Examples:
        >>> import jax, sbi_kit as sk
        >>> k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
        >>> theta = jax.random.normal(k1, (500, 2))       # θ* ~ N(0, 1) and "posterior" N(0, 1):
        >>> samples = jax.random.normal(k2, (200, 500, 2))  # calibrated by construction
        >>> ecp, alpha = sk.diagnostics.tarp(k3, samples, theta)
        >>> ecp.shape, bool(abs(ecp - alpha).max() < 0.1)
        ((51,), True)
    """
    fn = "tarp"
    check_key(key, fn)
    metric = check_metric(metric, fn)
    samples, theta = _check_inputs(samples, theta, fn)
    num_sims = theta.shape[0]
    if isinstance(references, str):
        if references != "random":
            raise ValueError(f"{fn}: references must be 'random' or an array, got {references!r}.")
    else:
        references = as_float_array(references, "references", fn, 2)
        if references.shape != theta.shape:
            raise ValueError(
                f"{fn}: `references` must have the shape of `theta` {theta.shape}, got "
                f"{references.shape}."
            )
    if num_bins is None:
        num_bins = max(1, num_sims // 10)
    if not isinstance(num_bins, int | np.integer) or num_bins < 1:
        raise ValueError(f"{fn}: num_bins must be a positive integer, got {num_bins!r}.")
    if not isinstance(num_bootstrap, int | np.integer) or num_bootstrap < 0:
        raise ValueError(
            f"{fn}: num_bootstrap must be a non-negative integer, got {num_bootstrap!r}."
        )
    arrays = (samples, theta) + (() if isinstance(references, str) else (references,))
    concrete = all(is_concrete(a) for a in arrays)
    if not concrete:  # under jit / vmap: checks that fire when the compiled code runs
        samples = check_finite(samples, "samples", fn)
        theta = check_finite(theta, "theta", fn)
        if not isinstance(references, str):
            references = check_finite(references, "references", fn)
    ecp, alpha, finite = _tarp(
        key,
        samples,
        theta,
        references,
        metric,
        int(num_bins),
        bool(normalize),
        int(num_bootstrap),
    )
    if concrete:
        for name, ok in zip(("samples", "theta", "references"), np.asarray(finite), strict=False):
            if not ok:
                raise ValueError(
                    f"{fn}: `{name}` contains NaN or inf values; diagnostics need finite inputs "
                    "(drop failed simulations first)."
                )
    return ecp, alpha


def tarp_summary(ecp: Array, alpha: Array, *, num_sims: int | None = None):
    """The area-to-curve statistic (ATC) and a Kolmogorov–Smirnov p-value of a TARP curve.

    ``ATC = Σ_{k ≥ K/2} (ECP_k − α_k) Δα`` over the upper half of the ``K = B + 1`` levels, as
    sbi's ``check_tarp`` computes it: about 0 when calibrated, negative for an overconfident
    (too narrow) posterior, positive for an underconfident (too wide) one.

    The p-value: with ``num_sims``, the one-sample Kolmogorov–Smirnov test that the ``f_i`` are
    uniform, with ``D = max_k |ECP_k − α_k|`` on the grid and ``n = num_sims`` (the test
    ``calibrate`` uses); without it, the two-sample KS test between the values of the ECP and α
    curves that sbi's ``check_tarp`` reports (weaker; kept for comparison with sbi).

    Args:
        ecp: shape ``(K,)`` or ``(num_bootstrap, K)``.
        alpha: shape ``(K,)``.
        num_sims: number of simulations behind the curve (enables the one-sample test).

    Returns:
        ``(atc, p_value)``: floats, or arrays of shape ``(num_bootstrap,)``.

    Examples:
        >>> import jax.numpy as jnp, sbi_kit as sk
        >>> alpha = jnp.linspace(0, 1, 11)
        >>> atc, p = sk.diagnostics.tarp_summary(alpha, alpha, num_sims=100)
        >>> atc, p
        (0.0, 1.0)
    """
    ecp = np.asarray(ecp, dtype=np.float64)
    alpha = np.asarray(alpha, dtype=np.float64)
    if alpha.ndim != 1 or ecp.shape[-1:] != alpha.shape or ecp.ndim not in (1, 2):
        raise ValueError(
            f"tarp_summary: expected ecp (K,) or (num_bootstrap, K) and alpha (K,), got "
            f"{ecp.shape} and {alpha.shape}."
        )
    if not (np.isfinite(ecp).all() and np.isfinite(alpha).all()):
        raise ValueError("tarp_summary: ecp and alpha must be finite.")
    mid = alpha.shape[0] // 2
    dalpha = alpha[1] - alpha[0] if alpha.shape[0] > 1 else 1.0
    atc = np.sum((ecp[..., mid:] - alpha[mid:]) * dalpha, axis=-1)
    if num_sims is not None:
        p = ks_uniform_pvalue(np.max(np.abs(ecp - alpha), axis=-1), int(num_sims))
    else:
        from scipy.stats import ks_2samp

        rows = ecp.reshape(-1, alpha.shape[0])
        p = np.asarray([ks_2samp(r, alpha).pvalue for r in rows]).reshape(ecp.shape[:-1])
    if ecp.ndim == 1:
        return float(atc), float(p)
    return atc, np.asarray(p)
