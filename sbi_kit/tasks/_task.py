"""The :class:`Task`: a benchmark problem with observations and reference posteriors."""

from __future__ import annotations

import dataclasses
import functools
from importlib import resources

import numpy as np
from jaxtyping import Array

from ..simulators import ODE, Simulator

NUM_OBSERVATIONS = 10


@functools.cache
def _load(name: str) -> dict[str, np.ndarray]:
    path = resources.files("sbi_kit.tasks") / "data" / f"{name}.npz"
    if not path.is_file():
        raise FileNotFoundError(
            f"the data file of task {name!r} is missing ({path}); regenerate it with "
            "`python -m sbi_kit.tasks.generate`."
        )
    with path.open("rb") as f, np.load(f) as data:
        arrays = {k: data[k] for k in data.files}
    for a in arrays.values():
        a.flags.writeable = False  # cached and shared by every call: nobody may change them
    return arrays


@dataclasses.dataclass(frozen=True)
class Task:
    """A benchmark task (sbibm definitions, Lueckmann et al. 2021).

    Attributes:
        name: the task's name (``sk.tasks.names()`` lists them).
        simulator: the :class:`sk.Simulator` (prior + simulate + exact likelihood when known).
        ode: for the ODE tasks (``sir``, ``lotka_volterra``) the :class:`sk.simulators.ODE`
            that the simulator solves (vector field, initial state, times, tolerances), so that
            other solvers can be run on the same problem; ``None`` for the other tasks.
    """

    name: str
    simulator: Simulator
    ode: ODE | None = None

    @property
    def prior(self):
        """The prior (a numpyro distribution with event shape ``(dim_theta,)``)."""
        return self.simulator.prior

    @property
    def dim_theta(self) -> int:
        return self.simulator.dim_theta

    @property
    def dim_x(self) -> int:
        return int(_load(self.name)["observations"].shape[1])

    def _index(self, i: int) -> int:
        if (
            isinstance(i, bool)
            or not isinstance(i, int | np.integer)
            or not 1 <= i <= NUM_OBSERVATIONS
        ):
            raise ValueError(
                f"observation index must be an integer in 1..{NUM_OBSERVATIONS}, got {i!r}."
            )
        return int(i) - 1

    def observation(self, i: int) -> Array:
        """Observation ``i`` (1..10), shape ``(dim_x,)`` (sbibm's published values).

        The array is read-only (a view of the task's cached data); ``.copy()`` it to modify it.
        """
        return _read_only(_load(self.name)["observations"][self._index(i)])

    def true_parameters(self, i: int) -> Array:
        """The parameters that generated observation ``i``, shape ``(dim_theta,)`` (read-only)."""
        return _read_only(_load(self.name)["true_parameters"][self._index(i)])

    def reference_samples(self, i: int) -> Array:
        """10,000 reference posterior samples for observation ``i``, shape ``(10000, dim_theta)``.

        Computed by this project from the exact likelihood (``python -m sbi_kit.tasks.generate``).
        The array is read-only (a view of the task's cached data); ``.copy()`` it to modify it.

        Examples:
            >>> import sbi_kit as sk
            >>> ref = sk.tasks.get("two_moons").reference_samples(1)
            >>> ref.shape, ref.flags.writeable
            ((10000, 2), False)
        """
        return _read_only(_load(self.name)["reference_samples"][self._index(i)])


def _read_only(a: np.ndarray) -> np.ndarray:
    """A read-only view of ``a`` (the cached arrays are read-only already; views inherit it)."""
    view = a.view()
    view.flags.writeable = False
    return view
