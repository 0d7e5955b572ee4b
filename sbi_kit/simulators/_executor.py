"""Running a :class:`BlackBoxSimulator` through a ``concurrent.futures`` executor.

One integer seed per simulation is drawn from the JAX key, so the results depend on the key
only, never on the executor, the chunking or the number of workers. The rows go out in chunks,
one future per chunk, with at most ``max_in_flight`` futures submitted and not yet collected
(10⁶ simulations never make 10⁶ futures at once). Inside a chunk each simulation runs in its
own ``try``: one that raises loses only its row. A chunk whose future fails as a whole (Dask's
``KilledWorker`` after its worker died) loses only its rows. An executor that breaks
(``concurrent.futures.BrokenExecutor``: a ``ProcessPoolExecutor`` whose worker process died)
cannot run anything more, so the run stops with a ``RuntimeError`` that gives the counts.
"""

import concurrent.futures as cf
import math
from collections import Counter
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array
from tqdm.auto import tqdm

from .._types import Key
from ._black_box import BlackBoxSimulator

DEFAULT_MAX_IN_FLIGHT = 256
"""Futures submitted and not yet collected, at most, when ``max_in_flight`` is not given."""


class ChunkOutcome(NamedTuple):
    """What one chunk of simulations sends back from its worker (NumPy and builtins only).

    Attributes:
        x: the outputs, shape ``(k, *x_shape)`` for the chunk's ``k`` rows (the rows that raised
            hold zeros); ``None`` when every row raised.
        raised: ``(row, exception type name, message)`` for each simulation that raised.
        problem: ``(row, error)`` for the first output that breaks the simulator's contract
            (not one real array, a scalar, or a shape that differs within the chunk); the
            caller raises ``error``'s type with the simulator's name.
    """

    x: np.ndarray | None
    raised: tuple[tuple[int, str, str], ...]
    problem: tuple[int, TypeError | ValueError] | None


def _first_line(error: BaseException, limit: int = 200) -> str:
    text = str(error).strip()
    text = text.splitlines()[0] if text else ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _as_output(out) -> np.ndarray | TypeError | ValueError:
    """One simulation's output as a real NumPy array of at least one dimension, or the error."""
    if out is None:
        return TypeError("returned None")
    try:
        arr = np.asarray(out)
    except (TypeError, ValueError) as e:  # ragged lists, objects that are not arrays
        return TypeError(f"returned a {type(out).__name__} that is not one array ({e})")
    if arr.dtype.kind not in "biuf":
        return TypeError(f"returned a {type(out).__name__} of dtype {arr.dtype}, not real numbers")
    if arr.ndim == 0:
        return ValueError("returned a scalar (return np.atleast_1d(x) for one number)")
    return arr


def run_chunk(simulate, start: int, seeds: np.ndarray, theta: np.ndarray) -> ChunkOutcome:
    """Runs ``simulate(seed, theta_row)`` for each row of one chunk; this runs on a worker.

    Args:
        simulate: the black-box ``simulate(seed, theta) -> x``.
        start: index of the chunk's first row in the whole run (for messages).
        seeds: shape ``(k,)``, one seed per row.
        theta: shape ``(k, dim_theta)``, float64.

    Returns:
        The chunk's :class:`ChunkOutcome`. A simulation that raises (any ``Exception``) is
        recorded in ``raised`` and loses only its row.
    """
    outputs: list[np.ndarray | None] = []
    raised: list[tuple[int, str, str]] = []
    first: tuple[int, tuple[int, ...]] | None = None  # (row, shape) of the first output
    for i in range(len(seeds)):
        row = start + i
        try:
            out = simulate(int(seeds[i]), theta[i].copy())
        except Exception as e:  # a failed simulation loses only its row
            raised.append((row, type(e).__name__, _first_line(e)))
            outputs.append(None)
            continue
        arr = _as_output(out)
        if isinstance(arr, TypeError | ValueError):
            return ChunkOutcome(None, tuple(raised), (row, arr))
        if first is None:
            first = (row, arr.shape)
        elif arr.shape != first[1]:
            error = ValueError(
                f"returned shape {arr.shape} at simulation {row} but shape {first[1]} at "
                f"simulation {first[0]}"
            )
            return ChunkOutcome(None, tuple(raised), (row, error))
        outputs.append(arr)
    if first is None:
        return ChunkOutcome(None, tuple(raised), None)
    dtype = np.result_type(*(o.dtype for o in outputs if o is not None))
    x = np.zeros((len(seeds), *first[1]), dtype)
    for i, o in enumerate(outputs):
        if o is not None:
            x[i] = o
    return ChunkOutcome(x, tuple(raised), None)


def seeds_from_key(key: Key, num: int) -> np.ndarray:
    """``num`` integer seeds in ``[0, 2**63)`` drawn from ``key``, as int64 (63 random bits each,
    so that seeds of a million simulations practically never repeat)."""
    bits = np.asarray(jax.random.bits(key, (num, 2), jnp.uint32)).astype(np.uint64)
    return (((bits[:, 0] & np.uint64(0x7FFFFFFF)) << np.uint64(32)) | bits[:, 1]).astype(np.int64)


class _Tally:
    """The outcome of a run so far: outputs per chunk, the rows lost and why."""

    def __init__(self, num: int, starts: list[int], size: int, fn: str, name: str):
        self.num, self.starts, self.size, self.fn, self.name = num, starts, size, fn, name
        self.outcomes: dict[int, ChunkOutcome] = {}
        self.failed: dict[int, BaseException] = {}  # chunk -> why its future failed
        self.first_shape: tuple[int, tuple[int, ...]] | None = None

    def rows(self, chunk: int) -> int:
        return min(self.size, self.num - self.starts[chunk])

    def add(self, chunk: int, outcome: ChunkOutcome) -> None:
        if outcome.problem is not None:
            row, error = outcome.problem
            raise type(error)(
                f"{self.fn}: the BlackBoxSimulator's simulate {self.name} {error} (simulation "
                f"{row}); it must return one real array of the same shape for every θ, e.g. "
                "shape (dim_x,) (pad variable-length output to a fixed size; return NaN values "
                "or raise to mark a failed simulation)."
            )
        if outcome.x is not None:
            raised_rows = {r for r, _, _ in outcome.raised}
            start = self.starts[chunk]
            row = next(r for r in range(start, start + len(outcome.x)) if r not in raised_rows)
            shape = outcome.x.shape[1:]
            if self.first_shape is None:
                self.first_shape = (row, shape)
            elif shape != self.first_shape[1]:
                raise ValueError(
                    f"{self.fn}: the BlackBoxSimulator's simulate {self.name} returned shape "
                    f"{shape} at simulation {row} but shape {self.first_shape[1]} at simulation "
                    f"{self.first_shape[0]}; it must return one real array of the same shape for "
                    "every θ (pad variable-length output to a fixed size)."
                )
        self.outcomes[chunk] = outcome

    def broken(self, error: BaseException, in_flight: list[int]) -> RuntimeError:
        """The error for an executor that broke (its worker died) with ``in_flight`` chunks."""
        finished = sum(self.rows(c) for c in self.outcomes)
        lost = sum(self.rows(c) for c in (*self.failed, *in_flight))
        not_started = self.num - finished - lost
        return RuntimeError(
            f"{self.fn}: the executor broke while running the simulations of {self.name} "
            f"({type(error).__name__}: {_first_line(error)}), typically because one of its "
            "worker processes died (killed, out of memory, or a crash in native code). "
            f"{finished} of {self.num} simulations had finished, {lost} were running or queued "
            f"and are lost, {not_started} were not started. A concurrent.futures "
            "ProcessPoolExecutor cannot run anything once one of its workers has died, so the "
            "run stops here instead of returning a partial set. Rerun with a fresh executor "
            "(the same key gives the same simulations), use Dask "
            "(distributed.Client(...).get_executor()), where a dead worker loses only its own "
            "chunk, or call a program that may crash through subprocess inside `simulate`, so "
            "that a crash raises in its own row only."
        )

    def result(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, str | None]:
        """``(x, kept, report)``: outputs ``(num, *x_shape)``, the rows kept (valid and finite),
        and the drop report for the warning (``None`` if nothing was dropped)."""
        raised = sorted(r for o in self.outcomes.values() for r in o.raised)  # by row
        lost_chunks = Counter(type(e).__name__ for e in self.failed.values())
        num_lost = sum(self.rows(c) for c in self.failed)
        if self.first_shape is None:
            why = self._reasons(raised, lost_chunks, num_lost, 0)
            hint = (
                " Check that the executor can run `simulate` at all: for a process pool it "
                "must be picklable, a function defined at module level (not a lambda or a "
                "local function)."
                if self.failed
                else ""
            )
            error = RuntimeError(
                f"{self.fn}: all {self.num} simulations of {self.name} failed: {why}.{hint}"
            )
            raise error from (self.failed[min(self.failed)] if self.failed else None)
        dtype = np.result_type(*(o.x.dtype for o in self.outcomes.values() if o.x is not None))
        x = np.zeros((self.num, *self.first_shape[1]), dtype)
        ok = np.zeros(self.num, bool)
        for chunk, outcome in self.outcomes.items():
            if outcome.x is not None:
                start = self.starts[chunk]
                x[start : start + len(outcome.x)] = outcome.x
                ok[start : start + len(outcome.x)] = True
        for row, _, _ in raised:
            ok[row] = False
        finite = np.isfinite(theta).all(axis=1) & np.isfinite(x.reshape(self.num, -1)).all(axis=1)
        kept = ok & finite
        num_nonfinite = int((ok & ~finite).sum())
        num_dropped = self.num - int(kept.sum())
        if not num_dropped:
            return x, kept, None
        why = self._reasons(raised, lost_chunks, num_lost, num_nonfinite)
        return x, kept, f"{self.fn} dropped {num_dropped} of {self.num} simulations: {why}."

    def _reasons(self, raised, lost_chunks: Counter, num_lost: int, num_nonfinite: int) -> str:
        parts = []
        if raised:
            types = Counter(t for _, t, _ in raised)
            row, kind, message = raised[0]
            counts = ", ".join(f"{t} ×{c}" for t, c in types.most_common())
            parts.append(
                f"{len(raised)} raised ({counts}; first at simulation {row}: {kind}: {message})"
            )
        if num_nonfinite:
            parts.append(f"{num_nonfinite} returned NaN or inf (in x, or had it in θ)")
        if num_lost:
            counts = ", ".join(f"{t} ×{c}" for t, c in lost_chunks.most_common())
            first = self.failed[min(self.failed)]  # the first chunk, whatever finished first
            parts.append(
                f"{num_lost} were lost with {sum(lost_chunks.values())} chunk(s) whose task failed "
                f"as a whole, e.g. because its worker died ({counts}; first: "
                f"{type(first).__name__}: {_first_line(first)})"
            )
        return ", ".join(parts)


def run_black_box(
    sim: BlackBoxSimulator,
    key: Key,
    theta: Array,
    *,
    executor: cf.Executor | None,
    batch_size: int | None,
    max_in_flight: int,
    progress: bool | None,
    fn: str,
    name: str,
) -> tuple[np.ndarray, np.ndarray, str | None]:
    """Runs ``sim.simulate`` for every row of ``theta`` ``(n, dim_theta)``; see the module doc.

    Returns:
        ``(x, kept, report)``: the outputs ``(n, *x_shape)``, a boolean mask ``(n,)`` of the
        rows kept (simulated, finite θ and x), and the drop report (``None`` if none dropped).
    """
    theta_np = np.asarray(theta, dtype=np.float64)
    num = theta_np.shape[0]
    seeds = seeds_from_key(key, num)
    size = batch_size if batch_size is not None else max(1, math.ceil(num / (4 * max_in_flight)))
    size = min(size, num)
    starts = list(range(0, num, size))
    tally = _Tally(num, starts, size, fn, name)
    if progress is None:
        progress = len(starts) > 1
    bar = tqdm(total=num, desc="simulate", unit="sim", disable=not progress, leave=False)

    def args(chunk: int):
        start = starts[chunk]
        rows = slice(start, start + size)
        return sim.simulate, start, seeds[rows], theta_np[rows]

    try:
        if executor is None:  # serial, in this process
            for chunk in range(len(starts)):
                tally.add(chunk, run_chunk(*args(chunk)))
                bar.update(tally.rows(chunk))
        else:
            _run_on(executor, tally, args, max_in_flight, bar)
    finally:
        bar.close()
    return tally.result(theta_np)


def _run_on(executor: cf.Executor, tally: _Tally, args, max_in_flight: int, bar) -> None:
    """Submits the chunks to ``executor``, at most ``max_in_flight`` uncollected at a time."""
    in_flight: dict[cf.Future, int] = {}
    next_chunk = 0
    try:
        while next_chunk < len(tally.starts) or in_flight:
            while next_chunk < len(tally.starts) and len(in_flight) < max_in_flight:
                try:
                    future = executor.submit(run_chunk, *args(next_chunk))
                except cf.BrokenExecutor as e:
                    raise tally.broken(e, list(in_flight.values())) from e
                in_flight[future] = next_chunk
                next_chunk += 1
            done, _ = cf.wait(in_flight, return_when=cf.FIRST_COMPLETED)
            for future in sorted(done, key=in_flight.__getitem__):
                chunk = in_flight.pop(future)
                try:
                    outcome = future.result()
                except cf.BrokenExecutor as e:
                    tally.failed[chunk] = e
                    for other, c in list(in_flight.items()):  # keep what did finish
                        if other.done() and not other.cancelled() and other.exception() is None:
                            tally.add(c, other.result())
                            del in_flight[other]
                    raise tally.broken(e, list(in_flight.values())) from e
                except Exception as e:  # the chunk failed as a whole: its rows are lost
                    tally.failed[chunk] = e
                else:
                    tally.add(chunk, outcome)
                bar.update(tally.rows(chunk))
            # Drop the collected futures now: Dask keeps a result on its worker while its
            # future lives, and recomputes it if that worker dies.
            done = future = None
    finally:
        for future in in_flight:
            future.cancel()
