"""MCMC samplers as small strategy objects over numpyro's kernels."""

from __future__ import annotations

import abc
from collections.abc import Callable

import equinox as eqx
import jax.numpy as jnp
import numpyro.infer
from jaxtyping import Array
from numpyro.infer.mcmc import MCMCKernel


class AbstractSampler(eqx.Module):
    """A numpyro transition kernel for a potential (negative log density) on ℝᵈ."""

    @abc.abstractmethod
    def kernel(self, potential_fn: Callable) -> MCMCKernel:
        """The numpyro kernel that samples ``exp(-potential_fn(z))``."""

    def min_chains(self, dim: int) -> int:
        """The fewest chains the sampler works with for ``dim`` parameters."""
        del dim
        return 1

    def needs_even_chains(self) -> bool:
        """Whether the kernel moves the chains in two halves (an even number is needed)."""
        return False

    def divergences(self, state) -> Array:
        """Whether each chain's last transition diverged, ``(num_chains,)`` (zeros if the
        kernel has no notion of divergence)."""
        return jnp.zeros(jnp.shape(state.z)[0], dtype=bool)


class NUTS(AbstractSampler):
    """The No-U-Turn sampler (Hoffman & Gelman 2014), numpyro's implementation.

    Args:
        target_accept_prob: the step-size adaptation's target acceptance probability.
        max_tree_depth: the largest tree depth (at most ``2**max_tree_depth`` leapfrog steps).
        dense_mass: adapt a dense (True) or diagonal (False) mass matrix during warm-up.
    """

    target_accept_prob: float = 0.8
    max_tree_depth: int = 10
    dense_mass: bool = False

    def __check_init__(self):
        if not 0 < self.target_accept_prob < 1:
            raise ValueError(
                f"NUTS: target_accept_prob must lie in (0, 1), got {self.target_accept_prob!r}."
            )
        if isinstance(self.max_tree_depth, bool) or not isinstance(self.max_tree_depth, int):
            raise TypeError(f"NUTS: max_tree_depth must be an int, got {self.max_tree_depth!r}.")
        if self.max_tree_depth < 1:
            raise ValueError(f"NUTS: max_tree_depth must be ≥ 1, got {self.max_tree_depth}.")

    def kernel(self, potential_fn: Callable) -> MCMCKernel:
        return numpyro.infer.NUTS(
            potential_fn=potential_fn,
            target_accept_prob=self.target_accept_prob,
            max_tree_depth=self.max_tree_depth,
            dense_mass=self.dense_mass,
        )

    def divergences(self, state) -> Array:
        return state.diverging


DEFAULT_SAMPLER = NUTS()
"""The sampler used when none is given (one instance, shared as a default argument)."""


class EnsembleSlice(AbstractSampler):
    """Ensemble slice sampling (Karamanis & Beutler 2021), numpyro's ``ESS``.

    Gradient-free, so it suits potentials that are not smooth (e.g. ratio classifiers with ReLU
    units). The chains move together as an ensemble: at least ``2 · dim`` chains are needed
    (more is better, e.g. ``4 · dim``).
    """

    def kernel(self, potential_fn: Callable) -> MCMCKernel:
        return numpyro.infer.ESS(potential_fn=potential_fn)

    def min_chains(self, dim: int) -> int:
        return 2 * dim

    def needs_even_chains(self) -> bool:
        return True
