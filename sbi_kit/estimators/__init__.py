"""Conditional density estimators: normalizing flows (via flowjax) and z-scoring."""

from ._flows import MAF as MAF
from ._flows import NSF as NSF
from ._flows import AbstractFlow as AbstractFlow
from ._flows import CouplingNSF as CouplingNSF
from ._standardize import Standardizer as Standardizer

__all__ = ["AbstractFlow", "CouplingNSF", "MAF", "NSF", "Standardizer"]
