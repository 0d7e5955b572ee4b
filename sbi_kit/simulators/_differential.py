"""ODE and SDE models solved with diffrax, and simulators built from them.

:class:`ODE` and :class:`SDE` describe a differential equation whose right-hand side depends on
the parameters θ; ``solve`` returns the state at the observation times for ONE θ (and, for an
SDE, one key), vmappable and differentiable in θ. A failed solve (diffrax's result not
successful, ``max_steps`` reached, a non-finite state) returns NaN instead of raising, so a
batch is never poisoned: :func:`sk.simulate <sbi_kit.simulate>` counts and drops such rows.
The same ``solve`` works inside a numpyro model. :func:`ode_simulator` and
:func:`sde_simulator` add an observation model and give an ``sk.Simulator``.
"""

from __future__ import annotations

from collections.abc import Callable

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpyro.distributions as dist
from jaxtyping import Array

from .._types import Key
from ._simulator import Simulator


def _times(ts, name: str) -> Array:
    ts = jnp.asarray(ts, dtype=float)
    if ts.ndim != 1 or ts.shape[0] < 1:
        raise ValueError(f"{name}: `ts` must be a 1-d array of observation times, got {ts.shape}.")
    if ts.shape[0] > 1 and not bool(jnp.all(jnp.diff(ts) > 0)):
        raise ValueError(f"{name}: the observation times `ts` must be strictly increasing.")
    return ts


def _initial_state(y0, theta: Array) -> Array:
    return jnp.asarray(y0(theta) if callable(y0) else y0, dtype=float)


def _failed_to_nan(solution: diffrax.Solution) -> Array:
    ys = solution.ys
    ok = (solution.result == diffrax.RESULTS.successful) & jnp.all(jnp.isfinite(ys))
    return jnp.where(ok, ys, jnp.nan)


class ODE(eqx.Module):
    """``dy/dt = f(t, y, θ)`` from ``y(t0) = y0`` (or ``y0(θ)``), observed at times ``ts``.

    Args:
        vector_field: ``f(t, y, theta) -> dy/dt`` with the shape of ``y``.
        y0: the initial state, an array or a function of θ.
        ts: increasing observation times.
        t0: the initial time (default ``ts[0]``).
        solver: any diffrax solver (default ``diffrax.Tsit5()``).
        rtol, atol: tolerances of the adaptive step-size controller
            (``diffrax.PIDController``).
        dt0: the initial step (default: chosen by diffrax).
        max_steps: the most steps; a solve that needs more returns NaN.

    Examples:
        >>> import jax.numpy as jnp, sbi_kit as sk
        >>> growth = sk.simulators.ODE(lambda t, y, th: th[0] * y, y0=jnp.ones(1),
        ...                            ts=jnp.array([0.0, 1.0, 2.0]))
        >>> y = growth.solve(jnp.array([0.5]))[:, 0]
        >>> bool(jnp.allclose(y, jnp.exp(0.5 * growth.ts), rtol=1e-5))
        True
    """

    vector_field: Callable = eqx.field(static=True)
    y0: Array | Callable
    ts: Array
    t0: float | None = None
    solver: diffrax.AbstractSolver = diffrax.Tsit5()
    rtol: float = 1e-6
    atol: float = 1e-6
    dt0: float | None = None
    max_steps: int = 4096

    def __check_init__(self):
        if not callable(self.vector_field):
            raise TypeError("ODE: `vector_field` must be a function f(t, y, theta).")
        _times(self.ts, "ODE")
        if not isinstance(self.solver, diffrax.AbstractSolver):
            raise TypeError(f"ODE: `solver` must be a diffrax solver, got {self.solver!r}.")
        if not (self.rtol > 0 and self.atol > 0):
            raise ValueError(f"ODE: rtol and atol must be > 0, got {self.rtol}, {self.atol}.")

    def solve(self, theta: Array) -> Array:
        """The state at ``ts`` for one θ: shape ``(len(ts), *y0.shape)``; NaN if the solve
        failed."""
        ts = jnp.asarray(self.ts, dtype=float)
        y0 = _initial_state(self.y0, theta)
        t0 = ts[0] if self.t0 is None else self.t0

        def field(t, y, args):
            dy = self.vector_field(t, y, args)
            if jnp.shape(dy) != jnp.shape(y):
                raise ValueError(
                    f"ODE: the vector field returned shape {jnp.shape(dy)} for a state of shape "
                    f"{jnp.shape(y)}; it must return dy/dt with the state's shape."
                )
            return dy

        solution = diffrax.diffeqsolve(
            diffrax.ODETerm(field),
            self.solver,
            t0,
            ts[-1],
            self.dt0,
            y0,
            args=theta,
            saveat=diffrax.SaveAt(ts=ts),
            stepsize_controller=diffrax.PIDController(rtol=self.rtol, atol=self.atol),
            max_steps=self.max_steps,
            throw=False,
        )
        return _failed_to_nan(solution)


class SDE(eqx.Module):
    """``dy = μ(t, y, θ) dt + σ(t, y, θ) dW`` from ``y0`` (or ``y0(θ)``), observed at ``ts``.

    The Brownian motion is a ``diffrax.VirtualBrownianTree`` of shape ``(noise_dim,)`` built
    from the key, so a solve is a deterministic function of (key, θ) and differentiable in θ.
    Steps are fixed (``dt``).

    Args:
        drift: ``μ(t, y, theta)`` with the shape of ``y``.
        diffusion: ``σ(t, y, theta)`` of shape ``(*y.shape, noise_dim)``.
        y0: the initial state, an array or a function of θ.
        ts: increasing observation times.
        noise_dim: dimension of the Brownian motion.
        dt: the fixed step.
        t0: the initial time (default ``ts[0]``).
        solver: a diffrax SDE solver: ``diffrax.Euler()`` (Euler–Maruyama, default) or a
            higher-order one such as ``diffrax.Heun()`` (Stratonovich) or ``diffrax.SRA1()``
            (additive noise).
        max_steps: the most steps; a solve that needs more returns NaN.

    Examples:
        >>> import jax, jax.numpy as jnp, sbi_kit as sk
        >>> ou = sk.simulators.SDE(lambda t, y, th: -th[0] * y,
        ...                        lambda t, y, th: 0.5 * jnp.ones((1, 1)),
        ...                        y0=jnp.zeros(1), ts=jnp.linspace(0.0, 1.0, 5), noise_dim=1)
        >>> ou.solve(jax.random.key(0), jnp.array([1.0])).shape
        (5, 1)
    """

    drift: Callable = eqx.field(static=True)
    diffusion: Callable = eqx.field(static=True)
    y0: Array | Callable
    ts: Array
    noise_dim: int = eqx.field(static=True, default=1)
    dt: float = 1e-2
    t0: float | None = None
    solver: diffrax.AbstractSolver = diffrax.Euler()
    max_steps: int = 100_000

    def __check_init__(self):
        if not (callable(self.drift) and callable(self.diffusion)):
            raise TypeError("SDE: `drift` and `diffusion` must be functions of (t, y, theta).")
        _times(self.ts, "SDE")
        if not self.dt > 0:
            raise ValueError(f"SDE: dt must be > 0, got {self.dt!r}.")
        if isinstance(self.noise_dim, bool) or not isinstance(self.noise_dim, int):
            raise TypeError(f"SDE: noise_dim must be an int, got {self.noise_dim!r}.")
        if not isinstance(self.solver, diffrax.AbstractSolver):
            raise TypeError(f"SDE: `solver` must be a diffrax solver, got {self.solver!r}.")

    def solve(self, key: Key, theta: Array) -> Array:
        """One path at ``ts`` for one (key, θ): shape ``(len(ts), *y0.shape)``; NaN if the solve
        failed."""
        ts = jnp.asarray(self.ts, dtype=float)
        y0 = _initial_state(self.y0, theta)
        t0 = ts[0] if self.t0 is None else self.t0
        brownian = diffrax.VirtualBrownianTree(
            t0, ts[-1], tol=self.dt / 2, shape=(self.noise_dim,), key=key
        )
        expected = (*jnp.shape(y0), self.noise_dim)

        def diffusion(t, y, args):
            g = self.diffusion(t, y, args)
            if jnp.shape(g) != expected:
                raise ValueError(
                    f"SDE: the diffusion returned shape {jnp.shape(g)}; expected {expected} "
                    "(state shape + (noise_dim,))."
                )
            return g

        terms = diffrax.MultiTerm(
            diffrax.ODETerm(lambda t, y, args: self.drift(t, y, args)),
            diffrax.ControlTerm(diffusion, brownian),
        )
        solution = diffrax.diffeqsolve(
            terms,
            self.solver,
            t0,
            ts[-1],
            self.dt,
            y0,
            args=theta,
            saveat=diffrax.SaveAt(ts=ts),
            max_steps=self.max_steps,
            throw=False,
        )
        return _failed_to_nan(solution)


def _observed(observation: Callable, solution: Array, theta: Array, name: str):
    d = observation(solution, theta)
    if not isinstance(d, dist.Distribution):
        raise TypeError(
            f"{name}: `observation(solution, theta)` must return a numpyro distribution over x, "
            f"got {type(d).__name__}."
        )
    return d


def _failed_and_safe(y: Array) -> tuple[Array, Array]:
    """Whether a solution failed (any non-finite value), and a stand-in of ones if it did, so
    that the observation model stays well-defined; its output is then replaced or masked."""
    failed = ~jnp.all(jnp.isfinite(y))
    return failed, jnp.where(failed, jnp.ones_like(y), y)


def _nan_if(bad: Array, x: Array) -> Array:
    return jnp.where(bad, jnp.nan, jnp.asarray(x, dtype=float))


def ode_simulator(
    prior: dist.Distribution,
    ode: ODE,
    observation: Callable[[Array, Array], dist.Distribution],
    *,
    theta_names: tuple[str, ...] | None = None,
) -> Simulator:
    """An ``sk.Simulator`` that solves ``ode`` for θ and draws x from ``observation``.

    Args:
        prior: the prior over θ (event shape ``(d,)``).
        ode: the :class:`ODE`.
        observation: ``(solution, theta) -> numpyro distribution`` over x, where ``solution``
            has shape ``(len(ts), *state)``; e.g. ``lambda y, th: dist.LogNormal(jnp.log(y),
            0.1).to_event(2)``.
        theta_names: optional parameter names (for plots).

    Returns:
        a Simulator whose ``simulate`` gives NaN for a failed solve (dropped and counted by
        ``sk.simulate``) and whose ``log_likelihood`` is the observation model's density at the
        solution (``-inf`` where the solve failed).

    Examples:
        >>> import jax, jax.numpy as jnp, numpyro.distributions as dist, sbi_kit as sk
        >>> ode = sk.simulators.ODE(lambda t, y, th: -th[0] * y, y0=jnp.ones(1),
        ...                         ts=jnp.linspace(0.0, 2.0, 5))
        >>> prior = dist.LogNormal(jnp.zeros(1), 0.5).to_event(1)
        >>> sim = sk.simulators.ode_simulator(
        ...     prior, ode, lambda y, th: dist.Normal(y[:, 0], 0.05).to_event(1))
        >>> theta, x = sk.simulate(jax.random.key(0), sim, 100)
        >>> x.shape
        (100, 5)
    """
    if not isinstance(ode, ODE):
        raise TypeError(f"ode_simulator: `ode` must be an sk.simulators.ODE, got {ode!r}.")

    def simulate(key: Key, theta: Array) -> Array:
        failed, safe = _failed_and_safe(ode.solve(theta))
        x = _observed(observation, safe, theta, "ode_simulator").sample(key)
        return _nan_if(failed, x)

    def log_likelihood(theta: Array, x: Array) -> Array:
        failed, safe = _failed_and_safe(ode.solve(theta))
        lp = jnp.sum(_observed(observation, safe, theta, "ode_simulator").log_prob(x))
        return jnp.where(failed, -jnp.inf, lp)

    return Simulator(prior, simulate, log_likelihood, theta_names=theta_names)


def sde_simulator(
    prior: dist.Distribution,
    sde: SDE,
    observation: Callable[[Array, Array], dist.Distribution] | None = None,
    *,
    theta_names: tuple[str, ...] | None = None,
) -> Simulator:
    """An ``sk.Simulator`` that draws one path of ``sde`` for θ (and x from ``observation``).

    Args:
        prior: the prior over θ (event shape ``(d,)``).
        sde: the :class:`SDE`.
        observation: optional ``(path, theta) -> numpyro distribution`` over x; without it x
            is the path itself, flattened.
        theta_names: optional parameter names.

    Returns:
        a Simulator whose ``simulate`` gives NaN for a failed solve. An SDE has no likelihood
        in closed form in general, so ``log_likelihood`` is ``None``.

    Examples:
        >>> import jax, jax.numpy as jnp, numpyro.distributions as dist, sbi_kit as sk
        >>> ou = sk.simulators.SDE(lambda t, y, th: -th[0] * y,
        ...                        lambda t, y, th: 0.5 * jnp.ones((1, 1)),
        ...                        y0=jnp.ones(1), ts=jnp.array([0.5, 1.0]), t0=0.0)
        >>> prior = dist.LogNormal(jnp.zeros(1), 0.3).to_event(1)
        >>> sim = sk.simulators.sde_simulator(prior, ou)    # x: the path, flattened
        >>> sk.simulate(jax.random.key(0), sim, 8).x.shape
        (8, 2)
    """
    if not isinstance(sde, SDE):
        raise TypeError(f"sde_simulator: `sde` must be an sk.simulators.SDE, got {sde!r}.")

    def simulate(key: Key, theta: Array) -> Array:
        key_path, key_obs = jax.random.split(key)
        path = sde.solve(key_path, theta)
        if observation is None:
            return jnp.ravel(path)
        failed, safe = _failed_and_safe(path)
        x = _observed(observation, safe, theta, "sde_simulator").sample(key_obs)
        return _nan_if(failed, x)

    return Simulator(prior, simulate, None, theta_names=theta_names)
