"""Benchmark tasks with the sbibm definitions, observations and reference posteriors.

Examples:
    >>> import sbi_kit as sk
    >>> task = sk.tasks.get("two_moons")
    >>> task.dim_theta, task.observation(1).shape
    (2, (2,))
"""

from collections.abc import Callable

from ..simulators import Simulator
from . import _gaussian_linear, _two_moons
from ._task import Task as Task

_SIMULATORS: dict[str, Callable[[], Simulator]] = {
    "gaussian_linear": _gaussian_linear.simulator,
    "two_moons": _two_moons.simulator,
}


def names() -> list[str]:
    """The names of the available tasks."""
    return sorted(_SIMULATORS)


def get(name: str) -> Task:
    """The task called ``name`` (see :func:`names`).

    Raises:
        ValueError: for an unknown name.
    """
    if name not in _SIMULATORS:
        raise ValueError(f"unknown task {name!r}; expected one of {names()}.")
    return Task(name, _SIMULATORS[name]())


__all__ = ["Task", "get", "names"]
