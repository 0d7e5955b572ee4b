"""Embeddings of a diffusion or flow time t ∈ [0, 1] as a feature vector (specs + networks)."""

from __future__ import annotations

import abc
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import paramax
from jaxtyping import Array

from .._types import Key


def _check_out_dim(name: str, out_dim) -> None:
    if isinstance(out_dim, bool) or not isinstance(out_dim, int) or out_dim < 2 or out_dim % 2:
        raise ValueError(f"{name}: out_dim must be an even integer ≥ 2, got {out_dim!r}.")


def _check_positive(name: str, field: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"{name}: {field} must be a positive number, got {value!r}.")
    if not math.isfinite(value):
        raise ValueError(f"{name}: {field} must be finite, got {value!r}.")


class AbstractTimeEmbedding(eqx.Module):
    """A spec for a map from ONE scalar time t to ``out_dim`` features.

    Vector-field networks (:class:`sk.estimators.ResidualVectorField`) take a time-embedding
    spec and build the embedding with the network.

    Attributes:
        out_dim: number of features.
    """

    out_dim: eqx.AbstractVar[int]

    @abc.abstractmethod
    def build(self, key: Key) -> eqx.Module:
        """The embedding: a module mapping a scalar ``t`` (shape ``()``) to ``(out_dim,)``."""


class _Sinusoids(eqx.Module):
    """t ↦ [sin(2π f t), cos(2π f t)] for fixed frequencies f (not trained)."""

    frequencies: paramax.NonTrainable

    def __call__(self, t: Array) -> Array:
        angle = 2 * jnp.pi * paramax.unwrap(self.frequencies) * jnp.asarray(t)
        return jnp.concatenate([jnp.sin(angle), jnp.cos(angle)])


class GaussianFourierTimeEmbedding(AbstractTimeEmbedding):
    """Random Fourier features of t (Tancik et al. 2020; the time embedding of Song et al. 2021).

    ``[sin(2π w t), cos(2π w t)]`` with ``out_dim / 2`` frequencies ``w ~ N(0, scale²)`` drawn
    once at initialisation and kept fixed during training (they are saved with the network).

    Args:
        out_dim: number of features (even).
        scale: standard deviation of the frequencies; larger values resolve faster changes in
            t. For t ∈ [0, 1] and small networks, 4–16 works well (Song et al. use 30 with a
            discretisation of 1,000 times).

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from sbi_kit.nn import GaussianFourierTimeEmbedding
        >>> embed = GaussianFourierTimeEmbedding(out_dim=8).build(jax.random.key(0))
        >>> embed(jnp.asarray(0.5)).shape
        (8,)
    """

    out_dim: int = 16
    scale: float = 8.0

    def __check_init__(self):
        _check_out_dim("GaussianFourierTimeEmbedding", self.out_dim)
        _check_positive("GaussianFourierTimeEmbedding", "scale", self.scale)

    def build(self, key: Key) -> eqx.Module:
        """The embedding: ``t`` (shape ``()``) to ``(out_dim,)``."""
        w = self.scale * jax.random.normal(key, (self.out_dim // 2,))
        return _Sinusoids(paramax.NonTrainable(w))


class SinusoidalTimeEmbedding(AbstractTimeEmbedding):
    """Deterministic sinusoids of t at geometrically spaced frequencies (Vaswani et al. 2017).

    ``[sin(2π f_k t), cos(2π f_k t)]`` for ``out_dim / 2`` frequencies ``f_k`` from
    ``min_frequency`` to ``max_frequency``, evenly spaced in log scale.

    Args:
        out_dim: number of features (even).
        min_frequency: lowest frequency (cycles per unit of t).
        max_frequency: highest frequency.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from sbi_kit.nn import SinusoidalTimeEmbedding
        >>> embed = SinusoidalTimeEmbedding(out_dim=8).build(jax.random.key(0))
        >>> embed(jnp.asarray(0.0)).tolist()
        [0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0]
    """

    out_dim: int = 16
    min_frequency: float = 0.25
    max_frequency: float = 32.0

    def __check_init__(self):
        name = "SinusoidalTimeEmbedding"
        _check_out_dim(name, self.out_dim)
        _check_positive(name, "min_frequency", self.min_frequency)
        _check_positive(name, "max_frequency", self.max_frequency)
        if not self.max_frequency >= self.min_frequency:
            raise ValueError(
                f"{name}: max_frequency must be ≥ min_frequency, got {self.max_frequency!r} < "
                f"{self.min_frequency!r}."
            )

    def build(self, key: Key) -> eqx.Module:
        """The embedding: ``t`` (shape ``()``) to ``(out_dim,)`` (``key`` is unused)."""
        del key
        f = jnp.geomspace(self.min_frequency, self.max_frequency, self.out_dim // 2)
        return _Sinusoids(paramax.NonTrainable(f))
