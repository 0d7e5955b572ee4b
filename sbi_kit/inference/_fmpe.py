"""Flow matching posterior estimation (FMPE): a conditional velocity field trained by
optimal-transport conditional flow matching, sampled and scored with the ODE it defines."""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpyro.distributions as dist
from jaxtyping import Array

from .._types import Key
from ..estimators import AbstractVectorField, ResidualVectorField, Standardizer
from ..nn import AbstractEmbedding
from ..training import Training
from ._field_net import VECTOR_FIELD_TRAINING, FieldNet
from ._fields import FlowField
from ._posterior import AbstractDensityPosterior
from ._support import AbstractSupport, Bijection
from ._vector_field_method import AbstractVectorFieldMethod
from ._vector_field_samplers import ProbabilityFlowODE


class FMPEPosterior(AbstractDensityPosterior):
    """The posterior returned by :meth:`FMPE.fit`: a velocity field (or an ensemble of them).

    ``sample`` integrates ``dθ/dt = v(θ, t, x)`` from N(0, I) at t = 0 to t = 1 with
    ``method.sampler``; ``log_prob`` integrates back from t = 1 to 0 with
    ``method.log_prob_ode`` and its divergence, exact by default (see
    :meth:`~sbi_kit.inference.ProbabilityFlowODE.log_prob`). Bounded priors and ensembles are
    handled as in :class:`~sbi_kit.inference.AbstractDensityPosterior`.

    Attributes:
        net: the trained :class:`~sbi_kit.inference.FieldNet` (arrays carry a leading ensemble
            axis).
        prior: the prior the posterior was trained with.
        theta_standardizer, x_standardizer: the learned z-scoring.
        method: the :class:`FMPE` configuration that trained it.
    """

    net: FieldNet
    prior: dist.Distribution
    theta_standardizer: Standardizer
    x_standardizer: Standardizer
    method: FMPE = eqx.field(static=True)

    def _field(self, net: FieldNet, x_std: Array) -> FlowField:
        return FlowField(net.field, net.context(x_std))

    def net_log_prob(self, net: FieldNet, theta_std: Array, x_std: Array) -> Array:
        return self.method.log_prob_ode.log_prob(self._field(net, x_std), theta_std)

    def net_sample(self, net: FieldNet, key: Key, x_std: Array, num_samples: int) -> Array:
        field = self._field(net, x_std)
        return self.method.sampler.sample(key, field, num_samples, self.dim_theta)


class FMPE(AbstractVectorFieldMethod):
    """Flow matching posterior estimation (Dax et al. 2023; Lipman et al. 2023).

    A network learns a velocity field ``v(θ_t, t, x)`` that transports N(0, I) at t = 0 to the
    posterior over z-scored, unconstrained parameters at t = 1, by regression on the
    optimal-transport conditional paths: with ``θ_0 ~ N(0, I)``, ``θ_1 = θ`` from the data,

        θ_t = (1 − (1 − σ_min) t) θ_0 + t θ_1,   target u = θ_1 − (1 − σ_min) θ_0,

    and per-example loss ``‖v(θ_t, t, x) − u‖²``. The time is drawn as ``t = U^{1/(1+α)}``,
    ``U ~ U(0, 1)``: density ``(1 + α) t^α``, uniform for α = 0, weighted towards the data
    end (t = 1) for α > 0. (Dax et al. write the density as ∝ t^{1/(1+α)}; the form here is
    the one for which α = 0 is uniform.)

    Sampling and ``log_prob`` solve the ODE ``dθ/dt = v`` (for the density with
    ``log_prob_ode``'s divergence: exact by default, or Hutchinson's estimate). FMPE
    conditions on ONE observation.

    All options are keyword arguments.

    Args:
        network: the vector-field spec (:class:`sk.estimators.ResidualVectorField` by
            default).
        embedding: optional embedding spec for x (e.g. :class:`sk.nn.MLPEmbedding`), trained
            jointly.
        sigma_min: the width of the conditional paths at t = 1 (in z-scored units).
        time_prior_exponent: α ≥ 0 of the time distribution above.
        training: :class:`sk.Training` settings; the default is NPSE's (patience 100, the
            validation loss averaged over 8 draws, a moving average of the parameters; see
            :class:`~sbi_kit.NPSE` for why and what it measured).
        ensemble_size: independently initialised networks trained together (one ``vmap``);
            the posterior is their equal-weight mixture.
        support: :class:`sk.inference.Bijection` (default) or :class:`sk.inference.Rejection`,
            as for :class:`~sbi_kit.NPE`.
        sampler: the :class:`~sbi_kit.inference.ProbabilityFlowODE` settings for sampling
            (FMPE has no SDE: the other samplers do not apply).
        log_prob_ode: the probability-flow ODE settings used by ``log_prob``.

    Raises:
        TypeError: an option of the wrong type (naming it).
        ValueError: ``sigma_min`` outside [0, 1) or a negative ``time_prior_exponent``.

    Examples:
        >>> import jax, sbi_kit as sk
        >>> task = sk.tasks.get("gaussian_linear")
        >>> theta, x = sk.simulate(jax.random.key(0), task, 300)
        >>> fmpe = sk.FMPE(
        ...     network=sk.estimators.ResidualVectorField(width=16, blocks=1),
        ...     training=sk.Training(max_epochs=2),
        ... )
        >>> posterior = fmpe.fit(jax.random.key(1), theta, x, prior=task.prior, progress=False)
        >>> posterior.sample(jax.random.key(2), task.observation(1), 10).shape
        (10, 10)
    """

    network: AbstractVectorField = eqx.field(default=ResidualVectorField(), kw_only=True)
    embedding: AbstractEmbedding | None = eqx.field(default=None, kw_only=True)
    sigma_min: float = eqx.field(default=1e-4, kw_only=True)
    time_prior_exponent: float = eqx.field(default=0.0, kw_only=True)
    training: Training = eqx.field(default=VECTOR_FIELD_TRAINING, kw_only=True)
    ensemble_size: int = eqx.field(default=1, kw_only=True)
    support: AbstractSupport = eqx.field(default=Bijection(), kw_only=True)
    sampler: ProbabilityFlowODE = eqx.field(default=ProbabilityFlowODE(), kw_only=True)
    log_prob_ode: ProbabilityFlowODE = eqx.field(default=ProbabilityFlowODE(), kw_only=True)

    def __check_init__(self):
        if not isinstance(self.sampler, ProbabilityFlowODE):
            raise TypeError(
                "FMPE: `sampler` must be sk.inference.ProbabilityFlowODE(...) (FMPE learns an "
                f"ODE, not a score: ReverseSDE and DPMSolver do not apply), got {self.sampler!r}."
            )
        for name in ("sigma_min", "time_prior_exponent"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"FMPE: `{name}` must be a number, got {value!r}.")
            if not math.isfinite(value):
                raise ValueError(f"FMPE: `{name}` must be finite, got {value!r}.")
        if not 0 <= self.sigma_min < 1:
            raise ValueError(f"FMPE: `sigma_min` must lie in [0, 1), got {self.sigma_min!r}.")
        if self.time_prior_exponent < 0:
            raise ValueError(
                f"FMPE: `time_prior_exponent` must be ≥ 0, got {self.time_prior_exponent!r}."
            )

    def loss(self, net: FieldNet, theta: Array, x: Array, key: Key) -> Array:
        """Conditional flow matching ``‖v(θ_t, t, x) − u‖²`` per example."""
        shrink = 1.0 - self.sigma_min
        power = 1.0 / (1.0 + self.time_prior_exponent)

        def one(theta_1, x_i, key_i):
            key_t, key_0 = jax.random.split(key_i)
            t = jax.random.uniform(key_t) ** power
            theta_0 = jax.random.normal(key_0, theta_1.shape)
            theta_t = (1 - shrink * t) * theta_0 + t * theta_1
            target = theta_1 - shrink * theta_0
            return jnp.sum((net(theta_t, t, net.context(x_i)) - target) ** 2)

        return jax.vmap(one)(theta, x, jax.random.split(key, theta.shape[0]))

    def posterior(
        self,
        net: FieldNet,
        prior: dist.Distribution,
        theta_standardizer: Standardizer,
        x_standardizer: Standardizer,
    ) -> FMPEPosterior:
        return FMPEPosterior(net, prior, theta_standardizer, x_standardizer, self)
