"""Function leaves of a network (closures inside flowjax flows), shared by content.

flowjax builds each masked-autoregressive or coupling layer around a *closure*, the
"ravelled pytree constructor" of its transformer: a new function object per network. A
function is a static leaf for ``jax.jit`` / ``eqx.filter_jit``, hashed by identity, so two
networks of the same specification (two trainings, two rounds of a sequential run, a file
loaded twice) never look equal, and every jitted call that takes a posterior compiled again
for each of them: sampling, MCMC, ``log_prob``. Each compilation also keeps its machine code
mapped for the life of the process; a long sequential benchmark run died of it (LLVM "Cannot
allocate memory" after about twenty rounds with MCMC).

:func:`share_closures` replaces every function leaf by the first one seen with the same code,
defaults, globals and equal captured values, which behaves identically, so equal networks
compile once. Captured values are compared with ``eqx.tree_equal`` (arrays by shape, dtype and
values) after their own function leaves are shared the same way: flowjax's spline, captured by
the constructor, holds a ``lambda`` made afresh for every spline (sbi_kit's own spline, which
the spline flows use since 2026-12-06, holds none; the comparison stays for transformers that
do), and without this the constructors of two such flows never compared equal.
"""

from __future__ import annotations

import types

import equinox as eqx
import jax

_SHARED: dict = {}
"""Per code object, the functions kept so far with what they capture (a few per layout)."""


def _same_values(a: tuple, b: tuple) -> bool:
    """Whether two tuples of captured values are equal (arrays by shape, dtype and values)."""
    try:
        return bool(eqx.tree_equal(a, b, typematch=True))
    except Exception:  # a value whose comparison fails cannot be shown equal: keep both
        return False


_IN_PROGRESS: set[int] = set()
"""Ids of the functions whose captured values are being canonicalised (a recursive closure
refers to itself)."""


def _captured(leaf: types.FunctionType) -> tuple | None:
    """What makes ``leaf`` behave as it does beyond its code: its captured values (their own
    function leaves shared first, so that e.g. a spline holding a fresh ``lambda`` compares
    equal to another) and its default arguments; ``None`` if a cell is empty."""
    try:
        cells = tuple(cell.cell_contents for cell in leaf.__closure__ or ())
    except ValueError:  # an empty cell
        return None
    _IN_PROGRESS.add(id(leaf))
    try:
        cells = share_closures(cells)
    finally:
        _IN_PROGRESS.discard(id(leaf))
    return (cells, leaf.__defaults__, leaf.__kwdefaults__, id(leaf.__globals__))


def _shared(leaf):
    if not isinstance(leaf, types.FunctionType) or id(leaf) in _IN_PROGRESS:
        return leaf
    values = _captured(leaf)
    if values is None:
        return leaf
    kept = _SHARED.setdefault(leaf.__code__, [])
    for other_values, other in kept:
        if other is leaf or _same_values(values, other_values):
            return other
    kept.append((values, leaf))
    return leaf


def share_closures(tree):
    """``tree`` with each function leaf replaced by the shared one of equal code and contents.

    Args:
        tree: any pytree, e.g. a network of flowjax flows.

    Returns:
        the same pytree (arrays untouched) whose function leaves are shared between trees
        built from the same specification.

    Examples:
        >>> import jax, sbi_kit as sk
        >>> from sbi_kit.estimators import share_closures
        >>> a, b = (share_closures(sk.estimators.MAF(layers=1).build(jax.random.key(i), 2, 1))
        ...         for i in range(2))
        >>> fa = [f for f in jax.tree_util.tree_leaves(a) if callable(f)]
        >>> fb = [f for f in jax.tree_util.tree_leaves(b) if callable(f)]
        >>> all(x is y for x, y in zip(fa, fb))
        True
    """
    return jax.tree_util.tree_map(_shared, tree)
