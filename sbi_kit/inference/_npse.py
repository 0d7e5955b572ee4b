"""Neural posterior score estimation (NPSE): a conditional score network trained by denoising
score matching, sampled with the probability-flow ODE, the reverse SDE or DPM-Solver."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpyro.distributions as dist
from jaxtyping import Array

from .._types import Key
from ..estimators import AbstractVectorField, ResidualVectorField, Standardizer
from ..nn import AbstractEmbedding
from ..training import Training
from ._diffusion import VPSDE, AbstractSDE
from ._field_net import FieldNet, build_field_net
from ._fields import ScoreField
from ._method import AbstractMethod
from ._posterior import AbstractDensityPosterior
from ._support import AbstractSupport, Bijection
from ._vector_field_samplers import AbstractVectorFieldSampler, DPMSolver, ProbabilityFlowODE


class NPSEPosterior(AbstractDensityPosterior):
    """The posterior returned by :meth:`NPSE.fit`: a score network (or an ensemble of them).

    ``sample`` integrates from noise at ``sde.t_max`` to ``sde.t_min`` with ``method.sampler``;
    ``log_prob`` solves the probability-flow ODE with ``method.log_prob_ode`` and the exact
    divergence (see :meth:`~sbi_kit.inference.ProbabilityFlowODE.log_prob`). Both describe the
    parameters noised to ``t_min`` (a blur of standard deviation ``σ(t_min)`` in z-scored
    units, ≈ 0.01 with the default SDEs), which the samples and the density share.
    Bounded priors and ensembles are handled as in
    :class:`~sbi_kit.inference.AbstractDensityPosterior`.

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


class NPSE(AbstractMethod):
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
    probability-flow ODE with the exact divergence. Both describe the posterior noised to
    ``t_min``: for the default VP SDE a blur of sd ≈ 0.01 in z-scored units, which
    shifts log-densities by about ``σ(t_min)² · tr(Σ⁻¹)/2`` (≈ 10⁻³ nats for a posterior
    that is 0.3 prior sds wide in each of 2 dimensions).

    NPSE conditions on ONE observation (composing scores of i.i.d. observations is future
    work).

    All options are keyword arguments.

    Args:
        sde: the forward SDE: :class:`~sbi_kit.inference.VPSDE` (default),
            :class:`~sbi_kit.inference.SubVPSDE` or :class:`~sbi_kit.inference.VESDE`.
        network: the vector-field spec
            (:class:`sk.estimators.ResidualVectorField` by default).
        embedding: optional embedding spec for x (e.g. :class:`sk.nn.MLPEmbedding`), trained
            jointly.
        training: :class:`sk.Training` settings.
        ensemble_size: independently initialised networks trained together (one ``vmap``);
            the posterior is their equal-weight mixture.
        support: :class:`sk.inference.Bijection` (default) or :class:`sk.inference.Rejection`,
            as for :class:`~sbi_kit.NPE`.
        sampler: :class:`~sbi_kit.inference.ProbabilityFlowODE` (default; adaptive, exact
            density along the way), :class:`~sbi_kit.inference.ReverseSDE` or
            :class:`~sbi_kit.inference.DPMSolver` (``VPSDE`` only).
        log_prob_ode: the probability-flow ODE settings used by ``log_prob``.

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
    training: Training = eqx.field(default=Training(), kw_only=True)
    ensemble_size: int = eqx.field(default=1, kw_only=True)
    support: AbstractSupport = eqx.field(default=Bijection(), kw_only=True)
    sampler: AbstractVectorFieldSampler = eqx.field(default=ProbabilityFlowODE(), kw_only=True)
    log_prob_ode: ProbabilityFlowODE = eqx.field(default=ProbabilityFlowODE(), kw_only=True)

    def __check_init__(self):
        if not isinstance(self.sde, AbstractSDE):
            raise TypeError(
                "NPSE: `sde` must be an SDE such as sk.inference.VPSDE(), SubVPSDE() or VESDE(), "
                f"got {self.sde!r}."
            )
        if not isinstance(self.network, AbstractVectorField):
            raise TypeError(
                "NPSE: `network` must be a vector-field spec such as "
                f"sk.estimators.ResidualVectorField(), got {self.network!r}."
            )
        if self.embedding is not None and not isinstance(self.embedding, AbstractEmbedding):
            raise TypeError(
                "NPSE: `embedding` must be None or an embedding spec such as "
                f"sk.nn.MLPEmbedding(), got {self.embedding!r}."
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
        if not isinstance(self.log_prob_ode, ProbabilityFlowODE):
            raise TypeError(
                "NPSE: `log_prob_ode` must be sk.inference.ProbabilityFlowODE(...), got "
                f"{self.log_prob_ode!r}."
            )

    def build_net(self, key: Key, dim_theta: int, x_shape: tuple[int, ...]) -> FieldNet:
        return build_field_net(key, self.network, self.embedding, dim_theta, x_shape)

    def loss(self, net: FieldNet, theta: Array, x: Array, key: Key) -> Array:
        """Denoising score matching ``‖ε̂(θ_t, t, x) − ε‖²`` per example (weight σ(t)²)."""
        sde = self.sde

        def one(theta_i, x_i, key_i):
            key_t, key_eps = jax.random.split(key_i)
            t = jax.random.uniform(key_t, minval=sde.t_min, maxval=sde.t_max)
            eps = jax.random.normal(key_eps, theta_i.shape)
            theta_t = sde.mean_coeff(t) * theta_i + sde.std(t) * eps
            field = ScoreField(net.field, net.context(x_i), sde)
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
