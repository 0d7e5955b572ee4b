"""What a PFN is trained on: a prior over datasets, sampled one dataset at a time inside jit."""

from __future__ import annotations

import abc

import equinox as eqx
from jaxtyping import Array

from .._types import Key


class Dataset(eqx.Module):
    """One dataset drawn from a prior over datasets.

    Attributes:
        x: inputs, shape ``(num_points, input_dim)``.
        y: targets, shape ``(num_points,)``.
        parameters: the latent parameters the dataset was generated with, flattened to shape
            ``(num_parameters,)`` (for a PFN's parameter head), or ``None`` where the prior has
            none to offer.
    """

    x: Array
    y: Array
    parameters: Array | None = None


class AbstractDatasetPrior(eqx.Module):
    """A prior over datasets: a JAX sampler of ``(x, y)`` sets that a PFN learns to predict.

    A PFN is trained on datasets from :meth:`sample`; the first ``n`` points of a dataset are its
    context and the rest are the queries whose ``y`` it learns to predict, so a prior whose
    points have an order (a learning curve in epochs) returns them in that order, and a prior
    whose points are exchangeable returns them in any order.

    Subclasses are frozen equinox modules (jit- and vmap-able pytrees) and final.
    """

    input_dim: eqx.AbstractVar[int]
    """Dimension ``d`` of an input ``x``."""

    @property
    def parameter_names(self) -> tuple[str, ...]:
        """Names of the flattened latent parameters in :attr:`Dataset.parameters` (empty: the
        prior offers none, and a PFN trained on it has no parameter head)."""
        return ()

    @abc.abstractmethod
    def sample(self, key: Key, num_points: int) -> Dataset:
        """Draw ONE dataset of ``num_points`` points (a static int). Must be jit- and
        vmap-able, never raise on values and return finite arrays (a prior that rejects draws
        does so inside, e.g. with ``lax.while_loop``)."""
