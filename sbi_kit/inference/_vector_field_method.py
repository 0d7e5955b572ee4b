"""What NPSE and FMPE share as methods: a vector-field network, an optional embedding of x,
the probability-flow ODE settings of ``log_prob``, and how the network is built."""

from __future__ import annotations

import equinox as eqx

from .._types import Key
from ..estimators import AbstractVectorField
from ..nn import AbstractEmbedding
from ._field_net import FieldNet, build_field_net
from ._method import AbstractMethod
from ._vector_field_samplers import ProbabilityFlowODE


class AbstractVectorFieldMethod(AbstractMethod):
    """A method whose network is a time-conditioned vector field (:class:`~sbi_kit.NPSE`,
    :class:`~sbi_kit.FMPE`); the concrete class adds its loss, sampler and posterior.

    Attributes:
        network: the vector-field spec.
        embedding: optional embedding spec for x, trained jointly.
        log_prob_ode: the probability-flow ODE settings used by ``log_prob``.
    """

    network: eqx.AbstractVar[AbstractVectorField]
    embedding: eqx.AbstractVar[AbstractEmbedding | None]
    log_prob_ode: eqx.AbstractVar[ProbabilityFlowODE]

    def __check_init__(self):
        name = type(self).__name__
        if not isinstance(self.network, AbstractVectorField):
            raise TypeError(
                f"{name}: `network` must be a vector-field spec such as "
                f"sk.estimators.ResidualVectorField(), got {self.network!r}."
            )
        if self.embedding is not None and not isinstance(self.embedding, AbstractEmbedding):
            raise TypeError(
                f"{name}: `embedding` must be None or an embedding spec such as "
                f"sk.nn.MLPEmbedding(), got {self.embedding!r}."
            )
        if not isinstance(self.log_prob_ode, ProbabilityFlowODE):
            raise TypeError(
                f"{name}: `log_prob_ode` must be sk.inference.ProbabilityFlowODE(...), got "
                f"{self.log_prob_ode!r}."
            )

    def build_net(self, key: Key, dim_theta: int, x_shape: tuple[int, ...]) -> FieldNet:
        return build_field_net(key, self.network, self.embedding, dim_theta, x_shape)
