"""Neural posterior score estimation (NPSE): a conditional score network trained by denoising
score matching, sampled with the probability-flow ODE, the reverse SDE or DPM-Solver."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpyro.distributions as dist
from jaxtyping import Array

from .._checks import check_key, check_observation, check_positive_int, check_setting_fraction
from .._types import Key
from ..estimators import AbstractVectorField, ResidualVectorField, Standardizer
from ..nn import AbstractEmbedding
from ..training import Training
from ._composition import (
    GAUSS,
    AbstractComposition,
    AbstractDiffusedPrior,
    LearnedPrior,
    standardized_prior,
)
from ._diffusion import VPSDE, AbstractSDE
from ._field_net import VECTOR_FIELD_TRAINING, FieldNet, build_field_net
from ._fields import ScoreField
from ._posterior import AbstractDensityPosterior
from ._support import AbstractSupport, Bijection, inside
from ._vector_field_method import AbstractVectorFieldMethod
from ._vector_field_samplers import AbstractVectorFieldSampler, DPMSolver, ProbabilityFlowODE


class NPSEPosterior(AbstractDensityPosterior):
    """The posterior returned by :meth:`NPSE.fit`: a score network (or an ensemble of them).

    ``sample`` integrates from noise at ``sde.t_max`` to ``sde.t_min`` with ``method.sampler``;
    ``log_prob`` solves the probability-flow ODE with ``method.log_prob_ode`` and its
    divergence (exact by default, Hutchinson's estimate if set; see
    :meth:`~sbi_kit.inference.ProbabilityFlowODE.log_prob`). Both describe the
    parameters noised to ``t_min`` (a blur of standard deviation ``σ(t_min)`` in z-scored
    units, ≈ 0.01 with the default SDEs), which the samples and the density share.
    Bounded priors and ensembles are handled as in
    :class:`~sbi_kit.inference.AbstractDensityPosterior`.

    ``sample`` (and ``draw``) also accept a stack ``(n_obs, *x_shape)`` of i.i.d.
    observations: the per-observation scores are then composed by ``method.composition``
    (:class:`~sbi_kit.inference.GAUSS` by default; see docs/vector-field.md) in standardised
    coordinates and the draws are mapped back like single-observation ones. An ensemble
    composes the MEAN of its members' scores (not the mixture's score). ``log_prob`` takes one
    observation only: composition gives samples, no density.

    Attributes:
        net: the trained :class:`~sbi_kit.inference.FieldNet` (arrays carry a leading ensemble
            axis).
        prior: the prior the posterior was trained with.
        theta_standardizer, x_standardizer: the learned z-scoring.
        method: the :class:`NPSE` configuration that trained it.
    """

    net: FieldNet
    prior: dist.Distribution
    theta_standardizer: Standardizer
    x_standardizer: Standardizer
    method: NPSE = eqx.field(static=True)

    def _field(self, net: FieldNet, x_std: Array) -> ScoreField:
        return ScoreField(net.field, net.context(x_std), self.method.sde)

    def net_log_prob(self, net: FieldNet, theta_std: Array, x_std: Array) -> Array:
        return self.method.log_prob_ode.log_prob(self._field(net, x_std), theta_std)

    def net_sample(self, net: FieldNet, key: Key, x_std: Array, num_samples: int) -> Array:
        field = self._field(net, x_std)
        return self.method.sampler.sample(key, field, num_samples, self.dim_theta)

    def _is_stack(self, x_o: Array) -> bool:
        return x_o.ndim == len(self.x_shape) + 1

    def log_prob(self, theta: Array, x_o: Array) -> Array:
        """Posterior log-density given ONE observation (see
        :meth:`AbstractDensityPosterior.log_prob`).

        Raises:
            ValueError: ``x_o`` is a stack of observations (composed posteriors have samples
                only) or has the wrong shape.
        """
        x_o = jnp.asarray(x_o)
        if self._is_stack(x_o) and x_o.shape[1:] == self.x_shape:
            raise ValueError(
                f"{type(self).__name__}.log_prob: `x_o` is a stack of {x_o.shape[0]} "
                f"observations (shape {x_o.shape}); composing the scores of i.i.d. observations "
                f"gives samples only, no density. Pass one observation of shape {self.x_shape}."
            )
        return super().log_prob(theta, x_o)

    def sample(
        self, key: Key, x_o: Array, num_samples: int, *, return_diagnostics: bool = False
    ) -> Array | tuple[Array, dict[str, Array]]:
        """Draws from the posterior given one observation or a stack of i.i.d. ones.

        Args:
            key: PRNG key.
            x_o: one observation ``x_shape``, or a stack ``(n_obs, *x_shape)`` (n_obs ≥ 1) of
                i.i.d. observations, composed by ``method.composition``.
            num_samples: number of samples.
            return_diagnostics: with a stack, also return the composition's diagnostics (a
                dict of scalars: the share of score evaluations where a safeguard acted,
                see :class:`~sbi_kit.inference.GAUSS`); ``{}`` for one observation.

        Returns:
            shape ``(num_samples, dim_theta)`` (and the diagnostics if asked).

        Raises:
            ValueError: ``x_o`` of the wrong shape, an empty stack, or a composition that
                cannot handle the prior (GAUSS and JAC need a Gaussian one).
            TypeError: GAUSS or JAC with an SDE other than ``VPSDE``.
            FloatingPointError: naming the count, if composed draws are not finite or lie
                more than 100 standard deviations of the training parameters out (in the
                networks' coordinates): the composition diverged.
        """
        fn = f"{type(self).__name__}.sample"
        x_o = check_observation(x_o, self.x_shape, fn, iid=True)
        if not self._is_stack(x_o):
            samples = super().sample(key, x_o, num_samples)
            return (samples, {}) if return_diagnostics else samples
        if x_o.shape[0] == 0:
            raise ValueError(
                f"{fn}: `x_o` is an empty stack of observations (shape {x_o.shape}); pass at "
                f"least one observation, shape {self.x_shape} or (n_obs, "
                f"{', '.join(map(str, self.x_shape))}) with n_obs ≥ 1."
            )
        key = check_key(key, fn)
        num_samples = check_positive_int(num_samples, "num_samples", fn)
        samples, diagnostics = _compose(self, key, x_o, num_samples)
        bad = int(jnp.sum(~jnp.all(jnp.isfinite(samples), axis=-1)))
        if bad:
            raise FloatingPointError(
                f"{fn}: composing {x_o.shape[0]} observations with "
                f"{type(self.method.composition).__name__} gave {bad} of {num_samples} "
                "non-finite draws (the composed dynamics diverged; draws more than 100 "
                "training standard deviations out count as diverged); for FNPSE try more "
                "num_levels or a smaller step_size, for a Gaussian prior GAUSS or JAC."
            )
        return (samples, diagnostics) if return_diagnostics else samples

    def draw(self, key: Key, x_o: Array, num_samples: int) -> Array:
        if self._is_stack(x_o):
            return _compose(self, key, x_o, num_samples)[0]
        return super().draw(key, x_o, num_samples)

    def _obs_score(self, y: Array, t: Array, contexts: Array) -> Array:
        """The mean of the members' scores at one standardised state, given one observation's
        contexts ``(ensemble_size, cond_dim)``."""
        sde = self.method.sde

        def member(net, context):
            return ScoreField(net.field, context, sde).score(y, t)

        return jnp.mean(eqx.filter_vmap(member)(self.net, contexts), axis=0)

    def _compose_std(self, key: Key, x_o: Array, num_samples: int):
        """Standardised composed draws ``(num_samples, d)`` and diagnostics for a stack."""
        x_std = jax.vmap(self.x_standardizer)(x_o)
        contexts = jax.vmap(lambda xs: eqx.filter_vmap(lambda net: net.context(xs))(self.net))(
            x_std
        )
        prior = standardized_prior(self.prior, self._transform(), self.theta_standardizer)
        if not isinstance(prior, AbstractDiffusedPrior) and self.net.has_null_context:
            null = eqx.filter_vmap(lambda net: net.null_context())(self.net)
            prior = LearnedPrior(prior, self._obs_score, null)
        return self.method.composition.sample(
            key, self._obs_score, contexts, prior, self.method.sde, num_samples
        )


_DIVERGED = 1e2
"""Composed draws more than this many standard deviations of the training parameters from
their mean (in any coordinate) count as diverged."""


@eqx.filter_jit
def _compose(posterior: NPSEPosterior, key: Key, x_o: Array, num_samples: int):
    """Composed draws mapped to θ (as ``AbstractDensityPosterior._draw``), with the support's
    rejection; the diagnostics are those of the first round of draws."""
    first: list = []

    def draw(k, m):
        z_std, diagnostics = posterior._compose_std(k, x_o, m)
        if not first:
            first.append(diagnostics)
        # a draw this far out in the z-scored coordinates of the training parameters has
        # diverged, finite or not: it is refused as non-finite rather than returned
        diverged = jnp.any(jnp.abs(z_std) > _DIVERGED, axis=-1, keepdims=True)
        z_std = jnp.where(diverged, jnp.nan, z_std)
        z = jax.vmap(posterior.theta_standardizer.inverse)(z_std)
        return jax.vmap(posterior._transform())(z)

    samples = posterior.method.support.draw(
        draw, lambda theta: inside(posterior.prior, theta), key, num_samples
    )
    return samples, first[0]


class NPSE(AbstractVectorFieldMethod):
    """Neural posterior score estimation (Song et al. 2021; Sharrock et al. 2024).

    Parameters (z-scored, unconstrained) are noised by a forward SDE,
    ``θ_t = m(t) θ + σ(t) ε``, and a network learns the score ``∇ log p_t(θ_t | x)`` of the
    noised posterior by denoising score matching with weight ``λ(t) = σ(t)²``. The network
    predicts the noise, ``ε̂(θ_t, t, x)``, the score is ``s = −ε̂/σ(t)``, and the loss per
    example is ``‖ε̂ − ε‖²`` (= σ² ‖s + ε/σ‖², the weighted loss of the references, but
    without the 1/σ blow-up of a network that outputs the score near ``t_min``), with
    ``t ~ U(t_min, 1)`` and ``ε ~ N(0, I)`` drawn per example. The network's θ input is scaled
    by ``1/√(m² + σ²)``.

    Sampling integrates from noise back to ``t_min`` (see ``sampler``); ``log_prob`` solves the
    probability-flow ODE with ``log_prob_ode``'s divergence (exact by default). Both describe
    the posterior noised to ``t_min``: for the default VP SDE a blur of sd ≈ 0.01 in z-scored
    units, which
    shifts log-densities by about ``σ(t_min)² · tr(Σ⁻¹)/2`` (≈ 10⁻³ nats for a posterior
    that is 0.3 prior sds wide in each of 2 dimensions).

    Given a stack of i.i.d. observations, ``posterior.sample`` composes the single-observation
    scores with ``composition`` (see :class:`NPSEPosterior`); ``log_prob`` needs one
    observation.

    All options are keyword arguments.

    Args:
        sde: the forward SDE: :class:`~sbi_kit.inference.VPSDE` (default),
            :class:`~sbi_kit.inference.SubVPSDE` or :class:`~sbi_kit.inference.VESDE`.
        network: the vector-field spec
            (:class:`sk.estimators.ResidualVectorField` by default).
        embedding: optional embedding spec for x (e.g. :class:`sk.nn.MLPEmbedding`), trained
            jointly.
        training: :class:`sk.Training` settings; the default waits 100 epochs without
            improvement (``patience=100``, not NPE's 20): the loss draws a time and noise per
            example, so the validation loss is noisy and stops training early otherwise (on
            two_moons with 2,000 simulations, observation 1: C2ST 0.81 → 0.69 for FMPE and
            0.90 → 0.81 for NPSE), and averages 8 fixed draws of the time and noise per
            validation example (``validation_repeats=8``), and validates and keeps an
            exponential moving average of the parameters (``ema_decay=0.999``). NPSE on
            two_moons with 10,000 simulations, observations 1-3: mean C2ST 0.699 with the
            eight draws alone, 0.582 with the average as well (observation 1 with one draw and
            no average: 0.806). A ``Training`` you pass replaces all of this.
        ensemble_size: independently initialised networks trained together (one ``vmap``);
            the posterior is their equal-weight mixture.
        support: :class:`sk.inference.Bijection` (default) or :class:`sk.inference.Rejection`,
            as for :class:`~sbi_kit.NPE`.
        sampler: :class:`~sbi_kit.inference.ProbabilityFlowODE` (default; adaptive, exact
            density along the way), :class:`~sbi_kit.inference.ReverseSDE` or
            :class:`~sbi_kit.inference.DPMSolver` (``VPSDE`` only).
        log_prob_ode: the probability-flow ODE settings used by ``log_prob``.
        composition: how ``sample`` combines the scores of a stack of i.i.d. observations:
            :class:`~sbi_kit.inference.GAUSS` (default: the most accurate in
            ``benchmarks/compositional.py``), :class:`~sbi_kit.inference.JAC` (both need the
            VP SDE and a Gaussian prior), :class:`~sbi_kit.inference.FNPSE` (any prior) or
            :class:`~sbi_kit.inference.SMC` (Feynman–Kac reweighted particles; any SDE with
            linear drift, a Gaussian prior).
        unconditional_fraction: the share of training examples whose observation is dropped
            (replaced by a "no observation" context), so that the same network also learns
            the prior's diffused score (as in classifier-free guidance). 0 (default) trains on
            observations only. GAUSS, JAC and SMC need the diffused prior's score: analytic
            for a Gaussian prior, and for a box-uniform prior learned with
            ``support=Rejection()``; for any other prior (e.g. a uniform one under the default
            ``Bijection()``) they use the learned one, so train with e.g. 0.1.

    Raises:
        TypeError: an option of the wrong type (naming it), or ``DPMSolver`` with an SDE other
            than ``VPSDE``.

    Examples:
        >>> import jax, jax.numpy as jnp, sbi_kit as sk
        >>> task = sk.tasks.get("gaussian_linear")
        >>> theta, x = sk.simulate(jax.random.key(0), task, 300)
        >>> npse = sk.NPSE(
        ...     network=sk.estimators.ResidualVectorField(width=16, blocks=1),
        ...     training=sk.Training(max_epochs=2),
        ... )
        >>> posterior = npse.fit(jax.random.key(1), theta, x, prior=task.prior, progress=False)
        >>> posterior.sample(jax.random.key(2), task.observation(1), 10).shape
        (10, 10)
        >>> posterior.log_prob(jnp.zeros(10), task.observation(1)).shape
        ()
    """

    sde: AbstractSDE = eqx.field(default=VPSDE(), kw_only=True)
    network: AbstractVectorField = eqx.field(default=ResidualVectorField(), kw_only=True)
    embedding: AbstractEmbedding | None = eqx.field(default=None, kw_only=True)
    training: Training = eqx.field(default=VECTOR_FIELD_TRAINING, kw_only=True)
    ensemble_size: int = eqx.field(default=1, kw_only=True)
    support: AbstractSupport = eqx.field(default=Bijection(), kw_only=True)
    sampler: AbstractVectorFieldSampler = eqx.field(default=ProbabilityFlowODE(), kw_only=True)
    log_prob_ode: ProbabilityFlowODE = eqx.field(default=ProbabilityFlowODE(), kw_only=True)
    composition: AbstractComposition = eqx.field(default=GAUSS(), kw_only=True)
    unconditional_fraction: float = eqx.field(default=0.0, kw_only=True)

    def __check_init__(self):
        check_setting_fraction(
            "NPSE", "unconditional_fraction", self.unconditional_fraction, low_open=False
        )
        if not isinstance(self.sde, AbstractSDE):
            raise TypeError(
                "NPSE: `sde` must be an SDE such as sk.inference.VPSDE(), SubVPSDE() or VESDE(), "
                f"got {self.sde!r}."
            )
        if not isinstance(self.sampler, AbstractVectorFieldSampler):
            raise TypeError(
                "NPSE: `sampler` must be sk.inference.ProbabilityFlowODE(), ReverseSDE() or "
                f"DPMSolver(), got {self.sampler!r}."
            )
        if isinstance(self.sampler, DPMSolver) and not isinstance(self.sde, VPSDE):
            raise TypeError(
                "NPSE: `sampler` DPMSolver() needs sde=VPSDE() (its update is derived for the "
                f"variance-preserving SDE), got sde={self.sde!r}; use ProbabilityFlowODE() or "
                "ReverseSDE()."
            )
        if not isinstance(self.composition, AbstractComposition):
            raise TypeError(
                "NPSE: `composition` must be sk.inference.GAUSS(), JAC(), FNPSE() or SMC(), got "
                f"{self.composition!r}."
            )

    def build_net(self, key: Key, dim_theta: int, x_shape: tuple[int, ...]) -> FieldNet:
        return build_field_net(
            key,
            self.network,
            self.embedding,
            dim_theta,
            x_shape,
            null_context=self.unconditional_fraction > 0,
        )

    def loss(self, net: FieldNet, theta: Array, x: Array, key: Key) -> Array:
        """Denoising score matching ``‖ε̂(θ_t, t, x) − ε‖²`` per example (weight σ(t)²); with
        ``unconditional_fraction`` > 0 that share of examples (at random) is trained without
        its observation."""
        sde = self.sde
        dropping = self.unconditional_fraction > 0

        def one(theta_i, x_i, key_i):
            # without dropping, the time and noise draws stay those of earlier versions
            keys = jax.random.split(key_i, 3 if dropping else 2)
            t = jax.random.uniform(keys[0], minval=sde.t_min, maxval=sde.t_max)
            eps = jax.random.normal(keys[1], theta_i.shape)
            theta_t = sde.mean_coeff(t) * theta_i + sde.std(t) * eps
            context = net.context(x_i)
            if dropping:  # a key of its own: the drop must not depend on t or ε
                drop = jax.random.bernoulli(keys[2], self.unconditional_fraction)
                context = jnp.where(drop, net.null_context(), context)
            field = ScoreField(net.field, context, sde)
            return jnp.sum((field.noise_prediction(theta_t, t) - eps) ** 2)

        return jax.vmap(one)(theta, x, jax.random.split(key, theta.shape[0]))

    def posterior(
        self,
        net: FieldNet,
        prior: dist.Distribution,
        theta_standardizer: Standardizer,
        x_standardizer: Standardizer,
    ) -> NPSEPosterior:
        return NPSEPosterior(net, prior, theta_standardizer, x_standardizer, self)
