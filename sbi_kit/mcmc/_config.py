"""How a posterior of a learned likelihood or ratio runs its MCMC: a frozen configuration."""

from __future__ import annotations

import equinox as eqx

from .._checks import check_setting_positive_int
from ._samplers import DEFAULT_SAMPLER, AbstractSampler


class MCMCConfig(eqx.Module):
    """MCMC settings that a method stores and its posterior's ``sample`` uses.

    Args:
        sampler: :class:`NUTS` (default) or :class:`EnsembleSlice`.
        num_chains: chains run in parallel (vectorised); draws are pooled.
        num_warmup: adaptation steps per chain, discarded.
        thinning: keep one draw in ``thinning``.
        max_r_hat: a split-R̂ above this gives a ``RuntimeWarning`` (the samples are returned).
    """

    sampler: AbstractSampler = DEFAULT_SAMPLER
    num_chains: int = 20
    num_warmup: int = 500
    thinning: int = 1
    max_r_hat: float = 1.05

    def __check_init__(self):
        for name in ("num_chains", "num_warmup", "thinning"):
            check_setting_positive_int("MCMCConfig", name, getattr(self, name))
        if not isinstance(self.sampler, AbstractSampler):
            raise TypeError(
                "MCMCConfig: `sampler` must be sk.mcmc.NUTS() or sk.mcmc.EnsembleSlice(), got "
                f"{self.sampler!r}."
            )
        if not self.max_r_hat > 1.0:
            raise ValueError(f"MCMCConfig: max_r_hat must be > 1, got {self.max_r_hat!r}.")
