"""Networks: activations by name, embedding networks for observations, flow conditioners."""

from ._activation import activation as activation
from ._deepset import DeepSetEmbedding as DeepSetEmbedding
from ._embedding import AbstractEmbedding as AbstractEmbedding
from ._mlp import MLPEmbedding as MLPEmbedding
from ._residual import ResidualNet as ResidualNet

__all__ = ["AbstractEmbedding", "activation", "DeepSetEmbedding", "MLPEmbedding", "ResidualNet"]
