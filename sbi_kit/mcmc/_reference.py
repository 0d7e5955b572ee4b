"""``reference_posterior``: NUTS on a true likelihood, for tasks, simulators and numpyro models."""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpyro.distributions as dist
from jaxtyping import Array

from .._checks import check_finite, check_key
from .._types import Key
from ..simulators import Simulator, as_simulator, from_numpyro
from ._result import MCMCResult
from ._sample import sample
from ._samplers import DEFAULT_SAMPLER, AbstractSampler


def _simulator(problem, observed: str | None, fn: str) -> Simulator:
    if isinstance(problem, Simulator) or isinstance(getattr(problem, "simulator", None), Simulator):
        sim = as_simulator(problem)
    elif callable(problem):
        if observed is None:
            raise ValueError(
                f"{fn}: a numpyro model needs `observed`, the name of its data site (e.g. "
                "observed='x')."
            )
        sim = from_numpyro(problem, observed=observed)
    else:
        raise TypeError(
            f"{fn}: `problem` must be a task (sk.tasks.get(name)), an sk.Simulator or a numpyro "
            f"model function, got {type(problem).__name__}."
        )
    if sim.log_likelihood is None:
        raise ValueError(
            f"{fn}: the simulator has no exact likelihood (Simulator(..., log_likelihood=...)); "
            "reference posteriors need one."
        )
    return sim


def _log_posterior(
    prior: dist.Distribution, log_likelihood: Callable, x_stack: Array, theta: Array
) -> Array:
    """``log p(θ) + Σ_j log p(x_j | θ)`` for a stack of i.i.d. observations (axis 0; one
    observation is a stack of one), the prior counted once; bound with ``eqx.Partial`` so that
    compiled code is shared between observations."""
    per_observation = jax.vmap(log_likelihood, in_axes=(None, 0))(theta, x_stack)
    return prior.log_prob(theta) + jnp.sum(per_observation)


def reference_posterior(
    key: Key,
    problem,
    x_o: Array,
    num_samples: int = 10_000,
    *,
    observed: str | None = None,
    iid: bool = False,
    sampler: AbstractSampler = DEFAULT_SAMPLER,
    num_chains: int = 20,
    num_warmup: int = 1000,
    thinning: int = 5,
    max_r_hat: float = 1.01,
    check: bool = True,
    progress: bool = False,
) -> MCMCResult:
    """Samples the exact posterior ``p(θ | x_o) ∝ p(θ) p(x_o | θ)`` with NUTS.

    The likelihood is the simulator's exact one (a task's, or the numpyro model's own density at
    its observed site), so the result is a reference for "compare with MCMC": the chains are
    vectorised, start at prior draws resampled by their likelihood, run in the prior's
    unconstrained space, and their split-R̂ and effective sample sizes come back with the samples.

    Args:
        key: PRNG key.
        problem: a task (``sk.tasks.get(name)``), an ``sk.Simulator`` with a
            ``log_likelihood``, or a numpyro model function (then name its data site with
            ``observed``; the model is called with its data argument left as ``None``).
        x_o: the observation, shape ``x_shape``; with ``iid``, a stack ``(n_obs, *x_shape)``
            of i.i.d. observations.
        num_samples: pooled posterior draws.
        observed: the data site of a numpyro model.
        iid: ``x_o``'s leading axis indexes i.i.d. observations: the posterior is
            ``p(θ) Π_j p(x_j | θ)`` (the prior counted once). Said explicitly rather than
            guessed from the shape, since a simulator does not declare ``x_shape``.
        sampler: :class:`NUTS` settings (or another sampler).
        num_chains: chains, run vectorised.
        num_warmup: warm-up steps per chain.
        thinning: keep one draw in ``thinning`` (less correlated references).
        max_r_hat: the largest split-R̂ accepted.
        check: raise when R̂ exceeds ``max_r_hat`` (otherwise warn).
        progress: show a progress bar over the MCMC iterations.

    Returns:
        an :class:`MCMCResult` (``samples``, ``r_hat``, ``ess``, ``num_divergent``).

    Raises:
        RuntimeError: if ``check`` and the chains did not mix (R̂ above ``max_r_hat``).

    Examples:
        >>> import jax, jax.numpy as jnp, sbi_kit as sk
        >>> task = sk.tasks.get("gaussian_linear")
        >>> ref = sk.mcmc.reference_posterior(jax.random.key(0), task, task.observation(1), 1000,
        ...                                   num_chains=4, num_warmup=200, thinning=1)
        >>> ref.samples.shape, ref.max_r_hat < 1.01
        ((1000, 10), True)

        Ten i.i.d. observations (prior N(0, 0.1 I), x ~ N(θ, 0.1 I)): the exact posterior is
        N(Σ_j x_j / 11, I / 110).

        >>> key_x, key_ref = jax.random.split(jax.random.key(1))
        >>> theta = task.true_parameters(1)
        >>> x_stack = jax.vmap(task.simulator.simulate, in_axes=(0, None))(
        ...     jax.random.split(key_x, 10), theta)
        >>> ref10 = sk.mcmc.reference_posterior(key_ref, task, x_stack, 1000, iid=True,
        ...                                     num_chains=4, num_warmup=200, thinning=1)
        >>> bool(jnp.allclose(ref10.samples.mean(0), x_stack.sum(0) / 11, atol=0.02))
        True
        >>> bool(jnp.allclose(ref10.samples.std(0), 110 ** -0.5, rtol=0.1))
        True
    """
    fn = "sk.mcmc.reference_posterior"
    key = check_key(key, fn)
    sim = _simulator(problem, observed, fn)
    x_o = jnp.asarray(x_o)
    if iid and (x_o.ndim == 0 or x_o.shape[0] == 0):
        raise ValueError(
            f"{fn}: with iid=True, `x_o` must be a stack (n_obs, *x_shape) with n_obs >= 1, got "
            f"shape {x_o.shape}."
        )
    check_finite(x_o, "x_o", fn)
    log_likelihood: Callable = sim.log_likelihood  # type: ignore[assignment]
    prior = sim.prior
    x_stack = x_o if iid else x_o[None]

    return sample(
        key,
        eqx.Partial(_log_posterior, prior, log_likelihood, x_stack),
        prior,
        num_samples,
        sampler=sampler,
        num_chains=num_chains,
        num_warmup=num_warmup,
        thinning=thinning,
        max_r_hat=max_r_hat,
        raise_on_poor_mixing=check,
        progress=progress,
    )
