"""Neural likelihood estimation (NLE): a conditional flow q(x | θ), MCMC on prior × likelihood."""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpyro.distributions as dist
from flowjax.distributions import AbstractDistribution
from jaxtyping import Array

from .._types import Key
from ..estimators import NSF, AbstractFlow, Standardizer
from ..mcmc import MCMCConfig
from ..training import Training
from ._likelihood import LearnedLikelihood
from ._method import DEFAULT_TRAINING, AbstractPotentialMethod
from ._posterior import AbstractPotentialPosterior
from ._support import AbstractSupport, Bijection


class LikelihoodNet(eqx.Module):
    """One network of NLE: a conditional flow over flattened, standardised x given θ.

    Attributes:
        flow: a flowjax conditional distribution over ``prod(x_shape)`` numbers.
        x_shape: the shape of one observation.
    """

    flow: AbstractDistribution
    x_shape: tuple[int, ...] = eqx.field(static=True)

    def log_prob(self, x_std: Array, theta_std: Array) -> Array:
        """log q(x_std | θ_std) for one pair (a scalar)."""
        return self.flow.log_prob(jnp.ravel(x_std), theta_std)

    def sample(self, key: Key, theta_std: Array, num_samples: int) -> Array:
        """``num_samples`` standardised observations given one θ, ``(num_samples, *x_shape)``."""
        draws = self.flow.sample(key, (num_samples,), condition=theta_std)
        return draws.reshape(num_samples, *self.x_shape)


class NLEPosterior(AbstractPotentialPosterior):
    """The posterior returned by :meth:`NLE.fit`: ``p(θ) Π_j q(x_j | θ)``, sampled by MCMC.

    ``log_prob`` is unnormalised (see :class:`~sbi_kit.inference.AbstractPotentialPosterior`);
    ``x_o`` may be a stack ``(n_obs, *x_shape)`` of i.i.d. observations. :meth:`likelihood`
    gives the learned likelihood as a numpyro distribution, for use inside numpyro models.

    Attributes:
        net: the trained :class:`LikelihoodNet` (a leading ensemble axis on every array).
        prior: the prior the posterior was trained with.
        theta_standardizer, x_standardizer: the learned z-scoring.
        method: the :class:`NLE` configuration that trained it.
    """

    net: LikelihoodNet
    prior: dist.Distribution
    theta_standardizer: Standardizer
    x_standardizer: Standardizer
    method: NLE = eqx.field(static=True)

    def net_potential(self, net: LikelihoodNet, theta_std: Array, x_std: Array) -> Array:
        return net.log_prob(x_std, theta_std)

    def likelihood(self, theta: Array) -> LearnedLikelihood:
        """The learned likelihood q(x | θ) as a numpyro ``Distribution``.

        Args:
            theta: parameters, shape ``(..., dim_theta)`` inside the prior's support.

        Returns:
            a distribution with event shape ``x_shape`` and batch shape ``theta.shape[:-1]``;
            ``numpyro.sample("x", posterior.likelihood(theta), obs=x)`` uses it in a model.
        """
        return LearnedLikelihood(self, theta)


class NLE(AbstractPotentialMethod):
    """Neural likelihood estimation (Papamakarios, Sterratt & Murray 2019).

    A conditional normalizing flow q(x | θ) is trained by maximum likelihood on simulated pairs;
    the posterior ``p(θ) Π_j q(x_j | θ)`` is sampled by MCMC (``sk.mcmc``), so it conditions on
    any number of i.i.d. observations with one trained network. All options are keywords.

    Args:
        flow: flow spec for x given θ (:class:`sk.estimators.NSF` by default).
        training: :class:`sk.Training` settings; by default
            ``sk.Training(batch_size=50, patience=100)`` (docs/nle.md says why). A
            ``training=`` replaces all of it: to change one setting and keep the others, pass
            ``dataclasses.replace(sk.NLE().training, max_epochs=...)``.
        ensemble_size: independently initialised flows; the likelihood is their mixture.
        support: how θ is presented to the flow: :class:`sk.inference.Bijection` (default;
            unconstrained) or :class:`sk.inference.Rejection` (θ itself). MCMC always runs in
            the unconstrained space of the prior.
        mcmc: :class:`sk.mcmc.MCMCConfig` of the posterior's sampler.

    Examples:
        >>> import jax, jax.numpy as jnp, sbi_kit as sk
        >>> task = sk.tasks.get("gaussian_linear")
        >>> theta, x = sk.simulate(jax.random.key(0), task, 300)
        >>> nle = sk.NLE(flow=sk.estimators.MAF(layers=1, width=8, depth=1),
        ...              training=sk.Training(max_epochs=2))
        >>> posterior = nle.fit(jax.random.key(1), theta, x, prior=task.prior, progress=False)
        >>> posterior.likelihood(jnp.zeros(10)).log_prob(task.observation(1)).shape
        ()
    """

    flow: AbstractFlow = eqx.field(default=NSF(), kw_only=True)
    training: Training = eqx.field(default=DEFAULT_TRAINING, kw_only=True)
    ensemble_size: int = eqx.field(default=1, kw_only=True)
    support: AbstractSupport = eqx.field(default=Bijection(), kw_only=True)
    mcmc: MCMCConfig = eqx.field(default=MCMCConfig(), kw_only=True)

    def __check_init__(self):
        if not isinstance(self.flow, AbstractFlow):
            raise TypeError(
                f"NLE: `flow` must be a flow spec such as sk.estimators.NSF(), got {self.flow!r}."
            )

    def build_net(self, key: Key, dim_theta: int, x_shape: tuple[int, ...]) -> LikelihoodNet:
        return LikelihoodNet(self.flow.build(key, math.prod(x_shape), dim_theta), tuple(x_shape))

    def loss(self, net: LikelihoodNet, theta: Array, x: Array, key: Key) -> Array:
        """The negative log-density of each standardised x under the flow given its θ."""
        del key
        return -jax.vmap(net.log_prob)(x, theta)

    def posterior(
        self,
        net: LikelihoodNet,
        prior: dist.Distribution,
        theta_standardizer: Standardizer,
        x_standardizer: Standardizer,
    ) -> NLEPosterior:
        return NLEPosterior(net, prior, theta_standardizer, x_standardizer, self)
