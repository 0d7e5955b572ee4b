"""Set-up computations (network initialisation) as one compiled program, compiled cheaply.

Building a network eagerly runs dozens of small JAX operations (a random draw per weight
shape, key splits, masks, broadcasts), and every one of them is an XLA program of its own
that is compiled the first time its shapes appear: on a 2-core CPU the initialisation of
``sk.NPE()``'s flow cost 4.7 s of compilation in a new process, 29 % of a cold fit's
compile time (docs/performance.md, "Where the compile time goes"). Traced as *one* program
and compiled at XLA's backend optimisation level 1 instead of the default, the same arrays
come out bit for bit (the same threefry draws; only LLVM's optimisation effort is lower, which
these run-once programs do not need), in a fraction of the time.

:func:`one_program` does that for a function that returns a pytree (arrays plus static parts
such as activation functions). Values that the pytree's functions capture (flowjax's layers
close over the ravelled initial parameters of their transformer) are computed by the same
program and put back into fresh copies of those functions.
"""

from __future__ import annotations

import collections
import functools
import os
import types
from collections.abc import Callable, Hashable

import equinox as eqx
import jax

COMPILER_OPTIONS = {"xla_backend_optimization_level": 1}
"""XLA options of the set-up programs (level 1: same arithmetic, less optimisation effort),
unless ``XLA_FLAGS`` chooses a level for every program (the test run asks for 0)."""


def _compiler_options() -> dict:
    if "--xla_backend_optimization_level" in os.environ.get("XLA_FLAGS", ""):
        return {}
    return COMPILER_OPTIONS


_BUILT: collections.OrderedDict = collections.OrderedDict()
_BUILT_MAX = 64
_EAGER = "eager"
"""The cache's entry for a function whose result hides traced values: it runs as it is."""


def _contents(cell: types.CellType):
    """A closure cell's value (``None`` for a cell not filled yet)."""
    try:
        return cell.cell_contents
    except ValueError:
        return None


def _is_traced(value) -> bool:
    return any(isinstance(v, jax.core.Tracer) for v in jax.tree_util.tree_leaves(value))


def _hides_traced(value, seen: set[int] | None = None) -> bool:
    """Whether ``value`` holds a traced value anywhere: in its leaves, or (recursively) in what
    its function and partial-function leaves capture."""
    seen = set() if seen is None else seen
    for leaf in jax.tree_util.tree_leaves(value):
        if isinstance(leaf, jax.core.Tracer):
            return True
        if id(leaf) in seen:
            continue
        seen.add(id(leaf))
        if isinstance(leaf, types.FunctionType):
            inner = [_contents(c) for c in leaf.__closure__ or ()]
            inner += [leaf.__defaults__, leaf.__kwdefaults__]
        elif isinstance(leaf, functools.partial):
            inner = [leaf.func, leaf.args, leaf.keywords]
        else:
            continue
        if _hides_traced(inner, seen):
            return True
    return False


def _captured_traced(static) -> list[tuple[types.FunctionType, int]]:
    """(function, cell index) of every closure cell in ``static``'s function leaves that holds
    a traced value."""
    found = []
    for leaf in jax.tree_util.tree_leaves(static):
        if isinstance(leaf, types.FunctionType):
            for i, cell in enumerate(leaf.__closure__ or ()):
                if _is_traced(_contents(cell)):
                    found.append((leaf, i))
    return found


def _with_cell(fn: types.FunctionType, index: int, value) -> types.FunctionType:
    """A copy of ``fn`` whose closure cell ``index`` holds ``value``."""
    cells = list(fn.__closure__ or ())
    cells[index] = types.CellType(value)
    new = types.FunctionType(
        fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__, tuple(cells)
    )
    new.__kwdefaults__ = fn.__kwdefaults__
    new.__qualname__ = fn.__qualname__
    new.__dict__.update(fn.__dict__)
    return new


def one_program(cache_key: Hashable, fn: Callable, *args):
    """``fn(*args)``, with every array of its result computed by one jitted XLA program.

    Args:
        cache_key: hashable; calls with an equal key and arguments of the same shapes and
            dtypes reuse the compiled program and the static part of the first call's result,
            so the key must fix everything about ``fn`` except its array arguments (e.g. the
            method and the dimensions it builds a network for).
        fn: a function of JAX arrays (or pytrees of them) that returns a pytree; it is traced
            once per key and argument shapes, so it must not need the arguments' values in
            Python. If its result hides a traced value where it cannot be put back (deeper
            than a closure cell of a function leaf), it is called as it is instead, then and
            for later calls with this key.
        *args: its arguments: arrays or pytrees of arrays.

    Returns:
        the same pytree as ``fn(*args)``: bit-identical arrays (also those captured by its
        functions), the static parts of the first call with this key.
    """
    leaves, structure = jax.tree_util.tree_flatten(args)
    cache_key = (cache_key, structure, tuple((a.shape, str(a.dtype)) for a in leaves))
    found = _BUILT.get(cache_key)
    if found == _EAGER:
        return fn(*args)
    first = found is None
    if first:
        traced: list = []

        def arrays(*a):
            dynamic, static = eqx.partition(fn(*a), eqx.is_array)
            cells = _captured_traced(static)
            captured = [
                eqx.partition(f.__closure__[i].cell_contents, eqx.is_array) for f, i in cells
            ]
            traced.append((static, cells, [s for _, s in captured]))
            return dynamic, [d for d, _ in captured]

        jitted = jax.jit(arrays, compiler_options=_compiler_options())
        found = _BUILT[cache_key] = (jitted, traced)
        while len(_BUILT) > _BUILT_MAX:
            _BUILT.popitem(last=False)
    else:
        _BUILT.move_to_end(cache_key)
    jitted, traced = found
    dynamic, captured = jitted(*args)  # traces on the first call with this key, then only runs
    static, cells, captured_static = traced[0]
    replaced: dict[int, types.FunctionType] = {}
    for (f, i), d, s in zip(cells, captured, captured_static, strict=True):
        base = replaced.get(id(f), f)
        replaced[id(f)] = _with_cell(base, i, eqx.combine(d, s))
    if replaced:
        static = jax.tree_util.tree_map(lambda leaf: replaced.get(id(leaf), leaf), static)
    # the first call decides: later calls fill the same cells with computed values
    if first and _hides_traced(static):  # a traced value where it cannot be replaced
        _BUILT[cache_key] = _EAGER
        return fn(*args)
    return eqx.combine(dynamic, static)
