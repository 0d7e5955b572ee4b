"""MCMC: the one home of NUTS (and a gradient-free ensemble sampler) in sbi_kit.

:func:`sample` runs vectorised chains on any unnormalised log density over a prior's support
and returns the samples with split-R̂ and effective sample sizes; :func:`reference_posterior`
uses it on a true likelihood (a task, a simulator or a numpyro model) for "compare with MCMC".
:func:`run_chains` is its compiled core without checks, for use inside jitted code;
:func:`resample_chains` (:class:`ChainMixtureResampling`) corrects the mass of modes that
chains stay in by importance resampling.
Posteriors of learned likelihoods and ratios sample through the same code.
"""

from ._chains import pool as pool
from ._chains import run_chains as run_chains
from ._config import MCMCConfig as MCMCConfig
from ._reference import reference_posterior as reference_posterior
from ._resampling import ChainMixtureResampling as ChainMixtureResampling
from ._resampling import draws_per_chain as draws_per_chain
from ._resampling import resample_chains as resample_chains
from ._result import MCMCResult as MCMCResult
from ._sample import sample as sample
from ._samplers import NUTS as NUTS
from ._samplers import AbstractSampler as AbstractSampler
from ._samplers import EnsembleSlice as EnsembleSlice

__all__ = [
    "AbstractSampler",
    "ChainMixtureResampling",
    "EnsembleSlice",
    "MCMCConfig",
    "MCMCResult",
    "NUTS",
    "draws_per_chain",
    "pool",
    "reference_posterior",
    "resample_chains",
    "run_chains",
    "sample",
]
