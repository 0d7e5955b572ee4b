"""How a posterior of a learned likelihood or ratio runs its MCMC: a frozen configuration."""

from __future__ import annotations

import equinox as eqx

from .._checks import check_setting_positive_int
from ._resampling import ChainMixtureResampling
from ._samplers import NUTS, AbstractSampler

DEFAULT_RESAMPLING = ChainMixtureResampling()
"""The resampling a posterior's MCMC uses unless told otherwise (one shared instance)."""

SHORT_TREE_NUTS = NUTS(max_tree_depth=4)
"""The sampler a posterior's MCMC uses unless told otherwise: NUTS with at most 16 leapfrog
steps per transition. With resampling the chains only have to find where the mass is and its
local shape; the importance weights correct the rest. Measured on learned two_moons, slcp and
gaussian_linear likelihoods (docs/mcmc.md): the same C2ST as depth 10 with 200 warm-up steps,
several times faster, because the vectorised chains no longer wait for the longest trajectory."""


class MCMCConfig(eqx.Module):
    """MCMC settings that a method stores and its posterior's ``sample`` uses.

    Args:
        sampler: :class:`NUTS` or :class:`EnsembleSlice`; by default ``NUTS(max_tree_depth=4)``
            (short trajectories: the resampling corrects what the chains do not explore; for
            pooled draws without resampling use ``NUTS()`` and ``num_warmup=500``).
        num_chains: chains run in parallel (vectorised).
        num_warmup: adaptation steps per chain, discarded.
        thinning: keep one draw in ``thinning``.
        max_r_hat: a split-R̂ above this gives a ``RuntimeWarning`` (the samples are returned);
            not checked with ``resampling``, whose weights' effective sample size is checked
            instead.
        resampling: :class:`ChainMixtureResampling` (default): the chains keep a few draws
            each and the samples are resampled by importance weight through a Student-t
            mixture fitted to them, which gives separated modes their proper mass; ``None``:
            the chains' draws are pooled (``num_samples / num_chains`` per chain).
    """

    sampler: AbstractSampler = SHORT_TREE_NUTS
    num_chains: int = 20
    num_warmup: int = 50
    thinning: int = 1
    max_r_hat: float = 1.05
    resampling: ChainMixtureResampling | None = DEFAULT_RESAMPLING

    def __check_init__(self):
        for name in ("num_chains", "num_warmup", "thinning"):
            check_setting_positive_int("MCMCConfig", name, getattr(self, name))
        if not isinstance(self.sampler, AbstractSampler):
            raise TypeError(
                "MCMCConfig: `sampler` must be sk.mcmc.NUTS() or sk.mcmc.EnsembleSlice(), got "
                f"{self.sampler!r}."
            )
        if self.resampling is not None and not isinstance(self.resampling, ChainMixtureResampling):
            raise TypeError(
                "MCMCConfig: `resampling` must be sk.mcmc.ChainMixtureResampling(...) or None, "
                f"got {self.resampling!r}."
            )
        if not self.max_r_hat > 1.0:
            raise ValueError(f"MCMCConfig: max_r_hat must be > 1, got {self.max_r_hat!r}.")
