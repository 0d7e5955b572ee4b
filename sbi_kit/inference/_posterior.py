"""The posteriors that inference methods return: abstract bases for the two kinds.

* :class:`AbstractDensityPosterior`: the network defines a density over (standardised,
  unconstrained) parameters; ``sample`` and ``log_prob`` follow from two per-network methods
  (NPE; later NPSE / FMPE through the probability-flow ODE).
* :class:`AbstractPotentialPosterior`: the network defines a potential (a learned
  log-likelihood or log-ratio); the posterior is ``log prior + potential``, known up to a
  constant and sampled by MCMC (NLE, NRE).

Concrete posteriors are final classes that declare the fields named here as ``AbstractVar``.
"""

from __future__ import annotations

import abc
import math
from typing import TYPE_CHECKING, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
from jaxtyping import Array

from .._checks import (
    check_finite,
    check_key,
    check_observation,
    check_positive_int,
    check_theta_points,
)
from .._types import Key
from ..estimators import Standardizer
from ..mcmc import MCMCResult, draws_per_chain, pool, resample_chains, run_chains
from ..mcmc import sample as mcmc_sample
from ._metadata import metadata, with_metadata
from ._support import inside

if TYPE_CHECKING:
    from ..training import History
    from ._method import AbstractMethod, AbstractPotentialMethod


class AbstractPosterior(eqx.Module):
    """A trained posterior: an ``eqx.Module`` (pytree) that can be jitted, vmapped and saved.

    Every posterior can ``sample``; those whose method defines a density (normalised or up to a
    constant) derive from :class:`AbstractDensityPosterior` or
    :class:`AbstractPotentialPosterior` and also have ``log_prob``.

    Every posterior holds the trained network(s) ``net`` (arrays with a leading ensemble axis),
    the ``prior``, the z-scoring of parameters and observations, and the ``method`` that
    trained it (a static field: a small frozen configuration). Its training ``history`` and
    ``calibration`` report travel with the object but are not pytree fields (see
    :mod:`sbi_kit.inference._metadata`): jitted calls never hash them, and posteriors that
    differ only in them share compiled code.

    Attributes:
        net: the trained network(s); every array has a leading ensemble axis.
        prior: the prior the posterior was trained with.
        theta_standardizer: z-scoring of the (unconstrained) parameters.
        x_standardizer: z-scoring of observations.
        method: the configuration that trained it.
    """

    net: eqx.AbstractVar[eqx.Module]
    prior: eqx.AbstractVar[dist.Distribution]
    theta_standardizer: eqx.AbstractVar[Standardizer]
    x_standardizer: eqx.AbstractVar[Standardizer]
    method: eqx.AbstractVar[AbstractMethod]

    @property
    def dim_theta(self) -> int:
        """Number of parameters."""
        return int(self.theta_standardizer.loc.shape[0])

    @property
    def x_shape(self) -> tuple[int, ...]:
        """Shape of one observation."""
        return tuple(self.x_standardizer.loc.shape)

    @property
    def x_constant(self) -> tuple[int, ...]:
        """Flat indices of the components of x that the networks leave out because they were
        constant in the training data (only methods that model x's density do: NLE); ``()``
        for the others, which condition on every component."""
        return ()

    @property
    def ensemble_size(self) -> int:
        """Number of networks in the ensemble."""
        return int(jax.tree_util.tree_leaves(eqx.filter(self.net, eqx.is_array))[0].shape[0])

    @property
    def history(self) -> History | None:
        """The training history (``None`` on a copy made by a pytree transformation)."""
        return metadata(self).history

    @property
    def calibration(self):
        """The attached :class:`~sbi_kit.diagnostics.CalibrationReport`, or ``None``."""
        return metadata(self).calibration

    def with_metadata(self, **changes):
        """A copy of this posterior (arrays shared) with new ``history`` / ``calibration``."""
        return with_metadata(self, **changes)

    def _transform(self) -> dist.transforms.Transform:
        """The map from the space the networks learn in onto θ (see ``method.support``)."""
        return self.method.support.transform(self.prior)

    def _theta_std(self, theta: Array) -> Array:
        """One θ as the networks see it: unconstrained (``method.support``), then z-scored."""
        return self.theta_standardizer(self._transform().inv(theta))

    @abc.abstractmethod
    def sample(self, key: Key, x_o: Array, num_samples: int) -> Array:
        """Draws ``num_samples`` parameter vectors given ``x_o``; shape ``(num_samples, d)``."""

    default_batch_size: ClassVar[int | None] = None
    """Observations per vmapped chunk in :meth:`sample_batched` when none is given (``None``:
    all at once)."""

    def sample_batched(
        self, key: Key, x_os: Array, num_samples: int, *, batch_size: int | None = None
    ) -> Array:
        """Draws ``num_samples`` for each of many observations in one compiled call.

        The observations are the rows of ``x_os``; row ``i`` gets its own key
        (``jax.random.split(key, len(x_os))[i]``), so the draws for one row do not depend on
        the other rows or on ``batch_size``. Chunks of ``batch_size`` rows are vmapped, the
        chunks run one after another (``lax.map``), so memory holds ``batch_size ·
        num_samples`` draws at a time.

        Args:
            key: PRNG key.
            x_os: observations, shape ``(num_observations, *x_shape)``; each row is ONE
                observation (not a stack of i.i.d. ones).
            num_samples: draws per observation.
            batch_size: observations per vmapped chunk; ``None`` uses the posterior's
                ``default_batch_size`` (all at once for flows; 1 for MCMC posteriors, whose
                vmapped chains would wait for the slowest one).

        Returns:
            shape ``(num_observations, num_samples, dim_theta)``.

        Examples:
            >>> import jax, sbi_kit as sk
            >>> task = sk.tasks.get("gaussian_linear")
            >>> theta, x = sk.simulate(jax.random.key(0), task, 300)
            >>> npe = sk.NPE(flow=sk.estimators.MAF(layers=1, width=8, depth=1),
            ...              training=sk.Training(max_epochs=2))
            >>> posterior = npe.fit(jax.random.key(1), theta, x, prior=task.prior,
            ...                     progress=False)
            >>> posterior.sample_batched(jax.random.key(2), x[:100], 50).shape
            (100, 50, 10)
        """
        fn = f"{type(self).__name__}.sample_batched"
        key = check_key(key, fn)
        num_samples = check_positive_int(num_samples, "num_samples", fn)
        x_os = jnp.asarray(x_os)
        if x_os.ndim != len(self.x_shape) + 1 or tuple(x_os.shape[1:]) != self.x_shape:
            raise ValueError(
                f"{fn}: `x_os` must have shape (num_observations, "
                f"{', '.join(map(str, self.x_shape))}), one observation per row, got shape "
                f"{x_os.shape}."
            )
        if x_os.shape[0] == 0:
            raise ValueError(f"{fn}: `x_os` holds no observations (shape {x_os.shape}).")
        x_os = check_finite(x_os, "x_os", fn)
        chunk = self.default_batch_size if batch_size is None else batch_size
        if chunk is None:
            chunk = int(x_os.shape[0])
        chunk = min(check_positive_int(chunk, "batch_size", fn), int(x_os.shape[0]))
        return _sample_batched(self, key, x_os, num_samples, chunk)

    @abc.abstractmethod
    def draw(self, key: Key, x_o: Array, num_samples: int) -> Array:
        """What :meth:`sample` returns, without its input checks or any host round-trip.

        Traceable, so it runs inside ``jit``, ``vmap`` and ``lax.map`` (``calibrate`` uses it to
        draw for many observations in one compiled pass). ``x_o`` must already be an array of
        an accepted shape; a wrong one gives a shape error or a wrong answer, so users call
        :meth:`sample`.
        """


@eqx.filter_jit
def _sample_batched(
    posterior: AbstractPosterior, key: Key, x_os: Array, num_samples: int, batch_size: int
) -> Array:
    keys = jax.random.split(key, x_os.shape[0])
    return jax.lax.map(
        lambda args: posterior.draw(args[0], args[1], num_samples),
        (keys, x_os),
        batch_size=batch_size,
    )


def constant_mismatch(posterior: AbstractPosterior, x: Array):
    """Where rows of ``x`` (``(n, *x_shape)``) leave the training value of a component that
    ``posterior``'s networks leave out (:attr:`AbstractPosterior.x_constant`; the value is the
    x z-scoring's ``loc``, exact for a constant component).

    Returns:
        ``(cols, values, training, off)``: the left-out flat indices ``(k,)``, ``x``'s values
        there ``(n, k)``, the training values ``(k,)`` and ``values != training`` ``(n, k)``.
    """
    cols = np.asarray(posterior.x_constant, dtype=int)
    values = np.asarray(x).reshape(x.shape[0], -1)[:, cols]
    training = np.asarray(posterior.x_standardizer.loc).reshape(-1)[cols]
    return cols, values, training, values != training


def _restrict(lp: Array, theta: Array, prior: dist.Distribution) -> Array:
    """``lp`` inside the prior's support, ``-inf`` outside it, NaN for a non-finite θ."""
    within = jnp.all(prior.support(theta))
    out = jnp.where(within & jnp.isfinite(lp), lp, -jnp.inf)
    return jnp.where(jnp.all(jnp.isfinite(theta)), out, jnp.nan)


def _rows(fn, theta: Array, x_o: Array) -> Array:
    """``fn(theta, x_o)`` for one θ ``(d,)`` or each row of ``(n, d)``."""
    if theta.ndim == 1:
        return fn(theta, x_o)
    return jax.vmap(fn, in_axes=(0, None))(theta, x_o)


@eqx.filter_jit
def _jitted_rows(fn, theta: Array, x_o: Array) -> Array:
    """:func:`_rows`, compiled; ``fn`` is a bound method of a posterior (a pytree)."""
    return _rows(fn, theta, x_o)


def _ladj(transform, z: Array) -> Array:
    """log |dθ/dz| of ``transform`` at one unconstrained vector ``z`` (a scalar)."""
    return jnp.sum(transform.log_abs_det_jacobian(z, transform(z)))


class AbstractDensityPosterior(AbstractPosterior):
    """A posterior whose networks define a density over standardised, unconstrained parameters.

    With ``support=Bijection()`` the networks act on z-scored z = T⁻¹(θ), where T maps ℝᵈ onto
    the prior's support, so ``log q(θ|x) = log q_z(z|x) − log|dT/dz|`` and no sample falls
    outside the support. With ``support=Rejection()`` they act on z-scored θ and draws outside
    the support are rejected (see :meth:`acceptance_rate`). An ensemble is the equal-weight
    mixture of its members.

    A subclass provides two methods for ONE network and standardised inputs:
    :meth:`net_log_prob` and :meth:`net_sample`; everything else (standardisation, the
    support's Jacobian, ensembles, rejection, input checks) is done here.
    """

    @abc.abstractmethod
    def net_log_prob(self, net, theta_std: Array, x_std: Array) -> Array:
        """log-density of one standardised parameter vector under one network (a scalar)."""

    @abc.abstractmethod
    def net_sample(self, net, key: Key, x_std: Array, num_samples: int) -> Array:
        """``num_samples`` standardised draws from one network, shape ``(num_samples, d)``."""

    def _log_prob_z(self, z: Array, x_o: Array) -> Array:
        """log q_z(z | x_o) for one unconstrained z, mixed over the ensemble."""
        z_std = self.theta_standardizer(z)
        x_std = self.x_standardizer(x_o)
        lp = eqx.filter_vmap(lambda net: self.net_log_prob(net, z_std, x_std))(self.net)
        return jax.nn.logsumexp(lp) - math.log(lp.shape[0]) - self.theta_standardizer.log_scale()

    def _log_prob_one(self, theta: Array, x_o: Array) -> Array:
        transform = self._transform()
        z = transform.inv(theta)
        return _restrict(self._log_prob_z(z, x_o) - _ladj(transform, z), theta, self.prior)

    def log_prob(self, theta: Array, x_o: Array) -> Array:
        """Posterior log-density (normalised; see the class docstring for ``Rejection``).

        Args:
            theta: shape ``(dim_theta,)`` or ``(n, dim_theta)``.
            x_o: one observation of shape ``x_shape``.

        Returns:
            shape ``()`` or ``(n,)``; ``-inf`` outside the prior's support, NaN for a
            non-finite θ.
        """
        fn = f"{type(self).__name__}.log_prob"
        theta = check_theta_points(theta, self.dim_theta, fn)
        x_o = check_observation(x_o, self.x_shape, fn, iid=False)
        return _jitted_rows(self._log_prob_one, theta, x_o)

    def sample(self, key: Key, x_o: Array, num_samples: int) -> Array:
        """Draws from the posterior.

        Args:
            key: PRNG key.
            x_o: one observation of shape ``x_shape``.
            num_samples: number of samples.

        Returns:
            shape ``(num_samples, dim_theta)``, all inside the prior's support.
        """
        fn = f"{type(self).__name__}.sample"
        key = check_key(key, fn)
        num_samples = check_positive_int(num_samples, "num_samples", fn)
        x_o = check_observation(x_o, self.x_shape, fn, iid=False)
        return _sample(self, key, x_o, num_samples)

    def draw(self, key: Key, x_o: Array, num_samples: int) -> Array:
        return _sample(self, key, x_o, num_samples)

    def acceptance_rate(self, key: Key, x_o: Array, num_samples: int = 10_000) -> Array:
        """The share of the networks' draws that lie inside the prior's support, given ``x_o``.

        Under ``support=Rejection()`` this is the acceptance rate of sampling (and the mass
        that ``log_prob`` integrates to); under ``Bijection()`` it is 1 by construction.

        Args:
            key: PRNG key.
            x_o: one observation of shape ``x_shape``.
            num_samples: draws used for the estimate.

        Returns:
            a scalar in [0, 1].
        """
        fn = f"{type(self).__name__}.acceptance_rate"
        key = check_key(key, fn)
        num_samples = check_positive_int(num_samples, "num_samples", fn)
        x_o = check_observation(x_o, self.x_shape, fn, iid=False)
        return _acceptance_rate(self, key, x_o, num_samples)

    def _draw(self, key: Key, x_std: Array, num_samples: int) -> Array:
        """``num_samples`` draws of the ensemble mixture mapped to θ (before any rejection)."""
        k = self.ensemble_size
        key_member, key_net = jax.random.split(key)
        keys = jax.random.split(key_net, k)
        draws = eqx.filter_vmap(lambda net, kk: self.net_sample(net, kk, x_std, num_samples))(
            self.net, keys
        )
        member = jax.random.randint(key_member, (num_samples,), 0, k)
        z_std = draws[member, jnp.arange(num_samples)]
        z = jax.vmap(self.theta_standardizer.inverse)(z_std)
        return jax.vmap(self._transform())(z)


@eqx.filter_jit
def _sample(posterior: AbstractDensityPosterior, key: Key, x_o: Array, num_samples: int) -> Array:
    x_std = posterior.x_standardizer(x_o)
    return posterior.method.support.draw(
        lambda k, m: posterior._draw(k, x_std, m),
        lambda theta: inside(posterior.prior, theta),
        key,
        num_samples,
    )


@eqx.filter_jit
def _acceptance_rate(
    posterior: AbstractDensityPosterior, key: Key, x_o: Array, num_samples: int
) -> Array:
    theta = posterior._draw(key, posterior.x_standardizer(x_o), num_samples)
    return jnp.mean(inside(posterior.prior, theta))


class AbstractPotentialPosterior(AbstractPosterior):
    """A posterior known up to a constant: ``log p(θ) + Σ_j potential(θ, x_j)``, sampled by MCMC.

    The networks define a potential of standardised, unconstrained parameters and ONE
    standardised observation: a learned log-likelihood (NLE) or log-ratio (NRE). ``x_o`` may be
    one observation or a stack ``(n_obs, *x_shape)`` of i.i.d. observations whose potentials
    add up (the prior counted once). An ensemble averages the members' likelihoods (a
    log-mean-exp of the potentials).

    A subclass provides :meth:`net_potential` for ONE network; :meth:`sample` runs
    ``sk.mcmc.sample`` on :meth:`log_prob` with the method's ``mcmc`` settings.
    """

    method: eqx.AbstractVar[AbstractPotentialMethod]
    default_batch_size: ClassVar[int | None] = 1

    @abc.abstractmethod
    def net_potential(self, net, theta_std: Array, x_std: Array) -> Array:
        """The potential of one network at one standardised (θ, x) pair (a scalar)."""

    def check_observed_values(self, x_o: Array, fn: str) -> None:
        """Raises ``ValueError`` if a concrete, shape-checked ``x_o`` (a stack
        ``(n_obs, *x_shape)``) has probability zero under the learned potential. Called by
        :meth:`log_prob` and :meth:`sample`; by default every finite ``x_o`` is possible."""

    def _potential_one(self, theta: Array, x_o: Array) -> Array:
        """``Σ_j potential(θ, x_j)`` for one θ and a stack ``(n_obs, *x_shape)``, the ensemble
        members' likelihoods averaged (a log-mean-exp)."""
        z_std = self._theta_std(theta)
        x_std = jax.vmap(self.x_standardizer)(x_o)

        def member(net):
            return jnp.sum(jax.vmap(lambda xs: self.net_potential(net, z_std, xs))(x_std))

        potentials = eqx.filter_vmap(member)(self.net)
        return jax.nn.logsumexp(potentials) - math.log(potentials.shape[0])

    def _log_prob_one(self, theta: Array, x_o: Array) -> Array:
        lp = self._potential_one(theta, x_o) + self.prior.log_prob(theta)
        return _restrict(lp, theta, self.prior)

    def log_prob(self, theta: Array, x_o: Array) -> Array:
        """The UNNORMALISED log posterior ``log p(θ) + Σ_j potential(θ, x_j)``.

        It differs from the normalised log posterior by a constant that depends on ``x_o``
        only: fine for MCMC, HPD regions and ranks, not for comparing densities across
        observations.

        Args:
            theta: shape ``(dim_theta,)`` or ``(n, dim_theta)``.
            x_o: one observation ``x_shape`` or a stack ``(n_obs, *x_shape)`` of i.i.d. ones.

        Returns:
            shape ``()`` or ``(n,)``; ``-inf`` outside the prior's support, NaN for a
            non-finite θ.

        Raises:
            ValueError: for a θ or ``x_o`` of the wrong shape, and for an ``x_o`` that
                :meth:`check_observed_values` refuses (NLE: off a component that was constant
                in the training data).
        """
        fn = f"{type(self).__name__}.log_prob"
        theta = check_theta_points(theta, self.dim_theta, fn)
        stack = check_observation(x_o, self.x_shape, fn, iid=True).reshape(-1, *self.x_shape)
        self.check_observed_values(stack, fn)
        return _jitted_rows(self._log_prob_one, theta, stack)

    def sample(
        self, key: Key, x_o: Array, num_samples: int, *, return_diagnostics: bool = False
    ) -> Array | tuple[Array, MCMCResult]:
        """Draws from the posterior by MCMC (``sk.mcmc.sample`` with ``method.mcmc``).

        The chains run on :meth:`log_prob` in the prior's unconstrained space, vectorised,
        started at prior draws resampled by their weight (of 10,000); warm-up and sampling are
        one program, compiled once per posterior structure and sizes (another observation, or
        another posterior trained with the same configuration, reuses it). By default
        (``method.mcmc.resampling``, :class:`sk.mcmc.ChainMixtureResampling`) each chain keeps
        a few draws and the samples are resampled by importance weight through a Student-t
        mixture fitted to the chains, so that modes that chains stay in get their proper mass;
        a weight effective sample size below its minimum gives a ``RuntimeWarning``. Without
        resampling, a split-R̂ above ``method.mcmc.max_r_hat`` does. Ask for the diagnostics
        to see R̂, ESS and the weights' ESS.

        Args:
            key: PRNG key.
            x_o: one observation ``x_shape`` or a stack ``(n_obs, *x_shape)`` of i.i.d. ones.
            num_samples: pooled draws.
            return_diagnostics: also return the :class:`~sbi_kit.mcmc.MCMCResult`.

        Returns:
            shape ``(num_samples, dim_theta)`` (and the MCMC result if asked).

        Raises:
            ValueError: for an ``x_o`` of the wrong shape or non-finite, and for one that
                :meth:`check_observed_values` refuses (NLE: off a component that was constant
                in the training data, which has probability zero).
        """
        fn = f"{type(self).__name__}.sample"
        key = check_key(key, fn)
        num_samples = check_positive_int(num_samples, "num_samples", fn)
        stack = check_observation(x_o, self.x_shape, fn, iid=True).reshape(-1, *self.x_shape)
        self.check_observed_values(stack, fn)
        config = self.method.mcmc
        result = mcmc_sample(
            key,
            eqx.Partial(self._log_prob_one, x_o=stack),
            self.prior,
            num_samples,
            sampler=config.sampler,
            num_chains=config.num_chains,
            num_warmup=config.num_warmup,
            thinning=config.thinning,
            resampling=config.resampling,
            max_r_hat=config.max_r_hat,
            raise_on_poor_mixing=False,
        )
        return (result.samples, result) if return_diagnostics else result.samples

    def draw(self, key: Key, x_o: Array, num_samples: int) -> Array:
        """:meth:`sample` without checks, R̂ or ESS (see :meth:`AbstractPosterior.draw`).

        The chains run exactly as in :meth:`sample`; nothing checks that they mixed.
        """
        config = self.method.mcmc
        key_run, key_pool = jax.random.split(key)
        log_density = eqx.Partial(self._log_prob_one, x_o=x_o.reshape(-1, *self.x_shape))
        resampling = config.resampling
        chains, _ = run_chains(
            key_run,
            log_density,
            self.prior,
            sampler=config.sampler,
            num_chains=config.num_chains,
            num_warmup=config.num_warmup,
            num_draws=draws_per_chain(num_samples, config.num_chains, resampling),
            thinning=config.thinning,
        )
        if resampling is None:
            return pool(key_pool, chains, num_samples)
        draws, _ = resample_chains(
            key_pool, log_density, self.prior, chains, num_samples, resampling
        )
        return draws
