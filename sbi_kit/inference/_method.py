"""The method interface: what every inference method provides, and the one ``fit`` path.

A method is a frozen configuration (an ``eqx.Module``). It writes only

* :meth:`AbstractMethod.build_net`: one untrained network for given dimensions;
* :meth:`AbstractMethod.loss`: the per-example loss of one network on a batch of standardised
  (parameter, observation) pairs;
* :meth:`AbstractMethod.posterior`: the posterior class that wraps trained networks.

:meth:`AbstractMethod.fit` does the rest, identically for every method: input checks, the
support transform of bounded priors, z-scoring, an ensemble of independently initialised
networks (one ``vmap``), the jitted training loop and the training history. ``sk.load`` rebuilds
a posterior's skeleton with :meth:`AbstractMethod.init` and reads the saved arrays into it.
"""

from __future__ import annotations

import abc
import dataclasses
import math
import warnings
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
from jaxtyping import Array

from .._checks import as_float_array, check_finite_rows, check_key, check_training_data
from .._one_program import one_program
from .._types import Key
from ..estimators import AbstractFlow, BestOf, Standardizer, share_closures
from ..mcmc import MCMCConfig
from ..training import Training, train
from ._posterior import AbstractPosterior, constant_mismatch
from ._support import AbstractSupport, check_inside

#: The default training of NPE, NLE and NRE: smaller batches and a longer patience than
#: :class:`sk.Training`'s (200, 20), which follow the ``sbi`` package. Networks stopped after 20
#: epochs without a new best were far from converged on sbibm's tasks, most of all with 10^3
#: simulations, where an epoch is a handful of steps: NPE on two_moons 0.770 -> 0.705 (C2ST,
#: seed 0), NLE on sir 0.951 -> 0.737, NRE on two_moons at 10^4 0.768 -> 0.601, at 2-4x the
#: training time (docs/training.md has the measurements).
DEFAULT_TRAINING = Training(batch_size=50, patience=100)


class AbstractMethod(eqx.Module):
    """An inference method: a frozen configuration whose :meth:`fit` returns a posterior.

    Concrete methods (:class:`~sbi_kit.NPE`, ...) are final classes that declare these fields
    and implement :meth:`build_net`, :meth:`loss` and :meth:`posterior`; see
    ``docs/adding-a-method.md``.

    Attributes:
        training: :class:`~sbi_kit.Training` settings.
        ensemble_size: independently initialised networks trained together (one ``vmap``).
        support: how posterior mass is kept inside the prior's support
            (:class:`Bijection` or :class:`Rejection`).
    """

    training: eqx.AbstractVar[Training]
    ensemble_size: eqx.AbstractVar[int]
    support: eqx.AbstractVar[AbstractSupport]

    def __check_init__(self):
        name = type(self).__name__
        if not isinstance(self.training, Training):
            raise TypeError(f"{name}: `training` must be sk.Training(...), got {self.training!r}.")
        if (
            isinstance(self.ensemble_size, bool)
            or not isinstance(self.ensemble_size, int)
            or self.ensemble_size < 1
        ):
            raise ValueError(
                f"{name}: ensemble_size must be a positive integer, got {self.ensemble_size!r}."
            )
        if not isinstance(self.support, AbstractSupport):
            raise TypeError(
                f"{name}: `support` must be sk.inference.Bijection() or "
                f"sk.inference.Rejection(), got {self.support!r}."
            )

    @abc.abstractmethod
    def build_net(self, key: Key, dim_theta: int, x_shape: tuple[int, ...]) -> eqx.Module:
        """One untrained network for ``dim_theta`` parameters and observations of ``x_shape``.

        It is traced: :meth:`init` builds every ensemble member in one jitted program (a
        ``vmap`` over their keys), so the network may use ``key`` only through JAX operations
        (no ``int(...)`` or NumPy on a random draw); arrays that closures capture are filled
        in after.
        """

    def build_net_with_constants(
        self, key: Key, dim_theta: int, x_shape: tuple[int, ...], x_constant: tuple[int, ...]
    ) -> eqx.Module:
        """One untrained network for training data in which the components ``x_constant``
        (flat indices into one observation) took the same value in every simulation.

        By default :meth:`build_net`: a constant input is harmless to a network that
        conditions on x. A method that models the density of x overrides it to leave those
        components out (:class:`~sbi_kit.NLE`: a flow fitted to a constant grows a spike).
        """
        del x_constant
        return self.build_net(key, dim_theta, x_shape)

    @abc.abstractmethod
    def loss(self, net: eqx.Module, theta: Array, x: Array, key: Key) -> Array:
        """Per-example losses of ONE network on a batch.

        Args:
            net: one network (as built by :meth:`build_net`, being trained).
            theta: standardised, unconstrained parameters ``(batch, dim_theta)``.
            x: standardised observations ``(batch, *x_shape)``.
            key: PRNG key for losses that draw noise, times or contrasting pairs.

        Returns:
            shape ``(batch,)``; training minimises their mean.
        """

    @abc.abstractmethod
    def posterior(
        self,
        net: eqx.Module,
        prior: dist.Distribution,
        theta_standardizer: Standardizer,
        x_standardizer: Standardizer,
    ) -> AbstractPosterior:
        """The posterior holding ``net`` (a stack of ``ensemble_size`` networks)."""

    def alternatives(self, init: AbstractPosterior | None = None) -> dict[str, AbstractMethod]:
        """The configurations :meth:`fit` trains and chooses between, by label.

        By default this method alone. A method whose flow is a
        :class:`~sbi_kit.estimators.BestOf` returns one configuration per candidate flow (for
        a warm start from ``init``, only the one that continues ``init``'s networks);
        :meth:`fit` trains each and keeps the lowest validation loss.
        """
        del init
        return {type(self).__name__: self}

    def init(
        self,
        key: Key,
        dim_theta: int,
        x_shape: tuple[int, ...],
        prior: dist.Distribution,
        *,
        x_constant: tuple[int, ...] = (),
    ) -> AbstractPosterior:
        """An untrained posterior with identity z-scoring (the skeleton ``sk.load`` reads into).

        ``x_constant``: flat indices of the components of x that were constant in the training
        data (see :meth:`build_net_with_constants`); ``fit`` finds them, ``sk.load`` reads them
        from the file.
        """
        if len(self.alternatives()) > 1:
            raise ValueError(
                f"{type(self).__name__}.init: this method chooses between several networks "
                "when it is fitted (a BestOf flow); an untrained posterior needs one: pass "
                "one of the candidates as the flow."
            )
        x_shape = tuple(x_shape)
        x_constant = tuple(int(j) for j in x_constant)
        net = one_program(
            (self, dim_theta, x_shape, x_constant),
            lambda k: eqx.filter_vmap(
                lambda kk: self.build_net_with_constants(kk, dim_theta, x_shape, x_constant)
            )(jax.random.split(k, self.ensemble_size)),
            key,
        )
        # equal networks must look equal to jit: one compilation per layout, not per network
        net = share_closures(net)
        return self.posterior(
            net,
            prior,
            Standardizer.identity((dim_theta,)),
            Standardizer.identity(x_shape),
        )

    def fit(
        self,
        key: Key,
        theta: Array,
        x: Array,
        *,
        prior: dist.Distribution,
        progress: bool = True,
        init: AbstractPosterior | None = None,
    ) -> AbstractPosterior:
        """Trains the method on simulated pairs and returns the posterior.

        Args:
            key: PRNG key (initialisation, validation split, shuffling, loss noise).
            theta: parameters, shape ``(num_simulations, dim_theta)``, inside the prior's
                support.
            x: observations, shape ``(num_simulations, dim_x)`` (or ``(num_simulations,
                *x_shape)`` with an embedding).
            prior: numpyro distribution with event shape ``(dim_theta,)``.
            progress: show a progress bar over epochs.
            init: a posterior of this method for the same dimensions (a previous fit) to
                continue training from (a warm start, as :func:`~sbi_kit.sequential` does
                between rounds): its networks are the starting point and its z-scoring is kept
                instead of being fitted to this data. ``None`` (default): fresh networks.

        Returns:
            the trained posterior; its ``history`` says how training went. A method with a
            :class:`~sbi_kit.estimators.BestOf` flow trains every candidate with ``key`` and
            returns the posterior of the one with the lowest validation loss, bit-identical to
            a fit with that candidate alone (``history.choice`` lists them all); with ``init``
            it continues ``init``'s flow, which must be one of the candidates.

        Raises:
            TypeError: for a key that is not a JAX PRNG key, a prior that is not a numpyro
                distribution, or an ``init`` that is not a posterior of this method.
            ValueError: on mismatched shapes or lengths, too few simulations for the
                validation split, a prior of the wrong event shape, non-finite data, θ outside
                the prior's support, a column that cannot be z-scored, or an ``init`` whose
                networks or dimensions differ from this method's.
            FloatingPointError: when training never reached a finite validation loss (with a
                :class:`~sbi_kit.estimators.BestOf` flow: for every candidate).

        Warns:
            UserWarning: naming the columns of ``theta`` or ``x`` that are constant (passed
                through unscaled), nearly constant (one value in all but a few rows), or
                whose scale is set by a few extreme values.
            RuntimeWarning: with a :class:`~sbi_kit.estimators.BestOf` flow, naming a candidate
                left out because its validation loss was never finite.
        """
        name = type(self).__name__
        fn = f"{name}.fit"
        key = check_key(key, fn)
        if init is not None and not (
            isinstance(init, AbstractPosterior) and type(init.method) is type(self)
        ):
            raise TypeError(
                f"{fn}: `init` must be a posterior of this method (an earlier {name}.fit's "
                f"result), got {type(init).__name__}."
            )
        alternatives = self.alternatives(init)
        if len(alternatives) > 1 or next(iter(alternatives.values())) is not self:
            # a BestOf flow: each candidate fitted with this key, the lowest validation loss kept
            fits = fit_each(
                alternatives,
                lambda _, m: m.fit(key, theta, x, prior=prior, progress=progress, init=init),
                fn,
            )
            return keep_lowest(fits)
        theta, x = check_training_data(
            theta, x, prior, fn, validation_fraction=self.training.validation_fraction
        )
        if init is not None and (
            init.dim_theta != theta.shape[1] or init.x_shape != tuple(x.shape[1:])
        ):
            raise ValueError(
                f"{fn}: `init` was trained for {init.dim_theta} parameters and observations of "
                f"shape {init.x_shape}; this data has {theta.shape[1]} and {tuple(x.shape[1:])}."
            )
        check_inside(prior, theta, fn, name)
        z = jax.vmap(self.support.transform(prior).inv)(theta)
        key_init, key_train = jax.random.split(key)
        if init is None:
            z_scaler = Standardizer.fit(z, name="theta", fn=fn)  # may refuse or warn: before init
            x_scaler = Standardizer.fit(x, name="x", fn=fn)
            x_constant = constant_components(x)
            posterior = self.init(
                key_init, theta.shape[1], x.shape[1:], prior, x_constant=x_constant
            )
        else:
            x_constant = init.x_constant
            _warn_if_no_longer_constant(init, x, fn)
            skeleton = self.init(
                key_init, theta.shape[1], x.shape[1:], prior, x_constant=x_constant
            )
            posterior = _warm_start(skeleton, init, fn)
            z_scaler, x_scaler = init.theta_standardizer, init.x_standardizer
        posterior = eqx.tree_at(
            lambda p: (p.theta_standardizer, p.x_standardizer), posterior, (z_scaler, x_scaler)
        )
        z_std, x_std = standardize(z_scaler, x_scaler, z, x)
        net, history = train(
            key_train,
            posterior.net,
            _PairLoss(self),
            (z_std, x_std),
            self.training,
            progress=progress,
            description=name,
            reuse=(self, theta.shape[1], tuple(x.shape[1:])),
        )
        return eqx.tree_at(lambda p: p.net, posterior, net).with_metadata(history=history)


def constant_components(x: Array) -> tuple[int, ...]:
    """Flat indices (into one observation) of the components of ``x`` ``(n, *x_shape)`` that
    take the same value in every row."""
    flat = np.asarray(x).reshape(x.shape[0], -1)
    return tuple(int(j) for j in np.flatnonzero(np.all(flat == flat[:1], axis=0)))


def _warn_if_no_longer_constant(init: AbstractPosterior, x: Array, fn: str) -> None:
    """Warns when components that ``init``'s networks leave out (constant in its training
    data) take other values in ``x``."""
    if not init.x_constant:
        return
    cols, _, training, off = constant_mismatch(init, x)
    rows = int(np.any(off, axis=1).sum())
    if rows:
        k = int(np.argmax(off.sum(axis=0)))
        warnings.warn(
            f"{fn}: {rows} of the {off.shape[0]} simulations take another value in component(s) "
            f"{cols.tolist()} of `x`, which were constant in the data `init` was trained on "
            f"(component {int(cols[k])}: {float(training[k]):.6g}), so its networks leave "
            "them out and ignore these values. Train afresh (without `init`) to model them.",
            UserWarning,
            stacklevel=3,
        )


def _warm_start(skeleton: AbstractPosterior, init: AbstractPosterior, fn: str) -> AbstractPosterior:
    """``skeleton`` (this method's untrained posterior) holding ``init``'s trained arrays.

    The network's non-array part (activations, flowjax's closures) stays the skeleton's, so the
    compiled training steps of this method are reused; ``init`` must match it array for array.
    """
    arrays = eqx.filter(init.net, eqx.is_array)
    expected = eqx.filter(skeleton.net, eqx.is_array)
    if jax.tree_util.tree_structure(arrays) != jax.tree_util.tree_structure(expected) or [
        a.shape for a in jax.tree_util.tree_leaves(arrays)
    ] != [a.shape for a in jax.tree_util.tree_leaves(expected)]:
        raise ValueError(
            f"{fn}: `init`'s networks differ from this method's (another architecture or "
            "ensemble size); warm-start only from a fit of the same method."
        )
    net = eqx.combine(arrays, eqx.filter(skeleton.net, eqx.is_array, inverse=True))
    return eqx.tree_at(lambda p: p.net, skeleton, net)


@jax.jit
def standardize(z_scaler: Standardizer, x_scaler: Standardizer, z: Array, x: Array):
    """The training data z-scored once, before training (not in every step); also APT's rounds
    (``_snpe_rounds``), which z-score with the previous round's standardisers."""
    return jax.vmap(z_scaler)(z), jax.vmap(x_scaler)(x)


class _PairLoss(eqx.Module):
    """``method.loss`` as the training loop calls it, ``(net, (theta, x), key)``; a hashable
    module, so that the compiled training steps are found again for the same method."""

    method: AbstractMethod

    def __call__(self, net, batch, key):
        theta, x = batch
        return self.method.loss(net, theta, x, key)


class AbstractPotentialMethod(AbstractMethod):
    """A method whose posterior is a learned potential sampled by MCMC (NLE, NRE).

    Attributes:
        mcmc: the :class:`~sbi_kit.mcmc.MCMCConfig` that the posterior's ``sample`` uses.
    """

    mcmc: eqx.AbstractVar[MCMCConfig]

    def __check_init__(self):
        if not isinstance(self.mcmc, MCMCConfig):
            raise TypeError(
                f"{type(self).__name__}: `mcmc` must be sk.mcmc.MCMCConfig(...), got {self.mcmc!r}."
            )


def fit_each(
    alternatives: dict[str, AbstractMethod],
    fit: Callable[[str, AbstractMethod], AbstractPosterior],
    fn: str,
) -> dict[str, AbstractPosterior]:
    """``fit(label, method)`` for every alternative, by label.

    A candidate whose training never reached a finite validation loss (``train`` raises
    ``FloatingPointError``) is left out with a ``RuntimeWarning`` naming it, as long as another
    candidate trained; when every one fails (or there is only one), the first error is raised.
    """
    fits: dict[str, AbstractPosterior] = {}
    failed: dict[str, FloatingPointError] = {}
    for label, method in alternatives.items():
        try:
            fits[label] = fit(label, method)
        except FloatingPointError as error:
            if len(alternatives) == 1:
                raise
            failed[label] = error
    if not fits:
        raise next(iter(failed.values()))
    for label, error in failed.items():
        warnings.warn(
            f"{fn}: the candidate flow {label} was left out ({error}); chose among {list(fits)}.",
            RuntimeWarning,
            stacklevel=3,
        )
    return fits


def keep_lowest(
    fits: dict[str, AbstractPosterior], scores: dict[str, float] | None = None
) -> AbstractPosterior:
    """The posterior in ``fits`` (label: posterior, trained on the same data with the same key)
    with the lowest score (the first on a tie; a non-finite score never wins unless all are),
    its history's ``choice`` listing every label's score; a single fit as it is.

    The score is each fit's lowest validation loss unless ``scores`` gives one per label
    (:func:`~sbi_kit.sequential`'s later rounds: :func:`held_out_loss` of each candidate's
    previous-round networks on the new round). :meth:`AbstractMethod.fit` and
    :func:`~sbi_kit.sequential`'s rounds choose with it."""
    if len(fits) == 1:
        return next(iter(fits.values()))
    if scores is None:
        losses = {label: _lowest_validation_loss(p) for label, p in fits.items()}
    else:
        losses = {label: _finite_or_inf(scores[label]) for label in fits}
    kept = min(losses, key=lambda label: losses[label])  # dicts keep the order tried
    history = fits[kept].history
    choice = tuple(losses.items())
    history = None if history is None else dataclasses.replace(history, choice=choice)
    return fits[kept].with_metadata(history=history)


def held_out_loss(posterior: AbstractPosterior, key: Key, theta: Array, x: Array) -> float:
    """The mean training loss of a trained posterior's networks on simulations it was not
    trained on: a test loss, to compare posteriors or to check one on fresh data.

    The loss is the one its method trains with (NPE: −log q(θ | x); NLE: −log q(x | θ); NRE:
    its classifier loss; NPSE, FMPE: their denoising / flow-matching losses), in the networks'
    own coordinates (the support transform and z-scoring of their fit), averaged over the pairs
    and over an ensemble's members; all pairs in one call. Losses that draw random numbers
    (NRE's contrasting classes, the vector fields' times and noise) are estimated with ``key``.
    Comparable between posteriors only where their z-scoring agrees (fits on the same data,
    such as the candidates of one :class:`~sbi_kit.estimators.BestOf`, which
    :func:`~sbi_kit.sequential` chooses between with it). Unlike the validation loss in
    ``history``, which chose the epoch that was kept, it is not biased towards the network
    whose validation curve happened to dip lowest.

    Args:
        posterior: a trained posterior (any method).
        key: PRNG key for losses that draw random numbers.
        theta: parameters ``(n, dim_theta)`` inside the prior's support.
        x: the observations simulated from them, ``(n, *x_shape)``.

    Returns:
        the mean loss (lower is better), a Python float.

    Raises:
        TypeError: for a ``posterior`` that is not a trained posterior or a key that is not a
            JAX PRNG key.
        ValueError: for mismatched shapes or lengths, non-finite rows, or θ outside the prior's
            support.

    Examples:
        >>> import jax, sbi_kit as sk
        >>> task = sk.tasks.get("gaussian_linear")
        >>> train, test = (sk.simulate(jax.random.key(i), task, 300, progress=False)
        ...                for i in (0, 1))
        >>> npe = sk.NPE(flow=sk.estimators.MAF(layers=1, width=16, depth=1),
        ...              training=sk.Training(max_epochs=5))
        >>> posterior = npe.fit(jax.random.key(2), train.theta, train.x, prior=task.prior,
        ...                     progress=False)
        >>> loss = sk.inference.held_out_loss(posterior, jax.random.key(3), test.theta, test.x)
        >>> isinstance(loss, float)
        True
    """
    fn = "sk.inference.held_out_loss"
    if not isinstance(posterior, AbstractPosterior):
        raise TypeError(
            f"{fn}: `posterior` must be a trained posterior (a method's fit result), got "
            f"{type(posterior).__name__}."
        )
    key = check_key(key, fn)
    theta = as_float_array(theta, "theta", fn, 2)
    x = as_float_array(x, "x", fn, len(posterior.x_shape) + 1)
    if theta.shape[1] != posterior.dim_theta or tuple(x.shape[1:]) != posterior.x_shape:
        raise ValueError(
            f"{fn}: the posterior was trained for {posterior.dim_theta} parameters and "
            f"observations of shape {posterior.x_shape}; got `theta` of shape {theta.shape} and "
            f"`x` of shape {x.shape}."
        )
    if theta.shape[0] != x.shape[0] or theta.shape[0] == 0:
        raise ValueError(
            f"{fn}: `theta` and `x` must hold the same number (≥ 1) of simulations; got "
            f"{theta.shape[0]} and {x.shape[0]}."
        )
    check_finite_rows(theta, "theta", fn)
    check_finite_rows(x, "x", fn)
    check_inside(posterior.prior, theta, fn, type(posterior.method).__name__)
    return float(_held_out_loss(posterior, theta, x, key))


@eqx.filter_jit
def _held_out_loss(posterior, theta, x, key):
    # the posterior's own map into its networks' coordinates (support transform, z-scoring)
    z_std, x_std = jax.vmap(posterior._theta_std)(theta), jax.vmap(posterior.x_standardizer)(x)
    losses = eqx.filter_vmap(lambda net: posterior.method.loss(net, z_std, x_std, key))(
        posterior.net
    )
    return jnp.mean(losses)


def _finite_or_inf(value: float) -> float:
    return value if math.isfinite(value) else math.inf


def _lowest_validation_loss(posterior: AbstractPosterior) -> float:
    history = posterior.history
    losses = [v for v in (() if history is None else history.validation_loss) if math.isfinite(v)]
    return min(losses, default=math.inf)


def check_flow(name: str, flow) -> None:
    """Raises ``TypeError`` unless ``flow`` is a flow spec or a :class:`BestOf` of them (the
    ``flow`` field of NPE and NLE)."""
    if not isinstance(flow, AbstractFlow | BestOf):
        raise TypeError(
            f"{name}: `flow` must be a flow spec such as sk.estimators.NSF() or a "
            f"sk.estimators.BestOf of them, got {flow!r}."
        )


def flow_alternatives(
    method: AbstractMethod, flow, init: AbstractPosterior | None
) -> dict[str, AbstractMethod]:
    """:meth:`AbstractMethod.alternatives` of a method with a ``flow`` field: one configuration
    per candidate of a :class:`~sbi_kit.estimators.BestOf` (with ``init``, the one whose flow
    ``init`` was trained with), or ``method`` itself for a single flow."""
    if not isinstance(flow, BestOf):
        return {type(method).__name__: method}
    if init is not None:
        trained = init.method.flow  # type: ignore[attr-defined]  (fit checked init's type)
        if trained not in flow.candidates:
            raise ValueError(
                f"{type(method).__name__}.fit: `init` was trained with the flow {trained!r}, "
                f"which is not one of this method's candidates {list(flow.candidates)!r}."
            )
        return {repr(trained): dataclasses.replace(method, flow=trained)}
    return {repr(f): dataclasses.replace(method, flow=f) for f in flow.candidates}
