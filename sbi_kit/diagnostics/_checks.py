"""Input checks shared by the diagnostics: shapes at trace time, finiteness where values exist."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array


def is_concrete(x) -> bool:
    """True when ``x`` holds values (not a tracer inside ``jit``/``vmap``)."""
    return not isinstance(x, jax.core.Tracer)


def as_float_array(x, name: str, fn: str, ndim: int | tuple[int, ...]) -> Array:
    """``x`` as a floating jnp array with ``ndim`` dimensions (ValueError otherwise)."""
    try:
        if isinstance(x, jax.Array):
            arr = x
        elif isinstance(x, np.ndarray) and x.dtype in (np.float32, np.float16):
            arr = jax.device_put(x)  # no dtype conversion needed: the cheapest transfer
        else:
            arr = jnp.asarray(x)
    except TypeError as e:
        raise TypeError(f"{fn}: `{name}` must be an array, got {type(x).__name__} ({e}).") from None
    ndims = (ndim,) if isinstance(ndim, int) else ndim
    if arr.ndim not in ndims:
        raise ValueError(
            f"{fn}: `{name}` must have {' or '.join(map(str, ndims))} dimensions, got shape "
            f"{arr.shape}."
        )
    if not jnp.issubdtype(arr.dtype, jnp.floating):
        arr = arr.astype(jnp.result_type(float))
    return arr


def check_finite(x: Array, name: str, fn: str, *, allow_neg_inf: bool = False) -> Array:
    """Raises ValueError on NaN or inf in ``x`` (``-inf`` allowed if asked).

    Outside ``jit`` the check runs on the values and raises ``ValueError``; under ``jit`` it is
    an ``eqx.error_if`` that raises when the compiled function runs.
    """
    what = "NaN or +inf" if allow_neg_inf else "NaN or inf"
    if is_concrete(x):
        v = np.asarray(x)
        bad = np.isnan(v) | (v == np.inf) if allow_neg_inf else ~np.isfinite(v)
        if bad.any():
            raise ValueError(
                f"{fn}: `{name}` contains {int(bad.sum())} {what} value(s); diagnostics need "
                "finite inputs (drop failed simulations first)."
            )
        return x
    bad = jnp.isnan(x) | (x == jnp.inf) if allow_neg_inf else ~jnp.isfinite(x)
    return eqx.error_if(x, jnp.any(bad), f"{fn}: `{name}` contains {what} values.")


def check_key(key, fn: str):
    """Accepts a new-style (``jax.random.key``) or raw uint32 PRNG key."""
    if not isinstance(key, jax.Array):
        raise TypeError(f"{fn}: `key` must be a JAX PRNG key (jax.random.key(0)), got {key!r}.")
    return key
