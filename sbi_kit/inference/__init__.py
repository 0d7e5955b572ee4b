"""Inference methods: each is a frozen config whose ``fit`` returns a trained posterior."""

from ._npe import NPE as NPE
from ._npe import NPEPosterior as NPEPosterior
from ._posterior import AbstractPosterior as AbstractPosterior

__all__ = ["AbstractPosterior", "NPE", "NPEPosterior"]
