"""The :class:`Simulator`: a prior plus a simulate function of one parameter vector."""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import numpyro.distributions as dist
from jaxtyping import Array

from .._types import Key


class Simulator(eqx.Module):
    """A simulation-based inference problem: a prior over θ and a stochastic simulator.

    Args:
        prior: a numpyro distribution over one flat parameter vector, event shape
            ``(dim_theta,)``.
        simulate: ``simulate(key, theta) -> x`` for ONE parameter vector ``theta`` of shape
            ``(dim_theta,)``; returns one observation (usually of shape ``(dim_x,)``).
            It must be traceable by JAX (``sk.simulate`` vmaps and jits it).
        log_likelihood: optional ``log_likelihood(theta, x) -> scalar``, the exact likelihood
            where it is tractable (used for reference posteriors and tests).
        theta_names: optional labels of the θ components, used by plots.

    Examples:
        >>> import jax, jax.numpy as jnp, numpyro.distributions as dist
        >>> import sbi_kit as sk
        >>> prior = dist.Normal(jnp.zeros(2), 1.0).to_event(1)
        >>> sim = sk.Simulator(prior, lambda key, th: th + 0.1 * jax.random.normal(key, (2,)))
        >>> sim.dim_theta
        2
    """

    prior: dist.Distribution
    simulate: Callable[[Key, Array], Array]
    log_likelihood: Callable[[Array, Array], Array] | None = None
    theta_names: tuple[str, ...] | None = eqx.field(default=None, static=True)

    def __check_init__(self):
        if not isinstance(self.prior, dist.Distribution):
            raise TypeError(
                "Simulator: `prior` must be a numpyro Distribution, got "
                f"{type(self.prior).__name__}."
            )
        if len(self.prior.event_shape) != 1:
            raise ValueError(
                "Simulator: the prior must have event shape (dim_theta,) (a flat parameter vector, "
                f"e.g. `dist.Normal(...).expand([d]).to_event(1)`), got event shape "
                f"{self.prior.event_shape} and batch shape {self.prior.batch_shape}."
            )
        if self.prior.batch_shape != ():
            raise ValueError(
                "Simulator: the prior must have batch shape () (call `.to_event(1)`), got batch "
                f"shape {self.prior.batch_shape}."
            )
        if not callable(self.simulate):
            raise TypeError("Simulator: `simulate` must be a callable simulate(key, theta) -> x.")
        if self.theta_names is not None and len(self.theta_names) != self.dim_theta:
            raise ValueError(
                f"Simulator: {len(self.theta_names)} theta_names given for dim_theta = "
                f"{self.dim_theta}."
            )

    @property
    def dim_theta(self) -> int:
        """Number of components of θ."""
        return int(self.prior.event_shape[0])

    def labels(self) -> tuple[str, ...]:
        """Labels of the θ components (``theta_names`` or ``θ1 … θd``)."""
        if self.theta_names is not None:
            return self.theta_names
        return tuple(f"θ{i + 1}" for i in range(self.dim_theta))


def unconstraining_transform(prior: dist.Distribution) -> dist.transforms.Transform:
    """The bijection from unconstrained space onto the support of ``prior``.

    Estimators learn in unconstrained space and map samples back through this transform, so
    no posterior mass falls outside the prior's support. A prior may define its own
    ``unconstraining_transform()`` (as priors from :func:`sk.from_numpyro` do); otherwise
    numpyro's ``biject_to(prior.support)`` is used.
    """
    own = getattr(prior, "unconstraining_transform", None)
    if own is not None:
        return own()
    return dist.transforms.biject_to(prior.support)
