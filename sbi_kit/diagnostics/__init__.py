"""Diagnostics: pure functions over arrays (samples, true parameters, keys)."""

from ._c2st import c2st as c2st

__all__ = ["c2st"]
