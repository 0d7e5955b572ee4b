"""Forward noising SDEs of score-based models (Song et al., ICLR 2021), as small objects.

Each SDE ``dy = f(y, t) dt + g(t) dw`` on t ∈ [0, 1] has Gaussian transition kernels
``y_t | y_0 ~ N(m(t) y_0, σ(t)² I)``; a score network is trained on them
(:class:`~sbi_kit.NPSE`). Parameters are z-scored before they are noised, so the data have
roughly unit variance and the defaults below are set for that scale.
"""

from __future__ import annotations

import abc
import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array

from .._types import Key


def _check_number(name: str, field: str, value, *, positive: bool = True) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name}: {field} must be a finite number, got {value!r}.")
    if positive and not value > 0:
        raise ValueError(f"{name}: {field} must be > 0, got {value!r}.")


def _check_t_min(name: str, t_min, *, allow_zero: bool) -> None:
    _check_number(name, "t_min", t_min, positive=False)
    low_ok = t_min >= 0 if allow_zero else t_min > 0
    if not (low_ok and t_min < 0.5):
        bound = "[0, 0.5)" if allow_zero else "(0, 0.5)"
        raise ValueError(
            f"{name}: t_min must lie in {bound} (the smallest diffusion time), got {t_min!r}."
        )


class AbstractSDE(eqx.Module):
    """A forward SDE ``dy = f(y, t) dt + g(t) dw`` on ``[t_min, t_max]`` with ``t_max = 1``.

    The transition kernel from ``t = 0`` is ``N(m(t) y_0, σ(t)² I)``. Training draws
    ``t ~ U(t_min, t_max)``; sampling starts at ``t_max`` from :meth:`prior_sample` and stops at
    ``t_min``, so what the posterior samples (and ``log_prob`` scores) is the data noised to
    ``t_min`` (a Gaussian blur of standard deviation ``σ(t_min)`` ≈ 0.01 in z-scored units with
    the defaults; see docs/vector-field.md).

    Attributes:
        t_min: the smallest diffusion time (> 0 where ``σ(0) = 0``).
    """

    t_min: eqx.AbstractVar[float]

    @property
    def t_max(self) -> float:
        """The largest diffusion time (1)."""
        return 1.0

    @abc.abstractmethod
    def mean_coeff(self, t: Array) -> Array:
        """m(t), the factor on ``y_0`` in the mean of ``y_t`` (a scalar)."""

    @abc.abstractmethod
    def std(self, t: Array) -> Array:
        """σ(t), the standard deviation of ``y_t`` given ``y_0`` (a scalar)."""

    @abc.abstractmethod
    def drift(self, y: Array, t: Array) -> Array:
        """f(y, t), shape of ``y``."""

    @abc.abstractmethod
    def diffusion(self, t: Array) -> Array:
        """g(t) (a scalar; the noise is isotropic)."""

    def prior_std(self) -> Array:
        """Standard deviation of the Gaussian that ``y`` is drawn from at ``t_max``.

        ``√(m(T)² + σ(T)²)``: the exact marginal standard deviation at T of data with unit
        variance (z-scored parameters), so the start of sampling matches the end of noising
        for the VE SDE as well as for the VP ones (where it is ≈ 1).
        """
        t = jnp.asarray(self.t_max)
        return jnp.sqrt(self.mean_coeff(t) ** 2 + self.std(t) ** 2)

    def prior_sample(self, key: Key, shape: tuple[int, ...]) -> Array:
        """Draws of ``y`` at ``t_max``: ``N(0, prior_std² I)`` of the given shape."""
        return self.prior_std() * jax.random.normal(key, shape)

    def prior_log_prob(self, y: Array) -> Array:
        """log N(y; 0, prior_std² I) of ONE state ``(d,)`` (a scalar)."""
        s = self.prior_std()
        return jnp.sum(jax.scipy.stats.norm.logpdf(y, scale=s))


class AbstractLinearBetaSDE(AbstractSDE):
    """VP and sub-VP: the drift ``f = −½ β(t) y`` of a linear schedule
    ``β(t) = β_min + t (β_max − β_min)``, so ``log m(t) = −¼ t² (β_max − β_min) − ½ t β_min``;
    the concrete SDE gives σ(t) and the diffusion."""

    beta_min: eqx.AbstractVar[float]
    beta_max: eqx.AbstractVar[float]
    t_min: eqx.AbstractVar[float]

    def __check_init__(self):
        name = type(self).__name__
        _check_number(name, "beta_min", self.beta_min)
        _check_number(name, "beta_max", self.beta_max)
        if not self.beta_max > self.beta_min:
            raise ValueError(
                f"{name}: beta_max must exceed beta_min, got {self.beta_max!r} ≤ {self.beta_min!r}."
            )
        _check_t_min(name, self.t_min, allow_zero=False)

    def beta(self, t: Array) -> Array:
        """β(t)."""
        return self.beta_min + t * (self.beta_max - self.beta_min)

    def log_mean_coeff(self, t: Array) -> Array:
        """log m(t)."""
        return -0.25 * t**2 * (self.beta_max - self.beta_min) - 0.5 * t * self.beta_min

    def mean_coeff(self, t: Array) -> Array:
        return jnp.exp(self.log_mean_coeff(t))

    def drift(self, y: Array, t: Array) -> Array:
        return -0.5 * self.beta(t) * y


class VPSDE(AbstractLinearBetaSDE):
    """The variance-preserving SDE (the continuous limit of DDPM).

    β(t) = β_min + t (β_max − β_min); f = −½ β(t) y; g = √β(t);
    log m(t) = −¼ t² (β_max − β_min) − ½ t β_min; σ(t) = √(1 − m(t)²).

    Args:
        beta_min: β(0).
        beta_max: β(1); with the defaults m(1) ≈ 0.0066, so ``y_1`` is pure noise.
        t_min: the smallest time (σ(10⁻³) ≈ 0.01).
    """

    beta_min: float = 0.1
    beta_max: float = 20.0
    t_min: float = 1e-3

    def std(self, t: Array) -> Array:
        return jnp.sqrt(-jnp.expm1(2 * self.log_mean_coeff(t)))

    def diffusion(self, t: Array) -> Array:
        return jnp.sqrt(self.beta(t))

    def time_of_log_snr(self, lam: Array) -> Array:
        """The time t at which ``λ(t) = log(m(t) / σ(t))`` equals ``lam`` (for DPM-Solver)."""
        # m² = 1 / (1 + e^{−2λ}); solve ¼ Δβ t² + ½ β_min t = −log m for t ≥ 0 (stably).
        neg_log_m = 0.5 * jax.nn.softplus(-2 * lam)
        b = 0.5 * self.beta_min
        a = 0.25 * (self.beta_max - self.beta_min)
        return 2 * neg_log_m / (b + jnp.sqrt(b**2 + 4 * a * neg_log_m))


class SubVPSDE(AbstractLinearBetaSDE):
    """The sub-variance-preserving SDE (Song et al. 2021): VP's drift, a smaller diffusion.

    f = −½ β(t) y; g = √(β(t) (1 − m(t)⁴)); m(t) as for :class:`VPSDE`; σ(t) = 1 − m(t)².
    Its variance stays below the VP one at every t (it was reported to give better
    likelihoods).

    Args:
        beta_min: β(0).
        beta_max: β(1).
        t_min: the smallest time (σ(10⁻³) ≈ 10⁻⁴; the noise at ``t_min`` is smaller than VP's).
    """

    beta_min: float = 0.1
    beta_max: float = 20.0
    t_min: float = 1e-3

    def std(self, t: Array) -> Array:
        return -jnp.expm1(2 * self.log_mean_coeff(t))

    def diffusion(self, t: Array) -> Array:
        return jnp.sqrt(self.beta(t) * -jnp.expm1(4 * self.log_mean_coeff(t)))


class VESDE(AbstractSDE):
    """The variance-exploding SDE (the continuous limit of SMLD / NCSN).

    σ(t) = σ_min (σ_max / σ_min)^t; f = 0; g = σ(t) √(2 ln(σ_max / σ_min)); m = 1.

    Parameters are z-scored before noising, so their spread is of order one (a posterior's is
    smaller): ``sigma_max = 15`` makes ``y_1`` essentially independent of the data (Song &
    Ermon's rule of thumb: σ_max about the largest distance between data points, a few units
    here), while keeping the sampler's initial distribution N(0, (1 + σ_max²) I) compact.

    Args:
        sigma_min: σ(0), the noise left at the end of sampling.
        sigma_max: σ(1).
        t_min: the smallest time (0 is allowed: σ(0) = sigma_min > 0).
    """

    sigma_min: float = 0.01
    sigma_max: float = 15.0
    t_min: float = 0.0

    def __check_init__(self):
        _check_number("VESDE", "sigma_min", self.sigma_min)
        _check_number("VESDE", "sigma_max", self.sigma_max)
        if not self.sigma_max > self.sigma_min:
            raise ValueError(
                f"VESDE: sigma_max must exceed sigma_min, got {self.sigma_max!r} ≤ "
                f"{self.sigma_min!r}."
            )
        _check_t_min("VESDE", self.t_min, allow_zero=True)

    def mean_coeff(self, t: Array) -> Array:
        return jnp.ones_like(jnp.asarray(t, dtype=float))

    def std(self, t: Array) -> Array:
        return self.sigma_min * (self.sigma_max / self.sigma_min) ** t

    def drift(self, y: Array, t: Array) -> Array:
        del t
        return jnp.zeros_like(y)

    def diffusion(self, t: Array) -> Array:
        return self.std(t) * math.sqrt(2 * math.log(self.sigma_max / self.sigma_min))
