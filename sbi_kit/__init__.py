"""sbi_kit: simulation-based inference in JAX.

Neural posterior, likelihood and ratio estimation (NPE, NLE, NRE) and vector-field posteriors
(NPSE, FMPE) on one method interface,
MCMC for learned likelihoods and reference posteriors (``sk.mcmc``), ODE/SDE simulators with
diffrax, benchmark tasks with reference posteriors, calibration diagnostics (C2ST, TARP,
SBC, expected coverage, MMD), and prior-data fitted networks (``sk.PFN``, ``sk.pfn``), for
simulators written as numpyro models or plain JAX functions.
"""

__version__ = "0.1.0"

from typing import TYPE_CHECKING as _TYPE_CHECKING

from . import diagnostics as diagnostics
from . import estimators as estimators
from . import mcmc as mcmc
from . import nn as nn
from . import pfn as pfn
from . import tasks as tasks
from . import training as training
from ._arviz import to_inference_data as to_inference_data
from ._compilation_cache import enable_default_compilation_cache as _enable_default_cache
from ._compilation_cache import set_compilation_cache as set_compilation_cache
from .inference import FMPE as FMPE
from .inference import NLE as NLE
from .inference import NPE as NPE
from .inference import NPSE as NPSE
from .inference import NRE as NRE
from .inference import AbstractPosterior as AbstractPosterior
from .inference import FMPEPosterior as FMPEPosterior
from .inference import NLEPosterior as NLEPosterior
from .inference import NPEPosterior as NPEPosterior
from .inference import NPSEPosterior as NPSEPosterior
from .inference import NREPosterior as NREPosterior
from .inference import sequential as sequential
from .io import load as load
from .io import save as save
from .pfn import PFN as PFN
from .simulators import Simulations as Simulations
from .simulators import Simulator as Simulator
from .simulators import from_numpyro as from_numpyro
from .simulators import simulate as simulate
from .training import History as History
from .training import StopReason as StopReason
from .training import Training as Training

_enable_default_cache()

if _TYPE_CHECKING:  # at run time `sk.plotting` is imported on first use (see __getattr__)
    from . import plotting as plotting

__all__ = [
    "AbstractPosterior",
    "FMPE",
    "FMPEPosterior",
    "History",
    "NLE",
    "NLEPosterior",
    "NPE",
    "NPEPosterior",
    "NPSE",
    "NPSEPosterior",
    "NRE",
    "NREPosterior",
    "PFN",
    "Simulations",
    "Simulator",
    "StopReason",
    "Training",
    "__version__",
    "diagnostics",
    "estimators",
    "from_numpyro",
    "load",
    "mcmc",
    "nn",
    "pfn",
    "plotting",
    "save",
    "sequential",
    "set_compilation_cache",
    "simulate",
    "tasks",
    "training",
    "to_inference_data",
]


def __getattr__(name: str):
    """``sk.plotting`` is imported on first use, so that ``import sbi_kit`` does not load
    matplotlib (a second or more, and a choice of backend) for code that never plots."""
    if name == "plotting":
        import importlib

        return importlib.import_module(f"{__name__}.plotting")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
