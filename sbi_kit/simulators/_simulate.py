"""``sk.simulate``: draw (θ, x) pairs and drop the failed rows.

A JAX :class:`Simulator` runs in jitted, vmapped chunks, each sharded over the local devices
when there are several; a :class:`BlackBoxSimulator` runs through a ``concurrent.futures``
executor (``_executor.py``).
"""

from __future__ import annotations

import concurrent.futures as cf
import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from jaxtyping import Array
from tqdm.auto import tqdm

from .._checks import check_key, check_positive_int
from .._types import Key
from ._black_box import BlackBoxSimulator
from ._executor import DEFAULT_MAX_IN_FLIGHT, run_black_box
from ._simulator import Simulator

_TRACE_ERRORS = (
    jax.errors.ConcretizationTypeError,
    jax.errors.TracerArrayConversionError,
    jax.errors.TracerIntegerConversionError,
    jax.errors.NonConcreteBooleanIndexError,
)


class Simulations(tuple):
    """The result of :func:`simulate`: unpacks as ``theta, x``.

    Attributes:
        theta: parameters, shape ``(num_valid, dim_theta)``.
        x: observations, shape ``(num_valid, *x_shape)``.
        num_valid: number of rows kept.
        num_dropped: number of simulations dropped: θ or x was NaN or inf, or (for a
            :class:`BlackBoxSimulator`) the simulation raised or its worker died.
    """

    num_dropped: int

    def __new__(cls, theta: Array, x: Array, num_dropped: int):
        obj = super().__new__(cls, (theta, x))
        obj.num_dropped = int(num_dropped)
        return obj

    @property
    def theta(self) -> Array:
        return self[0]

    @property
    def x(self) -> Array:
        return self[1]

    @property
    def num_valid(self) -> int:
        return int(self[0].shape[0])


def as_simulator(sim_or_task) -> Simulator:
    """Returns the :class:`Simulator` of a task, or the simulator itself."""
    if isinstance(sim_or_task, Simulator):
        return sim_or_task
    sim = getattr(sim_or_task, "simulator", None)
    if isinstance(sim, Simulator):
        return sim
    raise TypeError(
        "expected an sk.Simulator or a task with a `.simulator` (sk.tasks.get(name)), got "
        f"{type(sim_or_task).__name__}."
    )


def _describe(fn) -> str:
    """A readable name of a simulate function: ``module.qualname`` or its type."""
    qualname = getattr(fn, "__qualname__", None)
    if qualname is None:
        return f"`{type(fn).__name__}` object"
    module = getattr(fn, "__module__", None)
    return f"`{module}.{qualname}`" if module and module != "__main__" else f"`{qualname}`"


def check_simulator_output(sim: Simulator, key: Key, theta: Array, fn: str) -> jax.ShapeDtypeStruct:
    """Traces ``sim.simulate`` once on one θ (no computation) and checks what it returns.

    Returns the shape and dtype of one observation. Raises ``ValueError`` / ``TypeError`` that
    name the simulator and what was expected when the output is not one real array of a fixed
    shape with at least one dimension.
    """
    name = _describe(sim.simulate)
    expected = (
        f"one array of a fixed shape (one observation x, e.g. shape (dim_x,)) for one θ of "
        f"shape ({sim.dim_theta},)"
    )
    try:
        out = jax.eval_shape(sim.simulate, key, theta)
    except _TRACE_ERRORS as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(
            f"{fn}: the simulator {name} cannot be traced by JAX: its output shape or its Python "
            f"control flow depends on the value of θ (or it converts θ with int(), float() or "
            f"NumPy). sk.simulate runs it under jax.vmap and jax.jit, so it must return "
            f"{expected}; write branches with jnp.where or jax.lax.cond and pad variable-length "
            f"output to a fixed size. (JAX: {first})"
        ) from e
    except TypeError as e:
        raise TypeError(
            f"{fn}: calling the simulator {name} as simulate(key, theta), with theta of shape "
            f"({sim.dim_theta},), failed: {e}"
        ) from e
    if not isinstance(out, jax.ShapeDtypeStruct):
        what = "None" if out is None else f"a {type(out).__name__}"
        raise TypeError(
            f"{fn}: the simulator {name} returned {what}; it must return {expected} (stack "
            "several values with jnp.stack or jnp.concatenate)."
        )
    if not (
        jnp.issubdtype(out.dtype, jnp.floating)
        or jnp.issubdtype(out.dtype, jnp.integer)
        or out.dtype == jnp.bool_
    ):
        raise TypeError(
            f"{fn}: the simulator {name} returned an array of dtype {out.dtype}; it must return "
            f"real numbers, {expected}."
        )
    if out.shape == ():
        raise ValueError(
            f"{fn}: the simulator {name} returned a scalar; it must return {expected} (return "
            "jnp.atleast_1d(x) for one number)."
        )
    return out


# On CPU a chunk is evaluated as a loop over vmapped blocks of this many rows. A vmapped
# adaptive solver (a diffrax ODE) runs every row until the slowest row of its batch is done, so
# one θ that needs thousands of steps would stall all 10,000 rows of a chunk; in blocks it
# stalls 512. Blocks also stay in cache (benchmarks/results/simulation_throughput.md).
# Accelerators get the whole chunk in one vmap: they need the width.
CPU_BLOCK_ROWS = 512


def _simulate_rows(sim: Simulator, keys: Array, theta: Array, block: int | None) -> Array:
    """Runs ``sim.simulate`` on every row of ``theta`` ``(n, dim_theta)`` with its own key, in
    vmapped blocks of ``block`` rows (one vmap over all rows for ``None``)."""
    if block is None or theta.shape[0] <= block:
        return jax.vmap(sim.simulate)(keys, theta)
    return jax.lax.map(lambda row: sim.simulate(*row), (keys, theta), batch_size=block)


def _simulate_sharded(sim: Simulator, keys: Array, theta: Array, block: int | None, mesh):
    """:func:`_simulate_rows` on each device's share of the rows (``mesh`` is ``None`` for one
    device), so that every device runs the same program as a single device would."""
    if mesh is None:
        return _simulate_rows(sim, keys, theta, block)
    spec = PartitionSpec("batch")
    return jax.shard_map(
        lambda k, t: _simulate_rows(sim, k, t, block), mesh=mesh, in_specs=spec, out_specs=spec
    )(keys, theta)


def _repeat_last(rows, length: int):
    """``rows`` (NumPy or JAX, leading axis the rows) padded to ``length`` rows by repeating
    its last row."""
    return rows[np.minimum(np.arange(length), rows.shape[0] - 1)]


def _simulate_keyed(
    sim: Simulator, key_sim: Key, index: Array, theta: Array, size: int, block, mesh
) -> Array:
    """One chunk in one compiled call: the chunk's ``size`` keys (split from ``key_sim`` folded
    with the chunk ``index``, before any padding or sharding, so that they are those of one
    device), padded like ``theta`` by repeating the last; then :func:`_simulate_sharded`."""
    keys = jax.random.split(jax.random.fold_in(key_sim, index), size)
    if size < theta.shape[0]:
        keys = _repeat_last(keys, theta.shape[0])
    return _simulate_sharded(sim, keys, theta, block, mesh)


_simulate_chunk = eqx.filter_jit(_simulate_keyed)


def _block_rows() -> int | None:
    """Rows per vmapped block: :data:`CPU_BLOCK_ROWS` on CPU, the whole chunk elsewhere."""
    return CPU_BLOCK_ROWS if jax.default_backend() == "cpu" else None


def _batch_sharding() -> NamedSharding | None:
    """The sharding of a chunk's rows over this process's devices (``None`` for one device)."""
    devices = jax.local_devices()
    if len(devices) == 1:
        return None
    return NamedSharding(Mesh(np.asarray(devices), ("batch",)), PartitionSpec("batch"))


def simulate(
    key: Key,
    sim_or_task,
    num_simulations: int,
    *,
    theta: Array | None = None,
    batch_size: int | None = None,
    progress: bool | None = None,
    executor: cf.Executor | None = None,
    max_in_flight: int | None = None,
) -> Simulations:
    """Draws θ from the prior and simulates x, in chunks of ``batch_size`` rows.

    A JAX :class:`Simulator` (or a task) runs in jitted, vmapped chunks. With several devices
    (``jax.local_devices()``: GPUs, TPU cores, or CPU devices made with
    ``XLA_FLAGS=--xla_force_host_platform_device_count=N``) each chunk is sharded over them
    along the batch axis; the keys are split per row before sharding, so the results are the
    same bit for bit as on one device.

    A :class:`BlackBoxSimulator` (plain Python) runs through ``executor``, any
    :class:`concurrent.futures.Executor` (a ``ProcessPoolExecutor``, Dask's
    ``distributed.Client(...).get_executor()``, ``mpi4py.futures.MPIPoolExecutor``), one
    future per chunk and at most ``max_in_flight`` futures at a time; without an executor it
    runs serially in this process. Its seeds come from ``key``, so the results do not depend
    on the executor or the number of workers. A simulation that raises loses only its row; a
    chunk whose task fails as a whole (its worker died: Dask's ``KilledWorker``) loses only its
    rows; an executor that breaks (a ``ProcessPoolExecutor`` whose worker died) stops the run
    with a ``RuntimeError``. See the "Simulation at scale" guide.

    Rows in which θ or x is NaN or infinite, or whose simulation failed, are dropped; if any
    are, one warning gives the counts (for a black box: how many raised, with the exception
    types, how many returned NaN or inf, how many were lost with their worker), and
    ``result.num_dropped`` holds the total.

    Args:
        key: PRNG key.
        sim_or_task: an :class:`sk.Simulator`, a task from :func:`sk.tasks.get`, or a
            :class:`~sbi_kit.simulators.BlackBoxSimulator`.
        num_simulations: number of simulations to run.
        theta: optional parameters to simulate at, shape ``(num_simulations, dim_theta)``; by
            default they are drawn from the prior.
        batch_size: rows per chunk. For a JAX simulator, rows per jitted call (default 10,000;
            bounds memory; the last chunk is padded so that only one shape is compiled, and a
            chunk is padded to a multiple of the device count). On CPU a call runs its rows
            as a loop over vmapped blocks of 512 (per device; a chunk of more is padded to
            whole blocks), so that a row whose adaptive ODE solve needs many steps holds up
            511 others, not the whole chunk; on GPU and TPU, one vmap over the chunk. For a
            black box, rows per future (default ``⌈num_simulations / (4 · max_in_flight)⌉``,
            so that a run makes at most about ``4 · max_in_flight`` futures).
        progress: show a progress bar; by default only when there is more than one chunk.
        executor: black boxes only: the ``concurrent.futures.Executor`` that runs the chunks;
            ``None`` runs them in this process, one after another.
        max_in_flight: black boxes only: futures submitted and not yet collected, at most
            (default 256; use at least twice the number of workers so none waits).

    Returns:
        :class:`Simulations`, which unpacks as ``theta, x`` with shapes
        ``(num_valid, dim_theta)`` and ``(num_valid, *x_shape)``.

    Raises:
        TypeError: for a key that is not one JAX PRNG key (an int seed is refused: pass
            ``jax.random.key(seed)``), for something that is not a simulator or task, for
            a simulator that returns something other than one real array (``None``, a list,
            strings), for an ``executor`` that is not a ``concurrent.futures.Executor``, or
            for ``executor`` / ``max_in_flight`` given with a JAX simulator.
        ValueError: for counts that are not positive integers (bools refused, NumPy integers
            accepted), a ``theta`` of the wrong shape, a JAX simulator whose output shape or
            control flow depends on the value of θ (it cannot run under ``vmap``/``jit``), or
            a black box that returns a scalar or arrays of different shapes.
        RuntimeError: for a black box, when every simulation failed, or when the executor
            broke (a worker of a ``ProcessPoolExecutor`` died); the message gives the counts.

    Examples:
        >>> import jax, sbi_kit as sk
        >>> theta, x = sk.simulate(jax.random.key(0), sk.tasks.get("two_moons"), 100)
        >>> theta.shape, x.shape
        ((100, 2), (100, 2))

        A black box runs through an executor (see :class:`~sbi_kit.simulators.BlackBoxSimulator`):

        >>> import numpy as np, jax.numpy as jnp, numpyro.distributions as dist
        >>> def noisy(seed, theta):
        ...     if theta[0] > 1.5:
        ...         raise ValueError("out of range")
        ...     return theta + np.random.default_rng(seed).normal(size=2)
        >>> box = sk.simulators.BlackBoxSimulator(dist.Normal(jnp.zeros(2), 1.0).to_event(1),
        ...                                       noisy)
        >>> import warnings
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     result = sk.simulate(jax.random.key(1), box, 50, progress=False)
        >>> result.num_valid + result.num_dropped
        50
        >>> result.num_dropped == 0 or "raised (ValueError" in str(caught[0].message)
        True
    """
    fn = "sk.simulate"
    key = check_key(key, fn)
    if isinstance(sim_or_task, BlackBoxSimulator):
        sim = sim_or_task
        if executor is not None and not isinstance(executor, cf.Executor):
            raise TypeError(
                f"{fn}: `executor` must be a concurrent.futures.Executor (a "
                "ProcessPoolExecutor, distributed.Client(...).get_executor(), "
                "mpi4py.futures.MPIPoolExecutor) or None, got "
                f"{type(executor).__name__} (for Dask, pass client.get_executor(), not the "
                "client)."
            )
        if max_in_flight is None:
            max_in_flight = DEFAULT_MAX_IN_FLIGHT
        max_in_flight = check_positive_int(max_in_flight, "max_in_flight", fn)
    else:
        try:
            sim = as_simulator(sim_or_task)
        except TypeError:
            raise TypeError(
                f"{fn}: `sim_or_task`: expected an sk.Simulator or a task with a `.simulator` "
                "(sk.tasks.get(name)), or a sk.simulators.BlackBoxSimulator, got "
                f"{type(sim_or_task).__name__}."
            ) from None
        if executor is not None or max_in_flight is not None:
            given = "executor" if executor is not None else "max_in_flight"
            raise TypeError(
                f"{fn}: `{given}` is for a sk.simulators.BlackBoxSimulator (plain Python run "
                "through a concurrent.futures executor); this is a JAX sk.Simulator, which runs "
                "as jitted code sharded over jax.local_devices(). Leave `executor` and "
                "`max_in_flight` out, or wrap a non-JAX simulate(seed, theta) in a "
                "BlackBoxSimulator."
            )
    num_simulations = check_positive_int(num_simulations, "num_simulations", fn)
    if batch_size is not None:
        batch_size = check_positive_int(batch_size, "batch_size", fn)
    key_prior, key_sim = jax.random.split(key)
    if theta is None:
        theta = sim.prior.sample(key_prior, (num_simulations,))
    else:
        theta = jnp.asarray(theta)
        if theta.shape != (num_simulations, sim.dim_theta):
            raise ValueError(
                f"{fn}: `theta` must have shape ({num_simulations}, {sim.dim_theta}), got "
                f"{theta.shape}."
            )
    if isinstance(sim, BlackBoxSimulator):
        theta_np = np.asarray(theta)
        x, kept, report = run_black_box(
            sim,
            key_sim,
            theta_np,
            executor=executor,
            batch_size=batch_size,
            max_in_flight=max_in_flight,
            progress=progress,
            fn=fn,
            name=_describe(sim.simulate),
        )
        if report is not None:
            warnings.warn(report, RuntimeWarning, stacklevel=2)
        return Simulations(jnp.asarray(theta_np[kept]), jnp.asarray(x[kept]), int((~kept).sum()))
    return _simulate_jax(sim, key_sim, theta, num_simulations, batch_size, progress, fn)


def _simulate_jax(
    sim: Simulator,
    key_sim: Key,
    theta: Array,
    num_simulations: int,
    batch_size: int | None,
    progress: bool | None,
    fn: str,
) -> Simulations:
    """The JAX path of :func:`simulate`: jitted chunks, sharded over the local devices."""
    check_simulator_output(sim, key_sim, theta[0], fn)
    size = min(batch_size if batch_size is not None else 10_000, num_simulations)
    sharding = _batch_sharding()
    num_devices = 1 if sharding is None else len(sharding.device_set)
    mesh = None if sharding is None else sharding.mesh
    block = _block_rows()
    # Rows per call: a multiple of the devices, and of the block when a device's share is
    # more than one block (a partial last block would compile the simulator a second time).
    multiple = num_devices if block is None or size <= num_devices * block else num_devices * block
    padded = -(-size // multiple) * multiple
    starts = range(0, num_simulations, size)
    if progress is None:
        progress = len(starts) > 1
    # θ is cut and padded on the host, and each chunk's keys are made inside its compiled call:
    # one dispatch per chunk (the slicing and gathers of device arrays cost a few ms per call).
    theta_np = np.asarray(theta)
    chunks = []
    for i, start in enumerate(tqdm(starts, desc="simulate", disable=not progress, leave=False)):
        th = theta_np[start : start + size]
        n = th.shape[0]
        # The padding rows (the last chunk's missing rows, then up to whole blocks on every
        # device) repeat a row and are discarded.
        if n < padded:
            th = _repeat_last(th, padded)
        th = jnp.asarray(th) if sharding is None else jax.device_put(th, sharding)
        xs = _simulate_chunk(sim, key_sim, np.asarray(i, np.int32), th, size, block, mesh)
        chunks.append(np.asarray(xs)[:n])
    x = np.concatenate(chunks)
    finite = np.isfinite(theta_np).all(axis=1) & np.isfinite(x.reshape(len(x), -1)).all(axis=1)
    num_dropped = int((~finite).sum())
    if num_dropped:
        warnings.warn(
            f"sk.simulate dropped {num_dropped} of {num_simulations} simulations whose θ or x "
            "was NaN or inf.",
            RuntimeWarning,
            stacklevel=3,  # the caller of sk.simulate
        )
    return Simulations(jnp.asarray(theta_np[finite]), jnp.asarray(x[finite]), num_dropped)
