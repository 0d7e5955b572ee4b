"""Simulators: a prior plus a simulate function, numpyro models, and batched simulation.

:class:`Simulator` holds JAX code (``sk.simulate`` vmaps and jits it and shards the chunks
over the devices); :class:`BlackBoxSimulator` holds plain Python (NumPy, external programs),
which ``sk.simulate`` runs through a ``concurrent.futures`` executor: a process pool, Dask or
MPI. Both are :class:`AbstractSimulator`.

Base-space simulators ``x = G_θ(u)`` (:class:`BaseSpaceSimulator`, with the base measures
:class:`UniformBase` and :class:`GaussianBase`) serve the MMD tools of
:mod:`sbi_kit.diagnostics`; :func:`g_and_k`, :func:`two_moons_base_space`, :func:`ma2` and
:func:`bivariate_beta` are the benchmark models of Bharti et al. (2023) written that way.
"""

from ._base_space import AbstractBaseMeasure as AbstractBaseMeasure
from ._base_space import BaseSpaceSimulator as BaseSpaceSimulator
from ._base_space import GaussianBase as GaussianBase
from ._base_space import UniformBase as UniformBase
from ._base_space_models import bivariate_beta as bivariate_beta
from ._base_space_models import g_and_k as g_and_k
from ._base_space_models import gamma_quantile as gamma_quantile
from ._base_space_models import ma2 as ma2
from ._base_space_models import normal_quantile as normal_quantile
from ._base_space_models import two_moons_base_space as two_moons_base_space
from ._black_box import BlackBoxSimulator as BlackBoxSimulator
from ._differential import ODE as ODE
from ._differential import SDE as SDE
from ._differential import ode_simulator as ode_simulator
from ._differential import sde_simulator as sde_simulator
from ._numpyro import ModelPrior as ModelPrior
from ._numpyro import from_numpyro as from_numpyro
from ._simulate import Simulations as Simulations
from ._simulate import as_simulator as as_simulator
from ._simulate import simulate as simulate
from ._simulator import AbstractSimulator as AbstractSimulator
from ._simulator import Simulator as Simulator
from ._simulator import unconstraining_transform as unconstraining_transform

__all__ = [
    "AbstractBaseMeasure",
    "AbstractSimulator",
    "BaseSpaceSimulator",
    "BlackBoxSimulator",
    "GaussianBase",
    "ModelPrior",
    "ODE",
    "SDE",
    "Simulations",
    "Simulator",
    "UniformBase",
    "as_simulator",
    "bivariate_beta",
    "from_numpyro",
    "g_and_k",
    "gamma_quantile",
    "ma2",
    "normal_quantile",
    "ode_simulator",
    "sde_simulator",
    "simulate",
    "two_moons_base_space",
    "unconstraining_transform",
]
