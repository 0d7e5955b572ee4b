"""Posterior predictive checks: is ``x_o`` typical of data simulated from its own posterior?

A posterior that is misplaced for ``x_o`` predicts data unlike ``x_o``. The check
draws θ_i from the posterior of ``x_o``, simulates x_i ~ p(x | θ_i), and asks how far ``x_o``
lies out among the x_i compared with the x_i themselves (Gelman, Meng & Stern 1996;
Gelman et al., *Bayesian Data Analysis*, ch. 6). It needs no reference posterior, so it is the
check that applies where the calibration tests over the prior predictive (TARP, SBC, coverage)
do not: the posterior of one observation, as sequential rounds give.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import jax
import numpy as np
from jaxtyping import Array
from scipy.special import ndtri

from .._checks import check_finite_rows, check_flag, check_key, check_positive_int, is_concrete
from .._types import Key
from ..inference import AbstractPosterior
from ..simulators import simulate
from ._calibrate import check_posterior_and_simulator

_MAD_TO_SD = 1.4826  # the median absolute deviation of a normal is 0.6745 sd


@dataclasses.dataclass(frozen=True)
class PredictiveCheck:
    """The result of :func:`predictive_check` and :func:`posterior_predictive_check`.

    Attributes:
        statistic: how far out ``x_o`` lies among the replicates: the Mahalanobis distance,
            divided by the dimension, of the normal scores ``Φ⁻¹(u)`` of its coordinates'
            mid-ranks ``u`` among the replicates' values, under the scores' correlation (for a
            stack, averaged over its observations); about 1 for a typical replicate.
        statistics: the same for each replicate (of a stack: each replicate stack), ``(m,)``.
        p_value: ``(1 + #{statistics ≥ statistic}) / (m + 1)``, the Monte Carlo p-value; small
            when ``x_o`` lies further out than nearly all replicates.
        level: the p-value below which the check fails.
        num_dropped: simulations of replicates that were dropped (non-finite or failed).
    """

    statistic: float
    statistics: np.ndarray
    p_value: float
    level: float
    num_dropped: int = 0

    @property
    def passed(self) -> bool:
        """``p_value ≥ level``: ``x_o`` is no outlier among the replicates."""
        return self.p_value >= self.level

    @property
    def num_replicates(self) -> int:
        return int(self.statistics.shape[0])

    def metrics(self) -> dict[str, Any]:
        """The headline numbers as a flat JSON-ready dict (``metrics.json``'s
        ``"predictive_check"``; the per-replicate statistics are left out).

        Examples:
            >>> import numpy as np
            >>> from sbi_kit.diagnostics import predictive_check
            >>> reps = np.random.default_rng(0).normal(size=(99, 3))
            >>> m = predictive_check(reps, np.full(3, 4.0)).metrics()
            >>> m["p_value"], m["passed"], m["num_replicates"]
            (0.01, False, 99)
        """
        return {
            "p_value": self.p_value,
            "passed": self.passed,
            "level": self.level,
            "statistic": self.statistic,
            "num_replicates": self.num_replicates,
            "num_dropped": self.num_dropped,
        }

    def message(self) -> str:
        """One sentence: the distances, the p-value and, if it failed, what it may mean."""
        beyond = int(np.sum(self.statistics >= self.statistic))
        text = (
            f"x_o's outlyingness among {self.num_replicates} posterior predictive replicates is "
            f"{self.statistic:.3g} (replicates: median {np.median(self.statistics):.3g}; "
            f"{beyond} at least as far out; p = {self.p_value:.3g})"
        )
        if self.passed:
            return text + "."
        return (
            text + f", below the level {self.level:g}: data simulated from this posterior do not "
            "look like x_o, so the posterior is likely misplaced or too narrow (or the "
            "simulator cannot produce x_o); a right posterior fails at this level in about "
            f"{self.level:.0%} of cases or fewer."
        )


def _check_level(level, fn: str) -> float:
    ok = isinstance(level, int | float) and not isinstance(level, bool) and 0 < level < 1
    if not ok:
        raise ValueError(f"{fn}: `level` must be a number in (0, 1), got {level!r}.")
    return float(level)


def _normal_scores(pooled: np.ndarray) -> np.ndarray:
    """Each value's normal score among the other rows' values of its coordinate.

    ``Φ⁻¹(u)`` of the mid-rank ``u = (below + ½ tied + ½) / total`` (ranks: robust to heavy
    tails and to the ties of discrete data); a value beyond all the others (a unique maximum
    or minimum) scores its robust z-score instead where that is further out (distance from the
    median in units of 1.4826 median absolute deviations, or of the standard deviation where
    that is 0), so that an ``x_o`` far outside the replicates counts as far, not merely as the
    largest.
    """
    total, dim = pooled.shape
    scores = np.empty(pooled.shape)
    for j in range(dim):
        values = pooled[:, j]
        column = np.sort(values)
        below = np.searchsorted(column, values, side="left")
        tied = np.searchsorted(column, values, side="right") - below - 1  # not itself
        scores[:, j] = ndtri((below + 0.5 * tied + 0.5) / total)
        centre = np.median(values)
        spread = _MAD_TO_SD * np.median(np.abs(values - centre))
        spread = spread if spread > 0 else values.std()
        if spread > 0 and total > 2:
            top = (values == column[-1]) & (column[-1] > column[-2])
            bottom = (values == column[0]) & (column[0] < column[1])
            z = (values - centre) / spread
            scores[top, j] = np.maximum(scores[top, j], z[top])
            scores[bottom, j] = np.minimum(scores[bottom, j], z[bottom])
    return scores


def _outlyingness(rows: np.ndarray, obs_rows: np.ndarray, groups: np.ndarray):
    """The statistic of ``x_o`` (its rows ``(k, D)``) and of each replicate (rows ``(N, D)``,
    ``groups[r]`` the replicate of row ``r``), and the p-value.

    The rows of ``x_o`` and of the replicates are pooled and every row gets its normal scores
    ``z`` among the others (:func:`_normal_scores`). A row's statistic is ``zᵀ R⁻¹ z / D`` under
    the scores' correlation ``R`` shrunk towards the identity by ``D / (D + total)`` (a Gaussian
    copula: it also sees an ``x_o`` that breaks the replicates' correlations, such as a time
    series off its usual shape). A group of ``n`` rows (a stack) scores
    ``½ (mean of its rows' statistics + n z̄ᵀ R⁻¹ z̄ / D)`` with ``z̄`` its mean score, which sees
    a stack whose observations are each unremarkable but all off to one side; for one row the
    two terms agree. Every row is treated alike, so were ``x_o`` one more replicate its
    statistic would be exchangeable with theirs and the p-value exact.
    """
    pooled = np.concatenate([rows, obs_rows])
    total, dim = pooled.shape
    scores = _normal_scores(pooled)
    spread = scores.std(axis=0)
    scale = np.where(spread > 0, spread, 1.0)  # a constant coordinate scores 0 anyway
    unit = scores / scale
    correlation = unit.T @ unit / total
    shrink = dim / (dim + total)
    shrunk = (1 - shrink) * correlation + shrink * np.eye(dim)
    precision = np.linalg.pinv(shrunk, hermitian=True) / np.outer(scale, scale)
    ids = np.concatenate([groups, np.full(len(obs_rows), groups.max() + 1)])
    num = int(ids.max()) + 1
    counts = np.bincount(ids, minlength=num)
    row_stat = np.einsum("ij,jk,ik->i", scores, precision, scores) / dim
    mean_rows = np.bincount(ids, weights=row_stat, minlength=num)
    mean_score = np.stack(
        [np.bincount(ids, weights=scores[:, j], minlength=num) for j in range(dim)], axis=1
    )
    keep = counts > 0
    mean_rows, mean_score, n = mean_rows[keep] / counts[keep], mean_score[keep], counts[keep]
    mean_score = mean_score / n[:, None]
    stack = n * np.einsum("ij,jk,ik->i", mean_score, precision, mean_score) / dim
    group_stat = 0.5 * (mean_rows + stack)
    statistics, statistic = group_stat[:-1], float(group_stat[-1])
    p_value = (1 + int(np.sum(statistics >= statistic))) / (len(statistics) + 1)
    return statistic, statistics, p_value


def predictive_check(
    replicates: Array, x_o: Array, *, iid: bool = False, level: float = 0.05
) -> PredictiveCheck:
    """Posterior predictive check on arrays: is ``x_o`` an outlier among ``replicates``?

    Every coordinate of x is replaced by the normal quantile of its mid-rank among the other
    rows (``x_o`` and the replicates pooled; for a stack, all its i.i.d. observations), so
    heavy tails and the ties of count data do not dominate; a value beyond all the others keeps
    its robust z-score where that is further out. The statistic is the Mahalanobis distance of
    these scores under their (shrunk) correlation, divided by the dimension: about 1 for a
    typical replicate, large for an ``x_o`` far out or off the replicates' correlations; for a
    stack, it adds the distance of the stack's mean score, which sees observations that are
    each unremarkable but all off to one side. The p-value is the share of replicates at least
    as far out as ``x_o``, with the usual ``+1``, so it is never 0 and ``m`` replicates resolve
    p-values down to ``1 / (m + 1)``; as ``x_o`` and the replicates are scored alike, it is
    exact when ``x_o`` is one more replicate.

    The check is one-sided and conservative: ``x_o`` was used to fit the posterior, so under
    the true posterior it tends to sit nearer the centre than a fresh replicate, and p-values
    crowd towards the middle rather than being uniform (Meng 1994). A small p-value is strong
    evidence that the posterior (or the simulator) is wrong for ``x_o``; a large one does not
    show that it is right (a posterior that is too wide passes).

    Args:
        replicates: data simulated at posterior draws, ``(m, *x_shape)`` for one observation;
            for a stack of ``n_obs`` i.i.d. observations, ``(m, n_obs, *x_shape)``, each
            replicate a stack simulated at one θ_i.
        x_o: the observation, ``x_shape``, or the stack ``(n_obs, *x_shape)``.
        iid: ``x_o`` is a stack of i.i.d. observations along its first axis.
        level: the check fails when the p-value is below it.

    Returns:
        a :class:`PredictiveCheck`.

    Raises:
        ValueError: shapes that do not match, fewer than 2 replicates, non-finite values.

    Examples:
        >>> import numpy as np, sbi_kit as sk
        >>> rng = np.random.default_rng(0)
        >>> replicates = rng.normal(size=(200, 3))
        >>> sk.diagnostics.predictive_check(replicates, np.zeros(3)).passed
        True
        >>> check = sk.diagnostics.predictive_check(replicates, np.full(3, 4.0))
        >>> check.passed, round(check.p_value, 4)
        (False, 0.005)
    """
    fn = "predictive_check"
    level = _check_level(level, fn)
    reps, obs = _as_numeric(replicates, "replicates", fn), _as_numeric(x_o, "x_o", fn)
    check_flag(iid, "iid", fn)
    if iid and obs.ndim < 2:
        raise ValueError(
            f"{fn}: with iid=True, `x_o` must be a stack (n_obs, *x_shape), got shape {obs.shape}."
        )
    if reps.shape[1:] != obs.shape:
        raise ValueError(
            f"{fn}: `replicates` must have shape (m, *x_o.shape) = (m, "
            f"{', '.join(map(str, obs.shape))}), got shape {reps.shape}."
        )
    if reps.shape[0] < 2:
        raise ValueError(f"{fn}: needs at least 2 replicates, got {reps.shape[0]}.")
    check_finite_rows(reps, "replicates", fn)
    check_finite_rows(obs[None], "x_o", fn)
    m, per = reps.shape[0], obs.shape[0] if iid else 1
    rows, obs_rows = reps.reshape(m * per, -1), obs.reshape(per, -1)
    return _check(rows, obs_rows, np.arange(m * per) // per, level, 0)


def _check(rows, obs_rows, groups, level, num_dropped) -> PredictiveCheck:
    statistic, statistics, p_value = _outlyingness(rows, obs_rows, groups)
    return PredictiveCheck(statistic, statistics, p_value, level, num_dropped)


def _as_numeric(value, name: str, fn: str) -> np.ndarray:
    if isinstance(value, jax.Array) and not is_concrete(value):
        raise TypeError(f"{fn}: `{name}` must hold values; it cannot run under jit or vmap.")
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{fn}: `{name}` must be a numeric array, got {value!r:.60}.") from None
    return arr


def posterior_predictive_check(
    key: Key,
    posterior: AbstractPosterior,
    simulator,
    x_o: Array,
    *,
    num_simulations: int = 200,
    level: float = 0.05,
    warn: bool = True,
) -> PredictiveCheck:
    """Posterior predictive check of a trained posterior at one observation (or stack).

    Draws ``num_simulations`` θ_i from ``posterior`` given ``x_o``, simulates x_i at each
    (a stack of ``n_obs`` i.i.d. x per θ_i when ``x_o`` is a stack) and runs
    :func:`predictive_check`. Use it on any posterior of one observation, above all where the
    prior-predictive calibration tests do not apply: after :func:`sk.sequential
    <sbi_kit.sequential>`, or on the posterior of an observation unlike the training data.
    It costs ``num_simulations`` posterior draws (MCMC for NLE and NRE) and
    ``num_simulations · n_obs`` simulations.

    Args:
        key: PRNG key.
        posterior: a trained posterior.
        simulator: an ``sk.Simulator`` or a task (its simulator is used).
        x_o: one observation ``x_shape``, or a stack ``(n_obs, *x_shape)`` for posteriors
            that condition on i.i.d. observations (NLE, NRE, NPSE).
        num_simulations: replicates ``m``; the smallest p-value is ``1 / (m + 1)``, so ``m``
            must exceed ``1 / level`` for the check to be able to fail.
        level: the check fails when the p-value is below it.
        warn: warn (``RuntimeWarning``, with the numbers) when the check fails.

    Returns:
        a :class:`PredictiveCheck`.

    Examples:
        >>> import jax, jax.numpy as jnp, numpyro.distributions as dist, sbi_kit as sk
        >>> prior = dist.Normal(jnp.zeros(2), 1.0).to_event(1)
        >>> sim = sk.Simulator(prior, lambda k, th: th + 0.3 * jax.random.normal(k, (2,)))
        >>> theta, x = sk.simulate(jax.random.key(0), sim, 2000)
        >>> npe = sk.NPE(flow=sk.estimators.MAF(layers=2, width=16, depth=1),
        ...              training=sk.Training(max_epochs=30))
        >>> posterior = npe.fit(jax.random.key(1), theta, x, prior=prior, progress=False)
        >>> check = sk.diagnostics.posterior_predictive_check(
        ...     jax.random.key(2), posterior, sim, jnp.array([0.5, -0.3]))
        >>> check.passed
        True
    """
    fn = "posterior_predictive_check"
    key = check_key(key, fn)
    sim = check_posterior_and_simulator(fn, posterior, simulator)
    m = check_positive_int(num_simulations, "num_simulations", fn)
    level = _check_level(level, fn)
    if m < 2:
        raise ValueError(f"{fn}: needs at least 2 simulations, got {m}.")
    check_flag(warn, "warn", fn)
    obs = _as_numeric(x_o, "x_o", fn)
    x_shape = tuple(posterior.x_shape)
    stack = obs.shape != x_shape
    if stack and (obs.ndim != len(x_shape) + 1 or obs.shape[1:] != x_shape or not obs.shape[0]):
        raise ValueError(
            f"{fn}: `x_o` must have the posterior's x_shape {x_shape} or be a stack (n_obs, "
            f"{', '.join(map(str, x_shape))}), got shape {obs.shape}."
        )
    check_finite_rows(obs.reshape(-1, *x_shape), "x_o", fn)
    key_theta, key_sim = jax.random.split(key)
    theta = np.asarray(posterior.sample(key_theta, x_o, m))
    per = obs.shape[0] if stack else 1
    theta_rows = np.repeat(theta, per, axis=0)
    sims = simulate(key_sim, sim, len(theta_rows), theta=theta_rows, progress=False)
    x = np.asarray(sims.x, dtype=np.float64)
    if x.shape[1:] != x_shape:
        raise ValueError(
            f"{fn}: the simulator returns x of shape {x.shape[1:]}, the posterior expects "
            f"{x_shape}."
        )
    groups = _groups(theta_rows, np.asarray(sims.theta), per)
    if len(np.unique(groups)) < 2:
        raise ValueError(
            f"{fn}: fewer than 2 replicates survived simulation ({sims.num_dropped} of "
            f"{len(theta_rows)} simulations dropped)."
        )
    d = int(np.prod(x_shape, dtype=int))
    result = _check(x.reshape(-1, d), obs.reshape(-1, d), groups, level, sims.num_dropped)
    if warn and not result.passed:
        warnings.warn(f"{fn}: {result.message()}", RuntimeWarning, stacklevel=2)
    return result


def _groups(theta_rows: np.ndarray, kept: np.ndarray, per: int) -> np.ndarray:
    """The replicate (θ_i) of each kept simulation: ``sk.simulate`` keeps the order of the rows
    and drops failed ones, so the kept θ are matched to the requested rows in order (rows
    repeated for a stack are equal, so a match within a θ_i's block cannot be ambiguous in a
    way that matters)."""
    if len(kept) == len(theta_rows):
        return np.arange(len(theta_rows)) // per
    groups = np.empty(len(kept), dtype=int)
    j = 0
    for i, row in enumerate(theta_rows):
        if j < len(kept) and np.array_equal(row, kept[j]):
            groups[j] = i // per
            j += 1
    if j != len(kept):  # the simulator changed θ on the way (a dtype): no safe grouping
        raise RuntimeError(
            "posterior_predictive_check: could not match the kept simulations to their "
            "posterior draws after some were dropped; pass replicates you simulated yourself "
            "to sk.diagnostics.predictive_check."
        )
    return groups
