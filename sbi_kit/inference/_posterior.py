"""The abstract posterior that every inference method returns."""

from __future__ import annotations

import abc

import equinox as eqx
from jaxtyping import Array

from .._types import Key


class AbstractPosterior(eqx.Module):
    """A trained posterior: an ``eqx.Module`` (pytree) that can be jitted, vmapped and saved.

    Concrete posteriors provide :meth:`sample` and, where the method defines a density,
    :meth:`log_prob`. ``history`` holds the training history and ``calibration`` the
    calibration report once one has been attached.
    """

    @property
    @abc.abstractmethod
    def dim_theta(self) -> int:
        """Number of parameters."""

    @property
    @abc.abstractmethod
    def x_shape(self) -> tuple[int, ...]:
        """Shape of one observation."""

    @abc.abstractmethod
    def sample(self, key: Key, x_o: Array, num_samples: int) -> Array:
        """Draws ``num_samples`` parameter vectors given ``x_o``; shape ``(num_samples, d)``."""

    def log_prob(self, theta: Array, x_o: Array) -> Array:
        """Posterior log-density of ``theta`` (``(d,)`` or ``(n, d)``) given ``x_o``."""
        raise NotImplementedError(f"{type(self).__name__} defines no posterior density.")
