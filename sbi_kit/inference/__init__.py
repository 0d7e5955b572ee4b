"""Inference methods: each is a frozen config whose ``fit`` returns a trained posterior."""

from ._npe import NPE as NPE
from ._npe import NPEPosterior as NPEPosterior
from ._posterior import AbstractPosterior as AbstractPosterior
from ._support import Bijection as Bijection
from ._support import Rejection as Rejection

__all__ = ["AbstractPosterior", "Bijection", "NPE", "NPEPosterior", "Rejection"]
