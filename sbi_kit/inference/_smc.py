"""A sequential Monte Carlo correction of the composed reverse SDE (Feynman–Kac weights).

Target: the product of experts ``ρ_t(θ) = λ_t(θ)^{1−n} Π_j p_t(θ | x_j)`` of the diffused
single-observation posteriors and the diffused prior, which at ``t_min`` is the posterior of
all n observations. The plain sum of scores ``S = Σ_j s_j + (1 − n) ∇log λ_t`` is the score of
``ρ_t``, but ``ρ_t`` is not the marginal of any diffusion, so integrating the reverse SDE with
``S`` alone samples the wrong distribution (the "bridge" error that GAUSS, JAC and F-NPSE
approximate away). Following the Feynman–Kac correctors of Skreta et al. (2025), particles
follow that SDE and carry weights that make the path target ``ρ_t`` exactly in the limit of
small steps. For a forward SDE ``dθ = f(θ, t) dt + g(t) dW`` with drift linear in θ and experts
with powers ``β_i`` (here 1 for each observation and ``1 − n`` for the prior, so ``Σβ = 1``), each
expert's density obeys its own reverse-time Fokker–Planck equation; combining them, the
Laplacian terms cancel and the weight rate in reverse time is

    d log w = ½ g(t)² (|S|² − Σ_i β_i |s_i|²) dτ       (+ (Σβ − 1) ∇·f = 0),

which needs the scores only: no divergence, no density. Particles are resampled
(systematically) when the effective sample size falls below a threshold, and once at the end,
so the draws are equally weighted.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array

from .._checks import (
    check_setting_fraction,
    check_setting_nonnegative_int,
    check_setting_positive_int,
)
from .._types import Key
from ._composition import (
    AbstractComposition,
    AbstractStandardizedPrior,
    ScoreFn,
    langevin_step,
    require_diffused,
)
from ._diffusion import AbstractSDE


def _systematic(key: Key, log_w: Array) -> Array:
    """Indices of a systematic resample of the particles with log-weights ``log_w``."""
    num = log_w.shape[0]
    cdf = jnp.cumsum(jax.nn.softmax(log_w))
    u = (jax.random.uniform(key) + jnp.arange(num)) / num
    return jnp.minimum(jnp.searchsorted(cdf, u), num - 1)


def _ess_fraction(log_w: Array) -> Array:
    w = jax.nn.softmax(log_w)
    return 1.0 / (jnp.sum(w**2) * log_w.shape[0])


class SMC(AbstractComposition):
    """Composed reverse SDE with Feynman–Kac importance weights and resampling.

    Particles integrate the reverse-time SDE of the composed score
    ``S = Σ_j s_j + (1 − n) ∇log λ_t`` (Euler–Maruyama, ``num_steps`` steps on a time grid
    that is quadratic in ``t``, dense near ``t_min``) and accumulate the log-weight
    ``½ g² (|S|² − Σ_j |s_j|² − (1 − n) |∇log λ_t|²) Δt``, which corrects the sampled paths
    towards the product of the diffused experts (Skreta et al. 2025; the module's docstring
    derives it). When the effective sample size falls below ``ess_threshold`` × particles
    they are resampled (systematic resampling), and once more at the end, so the returned
    draws are equally weighted (with repeats: a particle with a large weight is copied).

    The correction is exact as the step count grows for any SDE with drift linear in θ (VP,
    sub-VP, VE) and needs the diffused prior's score (an
    :class:`~sbi_kit.inference.AbstractDiffusedPrior`, as GAUSS and JAC).
    Its errors are Monte Carlo ones: few distinct particles when the weights degenerate,
    which the diagnostics report: ``"min_ess"`` (the smallest effective sample size as a
    fraction of the particles, before resampling), ``"final_ess"`` (at ``t_min``, before the
    last resample), ``"resampled"`` (the share of steps that resampled) and
    ``"distinct"`` (the fraction of distinct particles among the draws).

    Warning: on *learned* scores it can fail where GAUSS does not. In
    ``benchmarks/compositional.py`` (10-d Gaussian, NPSE trained on 1,000 simulations) the
    particles diverged at n = 10 (draws thousands of posterior sds away, the effective sample
    size down to one particle at most steps): the weight rate rewards regions where the learned
    scores disagree (``|S|² > Σ|s_j|²``), so score errors feed on themselves. And at n = 1 the
    Langevin moves, which follow the learned score near ``t_min`` where it is least accurate,
    made the posterior too narrow. Check ``return_diagnostics=True`` (``min_ess``,
    ``resampled``) and compare with GAUSS before trusting it.

    Cost: ``n · num_steps · (1 + langevin_steps)`` network evaluations per particle; the
    particles interact only through the resampling and the Langevin step size.

    After each step (and resampling) the particles take ``langevin_steps`` unadjusted
    Langevin steps on ``ρ_t`` (a "resample-move" step: the composed score is ``ρ_t``'s, so the
    move leaves the target nearly invariant and spreads the copies resampling made).

    Args:
        num_steps: Euler–Maruyama steps from ``t_max`` to ``t_min``.
        ess_threshold: resample when the effective sample size is below this fraction of the
            particles, in (0, 1).
        langevin_steps: Langevin moves after each step (0: none, weights alone).
        step_size: the Langevin step as a fraction of the particles' current variance
            (smallest dimension), in (0, 1).

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from sbi_kit.inference import SMC, VPSDE, GaussianPrior
        >>> sde, prior = VPSDE(), GaussianPrior(jnp.zeros(1), jnp.eye(1))
        >>> def score(y, t, x):  # exact: single posterior N(x/2, 1/2) noised
        ...     m, s = sde.mean_coeff(t), sde.std(t)
        ...     return -(y - m * x / 2) / (m**2 / 2 + s**2)
        >>> x = jnp.full((4, 1), 1.0)  # posterior of 4 observations: N(0.8, 0.2)
        >>> draws, info = SMC(num_steps=200).sample(
        ...     jax.random.key(0), score, x, prior, sde, 4000
        ... )
        >>> round(float(draws.mean()), 1), round(float(draws.var()), 1)
        (0.8, 0.2)
        >>> 0 < float(info["min_ess"]) <= 1
        True
    """

    num_steps: int = 500
    ess_threshold: float = 0.5
    langevin_steps: int = 1
    step_size: float = 0.05

    def __check_init__(self):
        check_setting_positive_int("SMC", "num_steps", self.num_steps)
        check_setting_fraction("SMC", "ess_threshold", self.ess_threshold, low_open=True)
        check_setting_nonnegative_int("SMC", "langevin_steps", self.langevin_steps)
        check_setting_fraction("SMC", "step_size", self.step_size, low_open=True)

    def _move(self, key: Key, ys: Array, t: Array, rates) -> Array:
        """``langevin_steps`` unadjusted Langevin steps on ``ρ_t`` (whose score is the composed
        one), step ``step_size`` × the particles' smallest variance: they leave ``ρ_t``
        (nearly) invariant and make the copies that resampling left distinct again."""

        def langevin(ys, k):
            return langevin_step(k, ys, lambda y: rates(y, t)[0], self.step_size)[0], None

        if self.langevin_steps == 0:
            return ys
        return jax.lax.scan(langevin, ys, jax.random.split(key, self.langevin_steps))[0]

    def sample(
        self,
        key: Key,
        score: ScoreFn,
        contexts: Array,
        prior: AbstractStandardizedPrior,
        sde: AbstractSDE,
        num_samples: int,
    ) -> tuple[Array, dict[str, Array]]:
        prior = require_diffused("SMC", prior)
        n = jax.tree_util.tree_leaves(contexts)[0].shape[0]
        t_max, t_min = float(sde.t_max), float(sde.t_min)
        u = jnp.linspace(1.0, 0.0, self.num_steps + 1)
        ts = t_min + (t_max - t_min) * u**2
        key_init, key_run, key_last = jax.random.split(key, 3)
        y0 = sde.prior_sample(key_init, (num_samples, prior.dim))

        def rates(y, t):
            """The composed score and the weight rate (without g²/2) at one particle."""
            scores = jax.vmap(score, in_axes=(None, None, 0))(y, t, contexts)
            prior_score = prior.diffused_score(y, t, sde)
            total = jnp.sum(scores, axis=0) + (1 - n) * prior_score
            experts = jnp.sum(scores**2) + (1 - n) * jnp.sum(prior_score**2)
            return total, jnp.sum(total**2) - experts

        def step(carry, args):
            ys, log_w, min_ess, resampled = carry
            t, s, k = args
            k_noise, k_resample, k_move = jax.random.split(k, 3)
            dt = t - s
            g2 = sde.diffusion(t) ** 2
            total, rate = jax.vmap(lambda y: rates(y, t))(ys)
            drift = jax.vmap(lambda y: sde.drift(y, t))(ys)
            noise = jax.random.normal(k_noise, ys.shape)
            ys = ys + (g2 * total - drift) * dt + jnp.sqrt(g2 * dt) * noise
            log_w = log_w + 0.5 * g2 * rate * dt
            log_w = jnp.where(jnp.isfinite(log_w), log_w, -jnp.inf)
            ess = _ess_fraction(log_w)
            do = ess < self.ess_threshold
            idx = jnp.where(do, _systematic(k_resample, log_w), jnp.arange(num_samples))
            ys = ys[idx]
            log_w = jnp.where(do, jnp.zeros_like(log_w), log_w)
            ys = self._move(k_move, ys, s, rates)
            return (ys, log_w, jnp.minimum(min_ess, ess), resampled + do), None

        init = (y0, jnp.zeros(num_samples, y0.dtype), jnp.ones((), y0.dtype), jnp.zeros((), int))
        keys = jax.random.split(key_run, self.num_steps)
        (ys, log_w, min_ess, resampled), _ = jax.lax.scan(step, init, (ts[:-1], ts[1:], keys))
        final_ess = _ess_fraction(log_w)
        idx = _systematic(key_last, log_w)
        ys = ys[idx]
        distinct = jnp.sum(jnp.zeros(num_samples, bool).at[idx].set(True)) / num_samples
        # no particle with a finite weight: the draws would be arbitrary, so none is returned
        ys = jnp.where(jnp.isfinite(final_ess), ys, jnp.nan)
        finite = jnp.all(jnp.isfinite(ys))
        return ys, {
            "min_ess": min_ess,
            "final_ess": final_ess,
            "resampled": resampled / self.num_steps,
            "distinct": distinct.astype(ys.dtype),
            "non_finite": (~finite).astype(ys.dtype),
        }
