"""The reference-posterior settings of the tasks whose posterior has no closed form."""

from collections.abc import Callable

import numpyro.distributions as dist
from jaxtyping import Array

from .._types import Key
from ..mcmc import sample


def reference_nuts(
    key: Key,
    prior: dist.Distribution,
    log_likelihood: Callable[[Array, Array], Array],
    x: Array,
    num_samples: int,
) -> Array:
    """Reference samples by ``sk.mcmc.sample`` (NUTS) with the tasks' settings.

    20 vectorised chains started at 20 of 100,000 prior draws resampled by likelihood (the
    shipped references were made when the chains started at the 20 highest points; see
    docs/tasks.md), 1,000 warm-up steps, one draw in five kept; the run is refused if a
    split-R̂ exceeds 1.01.

    Returns:
        samples, shape ``(num_samples, d)``, chains pooled in random order.
    """
    result = sample(
        key,
        lambda theta: prior.log_prob(theta) + log_likelihood(theta, x),
        prior,
        num_samples,
        num_chains=20,
        num_warmup=1000,
        thinning=5,
        num_init_candidates=100_000,
        max_r_hat=1.01,
    )
    print(f"  NUTS: {result.summary()}", flush=True)
    return result.samples
