"""``sample``: MCMC on an unnormalised log density over a prior's support, chains vectorised."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
from jaxtyping import Array
from numpyro.diagnostics import effective_sample_size, split_gelman_rubin

from .._checks import check_key, check_positive_int, check_prior
from .._types import Key
from ._chains import pool, progress_bar, run_chains
from ._resampling import ChainMixtureResampling, draws_per_chain, resample_chains
from ._result import MCMCResult
from ._samplers import DEFAULT_SAMPLER, AbstractSampler


def sample(
    key: Key,
    log_density: Callable[[Array], Array],
    prior: dist.Distribution,
    num_samples: int,
    *,
    sampler: AbstractSampler = DEFAULT_SAMPLER,
    num_chains: int = 20,
    num_warmup: int = 1000,
    thinning: int = 1,
    init: Array | None = None,
    num_init_candidates: int = 10_000,
    resampling: ChainMixtureResampling | None = None,
    max_r_hat: float | None = 1.01,
    raise_on_poor_mixing: bool = True,
    progress: bool = False,
) -> MCMCResult:
    """Draws from ``exp(log_density(θ))`` on the support of ``prior`` by MCMC.

    The chains run in the prior's unconstrained space z = T⁻¹(θ) (the density there carries
    the Jacobian of T), vectorised in one jitted numpyro loop; warm-up adapts step size and mass
    matrix. Warm-up and sampling are ONE compiled program (a ``lax.scan`` over the kernel's
    transitions), cached on the sampler, the code of ``log_density`` (arrays inside an
    ``eqx.Module`` or ``eqx.Partial`` density are traced, not baked in) and the sizes: drawing
    again, e.g. for another observation of a learned posterior, does not recompile. Unless
    ``init`` is given, the chains start at ``num_chains`` of ``num_init_candidates`` prior
    draws picked by importance resampling (weight ∝ density / prior, without replacement), so
    that separated modes get chains in proportion to their mass. The kept draws of all chains
    are pooled in random order.

    With ``resampling`` (a :class:`ChainMixtureResampling`), each chain keeps only
    ``resampling.draws_per_chain`` draws, and the samples are resampled by importance weight
    from a Student-t mixture fitted to the chains: separated modes then get their proper mass
    even when each chain stays in one. The check is then on the weights' effective sample
    size (below ``resampling.min_ess_fraction · num_samples`` fails) instead of on R̂, which
    chains in different modes always fail; R̂ and ESS of the chains are still reported.

    Args:
        key: PRNG key.
        log_density: ``θ (d,) -> scalar``, the log posterior up to a constant (e.g.
            ``prior.log_prob(θ) + log_likelihood(θ, x_o)``); NaN counts as ``-inf``.
        prior: the prior (event shape ``(d,)``): its support is where the chains live, and its
            draws seed them.
        num_samples: pooled draws returned.
        sampler: :class:`NUTS` (default) or :class:`EnsembleSlice`.
        num_chains: chains run in parallel (vectorised).
        num_warmup: adaptation steps per chain (discarded).
        thinning: keep one draw in ``thinning``.
        init: optional starting points ``(num_chains, d)`` inside the support.
        num_init_candidates: prior draws resampled for starting points.
        resampling: importance resampling of the chains' draws (``None``: pool the draws).
        max_r_hat: the largest split-R̂ accepted (``None``: no check; not checked with
            ``resampling``).
        raise_on_poor_mixing: raise ``RuntimeError`` when R̂ exceeds ``max_r_hat`` (or,
            with ``resampling``, the weights' ESS is too small), otherwise a
            ``RuntimeWarning``.
        progress: show a progress bar over the iterations (advanced from inside the compiled
            loop).

    Returns:
        an :class:`MCMCResult` with ``samples`` ``(num_samples, d)``, the chains, R̂ and ESS.

    Raises:
        RuntimeError: if ``raise_on_poor_mixing`` and a parameter's R̂ exceeds ``max_r_hat``
            (with ``resampling``: the weights' ESS is below its minimum).

    Examples:
        >>> import jax, jax.numpy as jnp, numpyro.distributions as dist, sbi_kit as sk
        >>> prior = dist.Uniform(jnp.zeros(2), jnp.ones(2)).to_event(1)
        >>> log_density = lambda th: dist.Normal(0.3, 0.1).log_prob(th).sum()
        >>> result = sk.mcmc.sample(jax.random.key(0), log_density, prior, 2000,
        ...                         num_chains=4, num_warmup=300)
        >>> result.samples.shape, bool(jnp.allclose(result.samples.mean(0), 0.3, atol=0.02))
        ((2000, 2), True)
        >>> result.max_r_hat < 1.01
        True
    """
    fn = "sk.mcmc.sample"
    key = check_key(key, fn)
    if not callable(log_density):
        raise TypeError(f"{fn}: `log_density` must be a function of θ, got {log_density!r}.")
    if not isinstance(sampler, AbstractSampler):
        raise TypeError(
            f"{fn}: `sampler` must be sk.mcmc.NUTS() or sk.mcmc.EnsembleSlice(), got {sampler!r}."
        )
    if not isinstance(prior, dist.Distribution) or len(prior.event_shape) != 1:
        raise TypeError(
            f"{fn}: `prior` must be a numpyro Distribution over flat vectors (event shape (d,)), "
            f"got {prior!r}."
        )
    dim = int(prior.event_shape[0])
    check_prior(prior, dim, fn)
    num_samples = check_positive_int(num_samples, "num_samples", fn)
    num_chains = check_positive_int(num_chains, "num_chains", fn)
    thinning = check_positive_int(thinning, "thinning", fn)
    num_warmup = check_positive_int(num_warmup, "num_warmup", fn)
    if num_chains < sampler.min_chains(dim):
        raise ValueError(
            f"{fn}: {type(sampler).__name__} needs at least {sampler.min_chains(dim)} chains for "
            f"{dim} parameters, got num_chains={num_chains}."
        )
    if sampler.needs_even_chains() and num_chains % 2:
        raise ValueError(
            f"{fn}: {type(sampler).__name__} moves the chains in two halves and needs an even "
            f"number of chains, got num_chains={num_chains}."
        )
    if resampling is not None and not isinstance(resampling, ChainMixtureResampling):
        raise TypeError(
            f"{fn}: `resampling` must be sk.mcmc.ChainMixtureResampling(...) or None, got "
            f"{resampling!r}."
        )
    if init is not None:
        init = jnp.asarray(init)
        if init.shape != (num_chains, dim):
            raise ValueError(
                f"{fn}: `init` must have shape (num_chains, d) = ({num_chains}, {dim}), got "
                f"{init.shape}."
            )
    key_run, key_pool = jax.random.split(key)
    draws = draws_per_chain(num_samples, num_chains, resampling)
    start = time.perf_counter()
    with progress_bar(progress, num_warmup + draws * thinning):
        chains, divergent = run_chains(
            key_run,
            log_density,
            prior,
            sampler=sampler,
            num_chains=num_chains,
            num_warmup=num_warmup,
            num_draws=draws,
            thinning=thinning,
            init=init,
            num_init_candidates=num_init_candidates,
            progress=progress,
        )
        if resampling is None:
            samples, importance_ess = pool(key_pool, chains, num_samples), None
        else:
            samples, importance_ess = _resample(
                key_pool, log_density, prior, chains, num_samples, resampling
            )
            importance_ess = float(importance_ess)
        samples = jax.block_until_ready(samples)
    chains = np.asarray(chains)
    seconds = time.perf_counter() - start
    divergent = int(divergent)
    r_hat = np.asarray(split_gelman_rubin(chains)) if draws >= 4 else np.full(dim, np.nan)
    ess = np.asarray(effective_sample_size(chains)) if draws >= 4 else np.full(dim, np.nan)
    result = MCMCResult(samples, chains, r_hat, ess, divergent, seconds, importance_ess)
    message = None
    if resampling is not None:
        assert importance_ess is not None
        if not importance_ess >= resampling.min_ess_fraction * num_samples:
            message = (
                f"{fn}: importance resampling of the chains is unreliable: the weights' "
                f"effective sample size is {importance_ess:.0f}, below "
                f"{resampling.min_ess_fraction} × num_samples = "
                f"{resampling.min_ess_fraction * num_samples:.0f} ({result.summary()}); raise "
                "resampling.candidates_per_sample or draws_per_chain, run longer warm-up, "
                "give NUTS a larger max_tree_depth, or check the density."
            )
    elif max_r_hat is not None and not np.all(r_hat <= max_r_hat):
        message = (
            f"{fn}: the chains did not mix: split-R̂ = {np.round(r_hat, 4).tolist()} exceeds "
            f"{max_r_hat} ({result.summary()}); run longer warm-up or more chains, or check "
            "the density for several modes (sk.mcmc.ChainMixtureResampling corrects the "
            "mass of modes that chains stay in)."
        )
    if message is not None:
        if raise_on_poor_mixing:
            raise RuntimeError(message)
        warnings.warn(message, RuntimeWarning, stacklevel=2)
    return result


_resample = eqx.filter_jit(resample_chains)
"""The compiled :func:`resample_chains` (cached on the density's code, settings and sizes)."""
