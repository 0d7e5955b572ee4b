"""Simulators written on a base space: ``x = G_θ(u)`` with ``u`` drawn from a fixed base measure.

Writing a simulator as a deterministic generator ``G`` of the parameters and of base-space
noise ``u`` makes common random numbers trivial (the same ``u`` for every θ), gives gradients
of the simulated data with respect to θ, and enables the optimally-weighted MMD estimator of
Bharti et al. (2023), whose weights depend on ``u`` only
(:func:`sbi_kit.diagnostics.optimal_weights`).

The base measure is an object: :class:`UniformBase` (``Unif[0, 1]^d``) or :class:`GaussianBase`
(``N(0, I_d)``). Each knows how to draw from itself, which points lie in its support, and the
closed-form kernel mean of a Gaussian kernel under it (what the optimal weights need).
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpyro.distributions as dist
from jax.scipy.special import ndtr
from jaxtyping import Array

from .._types import Key


class AbstractBaseMeasure(eqx.Module):
    """The distribution ``U`` of the base-space draws ``u`` of a simulator ``x = G_θ(u)``.

    Concrete base measures are final classes without fields: :class:`UniformBase` and
    :class:`GaussianBase`.

    Attributes:
        support: a short description of the support, for error messages.
    """

    support: eqx.AbstractClassVar[str]

    @abc.abstractmethod
    def sample(self, key: Key, shape: tuple[int, int]) -> Array:
        """Draws of shape ``shape = (num, d)`` from ``U`` on ``d`` dimensions."""

    @abc.abstractmethod
    def contains(self, u: Array) -> Array:
        """Whether every row of ``u`` (m, d) lies in the support of ``U`` (a boolean scalar)."""

    @abc.abstractmethod
    def kernel_mean(self, u: Array, lengthscale: Array) -> Array:
        """``z_i = ∫ c(v, u_i) U(dv)`` for the Gaussian kernel ``c`` of ``lengthscale``.

        ``c(v, u) = exp(−‖v − u‖² / (2ℓ²))`` (unnormalised). ``u`` has shape ``(m, d)``; the
        result has shape ``(m,)``.
        """


class UniformBase(AbstractBaseMeasure):
    """The uniform base measure ``U = Unif[0, 1]^d``.

    Its Gaussian-kernel mean is ``z_i = Π_d √(2π) ℓ [Φ((1 − u_id)/ℓ) − Φ(−u_id/ℓ)]``.

    Examples:
        >>> import jax, jax.numpy as jnp, sbi_kit as sk
        >>> base = sk.simulators.UniformBase()
        >>> u = base.sample(jax.random.key(0), (4, 2))
        >>> u.shape, bool(base.contains(u)), bool(base.contains(u + 1.0))
        ((4, 2), True, False)
        >>> v = base.sample(jax.random.key(1), (100_000, 1))   # Monte Carlo ∫ c(v, 0.5) dv
        >>> mc = jnp.mean(jnp.exp(-((v[:, 0] - 0.5) ** 2) / 2.0))
        >>> z = base.kernel_mean(jnp.array([[0.5]]), 1.0)[0]
        >>> round(float(z), 3), bool(abs(z - mc) < 1e-3)
        (0.96, True)
    """

    support: ClassVar[str] = "[0, 1]^d"

    def sample(self, key: Key, shape: tuple[int, int]) -> Array:
        return jax.random.uniform(key, shape)

    def contains(self, u: Array) -> Array:
        return jnp.all((u >= 0) & (u <= 1))

    def kernel_mean(self, u: Array, lengthscale: Array) -> Array:
        ell = lengthscale
        per_dim = jnp.sqrt(2.0 * jnp.pi) * ell * (ndtr((1.0 - u) / ell) - ndtr(-u / ell))
        return jnp.prod(per_dim, axis=1)


class GaussianBase(AbstractBaseMeasure):
    """The standard normal base measure ``U = N(0, I_d)``.

    Its Gaussian-kernel mean is ``z_i = (ℓ²/(ℓ² + 1))^{d/2} exp(−‖u_i‖² / (2(ℓ² + 1)))``.

    Examples:
        >>> import jax, jax.numpy as jnp, sbi_kit as sk
        >>> base = sk.simulators.GaussianBase()
        >>> base.sample(jax.random.key(0), (3, 2)).shape
        (3, 2)
        >>> float(base.kernel_mean(jnp.zeros((1, 2)), 1.0)[0])   # (1/2)^(2/2)
        0.5
    """

    support: ClassVar[str] = "ℝ^d"

    def sample(self, key: Key, shape: tuple[int, int]) -> Array:
        return jax.random.normal(key, shape)

    def contains(self, u: Array) -> Array:
        return jnp.all(jnp.isfinite(u))

    def kernel_mean(self, u: Array, lengthscale: Array) -> Array:
        ell = lengthscale
        d = u.shape[1]
        s = ell**2 + 1.0
        return (ell**2 / s) ** (d / 2.0) * jnp.exp(-jnp.sum(u**2, axis=1) / (2.0 * s))


class BaseSpaceSimulator(eqx.Module):
    """A simulator ``x = G_θ(u)``, ``u ~ U`` with ``U = Unif[0, 1]^{d_u}`` or ``N(0, I_{d_u})``.

    Args:
        generator: ``generator(theta, u) -> x`` for ONE parameter vector ``theta`` (p,) and ONE
            base-space draw ``u`` (d_u,); returns one observation ``x`` (d_x,). Must be
            traceable by JAX (it is vmapped, jitted and differentiated).
        base: the base measure ``U``: :class:`UniformBase` ``()`` or :class:`GaussianBase` ``()``.
        base_dim: ``d_u``.
        prior: optional numpyro prior over θ (event shape ``(p,)``), used by ABC.
        name: a label for tables and plots.

    Raises:
        TypeError: if ``base`` is not a base-measure object (e.g. the old string ``"uniform"``)
            or ``generator`` is not callable.
        ValueError: if ``base_dim`` is not a positive integer.

    Examples:
        >>> import jax, jax.numpy as jnp, sbi_kit as sk
        >>> sim = sk.simulators.BaseSpaceSimulator(
        ...     lambda th, u: th + u, base=sk.simulators.GaussianBase(), base_dim=2)
        >>> u, x = sim.sample(jax.random.key(0), jnp.array([1.0, -1.0]), 5)
        >>> u.shape, x.shape
        ((5, 2), (5, 2))
    """

    generator: Callable[[Array, Array], Array]
    base: AbstractBaseMeasure
    base_dim: int = eqx.field(static=True)
    prior: dist.Distribution | None = None
    name: str = eqx.field(static=True, default="base-space simulator")

    def __check_init__(self):
        if not isinstance(self.base, AbstractBaseMeasure):
            raise TypeError(
                "BaseSpaceSimulator: `base` must be a base-measure object, "
                "sk.simulators.UniformBase() or sk.simulators.GaussianBase(); got "
                f"{type(self.base).__name__} {self.base!r}."
            )
        if not isinstance(self.base_dim, int) or self.base_dim < 1:
            raise ValueError(
                f"BaseSpaceSimulator: base_dim must be a positive integer, got {self.base_dim!r}."
            )
        if not callable(self.generator):
            raise TypeError("BaseSpaceSimulator: `generator` must be callable generator(theta, u).")

    def sample_base(self, key: Key, num: int) -> Array:
        """``num`` base-space draws, shape ``(num, base_dim)``."""
        return self.base.sample(key, (num, self.base_dim))

    def generate(self, theta: Array, u: Array) -> Array:
        """``G_θ(u_i)`` for each row of ``u`` (num, base_dim); shape ``(num, d_x)``."""
        theta = jnp.asarray(theta)
        u = jnp.asarray(u)
        if u.ndim != 2 or u.shape[1] != self.base_dim:
            raise ValueError(
                f"{self.name}: `u` must have shape (num, {self.base_dim}), got {u.shape}."
            )
        return jax.vmap(self.generator, in_axes=(None, 0))(theta, u)

    def sample(self, key: Key, theta: Array, num: int) -> tuple[Array, Array]:
        """Draws ``u``; returns ``(u, G_θ(u))``, shapes ``(num, base_dim)`` and ``(num, d_x)``."""
        u = self.sample_base(key, num)
        return u, self.generate(theta, u)
