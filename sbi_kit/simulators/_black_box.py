"""The :class:`BlackBoxSimulator`: a prior plus a plain Python simulate function of an int seed.

For simulators that are not JAX code (NumPy, a wrapped C or Fortran library, an external
program called through ``subprocess``). ``sk.simulate`` runs them through a
``concurrent.futures`` executor (see ``_executor.py``) instead of ``vmap`` and ``jit``.
"""

from collections.abc import Callable

import equinox as eqx
import numpy as np
import numpyro.distributions as dist

from ._simulator import AbstractSimulator


class BlackBoxSimulator(AbstractSimulator):
    """A prior over θ and a simulator written as ordinary Python: ``simulate(seed, theta) -> x``.

    ``sk.simulate(key, sim, n, executor=...)`` draws θ from the prior, derives one integer seed
    per simulation from the key, and runs ``simulate`` for each row, in chunks, through any
    :class:`concurrent.futures.Executor`: a local ``ProcessPoolExecutor``, Dask's
    ``distributed.Client(...).get_executor()`` or ``mpi4py.futures.MPIPoolExecutor``. Without
    an executor the simulations run one after another in this process. The results depend
    only on the key, never on the executor or the number of workers.

    Args:
        prior: a numpyro distribution over one flat parameter vector, event shape
            ``(dim_theta,)``.
        simulate: ``simulate(seed, theta) -> x`` for ONE simulation: ``seed`` is a Python
            ``int`` in ``[0, 2**63)`` that must be the only source of randomness (e.g.
            ``np.random.default_rng(seed)``), ``theta`` a NumPy float64 array of shape
            ``(dim_theta,)``; returns one real array-like of the same shape for every θ
            (usually ``(dim_x,)``). To run in other processes it must be picklable: a function
            defined at module level (not a lambda or a local function) for a process pool;
            Dask also ships lambdas and closures. A simulation that raises, or returns NaN or
            inf, loses only its own row (counted and reported in one warning).
        theta_names: optional labels of the θ components, used by plots.

    Raises:
        TypeError: if ``prior`` is not a numpyro distribution or ``simulate`` is not callable.
        ValueError: if the prior is not over a flat vector, or ``theta_names`` has the wrong
            length.

    Examples:
        >>> import jax, jax.numpy as jnp, numpy as np, numpyro.distributions as dist
        >>> import sbi_kit as sk
        >>> def simulate(seed, theta):  # plain NumPy, one simulation
        ...     rng = np.random.default_rng(seed)
        ...     return theta + 0.1 * rng.standard_normal(theta.shape)
        >>> sim = sk.simulators.BlackBoxSimulator(dist.Normal(jnp.zeros(2), 1.0).to_event(1),
        ...                                       simulate)
        >>> theta, x = sk.simulate(jax.random.key(0), sim, 5)   # serial, in this process
        >>> theta.shape, x.shape
        ((5, 2), (5, 2))
        >>> from concurrent.futures import ThreadPoolExecutor
        >>> with ThreadPoolExecutor(2) as pool:   # or a process pool, or a Dask client's executor
        ...     theta2, x2 = sk.simulate(jax.random.key(0), sim, 5, executor=pool, batch_size=2)
        >>> bool((x2 == x).all())   # same key, same simulations, whatever runs them
        True
    """

    prior: dist.Distribution
    simulate: Callable[[int, np.ndarray], np.ndarray]
    theta_names: tuple[str, ...] | None = eqx.field(default=None, static=True)

    def __check_init__(self):
        if not callable(self.simulate):
            raise TypeError(
                "BlackBoxSimulator: `simulate` must be a callable simulate(seed, theta) -> x, got "
                f"{type(self.simulate).__name__}."
            )
