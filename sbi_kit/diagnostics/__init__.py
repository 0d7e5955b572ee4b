"""Diagnostics: pure functions over arrays (samples, true parameters, keys).

Calibration: :func:`tarp`, :func:`sbc_ranks` / :func:`sbc_test`, :func:`expected_coverage`, and
:func:`calibrate`, which runs all three on a trained posterior and returns a
:class:`CalibrationReport`. Discrepancies: :func:`c2st`, :func:`mmd` (the estimators
:class:`UStatistic`, :class:`VStatistic`, :class:`LinearStatistic`, and the optimally-weighted
estimator with :func:`optimal_weights`), :func:`mmd_test`, and minimum-distance estimation with
the MMD (:func:`minimum_mmd_estimate`, :func:`mmd_abc`) for the base-space simulators of
:mod:`sbi_kit.simulators`. Posterior predictive checks of one observation:
:func:`posterior_predictive_check` on a trained posterior, :func:`predictive_check` on arrays,
both returning a :class:`PredictiveCheck`.
"""

from ._c2st import c2st as c2st
from ._calibrate import CalibrationReport as CalibrationReport
from ._calibrate import calibrate as calibrate
from ._calibrate import combine_verdicts as combine_verdicts
from ._coverage import coverage_summary as coverage_summary
from ._coverage import expected_coverage as expected_coverage
from ._kernels import AbstractKernel as AbstractKernel
from ._kernels import GaussianKernel as GaussianKernel
from ._kernels import IMQKernel as IMQKernel
from ._kernels import MaternKernel as MaternKernel
from ._kernels import median_heuristic as median_heuristic
from ._minimum_distance import MinimumMMDResult as MinimumMMDResult
from ._minimum_distance import MMDABCResult as MMDABCResult
from ._minimum_distance import minimum_mmd_estimate as minimum_mmd_estimate
from ._minimum_distance import mmd_abc as mmd_abc
from ._mmd import AbstractMMDEstimator as AbstractMMDEstimator
from ._mmd import AbstractQuadraticStatistic as AbstractQuadraticStatistic
from ._mmd import LinearStatistic as LinearStatistic
from ._mmd import UStatistic as UStatistic
from ._mmd import VStatistic as VStatistic
from ._mmd import mmd as mmd
from ._mmd import mmd_test as mmd_test
from ._optimal_weights import kernel_mean as kernel_mean
from ._optimal_weights import optimal_weights as optimal_weights
from ._ppc import PredictiveCheck as PredictiveCheck
from ._ppc import posterior_predictive_check as posterior_predictive_check
from ._ppc import predictive_check as predictive_check
from ._sbc import SBCTest as SBCTest
from ._sbc import default_rank_bins as default_rank_bins
from ._sbc import sbc_ranks as sbc_ranks
from ._sbc import sbc_test as sbc_test
from ._tarp import AbstractDistance as AbstractDistance
from ._tarp import EuclideanDistance as EuclideanDistance
from ._tarp import ManhattanDistance as ManhattanDistance
from ._tarp import tarp as tarp
from ._tarp import tarp_summary as tarp_summary

__all__ = [
    "AbstractDistance",
    "AbstractKernel",
    "AbstractMMDEstimator",
    "AbstractQuadraticStatistic",
    "CalibrationReport",
    "EuclideanDistance",
    "GaussianKernel",
    "IMQKernel",
    "LinearStatistic",
    "MMDABCResult",
    "ManhattanDistance",
    "MaternKernel",
    "MinimumMMDResult",
    "PredictiveCheck",
    "SBCTest",
    "UStatistic",
    "VStatistic",
    "c2st",
    "calibrate",
    "combine_verdicts",
    "coverage_summary",
    "default_rank_bins",
    "expected_coverage",
    "kernel_mean",
    "median_heuristic",
    "minimum_mmd_estimate",
    "mmd",
    "mmd_abc",
    "mmd_test",
    "optimal_weights",
    "posterior_predictive_check",
    "predictive_check",
    "sbc_ranks",
    "sbc_test",
    "tarp",
    "tarp_summary",
]
