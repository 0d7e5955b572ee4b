"""Metadata that travels with a trained posterior without being part of its pytree.

A posterior is an ``eqx.Module``: its arrays are pytree leaves and its static fields are hashed
and compared by every jitted call that takes it. The training history and the calibration report
are neither: they describe the posterior but never enter a computation. Were they static fields,
every ``sample`` would hash a report with thousands of SBC ranks, and two posteriors that differ
only in ``history.seconds`` would compile twice.

So they are attached to the Python *object*, in a table keyed by its identity: a posterior and
its metadata are created together (``fit``, ``sk.load``, ``report.attach``) and the entry goes
away with the object. A pytree transformation (``jax.tree.map``, ``eqx.tree_at``, a jitted
function's output) builds a new object from the leaves; it carries no metadata, and its
``history`` and ``calibration`` are ``None`` rather than stale values from another posterior.
"""

from __future__ import annotations

import copy
import dataclasses
import weakref
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from ..training import History

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Metadata:
    """What travels with a posterior outside its pytree.

    Attributes:
        history: the training :class:`~sbi_kit.History` (``None`` if not known).
        calibration: a :class:`~sbi_kit.diagnostics.CalibrationReport`, once attached.
    """

    history: History | None = None
    calibration: Any = None


_ATTACHED: dict[int, Metadata] = {}


def metadata(obj) -> Metadata:
    """The metadata attached to ``obj`` (empty if none was attached)."""
    return _ATTACHED.get(id(obj), Metadata())


def with_metadata(obj: T, **changes) -> T:
    """A new object with ``obj``'s pytree (arrays shared, not copied) and updated metadata.

    ``changes`` are fields of :class:`Metadata`; fields not given keep ``obj``'s values.
    ``obj`` itself is left unchanged.
    """
    new = copy.copy(obj)
    key = id(new)
    _ATTACHED[key] = dataclasses.replace(metadata(obj), **changes)
    weakref.finalize(new, _ATTACHED.pop, key, None)
    return new
