"""``run_chains``: the compiled MCMC loop (warm-up and sampling of vectorised chains).

This is the traceable core that :func:`~sbi_kit.mcmc.sample` checks its inputs for and adds
diagnostics to. It does no host round-trip, so it also runs inside other jitted code, e.g.
``calibrate`` drawing from a learned-likelihood posterior for many observations at once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpyro.distributions as dist
import tqdm
from jaxtyping import Array

from .._types import Key
from ..simulators import unconstraining_transform
from ._samplers import DEFAULT_SAMPLER, AbstractSampler


def _initial_points(
    key: Key, log_density: Callable, prior: dist.Distribution, num_chains: int, candidates: int
) -> Array:
    """``num_chains`` of ``candidates`` prior draws, resampled by importance weight.

    Sampling-importance-resampling: a prior draw's weight is ``log_density − log prior`` (the
    likelihood, up to a constant), and ``num_chains`` draws are taken without replacement with
    probability proportional to it (Gumbel top-k). Chains then start in each mode in
    proportion to its posterior mass, which NUTS cannot correct later when modes are far apart
    (starting all chains at the highest points would put them all in one mode).
    """
    key_draw, key_pick = jax.random.split(key)
    draws = prior.sample(key_draw, (max(candidates, num_chains),))
    log_w = jax.vmap(log_density)(draws) - prior.log_prob(draws)
    log_w = jnp.nan_to_num(log_w, nan=-jnp.inf, posinf=-jnp.inf)
    # if every weight is -inf, fall back to uniform picks (the chains then report the problem)
    log_w = jnp.where(jnp.all(log_w == -jnp.inf), 0.0, log_w)
    _, index = jax.lax.top_k(log_w + jax.random.gumbel(key_pick, log_w.shape), num_chains)
    return draws[index]


class _UnconstrainedPotential(eqx.Module):
    """``-log_density`` in the prior's unconstrained space, with the Jacobian of the map."""

    log_density: Callable
    prior: dist.Distribution

    def __call__(self, z: Array) -> Array:
        transform = unconstraining_transform(self.prior)
        theta = transform(z)
        lp = self.log_density(theta) + jnp.sum(transform.log_abs_det_jacobian(z, theta))
        return -jnp.where(jnp.isnan(lp), -jnp.inf, lp)


@eqx.filter_jit
def run_chains(
    key: Key,
    log_density: Callable[[Array], Array],
    prior: dist.Distribution,
    *,
    sampler: AbstractSampler = DEFAULT_SAMPLER,
    num_chains: int = 20,
    num_warmup: int = 1000,
    num_draws: int = 500,
    thinning: int = 1,
    init: Array | None = None,
    num_init_candidates: int = 10_000,
    progress: bool = False,
) -> tuple[Array, Array]:
    """Warm-up and sampling of vectorised chains in ONE compiled program, without checks.

    The chains run in the prior's unconstrained space on ``log_density`` plus the Jacobian of
    the map, each started (unless ``init`` is given) at one of ``num_init_candidates`` prior
    draws picked by importance resampling (weights ∝ density / prior), as in
    :func:`~sbi_kit.mcmc.sample`, the checked entry point with R̂ and ESS that users should
    call. Use this one inside other jitted or vmapped code: it has no host round-trip.
    Compiled once per sampler, code of ``log_density`` (arrays inside an ``eqx.Module`` /
    ``eqx.Partial`` density are traced) and sizes.

    Args:
        key: PRNG key.
        log_density: ``θ (d,) -> scalar``, the log density up to a constant; NaN counts as
            ``-inf``.
        prior: the prior whose support the chains live on (event shape ``(d,)``).
        sampler: the kernel (:class:`NUTS` by default).
        num_chains: chains run in parallel (vectorised).
        num_warmup: adaptation steps per chain (discarded).
        num_draws: kept draws per chain.
        thinning: transitions per kept draw.
        init: optional starting points ``(num_chains, d)`` inside the support.
        num_init_candidates: prior draws searched for starting points.
        progress: advance a progress bar from inside the loop (see :func:`sample`).

    Returns:
        the kept draws ``(num_chains, num_draws, d)`` in θ-space, and the number of divergent
        transitions after warm-up (a scalar array).

    Examples:
        >>> import jax, jax.numpy as jnp, numpyro.distributions as dist, sbi_kit as sk
        >>> prior = dist.Normal(jnp.zeros(2), 3.0).to_event(1)
        >>> def draw(key, mean):   # jitted and vmapped over two targets
        ...     log_density = jax.tree_util.Partial(
        ...         lambda m, th: dist.Normal(m, 0.5).log_prob(th).sum(), mean)
        ...     chains, _ = sk.mcmc.run_chains(key, log_density, prior, num_chains=4,
        ...                                    num_warmup=200, num_draws=250)
        ...     return chains.reshape(-1, 2).mean(0)
        >>> means = jax.jit(jax.vmap(draw))(jax.random.split(jax.random.key(0), 2),
        ...                                 jnp.array([[0.0, 0.0], [1.0, -1.0]]))
        >>> bool(jnp.allclose(means, jnp.array([[0.0, 0.0], [1.0, -1.0]]), atol=0.15))
        True
    """
    key_init, key_mcmc = jax.random.split(key)
    if init is None:
        init = _initial_points(key_init, log_density, prior, num_chains, num_init_candidates)
    transform = unconstraining_transform(prior)
    kernel = sampler.kernel(_UnconstrainedPotential(log_density, prior))
    chain_keys = jax.random.split(key_mcmc, num_chains)
    state = kernel.init(chain_keys, num_warmup, jax.vmap(transform.inv)(init), (), {})
    total = num_warmup + num_draws * thinning
    tick = max(1, total // 50)

    def step(carry, _):
        state, i = carry
        state = kernel.sample(state, (), {})
        if progress:
            jax.lax.cond(
                (i + 1) % tick == 0,
                lambda: jax.debug.callback(_advance_progress_bar, tick),
                lambda: None,
            )
        return (state, i + 1), None

    carry, _ = jax.lax.scan(step, (state, jnp.int32(0)), None, length=num_warmup)

    def keep(carry, _):
        carry, _ = jax.lax.scan(step, carry, None, length=thinning)
        return carry, (carry[0].z, sampler.divergences(carry[0]))

    _, (z, divergent) = jax.lax.scan(keep, carry, None, length=num_draws)
    theta = jax.vmap(jax.vmap(transform))(jnp.swapaxes(z, 0, 1))
    return theta, jnp.sum(divergent)


def pool(key: Key, chains: Array, num_samples: int) -> Array:
    """``num_samples`` draws of all chains pooled in random order.

    Args:
        key: PRNG key of the shuffle.
        chains: ``(num_chains, draws, d)`` with ``num_chains · draws ≥ num_samples``.
        num_samples: draws returned.

    Returns:
        shape ``(num_samples, d)``.

    Examples:
        >>> import jax, jax.numpy as jnp, sbi_kit as sk
        >>> sk.mcmc.pool(jax.random.key(0), jnp.zeros((4, 3, 2)), 10).shape
        (10, 2)
    """
    pooled = chains.reshape(-1, chains.shape[-1])
    return pooled[jax.random.permutation(key, pooled.shape[0])[:num_samples]]


_PROGRESS_BARS: list = []


def _advance_progress_bar(n) -> None:
    """Host callback of :func:`run_chains`: advances the open progress bar by ``n`` steps."""
    if _PROGRESS_BARS:
        _PROGRESS_BARS[-1].update(int(n))


@contextlib.contextmanager
def progress_bar(show: bool, total: int):
    """A tqdm bar over ``total`` MCMC iterations that :func:`run_chains` (called with
    ``progress=True`` inside this context) advances from inside its compiled loop."""
    if not show:
        yield
        return
    bar = tqdm.tqdm(total=total, desc="MCMC", unit="step")
    _PROGRESS_BARS.append(bar)
    try:
        yield
    finally:
        _PROGRESS_BARS.remove(bar)
        bar.close()
