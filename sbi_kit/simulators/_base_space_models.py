"""Benchmark simulators on a base space (Bharti et al., ICML 2023, Table 1).

Each function returns a :class:`BaseSpaceSimulator` ``x = G_θ(u)`` with ``u ~ Unif[0, 1]^{d_u}``
(``base=UniformBase()``):

- :func:`g_and_k`: the g-and-k distribution, θ = (A, B, g, k), d_u = 1, d_x = 1.
- :func:`two_moons_base_space`: sbibm's two moons, θ ∈ [−1, 1]², d_u = 2, d_x = 2 (the task
  ``sk.tasks.get("two_moons")`` written on a base space).
- :func:`ma2`: moving average of order 2, θ = (θ1, θ2), d_u = length + 2, d_x = length.
- :func:`bivariate_beta`: the bivariate beta distribution, θ ∈ (0, ∞)⁵, d_u = 5, d_x = 2.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpyro.distributions as dist
from jax.scipy.special import gammainc, gammaincc, gammaln, ndtri
from jaxtyping import Array

from ._base_space import BaseSpaceSimulator, UniformBase


def _clip_unit(u: Array) -> Array:
    """Keeps u inside the open unit interval so that quantile functions stay finite."""
    eps = jnp.finfo(jnp.result_type(u)).eps
    return jnp.clip(u, eps, 1.0 - eps)


def normal_quantile(u: Array) -> Array:
    """Φ⁻¹(u), with u clipped into (0, 1) so that the result is finite.

    The standard normal quantile function, for generators on a uniform base space.

    Examples:
        >>> import jax.numpy as jnp, sbi_kit as sk
        >>> q = sk.simulators.normal_quantile(jnp.array([0.0, 0.5, 0.975, 1.0]))
        >>> bool(jnp.isfinite(q).all()), round(float(q[1]), 4), round(float(q[2]), 2)
        (True, 0.0, 1.96)
    """
    return ndtri(_clip_unit(u))


def gamma_quantile(u: Array, shape: Array, num_steps: int = 12) -> Array:
    """The quantile of Gamma(shape, 1) at ``u`` (elementwise), by Newton steps on log x.

    Starts from the initial guess of Numerical Recipes (``invgammp``); the residual is taken on
    the upper tail for ``u > 1/2`` so both tails keep relative precision. Gradients with respect
    to ``u`` and ``shape`` are the implicit ones, ``∂x/∂u = 1/p(x)`` and
    ``∂x/∂a = −(∂P(a, x)/∂a)/p(x)``, attached by one final Newton step.

    Args:
        u: probabilities (any shape), clipped into (0, 1).
        shape: the Gamma shape parameter, broadcast to the shape of ``u``.
        num_steps: Newton steps.

    Returns:
        the quantiles, with the shape of ``u``.

    Examples:
        >>> import jax.numpy as jnp, sbi_kit as sk
        >>> q = sk.simulators.gamma_quantile(jnp.array([0.5]), 1.0)   # Exp(1): log 2
        >>> round(float(q[0]), 5)
        0.69315
    """
    u = _clip_unit(jnp.asarray(u))
    a = jnp.broadcast_to(jnp.asarray(shape, u.dtype), u.shape)
    tiny = jnp.finfo(u.dtype).tiny
    upper = u > 0.5

    def residual(a, u, x):  # P(a, x) − u, through the upper tail Q = 1 − P where u > 1/2
        return jnp.where(upper, (1.0 - u) - gammaincc(a, x), gammainc(a, x) - u)

    def dens_times_x(a, logx):  # x · p(x) = dP/dlog x
        return jnp.exp(a * logx - jnp.exp(logx) - gammaln(a))

    a0, u0 = jax.lax.stop_gradient(a), jax.lax.stop_gradient(u)
    t = 1.0 - a0 * (0.253 + 0.12 * a0)
    t_safe = jnp.where(t > 0, t, 0.5)
    small = jnp.where(
        u0 < t_safe, (u0 / t_safe) ** (1.0 / a0), 1.0 - jnp.log1p(-(u0 - t_safe) / (1.0 - t_safe))
    )
    wh = a0 * (1.0 - 1.0 / (9.0 * a0) + ndtri(u0) / (3.0 * jnp.sqrt(a0))) ** 3
    x = jnp.where(a0 <= 1.0, small, jnp.where(wh > 0, wh, 1e-3 * a0))
    logx = jnp.log(jnp.maximum(x, tiny))

    def step(logx, _):
        delta = residual(a0, u0, jnp.exp(logx)) / jnp.maximum(dens_times_x(a0, logx), tiny)
        return logx - jnp.clip(delta, -2.0, 2.0), None

    logx, _ = jax.lax.scan(step, logx, None, length=num_steps)
    x = jnp.exp(logx)
    # value x (the residual is ~0 there); derivative −∂(P − u)/p(x) in a and u
    pdf = jnp.maximum(dens_times_x(a0, logx) / x, tiny)
    return x - residual(a, u, x) / pdf + jax.lax.stop_gradient(residual(a, u, x) / pdf)


def g_and_k(*, c: float = 0.8) -> BaseSpaceSimulator:
    """The g-and-k distribution: ``x = A + B (1 + c·tanh(g z / 2)) z (1 + z²)^k``, ``z = Φ⁻¹(u)``.

    θ = (A, B, g, k) with prior Unif(0, 10)⁴; one base-space draw gives one scalar observation.
    (The paper's benchmark uses θ = (3, 1, 0.1, 0.1).)

    Args:
        c: the constant ``c`` of the g-and-k quantile function (0.8 by convention).

    Returns:
        a :class:`BaseSpaceSimulator` with ``base_dim = 1`` and a prior.

    Examples:
        >>> import jax, jax.numpy as jnp, sbi_kit as sk
        >>> sim = sk.simulators.g_and_k()
        >>> u, x = sim.sample(jax.random.key(0), jnp.array([3.0, 1.0, 0.1, 0.1]), 1000)
        >>> x.shape, bool(abs(jnp.median(x) - 3.0) < 0.2)
        ((1000, 1), True)
    """

    def generator(theta: Array, u: Array) -> Array:
        a, b, g, k = theta[0], theta[1], theta[2], theta[3]
        z = normal_quantile(u[0])
        return jnp.reshape(a + b * (1.0 + c * jnp.tanh(g * z / 2.0)) * z * (1.0 + z**2) ** k, (1,))

    prior = dist.Uniform(jnp.zeros(4), 10.0 * jnp.ones(4)).to_event(1)
    return BaseSpaceSimulator(
        generator, base=UniformBase(), base_dim=1, prior=prior, name="g-and-k"
    )


def two_moons_base_space() -> BaseSpaceSimulator:
    """sbibm's two moons on the base space ``u ∈ [0, 1]²``.

    ``a = π(u_1 − 1/2)``, ``r = 0.1 + 0.01 Φ⁻¹(u_2)``,
    ``x = (r cos a + 0.25, r sin a) + (−|θ_1 + θ_2|/√2, (−θ_1 + θ_2)/√2)``; prior Unif(−1, 1)².

    Returns:
        a :class:`BaseSpaceSimulator` with ``base_dim = 2`` and a prior.

    Examples:
        >>> import jax, jax.numpy as jnp, sbi_kit as sk
        >>> sim = sk.simulators.two_moons_base_space()
        >>> u, x = sim.sample(jax.random.key(0), jnp.zeros(2), 4)
        >>> x.shape
        (4, 2)
    """

    def generator(theta: Array, u: Array) -> Array:
        a = jnp.pi * (u[0] - 0.5)
        r = 0.1 + 0.01 * normal_quantile(u[1])
        p = jnp.stack([r * jnp.cos(a) + 0.25, r * jnp.sin(a)])
        shift = jnp.stack(
            [-jnp.abs(theta[0] + theta[1]) / jnp.sqrt(2.0), (-theta[0] + theta[1]) / jnp.sqrt(2.0)]
        )
        return p + shift

    prior = dist.Uniform(-jnp.ones(2), jnp.ones(2)).to_event(1)
    return BaseSpaceSimulator(
        generator, base=UniformBase(), base_dim=2, prior=prior, name="two moons"
    )


def ma2(length: int = 10) -> BaseSpaceSimulator:
    """Moving average of order 2: ``x_t = λ_{t+2} + θ_1 λ_{t+1} + θ_2 λ_t``, ``λ = Φ⁻¹(u)``.

    ``u ∈ [0, 1]^{length + 2}``, ``x ∈ ℝ^{length}``; prior Unif([−2, 2] × [−1, 1]).
    (The paper's benchmark uses length 10 and θ = (0.6, 0.2).)

    Args:
        length: the number of time steps (``d_x``).

    Returns:
        a :class:`BaseSpaceSimulator` with ``base_dim = length + 2`` and a prior.

    Examples:
        >>> import jax, jax.numpy as jnp, sbi_kit as sk
        >>> u, x = sk.simulators.ma2().sample(jax.random.key(0), jnp.array([0.6, 0.2]), 3)
        >>> u.shape, x.shape
        ((3, 12), (3, 10))
    """
    if not isinstance(length, int) or length < 1:
        raise ValueError(f"ma2: length must be a positive integer, got {length!r}.")

    def generator(theta: Array, u: Array) -> Array:
        lam = normal_quantile(u)
        return lam[2:] + theta[0] * lam[1:-1] + theta[1] * lam[:-2]

    prior = dist.Uniform(jnp.array([-2.0, -1.0]), jnp.array([2.0, 1.0])).to_event(1)
    return BaseSpaceSimulator(
        generator, base=UniformBase(), base_dim=length + 2, prior=prior, name="MA(2)"
    )


def bivariate_beta() -> BaseSpaceSimulator:
    """The bivariate beta distribution (Arnold & Ng 2011) on ``u ∈ [0, 1]⁵``.

    ``ũ_i = F⁻¹_{Gamma(θ_i)}(u_i)``, ``x_1 = (ũ_1 + ũ_3)/(ũ_1 + ũ_3 + ũ_4 + ũ_5)``,
    ``x_2 = (ũ_2 + ũ_4)/(ũ_2 + ũ_3 + ũ_4 + ũ_5)``; prior Unif(0, 5)⁵. (The paper's benchmark uses
    θ = (1, 1, 1, 1, 1), where ``ũ_i`` are exponential draws.)

    Returns:
        a :class:`BaseSpaceSimulator` with ``base_dim = 5`` and a prior.

    Examples:
        >>> import jax, jax.numpy as jnp, sbi_kit as sk
        >>> u, x = sk.simulators.bivariate_beta().sample(jax.random.key(0), jnp.ones(5), 100)
        >>> x.shape, bool(((x > 0) & (x < 1)).all())
        ((100, 2), True)
    """

    def generator(theta: Array, u: Array) -> Array:
        g = gamma_quantile(u, theta)
        x1 = (g[0] + g[2]) / (g[0] + g[2] + g[3] + g[4])
        x2 = (g[1] + g[3]) / (g[1] + g[2] + g[3] + g[4])
        return jnp.stack([x1, x2])

    prior = dist.Uniform(jnp.zeros(5), 5.0 * jnp.ones(5)).to_event(1)
    return BaseSpaceSimulator(
        generator, base=UniformBase(), base_dim=5, prior=prior, name="bivariate beta"
    )
