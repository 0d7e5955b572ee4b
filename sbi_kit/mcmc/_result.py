"""The result of an MCMC run: pooled samples with their convergence diagnostics."""

from __future__ import annotations

import dataclasses

import numpy as np
from jaxtyping import Array


@dataclasses.dataclass(frozen=True)
class MCMCResult:
    """Samples of an MCMC run and how well the chains mixed.

    Attributes:
        samples: ``(num_samples, d)``, all chains pooled in random order.
        chains: ``(num_chains, draws, d)``, the kept draws of each chain in order.
        r_hat: split-R̂ per parameter, ``(d,)`` (Gelman et al.; 1 when chains agree).
        ess: effective sample size per parameter, ``(d,)``, over all chains.
        num_divergent: divergent transitions after warm-up (NUTS; 0 for other samplers).
        seconds: wall-clock time of warm-up and sampling.
        importance_ess: with :class:`ChainMixtureResampling`, the Kish effective sample size
            of the importance weights the ``samples`` were resampled with (``None``: the
            samples are the chains' draws).
    """

    samples: Array
    chains: np.ndarray
    r_hat: np.ndarray
    ess: np.ndarray
    num_divergent: int
    seconds: float
    importance_ess: float | None = None

    @property
    def max_r_hat(self) -> float:
        """The largest split-R̂ over the parameters."""
        return float(np.max(self.r_hat))

    @property
    def min_ess(self) -> float:
        """The smallest effective sample size over the parameters."""
        return float(np.min(self.ess))

    def summary(self) -> str:
        """One line: chains, draws, worst R̂ and ESS, divergences, time."""
        c, n, _ = self.chains.shape
        resampled = (
            ""
            if self.importance_ess is None
            else f", resampled with importance ESS {self.importance_ess:.0f}"
        )
        return (
            f"{c} chains × {n} draws: split-R̂ max {self.max_r_hat:.4f}, ESS min "
            f"{self.min_ess:.0f}, {self.num_divergent} divergent{resampled}, "
            f"{self.seconds:.1f} s"
        )
