"""Simulators: a prior plus a simulate function, numpyro models, and batched simulation."""

from ._numpyro import ModelPrior as ModelPrior
from ._numpyro import from_numpyro as from_numpyro
from ._simulate import Simulations as Simulations
from ._simulate import simulate as simulate
from ._simulator import Simulator as Simulator
from ._simulator import unconstraining_transform as unconstraining_transform

__all__ = [
    "ModelPrior",
    "Simulations",
    "Simulator",
    "from_numpyro",
    "simulate",
    "unconstraining_transform",
]
