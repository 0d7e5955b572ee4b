"""MCMC: the one home of NUTS (and a gradient-free ensemble sampler) in sbi_kit.

:func:`sample` runs vectorised chains on any unnormalised log density over a prior's support
and returns the samples with split-R̂ and effective sample sizes; :func:`reference_posterior`
uses it on a true likelihood (a task, a simulator or a numpyro model) for "compare with MCMC".
Posteriors of learned likelihoods and ratios sample through the same code.
"""

from ._config import MCMCConfig as MCMCConfig
from ._reference import reference_posterior as reference_posterior
from ._result import MCMCResult as MCMCResult
from ._sample import sample as sample
from ._samplers import NUTS as NUTS
from ._samplers import AbstractSampler as AbstractSampler
from ._samplers import EnsembleSlice as EnsembleSlice

__all__ = [
    "AbstractSampler",
    "EnsembleSlice",
    "MCMCConfig",
    "MCMCResult",
    "NUTS",
    "reference_posterior",
    "sample",
]
