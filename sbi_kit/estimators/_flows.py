"""Conditional normalizing flows (flowjax), described by small frozen specs."""

from __future__ import annotations

import abc

import equinox as eqx
from flowjax.bijections import Affine, Chain
from flowjax.distributions import AbstractDistribution

from .._checks import check_setting_bool
from .._types import Key
from ..nn import activation
from ._autoregressive import masked_autoregressive
from ._coupling import coupling_spline_flow
from ._spline import rational_quadratic_spline


class AbstractFlow(eqx.Module):
    """A spec for a conditional normalizing flow: a small frozen configuration.

    Methods take a flow spec (``NPE(flow=NSF(...))``) and call :meth:`build` once the
    dimensions are known.
    """

    @abc.abstractmethod
    def build(self, key: Key, dim: int, cond_dim: int) -> AbstractDistribution:
        """A conditional flow over ``dim`` variables given a ``cond_dim`` context."""


class NSF(AbstractFlow):
    """Neural spline flow: masked autoregressive layers with rational-quadratic splines.

    (Durkan et al., 2019.) Data are z-scored before the flow, so the spline interval
    ``[-interval, interval]`` covers the bulk of the data; outside it each layer is the identity.

    Args:
        layers: number of flow layers.
        width: hidden units of the conditioner networks.
        depth: hidden layers of the conditioner networks.
        knots: spline knots per dimension.
        interval: half-width of the spline interval.
        knot_temperature: the spline's bin widths and heights are ``softmax(u / T)`` of the
            conditioner's outputs ``u``; ``T > 1`` keeps the knots nearer to evenly spaced and
            moves them more slowly in training (`sbi`'s splines use ``T = sqrt(width)``; see
            the NPE docs for when it helps).
        activation: name of the conditioner activation (``"relu"``, ``"tanh"``, ``"gelu"``, ...).
        affine: each transformer is an affine map followed by the spline (in the density's
            direction), both parameterised by the same conditioner: the affine part takes a
            location and a scale that can be far from the data's bulk (a conditional density
            much narrower than the z-scored marginal, as slcp's likelihood for some θ), the
            spline the shape. Two more conditioner outputs per coordinate.
    """

    layers: int = 5
    width: int = 50
    depth: int = 2
    knots: int = 10
    interval: float = 5.0
    knot_temperature: float = 1.0
    activation: str = "relu"
    affine: bool = False

    def build(self, key: Key, dim: int, cond_dim: int) -> AbstractDistribution:
        """A conditional flow over ``dim`` variables given a ``cond_dim`` context."""
        check_setting_bool("NSF", "affine", self.affine)
        spline = rational_quadratic_spline(self.knots, self.interval, self.knot_temperature)
        return masked_autoregressive(
            key,
            dim,
            cond_dim,
            transformer=Chain([Affine(), spline]) if self.affine else spline,
            layers=self.layers,
            width=self.width,
            depth=self.depth,
            activation=activation(self.activation),
        )


class MAF(AbstractFlow):
    """Masked autoregressive flow with affine transformers (Papamakarios et al., 2017).

    Args:
        layers: number of flow layers.
        width: hidden units of the conditioner networks.
        depth: hidden layers of the conditioner networks.
        activation: name of the conditioner activation.
    """

    layers: int = 5
    width: int = 50
    depth: int = 2
    activation: str = "relu"

    def build(self, key: Key, dim: int, cond_dim: int) -> AbstractDistribution:
        """A conditional flow over ``dim`` variables given a ``cond_dim`` context."""
        return masked_autoregressive(
            key,
            dim,
            cond_dim,
            transformer=Affine(),
            layers=self.layers,
            width=self.width,
            depth=self.depth,
            activation=activation(self.activation),
        )


class CouplingNSF(AbstractFlow):
    """Neural spline flow of coupling layers with residual conditioners and LU mixing.

    The layout of the `sbi` package's NSF (Durkan et al., 2019): each layer transforms half of
    the z-scored parameters with rational-quadratic splines whose knots come from a
    context-gated :class:`~sbi_kit.nn.ResidualNet` of the other half and the observation, then
    reverses the coordinates and applies a learned LU-factorised affine map. Outside
    ``[-interval, interval]`` each spline is the identity.

    Args:
        layers: number of flow layers.
        width: hidden units of the conditioner networks.
        blocks: residual blocks (two linear layers each) per conditioner.
        knots: spline knots per dimension.
        interval: half-width of the spline interval.
        knot_temperature: as for :class:`NSF`.
        activation: name of the conditioner activation.
    """

    layers: int = 5
    width: int = 50
    blocks: int = 2
    knots: int = 10
    interval: float = 3.0
    knot_temperature: float = 1.0
    activation: str = "relu"

    def build(self, key: Key, dim: int, cond_dim: int) -> AbstractDistribution:
        """A conditional flow over ``dim`` variables given a ``cond_dim`` context."""
        return coupling_spline_flow(
            key,
            dim,
            cond_dim,
            layers=self.layers,
            transformer=rational_quadratic_spline(self.knots, self.interval, self.knot_temperature),
            width=self.width,
            blocks=self.blocks,
            activation=activation(self.activation),
        )
