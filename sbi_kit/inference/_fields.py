"""Fields: the ODE right-hand sides that a trained network and ONE observation define.

:class:`ScoreField` (NPSE: the probability-flow ODE of a score network) and :class:`FlowField`
(FMPE: the learned velocity) carry a simple noise distribution at ``t_noise`` into the
posterior at ``t_data``; the samplers of :mod:`._vector_field_samplers` integrate them.
"""

from __future__ import annotations

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array

from .._types import Key
from ._diffusion import AbstractSDE


class AbstractField(eqx.Module):
    """``dθ/dt = v(θ, t)`` carrying a noise distribution at ``t_noise`` to the posterior at
    ``t_data`` (for one observation; θ standardised)."""

    @property
    @abc.abstractmethod
    def t_noise(self) -> float:
        """The time at which θ follows the noise distribution."""

    @property
    @abc.abstractmethod
    def t_data(self) -> float:
        """The time at which θ follows the (learned) posterior."""

    @abc.abstractmethod
    def velocity(self, y: Array, t: Array) -> Array:
        """v(y, t) for one state ``(d,)``."""

    @abc.abstractmethod
    def noise_sample(self, key: Key, shape: tuple[int, ...]) -> Array:
        """Draws from the noise distribution, of the given shape."""

    @abc.abstractmethod
    def noise_log_prob(self, y: Array) -> Array:
        """log-density of the noise distribution at one state ``(d,)`` (a scalar)."""


class ScoreField(AbstractField):
    """The probability-flow ODE of a score network (NPSE): ``v = f(θ, t) − ½ g(t)² s(θ, t)``.

    The network predicts the noise: ``ε̂ = net(θ / √(m(t)² + σ(t)²), t, c)`` and the score is
    ``s = −ε̂ / σ(t)`` (the input is scaled to unit variance for z-scored data, which matters
    for the VE SDE whose states grow to ``σ_max``).

    Attributes:
        net: the network ``(θ, t, context) -> (d,)``.
        context: the observation's context ``(cond_dim,)``.
        sde: the forward SDE.
    """

    net: eqx.Module
    context: Array
    sde: AbstractSDE = eqx.field(static=True)

    @property
    def t_noise(self) -> float:
        return self.sde.t_max

    @property
    def t_data(self) -> float:
        return self.sde.t_min

    def noise_prediction(self, y: Array, t: Array) -> Array:
        """ε̂(y, t), the network's estimate of the noise in ``y`` at time t."""
        scale = jnp.sqrt(self.sde.mean_coeff(t) ** 2 + self.sde.std(t) ** 2)
        return self.net(y / scale, t, self.context)

    def score(self, y: Array, t: Array) -> Array:
        """s(y, t) ≈ ∇_y log p_t(y)."""
        return -self.noise_prediction(y, t) / self.sde.std(t)

    def velocity(self, y: Array, t: Array) -> Array:
        return self.sde.drift(y, t) - 0.5 * self.sde.diffusion(t) ** 2 * self.score(y, t)

    def noise_sample(self, key: Key, shape: tuple[int, ...]) -> Array:
        return self.sde.prior_sample(key, shape)

    def noise_log_prob(self, y: Array) -> Array:
        return self.sde.prior_log_prob(y)


class FlowField(AbstractField):
    """The learned velocity of flow matching (FMPE): ``v = net(θ, t, c)``, N(0, I) at t = 0,
    the posterior at t = 1.

    Attributes:
        net: the network ``(θ, t, context) -> (d,)``.
        context: the observation's context ``(cond_dim,)``.
    """

    net: eqx.Module
    context: Array

    @property
    def t_noise(self) -> float:
        return 0.0

    @property
    def t_data(self) -> float:
        return 1.0

    def velocity(self, y: Array, t: Array) -> Array:
        return self.net(y, t, self.context)

    def noise_sample(self, key: Key, shape: tuple[int, ...]) -> Array:
        return jax.random.normal(key, shape)

    def noise_log_prob(self, y: Array) -> Array:
        return jnp.sum(jax.scipy.stats.norm.logpdf(y))
