"""The abstract base of embedding specs: small frozen configurations that build a network."""

from __future__ import annotations

import abc

import equinox as eqx

from .._types import Key


class AbstractEmbedding(eqx.Module):
    """A spec for a network that maps ONE observation of shape ``x_shape`` to ``out_dim`` features.

    Methods take an embedding spec (``NPE(embedding=MLPEmbedding())``); the spec builds the
    network once the observation shape is known, and the network is trained jointly with the
    estimator.

    Attributes:
        out_dim: number of output features.
    """

    out_dim: eqx.AbstractVar[int]

    @abc.abstractmethod
    def build(self, key: Key, x_shape: tuple[int, ...]) -> eqx.Module:
        """The embedding network for observations of shape ``x_shape``."""
