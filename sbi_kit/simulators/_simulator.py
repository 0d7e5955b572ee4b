"""The :class:`Simulator`: a prior plus a simulate function of one parameter vector.

:class:`AbstractSimulator` holds what every simulator shares (the prior, θ's labels and their
checks); :class:`Simulator` (JAX code, vmapped and jitted by ``sk.simulate``) and
``BlackBoxSimulator`` (plain Python run through an executor) are its final subclasses.
"""

from collections.abc import Callable

import equinox as eqx
import numpyro.distributions as dist
from equinox import AbstractVar
from jaxtyping import Array

from .._types import Key


class AbstractSimulator(eqx.Module):
    """What every simulator provides: a prior over one flat parameter vector and θ's labels.

    Final subclasses: :class:`Simulator` (a JAX ``simulate(key, theta)``, which
    ``sk.simulate`` vmaps, jits and shards over devices) and
    :class:`~sbi_kit.simulators.BlackBoxSimulator` (a plain Python ``simulate(seed, theta)``,
    which ``sk.simulate`` runs through a ``concurrent.futures`` executor). The prior checks
    live here, so both refuse a bad prior with the same message.

    Examples:
        >>> import jax.numpy as jnp, numpyro.distributions as dist, sbi_kit as sk
        >>> prior = dist.Normal(jnp.zeros(2), 1.0).to_event(1)
        >>> sim = sk.Simulator(prior, lambda key, th: th)
        >>> isinstance(sim, sk.simulators.AbstractSimulator), sim.labels()
        (True, ('θ1', 'θ2'))
    """

    prior: AbstractVar[dist.Distribution]
    theta_names: AbstractVar[tuple[str, ...] | None]

    def __check_init__(self):
        owner = type(self).__name__
        if not isinstance(self.prior, dist.Distribution):
            raise TypeError(
                f"{owner}: `prior` must be a numpyro Distribution, got {type(self.prior).__name__}."
            )
        if len(self.prior.event_shape) != 1:
            raise ValueError(
                f"{owner}: the prior must have event shape (dim_theta,) (a flat parameter vector, "
                f"e.g. `dist.Normal(...).expand([d]).to_event(1)`), got event shape "
                f"{self.prior.event_shape} and batch shape {self.prior.batch_shape}."
            )
        if self.prior.batch_shape != ():
            raise ValueError(
                f"{owner}: the prior must have batch shape () (call `.to_event(1)`), got batch "
                f"shape {self.prior.batch_shape}."
            )
        if self.theta_names is not None and len(self.theta_names) != self.dim_theta:
            raise ValueError(
                f"{owner}: {len(self.theta_names)} theta_names given for dim_theta = "
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


class Simulator(AbstractSimulator):
    """A simulation-based inference problem: a prior over θ and a stochastic simulator.

    Args:
        prior: a numpyro distribution over one flat parameter vector, event shape
            ``(dim_theta,)``.
        simulate: ``simulate(key, theta) -> x`` for ONE parameter vector ``theta`` of shape
            ``(dim_theta,)``; returns one observation (usually of shape ``(dim_x,)``).
            It must be traceable by JAX (``sk.simulate`` vmaps and jits it, and shards the
            batch over the devices when there are several).
        log_likelihood: optional ``log_likelihood(theta, x) -> scalar``, the exact likelihood
            where it is tractable (used for reference posteriors and tests).
        theta_names: optional labels of the θ components, used by plots.

    A simulator that is not JAX code (NumPy, a compiled program) is a
    :class:`~sbi_kit.simulators.BlackBoxSimulator`.

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
        if not callable(self.simulate):
            raise TypeError("Simulator: `simulate` must be a callable simulate(key, theta) -> x.")


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
