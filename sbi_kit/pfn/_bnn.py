"""Bayesian-neural-network dataset prior: random MLP functions plus Gaussian noise.

The second prior of prior-data fitted networks (Müller, Hollmann, Pineda, Grabocka & Hutter,
"Transformers Can Do Bayesian Inference", ICLR 2022, section 5.2): each dataset is drawn from
a function that is an MLP with Gaussian random weights. The weights are scaled by
``1/√fan_in`` (the scaling of Neal 1996, under which a wide network tends to a GP), so the
output's variance does not grow with the width.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array

from .._checks import check_key, check_positive_int
from .._types import Key
from ._gp import _check_bounds, _check_positive, _uniform_inputs
from ._prior import AbstractDatasetPrior, Dataset


class BNNPrior(AbstractDatasetPrior):
    """Datasets from random MLPs: ``x ~ U[x_low, x_high]^d``, ``y = f(x) + N(0, noise_std²)``.

    ``f`` has ``layers`` hidden layers of width ``hidden``, activation ``activation``, and a linear
    scalar output. Per dataset, every hidden weight is drawn from
    ``N(0, weight_std² / fan_in)``, every hidden bias from ``N(0, bias_std²)``, the output weights
    from ``N(0, output_std² / hidden)`` and the output bias is 0. With tanh, ``Var f(x) ≤
    output_std²`` at every x. The defaults are this library's choice, not the paper's (which
    also draws the architecture and the weight scales): weight_std 4 makes the first layer's
    pre-activations change by a few units over [0, 1], so the functions bend within a dataset.
    Measured with the defaults (d = 1, 3000 datasets of 50 points): ``Var y`` over datasets and
    points 0.76, within a dataset 0.14 on average (the rest is each function's level).
    ``parameters`` is ``None`` (the weights are many and unidentifiable).

    Args:
        input_dim: ``d``.
        hidden: width of each hidden layer.
        layers: number of hidden layers (≥ 1).
        weight_std: scale of the hidden weights (before the ``1/√fan_in``).
        bias_std: standard deviation of the hidden biases.
        output_std: scale of the output weights (before the ``1/√hidden``).
        noise_std: observation noise standard deviation (≥ 0).
        activation: elementwise nonlinearity (static; default ``jnp.tanh``).
        x_low: lower bound of each input coordinate.
        x_high: upper bound of each input coordinate.

    Examples:
        >>> import jax
        >>> from sbi_kit.pfn import BNNPrior
        >>> prior = BNNPrior(input_dim=3)
        >>> data = prior.sample(jax.random.key(0), 40)
        >>> data.x.shape, data.y.shape, data.parameters
        ((40, 3), (40,), None)
    """

    input_dim: int = eqx.field(static=True, default=1)
    hidden: int = eqx.field(static=True, default=32)
    layers: int = eqx.field(static=True, default=2)
    weight_std: float = 4.0
    bias_std: float = 1.0
    output_std: float = 1.0
    noise_std: float = 0.1
    activation: Callable[[Array], Array] = eqx.field(static=True, default=jnp.tanh)
    x_low: float = 0.0
    x_high: float = 1.0

    def __check_init__(self):
        for name in ("input_dim", "hidden", "layers"):
            check_positive_int(getattr(self, name), name, "BNNPrior")
        for name in ("weight_std", "bias_std", "output_std", "noise_std"):
            _check_positive("BNNPrior", name, getattr(self, name), allow_zero=True)
        if not callable(self.activation):
            raise TypeError(
                f"BNNPrior: `activation` must be a callable such as jnp.tanh, got "
                f"{type(self.activation).__name__}."
            )
        _check_bounds("BNNPrior", self.x_low, self.x_high)

    def sample_function(self, key: Key, x: Array) -> Array:
        """The noiseless ``f(x)`` of ONE random network at the given inputs.

        Args:
            key: a JAX PRNG key (the network's weights).
            x: inputs of shape ``(n, input_dim)``.

        Returns:
            ``f(x)`` of shape ``(n,)``.

        Examples:
            >>> import jax, jax.numpy as jnp
            >>> from sbi_kit.pfn import BNNPrior
            >>> f = BNNPrior().sample_function(jax.random.key(0), jnp.linspace(0, 1, 5)[:, None])
            >>> f.shape
            (5,)
        """
        key = check_key(key, "BNNPrior.sample_function")
        x = jnp.asarray(x)
        if x.ndim != 2 or x.shape[1] != self.input_dim:
            raise ValueError(
                f"BNNPrior.sample_function: `x` must have shape (n, {self.input_dim}), got "
                f"{x.shape}."
            )
        z = jax.random.normal(key, (self._num_weights(),), x.dtype)
        return self._network(z, x)

    def _num_weights(self) -> int:
        d, h = self.input_dim, self.hidden
        return d * h + h + (self.layers - 1) * (h * h + h) + h

    def _network(self, z: Array, x: Array) -> Array:
        """The MLP whose weights are read from standard normals ``z`` (``_num_weights()``,)
        (one random draw for all weights: many small draws compile slowly under ``vmap``)."""
        start = 0

        def take(shape):
            nonlocal start
            size = math.prod(shape)
            out = z[start : start + size].reshape(shape)
            start += size
            return out

        h = x
        fan_in = self.input_dim
        for _ in range(self.layers):
            w = take((fan_in, self.hidden)) * (self.weight_std / math.sqrt(fan_in))
            b = take((self.hidden,)) * self.bias_std
            h = self.activation(h @ w + b)
            fan_in = self.hidden
        w_out = take((self.hidden,)) * (self.output_std / math.sqrt(self.hidden))
        return h @ w_out

    @eqx.filter_jit
    def sample(self, key: Key, num_points: int) -> Dataset:
        """One dataset of ``num_points`` points (see the class docstring).

        Returns:
            a :class:`Dataset` with ``x`` ``(num_points, input_dim)``, ``y`` ``(num_points,)``.
        """
        key = check_key(key, "BNNPrior.sample")
        num_points = check_positive_int(num_points, "num_points", "BNNPrior.sample")
        k_x, k_z = jax.random.split(key)
        x = _uniform_inputs(k_x, num_points, self.input_dim, self.x_low, self.x_high)
        num_weights = self._num_weights()
        z = jax.random.normal(k_z, (num_weights + num_points,), x.dtype)
        y = self._network(z[:num_weights], x) + self.noise_std * z[num_weights:]
        return Dataset(x=x, y=y)
