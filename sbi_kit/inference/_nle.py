"""Neural likelihood estimation (NLE): a conditional flow q(x | θ), MCMC on prior × likelihood."""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
from flowjax.distributions import AbstractDistribution
from jaxtyping import Array

from .._types import Key
from ..estimators import MAF, NSF, AbstractFlow, BestOf, Standardizer
from ..mcmc import MCMCConfig
from ..training import Training
from ._likelihood import LearnedLikelihood
from ._method import DEFAULT_TRAINING, AbstractPotentialMethod, check_flow, flow_alternatives
from ._posterior import AbstractPotentialPosterior, constant_mismatch
from ._support import AbstractSupport, Bijection


class LikelihoodNet(eqx.Module):
    """One network of NLE: a conditional flow over the flattened, standardised components of x
    that varied in the training data, given θ.

    Components that took one value in every training simulation (``constant``) are left out of
    the flow: the likelihood puts all their mass on that value, which is 0 once standardised
    (their z-scoring's ``loc`` is the value itself). A flow fitted to a constant instead grows
    an ever narrower spike there, which slows training and degrades the other components
    (docs/nle.md measures it).

    Attributes:
        flow: a flowjax conditional distribution over ``prod(x_shape) - len(constant)`` numbers.
        x_shape: the shape of one observation.
        constant: flat indices of the components left out (sorted; ``()`` for none).
    """

    flow: AbstractDistribution
    x_shape: tuple[int, ...] = eqx.field(static=True)
    constant: tuple[int, ...] = eqx.field(static=True, default=())

    def _varying(self) -> np.ndarray:
        return np.setdiff1d(np.arange(math.prod(self.x_shape)), self.constant)

    def varying_log_prob(self, x_std: Array, theta_std: Array) -> Array:
        """log q of the varying components of ``x_std`` given θ (the training loss's term)."""
        return self.flow.log_prob(jnp.ravel(x_std)[self._varying()], theta_std)

    def log_prob(self, x_std: Array, theta_std: Array) -> Array:
        """log q(x_std | θ_std) for one pair (a scalar): ``-inf`` where a left-out component
        is not at its training value."""
        lp = self.varying_log_prob(x_std, theta_std)
        if not self.constant:
            return lp
        at_value = jnp.all(jnp.ravel(x_std)[np.asarray(self.constant)] == 0)
        return jnp.where(at_value, lp, -jnp.inf)

    def sample(self, key: Key, theta_std: Array, num_samples: int) -> Array:
        """``num_samples`` standardised observations given one θ, ``(num_samples, *x_shape)``;
        left-out components are 0 (their training value, standardised)."""
        draws = self.flow.sample(key, (num_samples,), condition=theta_std)
        if self.constant:
            full = jnp.zeros((num_samples, math.prod(self.x_shape)), draws.dtype)
            draws = full.at[:, self._varying()].set(draws)
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

    @property
    def x_constant(self) -> tuple[int, ...]:
        """Flat indices of the components of x that were constant in the training data; the
        learned likelihood puts all their mass on that value (:class:`LikelihoodNet`)."""
        return self.net.constant

    def check_observed_values(self, x_o: Array, fn: str) -> None:
        """Raises ``ValueError`` if a concrete ``x_o`` differs from the training data's value
        in a component that was constant there (:attr:`x_constant`): the learned likelihood
        gives it probability zero, so there is no posterior to sample. ``log_prob`` and
        ``sample`` call it."""
        if not self.x_constant or isinstance(x_o, jax.core.Tracer):
            return
        cols, stack, value, off = constant_mismatch(self, x_o)
        if off.any():
            row, k = (int(i[0]) for i in np.nonzero(off))
            where = f"observation {row} of `x_o`" if stack.shape[0] > 1 else "`x_o`"
            count = int(off.sum())
            raise ValueError(
                f"{fn}: component {int(cols[k])} of {where} is {float(stack[row, k]):.6g}, but "
                f"it was {float(value[k]):.6g} in every training simulation "
                f"({count} value{'s' if count > 1 else ''} off in all); the learned likelihood "
                "puts all its mass on that value, so this x_o has probability zero under it. "
                "Check x_o, or train on simulations that vary there."
            )

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
        flow: flow spec for x given θ, or a :class:`sk.estimators.BestOf` of several; by
            default ``BestOf((NSF(), MAF()))``: both are trained and the one with the lower
            validation loss is kept (a spline flow was better on two_moons and sir, an affine
            one on slcp and gaussian_linear; docs/nle.md).
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

    flow: AbstractFlow | BestOf = eqx.field(default=BestOf((NSF(), MAF())), kw_only=True)
    training: Training = eqx.field(default=DEFAULT_TRAINING, kw_only=True)
    ensemble_size: int = eqx.field(default=1, kw_only=True)
    support: AbstractSupport = eqx.field(default=Bijection(), kw_only=True)
    mcmc: MCMCConfig = eqx.field(default=MCMCConfig(), kw_only=True)

    def __check_init__(self):
        check_flow("NLE", self.flow)

    def alternatives(self, init=None):
        return flow_alternatives(self, self.flow, init)

    def build_net(self, key: Key, dim_theta: int, x_shape: tuple[int, ...]) -> LikelihoodNet:
        return self.build_net_with_constants(key, dim_theta, x_shape, ())

    def build_net_with_constants(
        self, key: Key, dim_theta: int, x_shape: tuple[int, ...], x_constant: tuple[int, ...]
    ) -> LikelihoodNet:
        """A flow over the components of x outside ``x_constant`` (see :class:`LikelihoodNet`)."""
        size = math.prod(x_shape)
        constant = tuple(sorted({int(j) for j in x_constant}))
        if any(j < 0 or j >= size for j in constant):
            raise ValueError(
                f"NLE: `x_constant` indexes components of an observation of {size} numbers, "
                f"got {list(constant)}."
            )
        if len(constant) == size:
            raise ValueError(
                f"NLE: every one of the {size} components of x is constant in the training data; "
                "there is no likelihood to learn."
            )
        flow = self.flow.build(key, size - len(constant), dim_theta)
        return LikelihoodNet(flow, tuple(x_shape), constant)

    def loss(self, net: LikelihoodNet, theta: Array, x: Array, key: Key) -> Array:
        """The negative log-density of each standardised x's varying components under the flow
        given its θ."""
        del key
        return -jax.vmap(net.varying_log_prob)(x, theta)

    def posterior(
        self,
        net: LikelihoodNet,
        prior: dist.Distribution,
        theta_standardizer: Standardizer,
        x_standardizer: Standardizer,
    ) -> NLEPosterior:
        return NLEPosterior(net, prior, theta_standardizer, x_standardizer, self)
