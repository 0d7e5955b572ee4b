"""Neural posterior estimation (NPE): a conditional flow q(θ | x) trained on (θ, x) pairs."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpyro.distributions as dist
from flowjax.distributions import AbstractDistribution
from jaxtyping import Array

from .._types import Key
from ..estimators import NSF, Standardizer
from ..training import History, Training, train
from ._checks import check_num_samples, check_observation, check_theta_points, check_training_data
from ._posterior import AbstractPosterior
from ._support import Bijection


class _FlowNet(eqx.Module):
    """The trainable part of NPE: an optional embedding and a conditional flow."""

    flow: AbstractDistribution
    embedding: eqx.Module | None

    def context(self, x_std: Array) -> Array:
        return jnp.ravel(x_std) if self.embedding is None else self.embedding(x_std)

    def log_prob(self, z_std: Array, x_std: Array) -> Array:
        return self.flow.log_prob(z_std, self.context(x_std))

    def sample(self, key: Key, x_std: Array, num_samples: int) -> Array:
        return self.flow.sample(key, (num_samples,), condition=self.context(x_std))


def _ladj(transform, z: Array) -> Array:
    """log |dθ/dz| of ``transform`` at one unconstrained vector ``z`` (a scalar)."""
    return jnp.sum(transform.log_abs_det_jacobian(z, transform(z)))


def _inside(prior: dist.Distribution, theta: Array) -> Array:
    """Whether each row of ``theta`` (n, d) lies in the prior's support; (n,) bool."""
    return jnp.all(prior.support(theta).reshape(theta.shape[0], -1), axis=1)


class NPEPosterior(AbstractPosterior):
    """The posterior returned by :meth:`NPE.fit`.

    With the default ``support=Bijection()``, flows act on z-scored, unconstrained parameters
    z = T⁻¹(θ), where T maps ℝᵈ onto the prior's support, so the density is
    ``log q(θ|x) = log q_z(z|x) − log|dT/dz|`` and no sample ever falls outside the prior's
    support. With ``support=Rejection()`` flows act on z-scored θ and draws outside the support
    are rejected (see :meth:`acceptance_rate`). With ``ensemble_size = k > 1`` the posterior
    is the equal-weight mixture of the k flows.

    Attributes:
        net: the trained flow (and embedding); arrays carry a leading ensemble axis.
        prior: the prior the posterior was trained with.
        theta_standardizer, x_standardizer: the learned z-scoring.
        method: the :class:`NPE` configuration that trained it.
        history: the :class:`~sbi_kit.training.History` of training.
        calibration: a calibration report, once attached (see ``sk.diagnostics.calibrate``).
    """

    net: _FlowNet
    prior: dist.Distribution
    theta_standardizer: Standardizer
    x_standardizer: Standardizer
    method: NPE = eqx.field(static=True)
    history: History = eqx.field(static=True, default=History())
    calibration: Any = eqx.field(static=True, default=None)

    @property
    def dim_theta(self) -> int:
        return int(self.theta_standardizer.loc.shape[0])

    @property
    def x_shape(self) -> tuple[int, ...]:
        return tuple(self.x_standardizer.loc.shape)

    @property
    def ensemble_size(self) -> int:
        return self.method.ensemble_size

    def _log_prob_z(self, z: Array, x_o: Array) -> Array:
        """log q_z(z | x_o) for one unconstrained z, mixed over the ensemble."""
        z_std = self.theta_standardizer(z)
        x_std = self.x_standardizer(x_o)
        lp = eqx.filter_vmap(lambda net: net.log_prob(z_std, x_std))(self.net)
        return jax.nn.logsumexp(lp) - math.log(lp.shape[0]) - self.theta_standardizer.log_scale()

    def _transform(self) -> dist.transforms.Transform:
        """The map from the space the flows learn in onto θ."""
        return self.method.support.transform(self.prior)

    def _log_prob_one(self, theta: Array, x_o: Array) -> Array:
        transform = self._transform()
        z = transform.inv(theta)
        lp = self._log_prob_z(z, x_o) - _ladj(transform, z)
        inside = jnp.all(self.prior.support(theta))
        return jnp.where(inside & jnp.isfinite(lp), lp, -jnp.inf)

    @eqx.filter_jit
    def log_prob(self, theta: Array, x_o: Array) -> Array:
        """Posterior log-density.

        Args:
            theta: shape ``(dim_theta,)`` or ``(n, dim_theta)``.
            x_o: one observation of shape ``x_shape``.

        Returns:
            shape ``()`` or ``(n,)``; ``-inf`` outside the prior's support.
        """
        theta = check_theta_points(theta, self.dim_theta)
        x_o = check_observation(x_o, self.x_shape, iid=False)
        if theta.ndim == 1:
            return self._log_prob_one(theta, x_o)
        return jax.vmap(self._log_prob_one, in_axes=(0, None))(theta, x_o)

    def sample(self, key: Key, x_o: Array, num_samples: int) -> Array:
        """Draws from the posterior.

        Args:
            key: PRNG key.
            x_o: one observation of shape ``x_shape``.
            num_samples: number of samples.

        Returns:
            shape ``(num_samples, dim_theta)``, all inside the prior's support.
        """
        num_samples = check_num_samples(num_samples)
        x_o = check_observation(x_o, self.x_shape, iid=False)
        return _sample(self, key, x_o, num_samples)

    def acceptance_rate(self, key: Key, x_o: Array, num_samples: int = 10_000) -> Array:
        """The share of the flows' draws that lie inside the prior's support, given ``x_o``.

        Under ``support=Rejection()`` this is the acceptance rate of sampling (and the mass
        that ``log_prob`` integrates to); under ``Bijection()`` it is 1 by construction.

        Args:
            key: PRNG key.
            x_o: one observation of shape ``x_shape``.
            num_samples: draws used for the estimate.

        Returns:
            a scalar in [0, 1].
        """
        num_samples = check_num_samples(num_samples)
        x_o = check_observation(x_o, self.x_shape, iid=False)
        return _acceptance_rate(self, key, x_o, num_samples)


def _draw(posterior: NPEPosterior, key: Key, x_std: Array, num_samples: int) -> Array:
    """``num_samples`` draws of the ensemble mixture mapped to θ (before any rejection)."""
    k = posterior.ensemble_size
    key_member, key_flow = jax.random.split(key)
    keys = jax.random.split(key_flow, k)
    draws = eqx.filter_vmap(lambda net, kk: net.sample(kk, x_std, num_samples))(posterior.net, keys)
    member = jax.random.randint(key_member, (num_samples,), 0, k)
    z_std = draws[member, jnp.arange(num_samples)]
    z = jax.vmap(posterior.theta_standardizer.inverse)(z_std)
    return jax.vmap(posterior._transform())(z)


@eqx.filter_jit
def _sample(posterior: NPEPosterior, key: Key, x_o: Array, num_samples: int) -> Array:
    x_std = posterior.x_standardizer(x_o)
    return posterior.method.support.draw(
        lambda k, m: _draw(posterior, k, x_std, m),
        lambda theta: _inside(posterior.prior, theta),
        key,
        num_samples,
    )


@eqx.filter_jit
def _acceptance_rate(posterior: NPEPosterior, key: Key, x_o: Array, num_samples: int) -> Array:
    theta = _draw(posterior, key, posterior.x_standardizer(x_o), num_samples)
    return jnp.mean(_inside(posterior.prior, theta))


@dataclasses.dataclass(frozen=True)
class NPE:
    """Neural posterior estimation (Papamakarios & Murray 2016; Greenberg et al. 2019).

    A conditional normalizing flow q(θ | x) is trained by maximum likelihood on simulated pairs.
    The posterior is amortised: after training, any observation is conditioned on in one pass.

    Args:
        flow: flow spec (:class:`sk.estimators.NSF` by default, or :class:`sk.estimators.MAF`).
        embedding: optional embedding spec for x (e.g. :class:`sk.nn.MLPEmbedding`), trained
            jointly with the flow.
        training: :class:`sk.Training` settings.
        ensemble_size: number of independently initialised flows trained together (one
            ``vmap``); the posterior is their equal-weight mixture.
        support: how posterior mass is kept inside the prior's support:
            :class:`sk.inference.Bijection` (default; learn in unconstrained space) or
            :class:`sk.inference.Rejection` (learn on θ, reject draws outside the support, as
            the `sbi` package does).

    Examples:
        >>> import jax, sbi_kit as sk
        >>> task = sk.tasks.get("gaussian_linear")
        >>> theta, x = sk.simulate(jax.random.key(0), task, 500)
        >>> npe = sk.NPE(training=sk.Training(max_epochs=2))
        >>> posterior = npe.fit(jax.random.key(1), theta, x, prior=task.prior, progress=False)
        >>> posterior.sample(jax.random.key(2), task.observation(1), 10).shape
        (10, 10)
    """

    flow: Any = NSF()
    embedding: Any = None
    training: Training = Training()
    ensemble_size: int = 1
    support: Any = Bijection()

    def __post_init__(self):
        if not isinstance(self.ensemble_size, int) or self.ensemble_size < 1:
            raise ValueError(
                f"NPE: ensemble_size must be a positive integer, got {self.ensemble_size!r}."
            )
        if not hasattr(self.flow, "build"):
            raise TypeError(f"NPE: `flow` must be a flow spec such as NSF(), got {self.flow!r}.")
        if not (hasattr(self.support, "transform") and hasattr(self.support, "draw")):
            raise TypeError(
                "NPE: `support` must be sk.inference.Bijection() or sk.inference.Rejection(), "
                f"got {self.support!r}."
            )

    def build(
        self, key: Key, dim_theta: int, x_shape: tuple[int, ...], prior: dist.Distribution
    ) -> NPEPosterior:
        """An untrained posterior with identity z-scoring (also the skeleton for ``sk.load``)."""
        x_shape = tuple(x_shape)

        def make(key):
            key_emb, key_flow = jax.random.split(key)
            if self.embedding is None:
                embedding, cond_dim = None, math.prod(x_shape)
            else:
                embedding = self.embedding.build(key_emb, x_shape)
                cond_dim = self.embedding.out_dim
            return _FlowNet(self.flow.build(key_flow, dim_theta, cond_dim), embedding)

        net = eqx.filter_vmap(make)(jax.random.split(key, self.ensemble_size))
        return NPEPosterior(
            net=net,
            prior=prior,
            theta_standardizer=Standardizer.identity((dim_theta,)),
            x_standardizer=Standardizer.identity(x_shape),
            method=self,
        )

    def fit(
        self,
        key: Key,
        theta: Array,
        x: Array,
        *,
        prior: dist.Distribution,
        progress: bool = True,
    ) -> NPEPosterior:
        """Trains the flow on simulated pairs.

        Args:
            key: PRNG key (initialisation, split and shuffling).
            theta: parameters, shape ``(num_simulations, dim_theta)``, inside the prior support.
            x: observations, shape ``(num_simulations, dim_x)`` (or ``(num_simulations,
                *x_shape)`` with an embedding).
            prior: numpyro distribution with event shape ``(dim_theta,)``.
            progress: show a progress bar over epochs.

        Returns:
            the trained :class:`NPEPosterior` (its ``history`` says how training went).

        Raises:
            ValueError: on mismatched shapes or lengths, a prior of the wrong event shape,
                non-finite data, or θ outside the prior's support.
        """
        theta, x = check_training_data(theta, x, prior)
        inside = _inside(prior, theta)
        if not bool(jnp.all(inside)):
            raise ValueError(
                f"{int((~inside).sum())} rows of `theta` lie outside the prior's support; NPE "
                "learns on the prior's support and cannot use them."
            )
        transform = self.support.transform(prior)
        z = jax.vmap(transform.inv)(theta)
        key_init, key_train = jax.random.split(key)
        posterior = self.build(key_init, theta.shape[1], x.shape[1:], prior)
        posterior = eqx.tree_at(
            lambda p: (p.theta_standardizer, p.x_standardizer),
            posterior,
            (Standardizer.fit(z), Standardizer.fit(x)),
        )
        z_scaler, x_scaler = posterior.theta_standardizer, posterior.x_standardizer

        def loss(net: _FlowNet, batch, key):
            zb, xb = batch
            return -jax.vmap(net.log_prob)(jax.vmap(z_scaler)(zb), jax.vmap(x_scaler)(xb))

        net, history = train(
            key_train,
            posterior.net,
            loss,
            (z, x),
            self.training,
            progress=progress,
            description="NPE",
        )
        return dataclasses.replace(posterior, net=net, history=history)
