"""Networks: activations by name, embedding networks for observations, flow conditioners,
time embeddings."""

from ._activation import activation as activation
from ._deepset import DeepSetEmbedding as DeepSetEmbedding
from ._embedding import AbstractEmbedding as AbstractEmbedding
from ._mlp import MLPEmbedding as MLPEmbedding
from ._residual import ResidualNet as ResidualNet
from ._time_embedding import AbstractTimeEmbedding as AbstractTimeEmbedding
from ._time_embedding import GaussianFourierTimeEmbedding as GaussianFourierTimeEmbedding
from ._time_embedding import SinusoidalTimeEmbedding as SinusoidalTimeEmbedding

__all__ = [
    "AbstractEmbedding",
    "AbstractTimeEmbedding",
    "activation",
    "DeepSetEmbedding",
    "GaussianFourierTimeEmbedding",
    "MLPEmbedding",
    "ResidualNet",
    "SinusoidalTimeEmbedding",
]
