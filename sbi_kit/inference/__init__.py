"""Inference methods: each is a frozen configuration whose ``fit`` returns a trained posterior.

The interface every method plugs into: :class:`AbstractMethod` (``build_net``, ``loss``,
``posterior``; one shared ``fit``), and the two kinds of posterior,
:class:`AbstractDensityPosterior` and :class:`AbstractPotentialPosterior`. Methods available:
:class:`NPE`, :class:`NLE`, :class:`NRE`; :func:`sequential` runs them in rounds (TSNPE,
SNLE, SNRE).
"""

from ._likelihood import LearnedLikelihood as LearnedLikelihood
from ._method import AbstractMethod as AbstractMethod
from ._method import AbstractPotentialMethod as AbstractPotentialMethod
from ._nle import NLE as NLE
from ._nle import LikelihoodNet as LikelihoodNet
from ._nle import NLEPosterior as NLEPosterior
from ._npe import NPE as NPE
from ._npe import FlowNet as FlowNet
from ._npe import NPEPosterior as NPEPosterior
from ._nre import NRE as NRE
from ._nre import NREPosterior as NREPosterior
from ._nre import RatioNet as RatioNet
from ._posterior import AbstractDensityPosterior as AbstractDensityPosterior
from ._posterior import AbstractPosterior as AbstractPosterior
from ._posterior import AbstractPotentialPosterior as AbstractPotentialPosterior
from ._ratio_losses import NRE_A as NRE_A
from ._ratio_losses import NRE_B as NRE_B
from ._ratio_losses import NRE_C as NRE_C
from ._ratio_losses import AbstractRatioLoss as AbstractRatioLoss
from ._ratio_losses import BalancedNRE as BalancedNRE
from ._sequential import SequentialResult as SequentialResult
from ._sequential import sequential as sequential
from ._sequential import truncated_prior_sample as truncated_prior_sample
from ._support import AbstractSupport as AbstractSupport
from ._support import Bijection as Bijection
from ._support import Rejection as Rejection

__all__ = [
    "AbstractDensityPosterior",
    "AbstractMethod",
    "AbstractPosterior",
    "AbstractPotentialMethod",
    "AbstractPotentialPosterior",
    "AbstractRatioLoss",
    "BalancedNRE",
    "AbstractSupport",
    "Bijection",
    "FlowNet",
    "LearnedLikelihood",
    "LikelihoodNet",
    "NLE",
    "NLEPosterior",
    "NPE",
    "NPEPosterior",
    "NRE",
    "NREPosterior",
    "NRE_A",
    "NRE_B",
    "NRE_C",
    "RatioNet",
    "SequentialResult",
    "sequential",
    "truncated_prior_sample",
    "Rejection",
]
