"""Sequential rounds: simulate where the posterior of ``x_o`` is, retrain on all rounds' data.

A functional API, no mutable builder: :func:`sequential` returns the final posterior, every
round's posterior and all simulations as values.

* Density posteriors (NPE, NPSE, FMPE) follow an :class:`~sbi_kit.inference.AbstractSNPE`
  strategy (``snpe=``). :class:`~sbi_kit.inference.APT` (SNPE-C, sbi's and sbibm's SNPE; the
  default for NPE) draws from the current posterior itself and trains with the atomic loss,
  which concentrates the simulations where the posterior is. Truncated sequential NPE
  (:class:`~sbi_kit.inference.TSNPE`; Deistler, Gonçalves & Macke 2022; the default for NPSE
  and FMPE, which have no atomic loss) draws θ from the prior restricted to the current
  posterior's highest-density region of mass ``1 − truncation``, so the plain loss stays valid
  and the posterior stays calibrated over that region, at a fraction of APT's training cost
  (see ``docs/sequential.md`` for the measurements).
* Potential posteriors (NLE, NRE) draw θ from the current posterior by MCMC (SNLE, SNRE): the
  learned likelihood q(x | θ) does not depend on where θ came from, and a ratio classifier's
  logit stays ``log p(x | θ) + c(x)``, so ``p(θ) Π_j exp potential`` is still the posterior.
"""

from __future__ import annotations

import dataclasses
import functools
import warnings

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from .._checks import check_flag, check_key, check_positive_int
from .._types import Key
from ..simulators import as_simulator, simulate
from ..training import History
from ._method import (
    AbstractMethod,
    AbstractPotentialMethod,
    fit_each,
    held_out_loss,
    keep_lowest,
)
from ._posterior import AbstractDensityPosterior, AbstractPosterior
from ._round_check import EXTREMITY_LIMIT, extremity_of_round
from ._snpe_rounds import TSNPE, AbstractSNPE, default_snpe


@dataclasses.dataclass(frozen=True)
class SequentialResult:
    """What :func:`sequential` returns.

    Attributes:
        posterior: the final round's posterior.
        posteriors: every round's posterior, in order.
        histories: every round's training history.
        theta: all rounds' parameters, ``(n, dim_theta)``.
        x: all rounds' observations, ``(n, *x_shape)``.
        round_index: the round that simulated each row, ``(n,)``.
        snpe: the strategy that ran the rounds of a density method (None for NLE and NRE).
        x_o_extremity: per round, how far out ``x_o`` lies among that round's simulations
            (:func:`~sbi_kit.inference.x_o_extremity`: with every component z-scored by the
            round's own spread, x_o's largest ``|z|`` over the largest of the simulations';
            below 1: inside their range; well above 1: unlike all of them). Round 1's
            simulations come from the prior, each later round's from
            where the previous round's posterior puts its mass, so a large last value means
            that posterior predicts data unlike ``x_o``; :func:`sequential` warns above 2.
    """

    posterior: AbstractPosterior
    posteriors: tuple[AbstractPosterior, ...]
    histories: tuple[History | None, ...]
    theta: Array
    x: Array
    round_index: np.ndarray
    snpe: AbstractSNPE | None = None
    x_o_extremity: tuple[float, ...] = ()


def sequential(
    key: Key,
    method: AbstractMethod,
    simulator,
    x_o: Array,
    *,
    rounds: int,
    simulations_per_round: int,
    truncation: float | None = None,
    snpe: AbstractSNPE | None = None,
    warm_start: bool = True,
    progress: bool = True,
) -> SequentialResult:
    """Multi-round inference for one observation: SNPE (TSNPE or APT), SNLE or SNRE.

    Round 1 simulates from the prior and trains ``method``; each later round simulates
    ``simulations_per_round`` more pairs where the current posterior of ``x_o`` puts its mass
    (see the module docstring for how, per kind of posterior) and trains on all rounds' data,
    continuing from the previous round's networks and z-scoring (``warm_start``, as ``sbi``
    does by default) or from scratch. The result is amortised no longer: it is accurate for
    ``x_o``.

    Args:
        key: PRNG key.
        method: an inference method, e.g. ``sk.NPE()``, ``sk.NLE()``, ``sk.NRE()``.
        simulator: an ``sk.Simulator`` or a task.
        x_o: the observation (for NLE / NRE also a stack of i.i.d. observations).
        rounds: number of rounds (≥ 1).
        simulations_per_round: simulations in each round.
        truncation: shorthand for ``snpe=sk.inference.TSNPE(truncation)``.
        snpe: how density posteriors spend the later rounds:
            :class:`~sbi_kit.inference.APT` or :class:`~sbi_kit.inference.TSNPE`; default
            :func:`~sbi_kit.inference.default_snpe` (APT for NPE, TSNPE for NPSE and FMPE).
            Ignored by NLE and NRE.
        warm_start: each round after the first continues training the previous round's
            networks (``fit(..., init=previous)``; they keep round 1's z-scoring) instead of
            initialising new ones. Early rounds hold few simulations and stop after few
            gradient steps; carrying their networks forward accumulates training. A method
            whose flow is a :class:`~sbi_kit.estimators.BestOf` (``sk.NLE()``'s default)
            carries every candidate forward, each continuing its own networks, and chooses
            again in every round (the next round's proposal comes from the kept one): round 1
            keeps the lowest validation loss; from round 2 on, the candidate whose networks
            of the previous round predicted this round's new simulations best
            (:func:`~sbi_kit.inference.held_out_loss`, on pairs no candidate has trained or
            stopped on). Each history's ``choice`` lists the candidates' scores.
        progress: progress bars.

    Returns:
        a :class:`SequentialResult`.

    Examples:
        >>> import jax, jax.numpy as jnp, numpyro.distributions as dist, sbi_kit as sk
        >>> prior = dist.Uniform(-jnp.ones(2), jnp.ones(2)).to_event(1)
        >>> sim = sk.Simulator(prior, lambda k, th: th + 0.05 * jax.random.normal(k, (2,)))
        >>> npe = sk.NPE(flow=sk.estimators.MAF(layers=1, width=8, depth=1),
        ...              training=sk.Training(max_epochs=3))
        >>> result = sk.sequential(jax.random.key(0), npe, sim, jnp.array([0.3, -0.2]),
        ...                        rounds=2, simulations_per_round=200, progress=False)
        >>> result.theta.shape, len(result.posteriors), int(result.round_index.max())
        ((400, 2), 2, 1)
        >>> result.snpe  # the default for NPE
        APT()
    """
    fn = "sk.sequential"
    key = check_key(key, fn)
    if not isinstance(method, AbstractMethod):
        raise TypeError(
            f"{fn}: `method` must be an inference method such as sk.NPE(), got {method!r}."
        )
    sim = as_simulator(simulator)
    rounds = check_positive_int(rounds, "rounds", fn)
    per_round = check_positive_int(simulations_per_round, "simulations_per_round", fn)
    if truncation is not None and snpe is not None:
        raise ValueError(f"{fn}: give `truncation` or `snpe`, not both.")
    if snpe is None:
        snpe = default_snpe(method) if truncation is None else TSNPE(truncation)  # checks it
    if not isinstance(snpe, AbstractSNPE):
        raise TypeError(
            f"{fn}: `snpe` must be sk.inference.TSNPE(...) or sk.inference.APT(...), got {snpe!r}."
        )
    if not isinstance(method, AbstractPotentialMethod):
        snpe.check(method, fn)
    check_flag(warm_start, "warm_start", fn)
    x_o = jnp.asarray(x_o)
    x_o_host = np.asarray(x_o)  # for the per-round check against the simulations
    # one configuration per candidate flow of a BestOf (else the method itself): each continues
    # its own networks from round to round, and every round keeps one: in round 1 the lowest
    # validation loss, then the one whose previous round's networks predicted this round's new
    # simulations best (pairs no candidate has trained or stopped on)
    alternatives = method.alternatives()
    carried: dict[str, AbstractPosterior] = {}
    scores: dict[str, float] | None = None
    thetas, xs, index, posteriors, extremity = [], [], [], [], []
    posterior = None
    for r in range(rounds):
        key_round = jax.random.fold_in(key, r)
        key_proposal, key_sim, key_fit = jax.random.split(key_round, 3)
        if posterior is None:
            proposal = None  # the prior
        elif isinstance(posterior, AbstractDensityPosterior):
            proposal = snpe.propose(key_proposal, posterior, x_o, per_round)
        else:
            proposal = posterior.sample(key_proposal, x_o, per_round)
        sims = simulate(key_sim, sim, per_round, theta=proposal, progress=progress)
        thetas.append(np.asarray(sims.theta))
        xs.append(np.asarray(sims.x))
        index.append(np.full(sims.num_valid, r))
        extremity.append(extremity_of_round(xs[-1], x_o_host))
        theta_all, x_all = np.concatenate(thetas), np.concatenate(xs)
        if r > 0:  # a candidate left out in an earlier round (no finite loss) stays out
            alternatives = {label: alternatives[label] for label in carried}
        if r > 0 and len(carried) > 1:
            key_score = jax.random.fold_in(key_fit, 0)
            scores = {
                label: held_out_loss(previous, key_score, sims.theta, sims.x)
                for label, previous in carried.items()
            }
        fit_round = functools.partial(
            _fit_round,
            key_fit,
            snpe=snpe,
            theta=theta_all,
            x=x_all,
            prior=sim.prior,
            carried=carried,
            warm_start=warm_start,
            progress=progress,
        )
        carried = fit_each(alternatives, fit_round, f"sk.sequential (round {r + 1})")
        posterior = keep_lowest(carried, scores)
        posteriors.append(posterior)
    assert posterior is not None
    _warn_if_unlike(extremity, xs[-1].shape[0], fn)
    return SequentialResult(
        posterior=posterior,
        posteriors=tuple(posteriors),
        histories=tuple(p.history for p in posteriors),
        theta=jnp.asarray(np.concatenate(thetas)),
        x=jnp.asarray(np.concatenate(xs)),
        round_index=np.concatenate(index),
        snpe=None if isinstance(method, AbstractPotentialMethod) else snpe,
        x_o_extremity=tuple(extremity),
    )


def _warn_if_unlike(extremity: list[float], num_last: int, fn: str) -> None:
    """A ``RuntimeWarning`` when ``x_o`` lies far outside the last round's simulations."""
    last, r = extremity[-1], len(extremity)
    if not last > EXTREMITY_LIMIT:  # NaN (nothing to compare with) does not warn
        return
    source = "the prior" if r == 1 else f"round {r - 1}'s posterior"
    warnings.warn(
        f"{fn}: x_o lies {last:.1f} times as far out as the most extreme of round {r}'s "
        f"{num_last} simulations (each component z-scored by the round's own spread; above "
        f"{EXTREMITY_LIMIT:g} warns). They were drawn from {source}, which therefore predicts "
        "data unlike x_o, and the final posterior may be as far off. Check it with "
        "sk.diagnostics.posterior_predictive_check; more rounds or more simulations per round "
        "may help. `result.x_o_extremity` has the value of every round.",
        RuntimeWarning,
        stacklevel=3,
    )


def _fit_round(
    key: Key,
    label: str,
    method: AbstractMethod,
    *,
    snpe: AbstractSNPE,
    theta: np.ndarray,
    x: np.ndarray,
    prior,
    carried: dict[str, AbstractPosterior],
    warm_start: bool,
    progress: bool,
) -> AbstractPosterior:
    """One round's posterior of ``method`` (the configuration ``label`` of
    :meth:`~sbi_kit.inference.AbstractMethod.alternatives`) on all rounds' pairs: a fresh fit in
    round 1, then the ``snpe`` strategy for density posteriors, or a fit continuing the
    previous round's (``carried[label]``, with ``warm_start``) for NLE and NRE."""
    previous = carried.get(label)
    if previous is None:
        return method.fit(key, theta, x, prior=prior, progress=progress)
    if isinstance(previous, AbstractDensityPosterior):
        return snpe.fit(
            key,
            method,
            theta,
            x,
            prior=prior,
            previous=previous,
            warm_start=warm_start,
            progress=progress,
        )
    return method.fit(
        key, theta, x, prior=prior, progress=progress, init=previous if warm_start else None
    )
