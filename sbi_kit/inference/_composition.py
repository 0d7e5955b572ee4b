"""Composing per-observation scores into the posterior of n i.i.d. observations (NPSE).

A score network trained on single observations gives the noised posterior scores
``s_j(θ, t) = ∇ log p_t(θ | x_j)``. The posterior of all n observations is
``p(θ | x_1..n) ∝ p(θ)^{1−n} Π_j p(θ | x_j)``, but its noised score is not the sum of the
noised scores: diffusion does not commute with products. The strategies here approximate it;
they are small frozen objects passed as ``NPSE(composition=...)``:

* :class:`GAUSS` and :class:`JAC` (Linhart et al. 2024) correct the sum with the covariances
  of the denoising posteriors ``p(θ_0 | θ_t, x_j)`` (GAUSS: from a Gaussian fit of each
  single-observation posterior; JAC: from the score's Jacobian by Tweedie's formula) and
  sample with DPM-Solver++ on the probability-flow ODE of the composed score (VP SDE).
* :class:`FNPSE` (Geffner, Papamakarios & Mnih 2023) anneals a bridge between the product of
  the noised posteriors and the target with Langevin dynamics and needs no Gaussian prior; it
  lives :mod:`._fnpse` (:class:`DensityPrior` is its prior).

Everything works in the networks' coordinates (z-scored, unconstrained parameters); the
prior is needed there too: GAUSS, JAC and SMC need its diffused score
(:class:`AbstractDiffusedPrior`: :class:`GaussianPrior` and :class:`UniformPrior`
analytically, :class:`LearnedPrior` from a network trained with dropped observations),
F-NPSE only its density (:class:`DensityPrior`).
Each strategy handles all particles in one ``vmap``.
"""

from __future__ import annotations

import abc
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpyro.distributions as dist
from jaxtyping import Array

from .._checks import check_setting_fraction, check_setting_positive_int
from .._types import Key
from ..estimators import Standardizer
from ._diffusion import VPSDE, AbstractSDE

ScoreFn = Callable[[Array, Array, Array], Array]
"""``score(y, t, context) -> (d,)``: the noised posterior score of ONE observation."""


def _sym(a: Array) -> Array:
    return 0.5 * (a + jnp.swapaxes(a, -1, -2))


# --- the prior in the networks' coordinates ---------------------------------------------------


class AbstractStandardizedPrior(eqx.Module):
    """The prior as a density over the networks' coordinates (z-scored, unconstrained θ)."""

    @abc.abstractmethod
    def score(self, y: Array) -> Array:
        """∇ log p(y) of the (undiffused) prior at one state ``(d,)``."""

    @property
    @abc.abstractmethod
    def dim(self) -> int:
        """d, the number of parameters."""


class AbstractDiffusedPrior(AbstractStandardizedPrior):
    """A prior whose diffused score ``∇ log λ_t`` is known, analytically or learned: what
    :class:`GAUSS`, :class:`JAC` and :class:`~sbi_kit.inference.SMC` need.

    ``λ_t`` is the prior pushed through the forward SDE's kernel ``N(m(t) y_0, σ(t)² I)``.
    """

    @abc.abstractmethod
    def diffused_score(self, y: Array, t: Array, sde: AbstractSDE) -> Array:
        """∇ log λ_t(y) at one state ``(d,)``."""

    def diffused_score_jacobian(self, y: Array, t: Array, sde: AbstractSDE) -> Array:
        """∇_y ∇ log λ_t(y), shape ``(d, d)`` (forward-mode autodiff unless analytic)."""
        return jax.jacfwd(lambda z: self.diffused_score(z, t, sde))(y)

    @abc.abstractmethod
    def gaussian_precision(
        self, key: Key, sde: AbstractSDE, num_samples: int, num_steps: int
    ) -> Array:
        """The precision ``(d, d)`` of the Gaussian that :class:`GAUSS` puts in the prior's
        place: exact or analytic where the prior is known in closed form; otherwise the
        inverse sample covariance of ``num_samples`` draws (DPM-Solver++(2M), ``num_steps``
        steps, VP SDE)."""


class GaussianPrior(AbstractDiffusedPrior):
    """A Gaussian prior ``N(mean, cov)`` in standardised coordinates, and its diffusion.

    Under a forward SDE with kernel ``N(m(t) y_0, σ(t)² I)`` the noised prior is
    ``λ_t = N(m mean, m² cov + σ² I)``: its score and Jacobian are analytic.

    Attributes:
        mean: shape ``(d,)``.
        cov: shape ``(d, d)``, symmetric positive definite.

    Examples:
        >>> import jax.numpy as jnp
        >>> from sbi_kit.inference import VPSDE, GaussianPrior
        >>> prior = GaussianPrior(jnp.zeros(2), jnp.eye(2))
        >>> prior.diffused_score(jnp.ones(2), jnp.asarray(0.5), VPSDE()).round(3).tolist()
        [-1.0, -1.0]
    """

    mean: Array
    cov: Array

    @property
    def dim(self) -> int:
        return int(self.mean.shape[0])

    def precision(self) -> Array:
        """``cov⁻¹``, shape ``(d, d)``."""
        return _sym(jnp.linalg.inv(self.cov))

    def gaussian_precision(self, key, sde, num_samples, num_steps) -> Array:
        return self.precision()

    def score(self, y: Array) -> Array:
        return -self.precision() @ (y - self.mean)

    def diffused_cov(self, t: Array, sde: AbstractSDE) -> Array:
        """``m(t)² cov + σ(t)² I``, the covariance of λ_t."""
        eye = jnp.eye(self.mean.shape[0], dtype=self.cov.dtype)
        return sde.mean_coeff(t) ** 2 * self.cov + sde.std(t) ** 2 * eye

    def diffused_score(self, y: Array, t: Array, sde: AbstractSDE) -> Array:
        return -jnp.linalg.solve(self.diffused_cov(t, sde), y - sde.mean_coeff(t) * self.mean)

    def diffused_score_jacobian(self, y: Array, t: Array, sde: AbstractSDE) -> Array:
        """−(m² cov + σ² I)⁻¹, the same at every ``y``, shape ``(d, d)``."""
        return -_sym(jnp.linalg.inv(self.diffused_cov(t, sde)))


def _log_normal_mass(lo: Array, hi: Array) -> Array:
    """``log(Φ(hi) − Φ(lo))`` for ``lo < hi`` elementwise, accurate in both tails."""
    flip = lo > 0  # both in the upper tail: Φ(hi) − Φ(lo) = Φ(−lo) − Φ(−hi)
    lo, hi = jnp.where(flip, -hi, lo), jnp.where(flip, -lo, hi)
    log_hi = jax.scipy.special.log_ndtr(hi)
    return log_hi + jnp.log(-jnp.expm1(jax.scipy.special.log_ndtr(lo) - log_hi))


class UniformPrior(AbstractDiffusedPrior):
    """A box-uniform prior ``U(low, high)`` in standardised coordinates, and its diffusion.

    Under the kernel ``N(m y_0, σ² I)`` each coordinate of the noised prior has density
    ``[Φ((y − m·low)/σ) − Φ((y − m·high)/σ)] / (m (high − low))``, so its score is analytic:
    ``(φ(u) − φ(l)) / (σ [Φ(u) − Φ(l)])`` with ``u = (y − m·low)/σ``, ``l = (y − m·high)/σ``
    (computed in log space). It applies where the networks learn the box itself, i.e. a
    numpyro ``Uniform(low, high).to_event(1)`` prior with ``support=Rejection()``.

    Attributes:
        low, high: the box, shape ``(d,)`` each, ``low < high``.

    Examples:
        >>> import jax.numpy as jnp
        >>> from sbi_kit.inference import VPSDE, UniformPrior
        >>> prior = UniformPrior(-jnp.ones(1), jnp.ones(1))
        >>> sde = VPSDE()
        >>> inside = prior.diffused_score(jnp.zeros(1), jnp.asarray(1e-3), sde)
        >>> edge = prior.diffused_score(jnp.full(1, 1.2), jnp.asarray(0.05), sde)
        >>> float(inside[0]) == 0.0, bool(edge[0] < -1.0)
        (True, True)
    """

    low: Array
    high: Array

    @property
    def dim(self) -> int:
        return int(self.low.shape[0])

    def score(self, y: Array) -> Array:
        return jnp.zeros_like(y)

    def diffused_score(self, y: Array, t: Array, sde: AbstractSDE) -> Array:
        m, s = sde.mean_coeff(t), sde.std(t)
        upper, lower = (y - m * self.low) / s, (y - m * self.high) / s
        log_mass = _log_normal_mass(lower, upper)
        log_pdf = jax.scipy.stats.norm.logpdf
        return (jnp.exp(log_pdf(upper) - log_mass) - jnp.exp(log_pdf(lower) - log_mass)) / s

    def gaussian_precision(self, key, sde, num_samples, num_steps) -> Array:
        """The inverse of the box's covariance, ``diag(12 / (high − low)²)``."""
        return jnp.diag(12.0 / (self.high - self.low) ** 2)


class DensityPrior(AbstractStandardizedPrior):
    """Any prior, as a log-density over standardised coordinates (what :class:`FNPSE` needs).

    Attributes:
        log_prob: ``log p(y)`` of one standardised state ``(d,)`` (a pytree callable, e.g. an
            ``eqx.Partial``), including the Jacobians of the unconstraining map and z-scoring
            (constants may be dropped).
        num_parameters: d.
        name: what the prior is, for messages.
    """

    log_prob: Callable[[Array], Array]
    num_parameters: int = eqx.field(static=True)
    name: str = eqx.field(static=True, default="prior")

    @property
    def dim(self) -> int:
        return self.num_parameters

    def score(self, y: Array) -> Array:
        return jax.grad(self.log_prob)(y)


class LearnedPrior(AbstractDiffusedPrior):
    """A prior whose diffused score is learned: the unconditional score of a network trained
    with dropped observations (``NPSE(unconditional_fraction=...)``).

    Attributes:
        density: the prior's own density (its undiffused :meth:`score`, for F-NPSE).
        score_fn: ``score(y, t, context)``, the network's score for one context.
        context: the "no observation" context passed to ``score_fn``.
    """

    density: AbstractStandardizedPrior
    score_fn: Callable[[Array, Array, Array], Array]
    context: Array

    @property
    def dim(self) -> int:
        return self.density.dim

    def score(self, y: Array) -> Array:
        return self.density.score(y)

    def diffused_score(self, y: Array, t: Array, sde: AbstractSDE) -> Array:
        return self.score_fn(y, t, self.context)

    def gaussian_precision(self, key, sde, num_samples, num_steps) -> Array:
        """The inverse sample covariance of draws from the learned prior."""
        vp = _require_vp("the learned prior's Gaussian fit", sde)
        _, cov = sample_moments(
            key, lambda y, t: self.diffused_score(y, t, vp), vp, self.dim, num_samples, num_steps
        )
        return _sym(jnp.linalg.inv(cov))


def sample_moments(
    key: Key, score: Callable[[Array, Array], Array], sde: VPSDE, dim: int, num: int, steps: int
) -> tuple[Array, Array]:
    """The sample mean ``(d,)`` and covariance ``(d, d)`` of ``num`` draws of ``score(y, t)``'s
    distribution (DPM-Solver++(2M) on its probability-flow ODE with ``steps`` steps)."""

    def single(y, t):
        return score(y, t), jnp.zeros(())

    y0 = sde.prior_sample(key, (num, dim))
    draws, _ = jax.vmap(lambda y: _solve(single, y, sde, steps, 2))(y0)
    return draws.mean(0), jnp.atleast_2d(jnp.cov(draws, rowvar=False))


def _uniform_bounds(prior: dist.Distribution) -> tuple[Array, Array] | None:
    """The box of a numpyro ``Uniform(low, high).to_event(1)`` prior, else ``None``."""
    if (
        isinstance(prior, dist.Independent)
        and isinstance(prior.base_dist, dist.Uniform)
        and len(prior.event_shape) == 1
        and prior.reinterpreted_batch_ndims == 1
    ):
        shape = prior.event_shape
        base = prior.base_dist
        return jnp.broadcast_to(base.low, shape), jnp.broadcast_to(base.high, shape)
    return None


def _gaussian_moments(prior: dist.Distribution) -> tuple[Array, Array] | None:
    """Mean and covariance of a Gaussian numpyro prior over flat vectors, else ``None``."""
    if isinstance(prior, dist.MultivariateNormal | dist.LowRankMultivariateNormal):
        mean = jnp.broadcast_to(prior.mean, prior.event_shape)
        return mean, prior.covariance_matrix
    if (
        isinstance(prior, dist.Independent)
        and isinstance(prior.base_dist, dist.Normal)
        and len(prior.event_shape) == 1
        and prior.reinterpreted_batch_ndims == 1
    ):
        return prior.mean, jnp.diag(prior.variance)
    return None


def _is_identity(transform: dist.transforms.Transform) -> bool:
    while isinstance(transform, dist.transforms.IndependentTransform):
        transform = transform.base_transform
    return isinstance(transform, dist.transforms.IdentityTransform)


def standardized_prior(
    prior: dist.Distribution,
    transform: dist.transforms.Transform,
    theta_standardizer: Standardizer,
) -> AbstractStandardizedPrior:
    """The prior in the networks' coordinates ``y = (T⁻¹(θ) − loc) / scale``.

    A Gaussian prior with real support (numpyro ``Normal(...).to_event(1)``,
    ``MultivariateNormal``, ``LowRankMultivariateNormal``; ``T`` the identity) gives a
    :class:`GaussianPrior`, a box ``Uniform(low, high).to_event(1)`` learned in its own
    coordinates (``T`` the identity, i.e. ``support=Rejection()``) a :class:`UniformPrior`;
    any other prior a :class:`DensityPrior` (no diffused score).

    Args:
        prior: the numpyro prior over flat θ ``(d,)``.
        transform: ``T``, the map from unconstrained space onto the prior's support.
        theta_standardizer: the z-scoring of unconstrained θ.
    """
    loc, scale = theta_standardizer.loc, theta_standardizer.scale
    moments = _gaussian_moments(prior)
    if moments is not None and _is_identity(transform):
        mean, cov = moments
        return GaussianPrior((mean - loc) / scale, cov / jnp.outer(scale, scale))
    bounds = _uniform_bounds(prior)
    if bounds is not None and _is_identity(transform):
        low, high = bounds
        return UniformPrior((low - loc) / scale, (high - loc) / scale)

    def log_prob(y, prior, transform, loc, scale):
        z = loc + scale * y
        theta = transform(z)
        ladj = jnp.sum(transform.log_abs_det_jacobian(z, theta))
        return prior.log_prob(theta) + ladj

    partial = eqx.Partial(log_prob, prior=prior, transform=transform, loc=loc, scale=scale)
    return DensityPrior(partial, int(loc.shape[0]), type(prior).__name__)


# --- DPM-Solver++ on a composed score ---------------------------------------------------------


def _log_snr(sde: VPSDE, t: Array) -> Array:
    return sde.log_mean_coeff(t) - jnp.log(sde.std(t))


def _solve(score_and_aux, y0: Array, sde: VPSDE, num_steps: int, order: int):
    """DPM-Solver++ (1 = DDIM, 2 = 2M) from ``t_max`` to ``t_min`` for one particle.

    ``score_and_aux(y, t) -> (s, aux)``; returns the final state and the sum of ``aux`` over
    the steps. Steps are uniform in ``λ = log(m/σ)``; the data prediction is
    ``θ̂₀ = (y + σ² s)/m``.
    """
    t_hi, t_lo = jnp.asarray(sde.t_max), jnp.asarray(sde.t_min)
    lam = jnp.linspace(_log_snr(sde, t_hi), _log_snr(sde, t_lo), num_steps + 1)
    ts = sde.time_of_log_snr(lam).at[0].set(t_hi).at[-1].set(t_lo)
    lam = _log_snr(sde, ts)

    def step(carry, i):
        y, prev_x0, prev_h, total = carry
        t, s = ts[i], ts[i + 1]
        h = lam[i + 1] - lam[i]
        score, aux = score_and_aux(y, t)
        x0 = (y + sde.std(t) ** 2 * score) / sde.mean_coeff(t)
        if order == 2:
            r = prev_h / h
            d = jnp.where(i == 0, x0, (1 + 0.5 / r) * x0 - (0.5 / r) * prev_x0)
        else:
            d = x0
        y = (sde.std(s) / sde.std(t)) * y - sde.mean_coeff(s) * jnp.expm1(-h) * d
        return (y, x0, h, jax.tree.map(jnp.add, total, aux)), None

    zero_aux = jax.tree.map(jnp.zeros_like, jax.eval_shape(score_and_aux, y0, ts[0])[1])
    init = (y0, jnp.zeros_like(y0), jnp.ones((), y0.dtype), zero_aux)
    (y, _, _, total), _ = jax.lax.scan(step, init, jnp.arange(num_steps))
    return y, total


def _require_vp(name: str, sde: AbstractSDE) -> VPSDE:
    if not isinstance(sde, VPSDE):
        raise TypeError(
            f"{name} composes scores of a VP SDE only (its DPM-Solver++ update is derived for "
            f"it): train NPSE(sde=VPSDE()), got sde={sde!r}."
        )
    return sde


def require_diffused(name: str, prior: AbstractStandardizedPrior) -> AbstractDiffusedPrior:
    """``prior`` if its diffused score is known, else a ``ValueError`` that says what to do."""
    if not isinstance(prior, AbstractDiffusedPrior):
        what = prior.name if isinstance(prior, DensityPrior) else type(prior).__name__
        raise ValueError(
            f"{name} needs the diffused prior's score: analytic for a Gaussian prior with real "
            "support (numpyro Normal(...).to_event(1) or MultivariateNormal) and for a box "
            "Uniform(...).to_event(1) learned with support=Rejection(), or learned by the "
            f"network; got a {what} prior in the networks' coordinates and a network trained "
            "on observations only. Train with NPSE(unconditional_fraction=0.1) so that it "
            "learns the prior's score too, or use NPSE(composition=sk.inference.FNPSE())."
        )
    return prior


def langevin_step(key: Key, ys: Array, drift: Callable[[Array], Array], step_size: float):
    """One unadjusted Langevin step of every particle ``ys`` ``(N, d)`` along ``drift`` (a
    score, for one particle), with step ``step_size`` × the particles' smallest variance over
    dimensions, so the steps follow the cloud's width: ``(ys, step)``."""
    eps = step_size * jnp.min(jnp.var(ys, axis=0))
    noise = jax.random.normal(key, ys.shape)
    return ys + eps * jax.vmap(drift)(ys) + jnp.sqrt(2 * eps) * noise, eps


# --- the strategies ---------------------------------------------------------------------------


class AbstractComposition(eqx.Module):
    """How :class:`~sbi_kit.NPSEPosterior` samples given a stack of i.i.d. observations.

    A strategy combines the per-observation scores ``score(y, t, context_j)`` with the prior
    into draws from (an approximation of) ``p(θ | x_1..n)`` in standardised coordinates.
    """

    @abc.abstractmethod
    def sample(
        self,
        key: Key,
        score: ScoreFn,
        contexts: Array,
        prior: AbstractStandardizedPrior,
        sde: AbstractSDE,
        num_samples: int,
    ) -> tuple[Array, dict[str, Array]]:
        """Standardised draws from the composed posterior.

        Args:
            key: PRNG key.
            score: ``score(y, t, context) -> (d,)`` for one state and ONE observation's
                context (a traceable callable).
            contexts: the observations' contexts, leading axis ``n_obs``.
            prior: the prior in the same coordinates.
            sde: the forward SDE the scores belong to.
            num_samples: number of draws.

        Returns:
            the draws ``(num_samples, d)`` and a dict of diagnostics (scalars): the share of
            score evaluations in which a safeguard changed the computation (see each
            strategy).
        """


class _PrecisionComposition(AbstractComposition):
    """GAUSS and JAC: ``s = Λ⁻¹ [Σ_j P_j s_j + (1 − n) P_λ s_λ]``, ``Λ = Σ_j P_j + (1 − n) P_λ``,
    with ``P = (m²/σ²) I + E`` the denoising precisions, E their excess over the noise's."""

    num_steps: eqx.AbstractVar[int]
    order: eqx.AbstractVar[int]
    min_precision_ratio: eqx.AbstractVar[float]

    def _check_common(self, name: str) -> None:
        check_setting_positive_int(name, "num_steps", self.num_steps)
        if isinstance(self.order, bool) or self.order not in (1, 2):
            raise ValueError(f"{name}: order must be 1 or 2, got {self.order!r}.")
        check_setting_fraction(name, "min_precision_ratio", self.min_precision_ratio)

    def _combine(self, ratio, scores, excess, prior_score, prior_excess):
        """The composed score at one state and its PD fallback flag.

        ``ratio = m²/σ²``; ``scores`` ``(n, d)``; ``excess`` ``(n, d, d)``; the prior's score
        ``(d,)`` and excess precision ``(d, d)``.
        """
        n = scores.shape[0]
        a = jnp.sum(excess, axis=0) + (1 - n) * prior_excess
        b = (
            ratio * (jnp.sum(scores, axis=0) + (1 - n) * prior_score)
            + jnp.einsum("nij,nj->i", excess, scores)
            + (1 - n) * prior_excess @ prior_score
        )
        # Λ = ratio I + A; A estimates the posterior precision, which should be at least a
        # fraction of the prior's. Where it is not, the weights are unreliable and this
        # evaluation falls back to the plain sum of scores (A = 0, consistent with b).
        floor = self.min_precision_ratio * jnp.linalg.eigvalsh(_sym(prior_excess))[0]
        eig, vec = jnp.linalg.eigh(_sym(a))
        clipped = jnp.any(eig < floor)
        composed = vec @ ((vec.T @ b) / (ratio + jnp.maximum(eig, floor)))
        plain = jnp.sum(scores, axis=0) + (1 - n) * prior_score
        return jnp.where(clipped, plain, composed), clipped

    def _run(self, key, composed, sde: VPSDE, dim: int, num_samples: int):
        y0 = sde.prior_sample(key, (num_samples, dim))
        ys, totals = jax.vmap(lambda y: _solve(composed, y, sde, self.num_steps, self.order))(y0)
        share = jax.tree.map(lambda v: jnp.mean(v) / self.num_steps, totals)
        return ys, share


class GAUSS(_PrecisionComposition):
    """GAUSS (Linhart et al. 2024): Gaussian denoising posteriors from fitted covariances.

    Each single-observation posterior is approximated as Gaussian with covariance ``Σ_j``,
    estimated once per observation from ``covariance_samples`` draws (DPM-Solver++(2M) with
    ``covariance_steps`` steps on that observation's score). Then the denoising posterior
    ``p(θ_0 | θ_t, x_j)`` has precision ``P_j = Σ_j⁻¹ + (m²/σ²) I``, the prior's
    ``P_λ = Σ_λ⁻¹ + (m²/σ²) I`` (a Gaussian prior's own; for other priors that of a
    Gaussian with the prior's covariance, see
    :meth:`AbstractDiffusedPrior.gaussian_precision`), and the composed score is
    ``s = Λ⁻¹ [Σ_j P_j s_j + (1 − n) P_λ ∇log λ_t]`` with ``Λ = Σ_j P_j + (1 − n) P_λ``;
    it is exact when every posterior and the prior are Gaussian. Draws integrate the
    probability-flow ODE of ``s`` with DPM-Solver++ (``order=1``: DDIM) in ``num_steps``
    steps uniform in log-SNR.

    ``Λ`` is kept positive definite: where an eigenvalue of the estimated posterior
    precision ``Σ_j Σ_j⁻¹ + (1 − n) Σ_λ⁻¹`` falls below ``min_precision_ratio`` times the
    prior's smallest precision, the evaluation falls back to the plain sum of scores
    ``Σ_j s_j + (1 − n) ∇log λ_t`` (diagnostic ``"clipped_precision"``: the share of score
    evaluations where that happened; 0 or 1 for GAUSS, whose precisions are fixed).

    ``gaussian_below = t*`` > 0 goes one step further at low noise: below diffusion time
    t*, each observation's learned score is replaced by the diffused score of its Gaussian fit
    ``N(μ_j, Σ_j)`` (the same draws that give ``Σ_j``), ``−(m² Σ_j + σ² I)⁻¹ (y − m μ_j)``.
    There the composed score is nearly the plain sum of the n scores, so the network's errors
    at low noise, which barely move one observation's draws, add up n times; the fits carry
    no such error, but they also drop any non-Gaussian structure finer than the noise level
    σ(t*) (z-scored units: ``VPSDE().std(0.05)`` ≈ 0.17). For posteriors close to Gaussian
    and many observations; the diffused prior's score is kept as it is. On the 10-d Gaussian
    of ``benchmarks/compositional.py`` (100,000 simulations, n = 100) ``gaussian_below=0.05``
    took C2ST from 0.991 to 0.61 (0.600–0.610 over three sampling keys; docs/vector-field.md).

    Cost: ``n · covariance_samples · covariance_steps`` network evaluations once, then
    ``n · num_steps`` per particle (fewer with ``gaussian_below``). Needs the VP SDE and the
    diffused prior's score (:class:`AbstractDiffusedPrior`: analytic for Gaussian priors and
    for box-uniform ones learned with ``support=Rejection()``, learned with
    ``NPSE(unconditional_fraction=...)`` otherwise).

    Args:
        num_steps: solver steps of the composed ODE. The default 25 gave the same accuracy as
            100 in ``benchmarks/compositional.py`` (10-d Gaussian, n = 10, 30 and 100: sliced
            W1 0.122 / 0.111 / 0.200 against 0.123 / 0.113 / 0.199) and on exact scores, at a
            quarter of the cost.
        order: 1 (DDIM) or 2 (DPM-Solver++(2M)).
        covariance_samples: draws per observation for ``Σ_j``.
        covariance_steps: DPM-Solver++(2M) steps for those draws.
        min_precision_ratio: the eigenvalue floor of the posterior precision, relative to
            the prior's smallest precision, in (0, 1).
        gaussian_below: t* in [0, 1): below it the observations' scores are their Gaussian
            fits' (0, the default: the learned scores at every t).

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from sbi_kit.inference import GAUSS, VPSDE, GaussianPrior
        >>> sde, prior = VPSDE(), GaussianPrior(jnp.zeros(1), jnp.eye(1))
        >>> def score(y, t, x):  # exact: single posterior N(x/2, 1/2) noised
        ...     m, s = sde.mean_coeff(t), sde.std(t)
        ...     return -(y - m * x / 2) / (m**2 / 2 + s**2)
        >>> x = jnp.full((4, 1), 1.0)  # posterior of 4 observations: N(0.8, 0.2)
        >>> draws, info = GAUSS(num_steps=50).sample(
        ...     jax.random.key(0), score, x, prior, sde, 2000
        ... )
        >>> round(float(draws.mean()), 1), round(float(draws.var()), 1)
        (0.8, 0.2)
    """

    num_steps: int = 25
    order: int = 2
    covariance_samples: int = 1000
    covariance_steps: int = 20
    min_precision_ratio: float = 0.5
    gaussian_below: float = 0.0

    def __check_init__(self):
        self._check_common("GAUSS")
        check_setting_fraction("GAUSS", "gaussian_below", self.gaussian_below, low_open=False)
        check_setting_positive_int("GAUSS", "covariance_samples", self.covariance_samples)
        if self.covariance_samples < 2:
            raise ValueError(
                f"GAUSS: covariance_samples must be at least 2, got {self.covariance_samples!r}."
            )
        check_setting_positive_int("GAUSS", "covariance_steps", self.covariance_steps)

    def posterior_moments(
        self, key: Key, score: ScoreFn, contexts: Array, sde: VPSDE, dim: int
    ) -> tuple[Array, Array]:
        """``μ_j, Σ_j``: the sample mean ``(n, d)`` and covariance ``(n, d, d)`` of each
        single-observation posterior."""

        def one(c, k):
            return sample_moments(
                k,
                lambda y, t: score(y, t, c),
                sde,
                dim,
                self.covariance_samples,
                self.covariance_steps,
            )

        n = jax.tree_util.tree_leaves(contexts)[0].shape[0]
        return jax.vmap(one)(contexts, jax.random.split(key, n))

    def sample(self, key, score, contexts, prior, sde, num_samples):
        sde = _require_vp("GAUSS", sde)
        prior = require_diffused("GAUSS", prior)
        dim = prior.dim
        key_cov, key_run = jax.random.split(key)
        means, covs = self.posterior_moments(key_cov, score, contexts, sde, dim)
        excess = _sym(jnp.linalg.inv(covs))

        def fitted_scores(y, t):  # each fit's diffused score, N(m μ_j, m² Σ_j + σ² I)
            return jax.vmap(lambda mu, cov: GaussianPrior(mu, cov).diffused_score(y, t, sde))(
                means, covs
            )

        def learned_scores(y, t):
            return jax.vmap(score, in_axes=(None, None, 0))(y, t, contexts)

        def scores_at(y, t):
            if self.gaussian_below == 0:
                return learned_scores(y, t)
            return jax.lax.cond(t < self.gaussian_below, fitted_scores, learned_scores, y, t)

        key_prior = jax.random.fold_in(key_cov, 1)
        prior_excess = prior.gaussian_precision(
            key_prior, sde, self.covariance_samples, self.covariance_steps
        )

        def composed(y, t):
            m, s = sde.mean_coeff(t), sde.std(t)
            out, clipped = self._combine(
                m**2 / s**2, scores_at(y, t), excess, prior.diffused_score(y, t, sde), prior_excess
            )
            return out, {"clipped_precision": clipped.astype(y.dtype)}

        return self._run(key_run, composed, sde, dim, num_samples)


def _tweedie_excess(jac: Array, m: Array, s: Array, floor: float):
    """The excess precision ``E = (m²/σ²)[(I + σ² J)⁻¹ − I]`` of a Tweedie covariance
    ``(σ²/m²)(I + σ² J)``, with the eigenvalues of ``I + σ² J`` kept in ``[floor, 1]``."""
    beta, vec = jnp.linalg.eigh(-_sym(jac))  # I + σ² J = I − σ² β in this basis
    upper = (1 - floor) / s**2
    clipped = jnp.any((beta < 0) | (beta > upper))
    beta = jnp.clip(beta, 0.0, upper)
    e = m**2 * beta / (1 - s**2 * beta)
    return (vec * e) @ vec.T, clipped


class JAC(_PrecisionComposition):
    """JAC (Linhart et al. 2024): denoising covariances from the score's Jacobian (Tweedie).

    As :class:`GAUSS`, but the covariance of ``p(θ_0 | θ_t, x_j)`` is Tweedie's
    ``Σ_{j,t} = (σ²/m²)(I + σ² ∇_θ s_j)`` at the current state (the Jacobian by
    ``jax.jacfwd``: d forward passes per observation and evaluation, fine for small d), and
    the prior's is the same formula on the analytic diffused prior score. No covariance is
    fitted beforehand, and non-Gaussian posteriors are followed locally.

    Safeguards: the eigenvalues of ``I + σ² ∇s`` (symmetrised) are kept in
    ``[tweedie_floor, 1]`` (diagnostic ``"clipped_tweedie"``: the share of evaluations where
    that happened for some observation or the prior; near ``t_max`` the true value
    ``I + σ² ∇s ≈ (m²/σ²) Σ`` is tiny and a learned Jacobian cannot resolve it, so clipping is
    routine there: ≈ 35 % of evaluations on the 2-d test problem), and ``Λ`` is kept positive
    definite as in GAUSS (``"clipped_precision"``, ≈ 15 % there). A larger floor made the
    composition much worse in that test (the plain sum near ``t_max`` biases the mean).

    Cost: ``n · (d + 1) · num_steps`` network evaluations per particle (forward mode). Needs
    the VP SDE and the diffused prior's score (as GAUSS; its Jacobian by autodiff unless
    analytic).

    Args:
        num_steps: solver steps of the composed ODE.
        order: 1 (DDIM) or 2 (DPM-Solver++(2M)).
        tweedie_floor: the smallest eigenvalue allowed for ``I + σ² ∇s``, in (0, 1).
        min_precision_ratio: as for :class:`GAUSS`.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from sbi_kit.inference import JAC, VPSDE, GaussianPrior
        >>> sde, prior = VPSDE(), GaussianPrior(jnp.zeros(1), jnp.eye(1))
        >>> def score(y, t, x):  # exact: single posterior N(x/2, 1/2) noised
        ...     m, s = sde.mean_coeff(t), sde.std(t)
        ...     return -(y - m * x / 2) / (m**2 / 2 + s**2)
        >>> x = jnp.full((4, 1), 1.0)  # posterior of 4 observations: N(0.8, 0.2)
        >>> draws, info = JAC(num_steps=50).sample(jax.random.key(0), score, x, prior, sde, 2000)
        >>> round(float(draws.mean()), 1), round(float(draws.var()), 1)
        (0.8, 0.2)
    """

    num_steps: int = 100
    order: int = 2
    tweedie_floor: float = 1e-6
    min_precision_ratio: float = 0.5

    def __check_init__(self):
        self._check_common("JAC")
        check_setting_fraction("JAC", "tweedie_floor", self.tweedie_floor)

    def sample(self, key, score, contexts, prior, sde, num_samples):
        sde = _require_vp("JAC", sde)
        prior = require_diffused("JAC", prior)
        dim = prior.dim

        def score_and_jac(y, t, c):
            def f(z):
                out = score(z, t, c)
                return out, out

            return jax.jacfwd(f, has_aux=True)(y)

        def composed(y, t):
            m, s = sde.mean_coeff(t), sde.std(t)
            jacs, scores = jax.vmap(score_and_jac, in_axes=(None, None, 0))(y, t, contexts)
            excess, clipped_obs = jax.vmap(lambda j: _tweedie_excess(j, m, s, self.tweedie_floor))(
                jacs
            )
            prior_excess, clipped_prior = _tweedie_excess(
                prior.diffused_score_jacobian(y, t, sde), m, s, self.tweedie_floor
            )
            out, clipped = self._combine(
                m**2 / s**2, scores, excess, prior.diffused_score(y, t, sde), prior_excess
            )
            diagnostics = {
                "clipped_precision": clipped.astype(y.dtype),
                "clipped_tweedie": (jnp.any(clipped_obs) | clipped_prior).astype(y.dtype),
            }
            return out, diagnostics

        return self._run(key, composed, sde, dim, num_samples)
