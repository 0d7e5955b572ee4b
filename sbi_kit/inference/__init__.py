"""Inference methods: each is a frozen configuration whose ``fit`` returns a trained posterior.

The interface every method plugs into: :class:`AbstractMethod` (``build_net``, ``loss``,
``posterior``; one shared ``fit``), and the two kinds of posterior,
:class:`AbstractDensityPosterior` and :class:`AbstractPotentialPosterior`. Methods available:
:class:`NPE`, :class:`NLE`, :class:`NRE`, :class:`NPSE`, :class:`FMPE`; :func:`sequential` runs
them in rounds (TSNPE, SNLE, SNRE).
"""

from ._composition import GAUSS as GAUSS
from ._composition import JAC as JAC
from ._composition import AbstractComposition as AbstractComposition
from ._composition import AbstractDiffusedPrior as AbstractDiffusedPrior
from ._composition import AbstractStandardizedPrior as AbstractStandardizedPrior
from ._composition import DensityPrior as DensityPrior
from ._composition import GaussianPrior as GaussianPrior
from ._composition import LearnedPrior as LearnedPrior
from ._composition import UniformPrior as UniformPrior
from ._diffusion import VESDE as VESDE
from ._diffusion import VPSDE as VPSDE
from ._diffusion import AbstractLinearBetaSDE as AbstractLinearBetaSDE
from ._diffusion import AbstractSDE as AbstractSDE
from ._diffusion import SubVPSDE as SubVPSDE
from ._field_net import FieldNet as FieldNet
from ._fields import AbstractField as AbstractField
from ._fields import FlowField as FlowField
from ._fields import ScoreField as ScoreField
from ._fmpe import FMPE as FMPE
from ._fmpe import FMPEPosterior as FMPEPosterior
from ._fnpse import FNPSE as FNPSE
from ._likelihood import LearnedLikelihood as LearnedLikelihood
from ._method import AbstractMethod as AbstractMethod
from ._method import AbstractPotentialMethod as AbstractPotentialMethod
from ._method import held_out_loss as held_out_loss
from ._nle import NLE as NLE
from ._nle import LikelihoodNet as LikelihoodNet
from ._nle import NLEPosterior as NLEPosterior
from ._npe import NPE as NPE
from ._npe import FlowNet as FlowNet
from ._npe import NPEPosterior as NPEPosterior
from ._npse import NPSE as NPSE
from ._npse import NPSEPosterior as NPSEPosterior
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
from ._round_check import x_o_extremity as x_o_extremity
from ._sequential import SequentialResult as SequentialResult
from ._sequential import sequential as sequential
from ._smc import SMC as SMC
from ._snpe_rounds import APT as APT
from ._snpe_rounds import TSNPE as TSNPE
from ._snpe_rounds import AbstractSNPE as AbstractSNPE
from ._snpe_rounds import default_snpe as default_snpe
from ._snpe_rounds import truncated_prior_sample as truncated_prior_sample
from ._support import AbstractSupport as AbstractSupport
from ._support import Bijection as Bijection
from ._support import Rejection as Rejection
from ._vector_field_method import AbstractVectorFieldMethod as AbstractVectorFieldMethod
from ._vector_field_samplers import AbstractDivergence as AbstractDivergence
from ._vector_field_samplers import AbstractVectorFieldSampler as AbstractVectorFieldSampler
from ._vector_field_samplers import DPMSolver as DPMSolver
from ._vector_field_samplers import ExactDivergence as ExactDivergence
from ._vector_field_samplers import HutchinsonDivergence as HutchinsonDivergence
from ._vector_field_samplers import ProbabilityFlowODE as ProbabilityFlowODE
from ._vector_field_samplers import ReverseSDE as ReverseSDE

__all__ = [
    "AbstractDivergence",
    "ExactDivergence",
    "HutchinsonDivergence",
    "AbstractComposition",
    "AbstractStandardizedPrior",
    "AbstractDiffusedPrior",
    "DensityPrior",
    "GAUSS",
    "GaussianPrior",
    "LearnedPrior",
    "UniformPrior",
    "JAC",
    "AbstractDensityPosterior",
    "AbstractMethod",
    "AbstractPosterior",
    "AbstractPotentialMethod",
    "AbstractPotentialPosterior",
    "AbstractRatioLoss",
    "AbstractField",
    "AbstractLinearBetaSDE",
    "AbstractSDE",
    "AbstractVectorFieldMethod",
    "AbstractVectorFieldSampler",
    "BalancedNRE",
    "AbstractSupport",
    "Bijection",
    "DPMSolver",
    "FieldNet",
    "FlowField",
    "FMPE",
    "FNPSE",
    "SMC",
    "FMPEPosterior",
    "FlowNet",
    "LearnedLikelihood",
    "LikelihoodNet",
    "NLE",
    "NLEPosterior",
    "NPE",
    "NPEPosterior",
    "NPSE",
    "NPSEPosterior",
    "ProbabilityFlowODE",
    "NRE",
    "NREPosterior",
    "NRE_A",
    "NRE_B",
    "NRE_C",
    "RatioNet",
    "SequentialResult",
    "sequential",
    "held_out_loss",
    "x_o_extremity",
    "truncated_prior_sample",
    "AbstractSNPE",
    "TSNPE",
    "APT",
    "default_snpe",
    "Rejection",
    "ScoreField",
    "ReverseSDE",
    "SubVPSDE",
    "VESDE",
    "VPSDE",
]
