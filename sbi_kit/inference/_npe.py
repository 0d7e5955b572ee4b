"""Neural posterior estimation (NPE): a conditional flow q(θ | x) trained on (θ, x) pairs."""

from __future__ import annotations

import dataclasses
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpyro.distributions as dist
from flowjax.distributions import AbstractDistribution
from jaxtyping import Array

from .._types import Key
from ..estimators import NSF, AbstractFlow, BestOf, Standardizer
from ..nn import AbstractEmbedding
from ..training import Training
from ._method import DEFAULT_TRAINING, AbstractMethod, check_flow, flow_alternatives
from ._posterior import AbstractDensityPosterior
from ._support import AbstractSupport, Bijection

#: NPE's default training: NLE's and NRE's (batch 50, patience 100) with the learning rate
#: halved after 2,700 optimiser steps without a better validation loss, at most four times
#: before the next such plateau stops (or sooner, after a halving that found nothing better:
#: ``Training.lr_stop_without_gain``). 2,700 steps are 150 epochs of 10^3 simulations (more than
#: the patience: nothing changes there) and 15 of 10^4, where two_moons trained in half the
#: time to a C2ST as good or better (docs/training.md, "Learning rate on plateaus").
NPE_TRAINING = dataclasses.replace(DEFAULT_TRAINING, lr_plateau_steps=2700)


class FlowNet(eqx.Module):
    """One network of NPE: an optional embedding of x and a conditional flow over θ.

    Attributes:
        flow: a flowjax conditional distribution over standardised parameters.
        embedding: the embedding network of standardised observations, or ``None`` (the
            flattened observation is the flow's context).
    """

    flow: AbstractDistribution
    embedding: eqx.Module | None

    def context(self, x_std: Array) -> Array:
        """The flow's context for one standardised observation."""
        return jnp.ravel(x_std) if self.embedding is None else self.embedding(x_std)

    def log_prob(self, theta_std: Array, x_std: Array) -> Array:
        """log q(θ_std | x_std) for one pair (a scalar)."""
        return self.flow.log_prob(theta_std, self.context(x_std))

    def sample(self, key: Key, x_std: Array, num_samples: int) -> Array:
        """``num_samples`` standardised draws given one observation, ``(num_samples, d)``."""
        return self.flow.sample(key, (num_samples,), condition=self.context(x_std))


class NPEPosterior(AbstractDensityPosterior):
    """The posterior returned by :meth:`NPE.fit`: a conditional flow (or an ensemble of them).

    See :class:`~sbi_kit.inference.AbstractDensityPosterior` for how bounded priors and
    ensembles are handled; ``log_prob`` is normalised under ``support=Bijection()``.

    Attributes:
        net: the trained :class:`FlowNet` (arrays carry a leading ensemble axis).
        prior: the prior the posterior was trained with.
        theta_standardizer, x_standardizer: the learned z-scoring.
        method: the :class:`NPE` configuration that trained it.
    """

    net: FlowNet
    prior: dist.Distribution
    theta_standardizer: Standardizer
    x_standardizer: Standardizer
    method: NPE = eqx.field(static=True)

    def net_log_prob(self, net: FlowNet, theta_std: Array, x_std: Array) -> Array:
        return net.log_prob(theta_std, x_std)

    def net_sample(self, net: FlowNet, key: Key, x_std: Array, num_samples: int) -> Array:
        return net.sample(key, x_std, num_samples)


class NPE(AbstractMethod):
    """Neural posterior estimation (Papamakarios & Murray 2016; Greenberg et al. 2019).

    A conditional normalizing flow q(θ | x) is trained by maximum likelihood on simulated pairs.
    The posterior is amortised: after training, any observation is conditioned on in one pass.

    NPE conditions on ONE observation: the flow learns q(θ | x) for x from the simulator, and
    there is no exact way to combine q(θ | x_1), ..., q(θ | x_n) into the posterior given n
    i.i.d. observations. For several i.i.d. draws, simulate them together and use a
    permutation-invariant embedding (:class:`sk.nn.DeepSetEmbedding`).

    All options are keyword arguments.

    Args:
        flow: flow spec; by default ``sk.estimators.NSF(activation="gelu")``, the spline
            flow with GELU conditioners (docs/npe.md, "Conditioner activation", says why; a
            plain ``NSF()`` has ReLU ones), or :class:`sk.estimators.MAF` and the others, or a
            :class:`sk.estimators.BestOf` of several (each trained, the lowest validation loss
            kept).
        embedding: optional embedding spec for x (e.g. :class:`sk.nn.MLPEmbedding`), trained
            jointly with the flow.
        training: :class:`sk.Training` settings; by default
            ``sk.Training(batch_size=50, patience=100, lr_plateau_steps=2700)``: NLE's and
            NRE's batch and patience, and the learning rate halved after 2,700 steps without a
            better validation loss, and training stopped at a plateau after a halving that
            found nothing better (docs/training.md says why; with 10^3 simulations the
            schedule never fires before the patience, with 10^4 it halves the training time).
            A ``training=`` replaces all of it: to change one setting and keep the others,
            pass ``dataclasses.replace(sk.NPE().training, max_epochs=...)``.
        ensemble_size: number of independently initialised flows trained together (one
            ``vmap``); the posterior is their equal-weight mixture.
        support: how posterior mass is kept inside the prior's support:
            :class:`sk.inference.Bijection` (default; learn in unconstrained space) or
            :class:`sk.inference.Rejection` (learn on θ, reject draws outside the support, as
            the `sbi` package does).

    Examples:
        >>> import jax, jax.numpy as jnp, sbi_kit as sk
        >>> task = sk.tasks.get("gaussian_linear")
        >>> theta, x = sk.simulate(jax.random.key(0), task, 300)
        >>> npe = sk.NPE(flow=sk.estimators.MAF(layers=1, width=8, depth=1),  # tiny, for speed
        ...              training=sk.Training(max_epochs=2))
        >>> posterior = npe.fit(jax.random.key(1), theta, x, prior=task.prior, progress=False)
        >>> posterior.sample(jax.random.key(2), task.observation(1), 10).shape
        (10, 10)
        >>> posterior.log_prob(jnp.zeros(10), task.observation(1)).shape
        ()
    """

    flow: AbstractFlow | BestOf = eqx.field(default=NSF(activation="gelu"), kw_only=True)
    embedding: AbstractEmbedding | None = eqx.field(default=None, kw_only=True)
    training: Training = eqx.field(default=NPE_TRAINING, kw_only=True)
    ensemble_size: int = eqx.field(default=1, kw_only=True)
    support: AbstractSupport = eqx.field(default=Bijection(), kw_only=True)

    def __check_init__(self):
        check_flow("NPE", self.flow)
        if self.embedding is not None and not isinstance(self.embedding, AbstractEmbedding):
            raise TypeError(
                "NPE: `embedding` must be None or an embedding spec such as "
                f"sk.nn.MLPEmbedding(), got {self.embedding!r}."
            )

    def alternatives(self, init=None):
        return flow_alternatives(self, self.flow, init)

    def build_net(self, key: Key, dim_theta: int, x_shape: tuple[int, ...]) -> FlowNet:
        key_emb, key_flow = jax.random.split(key)
        if self.embedding is None:
            embedding, cond_dim = None, math.prod(x_shape)
        else:
            embedding, cond_dim = self.embedding.build(key_emb, x_shape), self.embedding.out_dim
        return FlowNet(self.flow.build(key_flow, dim_theta, cond_dim), embedding)

    def loss(self, net: FlowNet, theta: Array, x: Array, key: Key) -> Array:
        """The negative log-density of each standardised θ under the flow given its x."""
        del key
        return -jax.vmap(net.log_prob)(theta, x)

    def posterior(
        self,
        net: FlowNet,
        prior: dist.Distribution,
        theta_standardizer: Standardizer,
        x_standardizer: Standardizer,
    ) -> NPEPosterior:
        return NPEPosterior(net, prior, theta_standardizer, x_standardizer, self)
