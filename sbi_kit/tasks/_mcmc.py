"""NUTS reference sampler (numpyro) for tasks whose posterior has no closed form."""

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from jaxtyping import Array
from numpyro.diagnostics import effective_sample_size, split_gelman_rubin
from numpyro.infer import MCMC, NUTS

from .._types import Key


def sample_nuts(
    key: Key,
    prior: dist.Distribution,
    log_likelihood: Callable[[Array, Array], Array],
    x: Array,
    num_samples: int,
    *,
    num_chains: int = 20,
    num_warmup: int = 1000,
    thinning: int = 5,
    num_init_candidates: int = 100_000,
    max_rhat: float = 1.01,
) -> Array:
    """Posterior samples by NUTS with vectorized chains, started at the best prior draws.

    Each chain starts at one of the ``num_chains`` highest-posterior points among
    ``num_init_candidates`` prior draws; after ``num_warmup`` adaptation steps every chain keeps
    ``num_samples / num_chains`` draws, one every ``thinning`` steps.

    Args:
        key: a JAX PRNG key.
        prior: the prior, event shape ``(d,)``, batch shape ``()``.
        log_likelihood: ``log_likelihood(theta, x) -> scalar`` for one ``theta`` of shape ``(d,)``.
        x: one observation.
        num_samples: total number of samples, a multiple of ``num_chains``.
        num_chains: number of chains, run vectorized.
        num_warmup: adaptation steps per chain.
        thinning: keep one draw in ``thinning``.
        num_init_candidates: prior draws searched for starting points.
        max_rhat: the largest split-R̂ accepted.

    Returns:
        samples, shape ``(num_samples, d)``, chains pooled in random order.

    Raises:
        ValueError: if ``num_samples`` is not a multiple of ``num_chains``.
        RuntimeError: if a component's split-R̂ exceeds ``max_rhat`` (the chains disagree).
    """
    if num_samples % num_chains:
        raise ValueError(
            f"num_samples must be a multiple of num_chains = {num_chains}, got {num_samples}."
        )
    x = jnp.asarray(x)
    key_init, key_mcmc, key_perm = jax.random.split(key, 3)
    candidates = prior.sample(key_init, (num_init_candidates,))
    log_post = jax.vmap(lambda t: log_likelihood(t, x))(candidates) + prior.log_prob(candidates)
    best = candidates[jnp.argsort(-jnp.nan_to_num(log_post, nan=-jnp.inf))[:num_chains]]
    init = dist.transforms.biject_to(prior.support).inv(best)

    def model():
        theta = numpyro.sample("theta", prior)
        numpyro.factor("log_likelihood", log_likelihood(theta, x))

    mcmc = MCMC(
        NUTS(model),
        num_warmup=num_warmup,
        num_samples=num_samples // num_chains * thinning,
        num_chains=num_chains,
        thinning=thinning,
        chain_method="vectorized",
        progress_bar=False,
    )
    mcmc.run(key_mcmc, init_params={"theta": init})
    chains = np.asarray(mcmc.get_samples(group_by_chain=True)["theta"])  # (chains, draws, d)
    rhat = np.asarray(split_gelman_rubin(chains))
    if not np.all(rhat < max_rhat):
        raise RuntimeError(f"NUTS chains did not mix: split-R̂ = {rhat} (max {max_rhat}).")
    ess = np.asarray(effective_sample_size(chains))
    print(f"  NUTS: split-R̂ max {rhat.max():.4f}, ESS min {ess.min():.0f}", flush=True)
    samples = jnp.asarray(chains.reshape(num_samples, -1))
    return samples[jax.random.permutation(key_perm, num_samples)]
