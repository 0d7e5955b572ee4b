"""Prior-data fitted networks (PFNs): transformers that do Bayesian prediction in one pass.

A PFN (Müller et al., ICLR 2022) is trained on datasets drawn from a prior; given a new dataset
as context it returns the posterior predictive of ``y`` at query inputs in one forward pass.
``sk.PFN(...).fit(key, prior, steps=...)`` trains one on any :class:`AbstractDatasetPrior`
(Gaussian processes, Bayesian neural networks, the LC-PFN learning-curve prior, or any numpyro
model), ``sk.PFN.pretrained(name)`` loads a shipped one, and :func:`extrapolate` predicts the
rest of a learning curve.
"""

from ._bar import BarDistribution as BarDistribution
from ._bar import bucket_borders as bucket_borders
from ._bnn import BNNPrior as BNNPrior
from ._extrapolate import Extrapolation as Extrapolation
from ._extrapolate import extrapolate as extrapolate
from ._file import PFNFileError as PFNFileError
from ._file import load as load
from ._file import save as save
from ._gp import RBF as RBF
from ._gp import AbstractKernel as AbstractKernel
from ._gp import AbstractStationaryKernel as AbstractStationaryKernel
from ._gp import GPHyperPrior as GPHyperPrior
from ._gp import GPPrior as GPPrior
from ._gp import Matern52 as Matern52
from ._gp import gp_predictive as gp_predictive
from ._learning_curve import LearningCurvePrior as LearningCurvePrior
from ._learning_curve import learning_curve_model as learning_curve_model
from ._numpyro_prior import NumpyroPrior as NumpyroPrior
from ._pfn import PFN as PFN
from ._pfn import pretrained_names as pretrained_names
from ._prior import AbstractDatasetPrior as AbstractDatasetPrior
from ._prior import Dataset as Dataset
from ._trained import TrainedPFN as TrainedPFN
from ._transformer import PFNTransformer as PFNTransformer

__all__ = [
    "AbstractDatasetPrior",
    "AbstractKernel",
    "AbstractStationaryKernel",
    "BNNPrior",
    "BarDistribution",
    "Dataset",
    "Extrapolation",
    "GPHyperPrior",
    "GPPrior",
    "LearningCurvePrior",
    "Matern52",
    "NumpyroPrior",
    "PFN",
    "PFNFileError",
    "PFNTransformer",
    "RBF",
    "TrainedPFN",
    "bucket_borders",
    "extrapolate",
    "gp_predictive",
    "learning_curve_model",
    "load",
    "pretrained_names",
    "save",
]
