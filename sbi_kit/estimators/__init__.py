"""Conditional density estimators: normalizing flows (via flowjax), time-conditioned
vector-field networks (scores, flow-matching velocities) and z-scoring."""

from ._best_of import BestOf as BestOf
from ._flows import MAF as MAF
from ._flows import NSF as NSF
from ._flows import AbstractFlow as AbstractFlow
from ._flows import CouplingNSF as CouplingNSF
from ._shared_closures import share_closures as share_closures
from ._standardize import Standardizer as Standardizer
from ._vector_field import AbstractVectorField as AbstractVectorField
from ._vector_field import ResidualVectorField as ResidualVectorField
from ._vector_field import ResidualVectorFieldNet as ResidualVectorFieldNet

__all__ = [
    "AbstractFlow",
    "AbstractVectorField",
    "BestOf",
    "CouplingNSF",
    "MAF",
    "NSF",
    "ResidualVectorField",
    "ResidualVectorFieldNet",
    "Standardizer",
    "share_closures",
]
