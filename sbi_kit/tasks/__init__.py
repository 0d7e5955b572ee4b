"""Benchmark tasks with the sbibm definitions, observations and reference posteriors.

Eight tasks of Lueckmann et al. (2021) whose likelihood is tractable: ``bernoulli_glm``,
``gaussian_linear``, ``gaussian_linear_uniform``, ``gaussian_mixture``, ``slcp``, ``two_moons``
and the ODE tasks ``sir`` and ``lotka_volterra`` (solved with diffrax); and an SDE task of this
project, ``ornstein_uhlenbeck``, whose likelihood is exact. Observations and true parameters are
sbibm's published values (the Ornstein–Uhlenbeck task's are this project's own); reference
posterior samples are computed by this project from the exact likelihood (``python -m
sbi_kit.tasks.generate``).

Examples:
    >>> import sbi_kit as sk
    >>> task = sk.tasks.get("two_moons")
    >>> task.dim_theta, task.observation(1).shape
    (2, (2,))
"""

from collections.abc import Callable
from types import ModuleType

from ..simulators import ODE
from . import (
    _bernoulli_glm,
    _gaussian_linear,
    _gaussian_linear_uniform,
    _gaussian_mixture,
    _lotka_volterra,
    _ornstein_uhlenbeck,
    _sir,
    _slcp,
    _two_moons,
)
from ._task import Task as Task

# Each module provides `simulator() -> Simulator` and
# `sample_reference_posterior(key, x, num_samples) -> (num_samples, dim_theta)`.
_MODULES: dict[str, ModuleType] = {
    "bernoulli_glm": _bernoulli_glm,
    "gaussian_linear": _gaussian_linear,
    "gaussian_linear_uniform": _gaussian_linear_uniform,
    "gaussian_mixture": _gaussian_mixture,
    "lotka_volterra": _lotka_volterra,
    "ornstein_uhlenbeck": _ornstein_uhlenbeck,
    "sir": _sir,
    "slcp": _slcp,
    "two_moons": _two_moons,
}

_ODES: dict[str, Callable[[], ODE]] = {"lotka_volterra": _lotka_volterra.ode, "sir": _sir.ode}
"""The ODE tasks: the problem each one's simulator solves (``Task.ode``)."""


def names() -> list[str]:
    """The names of the available tasks, sorted."""
    return sorted(_MODULES)


def get(name: str) -> Task:
    """The task called ``name`` (see :func:`names`).

    Args:
        name: a task name, e.g. ``"two_moons"``.

    Returns:
        the :class:`Task`.

    Raises:
        ValueError: for an unknown name (the message lists the known ones).

    Examples:
        >>> import sbi_kit as sk
        >>> sk.tasks.get("slcp").dim_theta
        5
    """
    if name not in _MODULES:
        raise ValueError(f"unknown task {name!r}; expected one of {names()}.")
    ode = _ODES[name]() if name in _ODES else None
    return Task(name, _MODULES[name].simulator(), ode)


__all__ = ["Task", "get", "names"]
