"""Minimum-MMD estimation of θ for base-space simulators (Briol et al. 2019; Bharti et al. 2023).

``θ̂ = argmin_θ MMD²(P_θ, Q_n)`` with ``P_θ`` represented by ``x_i = G_θ(u_i)`` for one fixed
set of base-space draws ``u`` (common random numbers), optionally weighted by the optimal
weights of ``u``, which are computed once and reused for every θ. Two searches: gradient
descent through the simulator (:func:`minimum_mmd_estimate`) and ABC rejection over prior
draws (:func:`mmd_abc`).
"""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array

from .._checks import as_float_array, check_finite, check_key
from .._types import Key
from ..simulators import BaseSpaceSimulator, unconstraining_transform
from ._kernels import AbstractKernel, GaussianKernel, check_points
from ._mmd import UStatistic, kernel_sum
from ._optimal_weights import optimal_weights

_U = UStatistic()  # the unweighted objective, and the y–y term of both


class MinimumMMDResult(NamedTuple):
    """Result of :func:`minimum_mmd_estimate`.

    Attributes:
        theta: the estimate, shape ``(p,)``.
        losses: ``MMD²`` estimate at each step, shape ``(num_steps,)``.
    """

    theta: Array
    losses: Array


class MMDABCResult(NamedTuple):
    """Result of :func:`mmd_abc`.

    Attributes:
        theta: accepted parameters, closest first, shape ``(num_accepted, p)``.
        distances: their MMD² estimates, shape ``(num_accepted,)``.
    """

    theta: Array
    distances: Array


def _check_simulator(simulator, fn: str) -> BaseSpaceSimulator:
    if not isinstance(simulator, BaseSpaceSimulator):
        raise TypeError(
            f"{fn}: `simulator` must be an sk.simulators.BaseSpaceSimulator (x = G_θ(u)), got "
            f"{type(simulator).__name__}."
        )
    return simulator


def _objective(simulator, kernel, y, u, weights, yy):
    """θ ↦ the MMD² estimate between G_θ(u) (weighted) and y."""
    n = y.shape[0]
    ones_y = jnp.ones(n, y.dtype) / n

    def loss(theta):
        x = simulator.generate(theta, u).astype(y.dtype)
        if weights is None:  # U-statistic
            m = x.shape[0]
            w = jnp.ones(m, y.dtype) / m
            xx = _U.within(kernel, x)
        else:
            w = weights
            xx = kernel_sum(kernel, x, x, w, w)
        return xx + yy - 2.0 * kernel_sum(kernel, x, y, w, ones_y)

    return loss


def _setup(key, simulator, y, kernel, num_simulations, weighted, fn):
    check_key(key, fn)
    simulator = _check_simulator(simulator, fn)
    y = check_points(y, "y", fn)
    if y.shape[0] < 2:
        raise ValueError(f"{fn}: needs at least 2 observed points, got {y.shape[0]}.")
    if not isinstance(num_simulations, int) or num_simulations < 2:
        raise ValueError(f"{fn}: num_simulations must be an integer ≥ 2, got {num_simulations!r}.")
    if kernel is None:
        kernel = GaussianKernel()
    if not isinstance(kernel, AbstractKernel):
        raise TypeError(f"{fn}: `kernel` must be a kernel object, got {type(kernel).__name__}.")
    kernel = kernel.resolve(y)
    u = simulator.sample_base(key, num_simulations)
    weights = optimal_weights(u, base=simulator.base).astype(y.dtype) if weighted else None
    yy = _U.within(kernel, y)
    return simulator, y, kernel, u.astype(y.dtype), weights, yy


def minimum_mmd_estimate(
    key: Key,
    simulator: BaseSpaceSimulator,
    y: Array,
    theta_init: Array,
    *,
    num_simulations: int = 256,
    weighted: bool = True,
    kernel: AbstractKernel | None = None,
    num_steps: int = 500,
    learning_rate: float = 0.02,
) -> MinimumMMDResult:
    """Minimum-distance estimate of θ by gradient descent on the (weighted) MMD².

    ``u`` (``num_simulations`` base-space draws) is drawn once; the loss
    ``MMD²(G_θ(u), y)`` — optimally-weighted (default) or the U-statistic — is differentiated
    through the simulator and minimised with Adam, in the unconstrained coordinates of the
    simulator's prior when it has one (so θ stays in the support). The kernel lengthscale is
    the median heuristic on ``y`` unless given, so the objective is fixed across θ.

    Args:
        key: PRNG key (the base-space draws).
        simulator: a ``BaseSpaceSimulator``.
        y: observed data, shape ``(n, d_x)``.
        theta_init: starting point, shape ``(p,)``.
        num_simulations: ``m``, simulated points per evaluation.
        weighted: use the optimally-weighted estimator (else the U-statistic).
        kernel: kernel on x (default Gaussian, median heuristic on ``y``).
        num_steps: Adam steps.
        learning_rate: Adam step size (in unconstrained coordinates).

    Returns:
        a :class:`MinimumMMDResult` ``(theta, losses)``.

    Examples:
        >>> import jax, jax.numpy as jnp, sbi_kit as sk
        >>> sim = sk.simulators.g_and_k()
        >>> _, y = sim.sample(jax.random.key(0), jnp.array([3.0, 1.0, 0.1, 0.1]), 500)
        >>> res = sk.diagnostics.minimum_mmd_estimate(
        ...     jax.random.key(1), sim, y, jnp.array([5.0, 2.0, 0.5, 0.5]), num_simulations=64,
        ...     num_steps=200, learning_rate=0.05)
        >>> bool(abs(res.theta[0] - 3.0) < 0.2)
        True
    """
    fn = "minimum_mmd_estimate"
    simulator, y, kernel, u, weights, yy = _setup(
        key, simulator, y, kernel, num_simulations, weighted, fn
    )
    theta_init = check_finite(as_float_array(theta_init, "theta_init", fn, 1), "theta_init", fn)
    if not isinstance(num_steps, int) or num_steps < 1:
        raise ValueError(f"{fn}: num_steps must be a positive integer, got {num_steps!r}.")
    if simulator.prior is not None:
        if simulator.prior.event_shape != theta_init.shape:
            raise ValueError(
                f"{fn}: theta_init has shape {theta_init.shape}, the prior's event shape is "
                f"{simulator.prior.event_shape}."
            )
        if not bool(jnp.all(simulator.prior.support(theta_init))):
            raise ValueError(f"{fn}: theta_init lies outside the prior's support.")
    return _descend(
        simulator,
        kernel,
        y,
        u,
        weights,
        yy,
        theta_init.astype(y.dtype),
        num_steps,
        float(learning_rate),
    )


@eqx.filter_jit
def _descend(simulator, kernel, y, u, weights, yy, theta_init, num_steps, learning_rate):
    loss = _objective(simulator, kernel, y, u, weights, yy)
    prior = simulator.prior
    transform = None if prior is None else unconstraining_transform(prior)

    def to_theta(z):
        return z if transform is None else transform(z)

    z0 = theta_init if transform is None else transform.inv(theta_init)
    opt = optax.adam(learning_rate)

    def step(carry, _):
        z, state = carry
        value, grad = jax.value_and_grad(lambda z: loss(to_theta(z)))(z)
        updates, state = opt.update(grad, state, z)
        return (optax.apply_updates(z, updates), state), value

    (z, _), losses = jax.lax.scan(step, (z0, opt.init(z0)), None, length=num_steps)
    return MinimumMMDResult(to_theta(z), losses)


def mmd_abc(
    key: Key,
    simulator: BaseSpaceSimulator,
    y: Array,
    *,
    num_proposals: int = 10_000,
    num_accepted: int = 100,
    num_simulations: int = 256,
    weighted: bool = True,
    kernel: AbstractKernel | None = None,
    batch_size: int = 64,
) -> MMDABCResult:
    """Rejection ABC with the (optimally-weighted) MMD² as the distance.

    Draws ``num_proposals`` parameters from the simulator's prior, simulates every one from
    the same base-space draws ``u`` (common random numbers; the optimal weights are computed
    once), and keeps the ``num_accepted`` closest to ``y``. Cost: ``num_proposals · m · n``
    kernel evaluations, in jitted chunks of ``batch_size`` proposals; thin ``y`` if it is large.

    Args:
        key: PRNG key.
        simulator: a ``BaseSpaceSimulator`` with a prior.
        y: observed data, shape ``(n, d_x)``.
        num_proposals: prior draws.
        num_accepted: how many to keep.
        num_simulations: ``m``, simulated points per proposal.
        weighted: use the optimally-weighted estimator (else the U-statistic).
        kernel: kernel on x (default Gaussian, median heuristic on ``y``).
        batch_size: proposals per vmapped chunk.

    Returns:
        an :class:`MMDABCResult` ``(theta, distances)``, closest first.

    Examples:
        >>> import jax, jax.numpy as jnp, sbi_kit as sk
        >>> sim = sk.simulators.g_and_k()
        >>> _, y = sim.sample(jax.random.key(0), jnp.array([3.0, 1.0, 0.1, 0.1]), 500)
        >>> res = sk.diagnostics.mmd_abc(jax.random.key(1), sim, y, num_proposals=2000,
        ...                              num_accepted=20, num_simulations=64)
        >>> res.theta.shape, bool(abs(jnp.median(res.theta[:, 0]) - 3.0) < 0.5)
        ((20, 4), True)
    """
    fn = "mmd_abc"
    key_u, key_prior = jax.random.split(check_key(key, fn))
    simulator, y, kernel, u, weights, yy = _setup(
        key_u, simulator, y, kernel, num_simulations, weighted, fn
    )
    if simulator.prior is None:
        raise ValueError(f"{fn}: the simulator needs a prior to propose from.")
    for name, v in (
        ("num_proposals", num_proposals),
        ("num_accepted", num_accepted),
        ("batch_size", batch_size),
    ):
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"{fn}: {name} must be a positive integer, got {v!r}.")
    if num_accepted > num_proposals:
        raise ValueError(f"{fn}: num_accepted ({num_accepted}) exceeds num_proposals.")
    thetas = simulator.prior.sample(key_prior, (num_proposals,)).astype(y.dtype)
    distances = _distances(simulator, kernel, y, u, weights, yy, thetas, batch_size)
    order = jnp.argsort(jnp.where(jnp.isnan(distances), jnp.inf, distances))[:num_accepted]
    return MMDABCResult(thetas[order], distances[order])


@eqx.filter_jit
def _distances(simulator, kernel, y, u, weights, yy, thetas, batch_size):
    loss = _objective(simulator, kernel, y, u, weights, yy)
    return jax.lax.map(loss, thetas, batch_size=min(batch_size, thetas.shape[0]))
