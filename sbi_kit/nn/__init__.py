"""Networks: activations by name and embedding networks for observations."""

from ._activation import activation as activation
from ._mlp import MLPEmbedding as MLPEmbedding

__all__ = ["activation", "MLPEmbedding"]
