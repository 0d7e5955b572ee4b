"""Activation functions by name (the one place where names are resolved, so configs stay JSON)."""

from collections.abc import Callable

import jax
import jax.numpy as jnp

_ACTIVATIONS: dict[str, Callable] = {
    "relu": jax.nn.relu,
    "tanh": jnp.tanh,
    "gelu": jax.nn.gelu,
    "silu": jax.nn.silu,
    "elu": jax.nn.elu,
    "softplus": jax.nn.softplus,
    "leaky_relu": jax.nn.leaky_relu,
}


def activation(name: str) -> Callable:
    """Returns the activation function called ``name``.

    Examples:
        >>> from sbi_kit.nn import activation
        >>> float(activation("relu")(-1.0))
        0.0
    """
    try:
        return _ACTIVATIONS[name]
    except KeyError:
        raise ValueError(
            f"unknown activation {name!r}; expected one of {sorted(_ACTIVATIONS)}."
        ) from None
