"""How a posterior estimator keeps its mass inside the prior's support.

Two strategies, chosen with ``NPE(support=...)``:

* :class:`Bijection` (default): learn in unconstrained space z = T⁻¹(θ), where T maps ℝᵈ onto
  the support; samples are T(z), so none falls outside, and the density carries the Jacobian
  of T. Exact and always cheap, but a posterior with mass piled against a bound of a box prior
  is stretched towards infinity in z and is harder to fit.
* :class:`Rejection`: learn on θ itself (as the `sbi` package does) and reject samples that fall
  outside the support. The flow sees the posterior's shape undistorted; the price is the
  rejected draws, whose share is reported by ``posterior.acceptance_rate``.
"""

from __future__ import annotations

import abc
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpyro.distributions as dist
from jaxtyping import Array

from .._types import Key
from ..simulators import unconstraining_transform


def inside(prior: dist.Distribution, theta: Array) -> Array:
    """Whether each row of ``theta`` (n, d) lies in the prior's support; (n,) bool."""
    return jnp.all(prior.support(theta).reshape(theta.shape[0], -1), axis=1)


def check_inside(prior: dist.Distribution, theta: Array, fn: str, learner: str) -> None:
    """Raises ``ValueError`` with the count if rows of ``theta`` lie outside the prior's
    support (``learner`` trains on that support and cannot use them)."""
    outside = ~inside(prior, theta)
    if bool(jnp.any(outside)):
        raise ValueError(
            f"{fn}: {int(outside.sum())} rows of `theta` lie outside the prior's support; "
            f"{learner} learns on the prior's support and cannot use them."
        )


class AbstractSupport(eqx.Module):
    """How a method keeps posterior mass inside the prior's support."""

    @abc.abstractmethod
    def transform(self, prior: dist.Distribution) -> dist.transforms.Transform:
        """The map from the space the networks learn in onto θ."""

    @abc.abstractmethod
    def draw(self, sample: Callable, inside: Callable, key: Key, num_samples: int) -> Array:
        """``num_samples`` draws of ``sample(key, m) -> (m, d)`` that satisfy ``inside``."""


class Bijection(AbstractSupport):
    """Learn in unconstrained space through the prior's bijection (no rejected draws).

    The posterior density is ``log q(θ|x) = log q_z(T⁻¹(θ)|x) − log|dT/dz|``; it integrates to
    one over the support.
    """

    def transform(self, prior: dist.Distribution) -> dist.transforms.Transform:
        """The map from the space the flow learns in onto the prior's support."""
        return unconstraining_transform(prior)

    def draw(self, sample: Callable, inside: Callable, key: Key, num_samples: int) -> Array:
        """``num_samples`` draws of ``sample(key, m) -> (m, d)``; all lie in the support."""
        del inside
        return sample(key, num_samples)


class Rejection(AbstractSupport):
    """Learn on θ directly and reject draws outside the prior's support.

    Sampling draws ``num_samples`` candidates per round and keeps those inside the support,
    for at most ``max_rounds`` rounds; if the acceptance rate is so low that this does not
    fill the request, sampling raises an error (use :class:`Bijection` then, or more
    simulations). It raises early, without drawing all ``max_rounds`` rounds, once the
    acceptance so far makes the request out of reach: when even twice a generous upper bound
    on the rate, ``(accepted + 3) / drawn``, would not fill it in ``max_rounds`` rounds
    (so with no candidate inside, after the first round for requests of more than
    ``6 × max_rounds`` samples). A composed NPSE sampler whose draws all fell outside the box
    drew for 25 minutes before this check (benchmarks/results/compositional_slcp.md).
    ``log_prob`` is the flow's density restricted to the support: it integrates
    to the acceptance rate ``a(x_o)`` rather than to one (subtract ``log a`` from
    ``posterior.acceptance_rate`` to normalise; ranks, HPD regions and calibration
    diagnostics do not depend on it).

    Args:
        max_rounds: the most rounds of ``num_samples`` candidates that sampling may draw.
    """

    max_rounds: int = 100

    def __check_init__(self):
        if (
            isinstance(self.max_rounds, bool)
            or not isinstance(self.max_rounds, int)
            or (self.max_rounds < 1)
        ):
            raise ValueError(
                f"Rejection: max_rounds must be a positive integer, got {self.max_rounds!r}."
            )

    def transform(self, prior: dist.Distribution) -> dist.transforms.Transform:
        """The identity: the flow learns on θ itself."""
        del prior
        return dist.transforms.IdentityTransform()

    def draw(self, sample: Callable, inside: Callable, key: Key, num_samples: int) -> Array:
        """``num_samples`` draws of ``sample(key, m)`` that satisfy ``inside`` (one jit-able
        ``while_loop``; raises at run time if ``max_rounds`` rounds do not suffice)."""
        first = sample(key, num_samples)  # shape and dtype of one round

        def cond(state):
            _, _, count, rounds = state
            # out of reach: 2 (count + 3) / (rounds · n) · max_rounds · n < n, in floats
            reachable = 2.0 * (count + 3.0) * self.max_rounds >= float(num_samples) * rounds
            return (count < num_samples) & (rounds < self.max_rounds) & reachable

        def body(state):
            key, kept, count, rounds = state
            key, sub = jax.random.split(key)
            candidates = sample(sub, num_samples)
            kept, count = _keep_inside(kept, count, candidates, inside(candidates))
            return key, kept, count, rounds + 1

        kept, count = _keep_inside(
            jnp.zeros_like(first), jnp.zeros((), jnp.int32), first, inside(first)
        )
        state = (jax.random.fold_in(key, 1), kept, count, jnp.ones((), jnp.int32))
        _, kept, count, _ = jax.lax.while_loop(cond, body, state)
        return eqx.error_if(
            kept,
            count < num_samples,
            f"Rejection(max_rounds={self.max_rounds}): fewer than the requested samples fell "
            f"inside the prior's support: the acceptance rate is below 1/{self.max_rounds} "
            f"(judged from the rounds drawn, at most {self.max_rounds}); train with "
            "support=Bijection() or more simulations, or raise max_rounds.",
        )


def _keep_inside(kept: Array, count: Array, candidates: Array, ok: Array) -> tuple[Array, Array]:
    """Appends the accepted ``candidates`` to ``kept`` after its first ``count`` rows."""
    position = count + jnp.cumsum(ok) - 1
    capacity = kept.shape[0]
    slot = jnp.where(ok & (position < capacity), position, capacity)  # `capacity`: dropped
    kept = kept.at[slot].set(candidates, mode="drop")
    return kept, jnp.minimum(capacity, count + jnp.sum(ok, dtype=jnp.int32))
