"""Importance resampling of MCMC chains: a Student-t mixture fitted to the chains as proposal.

NUTS moves well inside one mode but almost never between separated modes, so the share of
draws in each mode is the share of chains that started there: a few chains per mode give
mode weights that are off by tens of percent (two_moons' two crescents, slcp's four sign-flip
modes), and split-R̂ reports this as "did not mix" on every call. Resampling by importance
weight corrects the shares: each chain's draws define one multivariate Student-t component
(its mean and covariance, in the prior's unconstrained space), the equal-weight mixture of
the components is the proposal q, and ``num_samples`` of ``candidates_per_sample ·
num_samples`` proposal draws are kept with probability ∝ p / q (weights truncated at √M
times their mean, Ionides 2008; systematic resampling), after which a few independence
Metropolis-Hastings moves with the same proposal replace most repeated draws. The effective
sample size of the (truncated) weights, ``(Σw)² / Σw²`` (Kish), says how far the result can be
trusted: a mode that no chain reached is still missing, but any mode that one chain reached
gets its proper mass, and no long runs are needed for the shares to settle.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpyro.distributions as dist
from jaxtyping import Array

from .._checks import (
    check_setting_nonnegative_int,
    check_setting_positive_int,
    check_setting_positive_number,
)
from .._types import Key
from ..simulators import unconstraining_transform
from ._chains import _UnconstrainedPotential


class ChainMixtureResampling(eqx.Module):
    """Importance resampling of the chains' draws through a Student-t mixture proposal.

    After warm-up each chain keeps ``draws_per_chain`` draws; a multivariate Student-t with
    ``df`` degrees of freedom is fitted to each chain (its mean and covariance, the covariance
    shrunk towards the chains' average by ``d / (draws_per_chain + d)``), and the posterior
    draws are resampled from ``candidates_per_sample · num_samples`` draws of the
    equal-weight mixture, weighted by density / mixture density (systematic resampling).
    Resampling repeats the heavier candidates; ``num_moves`` independence Metropolis-Hastings
    steps per draw (same proposal, accepted with probability min(1, w_new / w_old)) then
    replace most repeats by fresh draws, at one density evaluation per draw and step. The
    chains fix only *where* the mass is; the weights fix *how much* each place gets.

    Args:
        draws_per_chain: draws kept per chain after warm-up (≥ 2) to fit its component.
        candidates_per_sample: mixture draws weighted per returned sample.
        num_moves: independence Metropolis-Hastings steps per resampled draw afterwards
            (proposal: the same mixture), which replace most repeated draws by fresh ones
            while keeping the target distribution.
        df: degrees of freedom of the components (heavier tails than a Gaussian cover the
            target's tails; 5 by default).
        min_ess_fraction: a weight ESS below this share of ``num_samples`` warns (the returned
            draws are then mostly repeats of a few candidates).

    Examples:
        >>> import sbi_kit as sk
        >>> sk.mcmc.ChainMixtureResampling(draws_per_chain=100).candidates_per_sample
        5
    """

    draws_per_chain: int = 25
    candidates_per_sample: int = 5
    num_moves: int = 3
    df: float = 5.0
    min_ess_fraction: float = 0.1

    def __check_init__(self):
        owner = "ChainMixtureResampling"
        check_setting_positive_int(owner, "draws_per_chain", self.draws_per_chain)
        if self.draws_per_chain < 2:
            raise ValueError(
                f"{owner}: draws_per_chain must be ≥ 2 (a covariance per chain), got "
                f"{self.draws_per_chain}."
            )
        check_setting_positive_int(owner, "candidates_per_sample", self.candidates_per_sample)
        check_setting_nonnegative_int(owner, "num_moves", self.num_moves)
        check_setting_positive_number(owner, "df", self.df)
        check_setting_positive_number(owner, "min_ess_fraction", self.min_ess_fraction)
        if self.min_ess_fraction > 1:
            raise ValueError(
                f"{owner}: min_ess_fraction must lie in (0, 1], got {self.min_ess_fraction!r}."
            )


def draws_per_chain(
    num_samples: int, num_chains: int, resampling: ChainMixtureResampling | None
) -> int:
    """How many draws each chain keeps (after thinning) for ``num_samples`` samples: with
    ``resampling``, its ``draws_per_chain`` (the samples are then resampled from them);
    without, ``ceil(num_samples / num_chains)`` (the draws are pooled).

    Example:
        >>> import sbi_kit as sk
        >>> sk.mcmc.draws_per_chain(10_000, 20, None)
        500
        >>> sk.mcmc.draws_per_chain(10_000, 20, sk.mcmc.ChainMixtureResampling(draws_per_chain=25))
        25
    """
    if resampling is None:
        return -(-num_samples // num_chains)
    return resampling.draws_per_chain


def _components(z: Array) -> tuple[Array, Array]:
    """Per-chain means ``(C, d)`` and Cholesky factors ``(C, d, d)`` of chains ``(C, n, d)``,
    each covariance shrunk towards the chains' average (weight ``d / (n + d)``)."""
    _, n, d = z.shape
    mean = z.mean(1)
    centred = z - mean[:, None]
    cov = jnp.einsum("cni,cnj->cij", centred, centred) / (n - 1)
    pooled = cov.mean(0)
    cov = (n * cov + d * pooled) / (n + d)
    # a floor relative to the chains' spread (1 where nothing moved), so Cholesky succeeds
    scale = jnp.mean(jnp.diagonal(pooled))
    scale = jnp.where(jnp.isfinite(scale) & (scale > 0), scale, 1.0)
    cov = cov + 1e-6 * scale * jnp.eye(d)
    return mean, jnp.linalg.cholesky(cov)


def resample_chains(
    key: Key,
    log_density: Callable[[Array], Array],
    prior: dist.Distribution,
    chains: Array,
    num_samples: int,
    resampling: ChainMixtureResampling,
) -> tuple[Array, Array]:
    """``num_samples`` draws of ``exp(log_density)`` resampled through the chains' mixture.

    Traceable (no host round-trip): usable inside jitted code such as ``run_chains`` callers.

    Args:
        key: PRNG key.
        log_density: ``θ (d,) -> scalar``, the log density up to a constant.
        prior: the prior whose unconstrained space the components live in.
        chains: ``(num_chains, draws, d)`` draws in θ-space (from :func:`run_chains`).
        num_samples: draws returned.
        resampling: the settings.

    Returns:
        the draws ``(num_samples, d)`` in random order, and the Kish effective sample size of
        the importance weights (0 when no weight is finite).

    Examples:
        >>> import jax, jax.numpy as jnp, numpyro.distributions as dist, sbi_kit as sk
        >>> prior = dist.Normal(jnp.zeros(1), 3.0).to_event(1)
        >>> log_density = lambda th: jnp.logaddexp(   # modes at ±2, masses 0.8 and 0.2
        ...     jnp.log(0.8) + dist.Normal(2.0, 0.3).log_prob(th[0]),
        ...     jnp.log(0.2) + dist.Normal(-2.0, 0.3).log_prob(th[0]))
        >>> chains = jnp.concatenate([   # two chains in each mode: NUTS would give 50 / 50
        ...     2.0 + 0.3 * jax.random.normal(jax.random.key(1), (2, 50, 1)),
        ...     -2.0 + 0.3 * jax.random.normal(jax.random.key(2), (2, 50, 1))])
        >>> draws, ess = sk.mcmc.resample_chains(jax.random.key(0), log_density, prior,
        ...                                      chains, 4000, sk.mcmc.ChainMixtureResampling())
        >>> round(float(jnp.mean(draws[:, 0] > 0)), 1), bool(ess > 4000)
        (0.8, True)
    """
    key_candidates, key_pick, key_order, key_moves = jax.random.split(key, 4)
    transform = unconstraining_transform(prior)
    z: Array = jax.vmap(jax.vmap(transform.inv))(chains)
    num_chains = chains.shape[0]
    mean, tril = _components(z)
    df = resampling.df
    mixture = dist.MultivariateStudentT(df, mean, scale_tril=tril)
    potential = _UnconstrainedPotential(log_density, prior)

    def candidates(key, n):
        """``n`` mixture draws and their log weights log p − log q."""
        key_comp, key_eps, key_chi = jax.random.split(key, 3)
        comp = jax.random.randint(key_comp, (n,), 0, num_chains)
        gauss = jax.random.normal(key_eps, (n, mean.shape[-1]))
        chi = jax.random.gamma(key_chi, df / 2, (n,)) / (df / 2)
        zz = mean[comp] + jnp.einsum("nij,nj->ni", tril[comp], gauss / jnp.sqrt(chi)[:, None])

        def log_weight(one):
            log_q = jax.nn.logsumexp(mixture.log_prob(one)) - math.log(num_chains)
            return -potential(one) - log_q

        log_w = jax.vmap(log_weight)(zz)
        return zz, jnp.nan_to_num(log_w, nan=-jnp.inf, posinf=-jnp.inf)

    # all candidates in one evaluation (the density is traced once): the resampling pool,
    # then one fresh proposal per draw for each independence move
    num_pool = resampling.candidates_per_sample * num_samples
    all_z, all_log_w = candidates(key_candidates, num_pool + resampling.num_moves * num_samples)
    pool_z, log_w = all_z[:num_pool], all_log_w[:num_pool]
    move_z = all_z[num_pool:].reshape(resampling.num_moves, num_samples, -1)
    move_log_w = all_log_w[num_pool:].reshape(resampling.num_moves, num_samples)
    top = jnp.max(log_w)
    w = jnp.where(jnp.isfinite(top), jnp.exp(log_w - top), 0.0)
    total = jnp.sum(w)
    # truncated importance weights (Ionides 2008): no candidate weighs more than √M times the
    # mean, so that a few candidates in the proposal's thin tails cannot take most of the
    # draws; the independence moves below then correct the truncation's bias
    w = jnp.minimum(w, total / math.sqrt(w.shape[0]))
    total = jnp.sum(w)
    ess = jnp.where(total > 0, total**2 / jnp.sum(w**2), 0.0)
    # systematic resampling: one uniform offset, evenly spaced points through the weights' CDF
    cdf = jnp.cumsum(w) / jnp.where(total > 0, total, 1.0)
    points = (jnp.arange(num_samples) + jax.random.uniform(key_pick)) / num_samples
    index = jnp.minimum(jnp.searchsorted(cdf, points), pool_z.shape[0] - 1)
    index = jax.random.permutation(key_order, index)

    def move(state, proposal):
        """One independence Metropolis-Hastings step per particle (proposal: the mixture)."""
        zz, lw = state
        new, lw_new, key = proposal
        accept = jnp.log(jax.random.uniform(key, (num_samples,))) < lw_new - lw
        return (jnp.where(accept[:, None], new, zz), jnp.where(accept, lw_new, lw)), None

    (particles, _), _ = jax.lax.scan(
        move,
        (pool_z[index], log_w[index]),
        (move_z, move_log_w, jax.random.split(key_moves, resampling.num_moves)),
    )
    return jax.vmap(transform)(particles), ess
