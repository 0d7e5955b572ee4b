"""``sk.simulate``: draw (θ, x) pairs in jitted, vmapped chunks and drop non-finite rows."""

from __future__ import annotations

import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array
from tqdm.auto import tqdm

from .._checks import check_key, check_positive_int
from .._types import Key
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
        num_dropped: number of simulations dropped because θ or x was NaN or inf.
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


def simulate_batch(sim: Simulator, key: Key, theta: Array) -> Array:
    """Runs ``sim.simulate`` on every row of ``theta`` (shape ``(n, dim_theta)``), one key each."""
    keys = jax.random.split(key, theta.shape[0])
    return jax.vmap(sim.simulate)(keys, theta)


_simulate_chunk = eqx.filter_jit(simulate_batch)


def simulate(
    key: Key,
    sim_or_task,
    num_simulations: int,
    *,
    theta: Array | None = None,
    batch_size: int = 10_000,
    progress: bool | None = None,
) -> Simulations:
    """Draws θ from the prior and simulates x, in jitted chunks of ``batch_size``.

    Rows in which θ or x is NaN or infinite are dropped; if any are, one warning gives the
    count, and ``result.num_dropped`` holds it.

    Args:
        key: PRNG key.
        sim_or_task: an :class:`sk.Simulator` or a task from :func:`sk.tasks.get`.
        num_simulations: number of simulations to run.
        theta: optional parameters to simulate at, shape ``(num_simulations, dim_theta)``; by
            default they are drawn from the prior.
        batch_size: simulations per jitted chunk (bounds memory; the last chunk is padded so
            that only one shape is compiled).
        progress: show a progress bar; by default only when there is more than one chunk.

    Returns:
        :class:`Simulations`, which unpacks as ``theta, x`` with shapes
        ``(num_valid, dim_theta)`` and ``(num_valid, *x_shape)``.

    Raises:
        TypeError: for a key that is not one JAX PRNG key (an int seed is refused: pass
            ``jax.random.key(seed)``), for something that is not a simulator or task, or for
            a simulator that returns something other than one real array (``None``, a list).
        ValueError: for counts that are not positive integers (bools refused, NumPy integers
            accepted), a ``theta`` of the wrong shape, or a simulator whose output shape or
            control flow depends on the value of θ (it cannot run under ``vmap``/``jit``).

    Examples:
        >>> import jax, sbi_kit as sk
        >>> theta, x = sk.simulate(jax.random.key(0), sk.tasks.get("two_moons"), 100)
        >>> theta.shape, x.shape
        ((100, 2), (100, 2))
    """
    fn = "sk.simulate"
    key = check_key(key, fn)
    try:
        sim = as_simulator(sim_or_task)
    except TypeError as e:
        raise TypeError(f"{fn}: `sim_or_task`: {e}") from None
    num_simulations = check_positive_int(num_simulations, "num_simulations", fn)
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
    check_simulator_output(sim, key_sim, theta[0], fn)
    size = min(batch_size, num_simulations)
    starts = range(0, num_simulations, size)
    if progress is None:
        progress = len(starts) > 1
    chunks = []
    for i, start in enumerate(tqdm(starts, desc="simulate", disable=not progress, leave=False)):
        th = theta[start : start + size]
        n = th.shape[0]
        if n < size:  # pad the last chunk so that one compiled shape serves all chunks
            th = jnp.concatenate([th, jnp.broadcast_to(th[:1], (size - n, th.shape[1]))])
        xs = _simulate_chunk(sim, jax.random.fold_in(key_sim, i), th)
        chunks.append(np.asarray(xs[:n]))
    x = np.concatenate(chunks)
    theta_np = np.asarray(theta)
    finite = np.isfinite(theta_np).all(axis=1) & np.isfinite(x.reshape(len(x), -1)).all(axis=1)
    num_dropped = int((~finite).sum())
    if num_dropped:
        warnings.warn(
            f"sk.simulate dropped {num_dropped} of {num_simulations} simulations whose θ or x "
            "was NaN or inf.",
            RuntimeWarning,
            stacklevel=2,
        )
    return Simulations(jnp.asarray(theta_np[finite]), jnp.asarray(x[finite]), num_dropped)
