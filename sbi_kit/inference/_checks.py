"""Input checks shared by every inference method (shapes, lengths, prior, finiteness)."""

from __future__ import annotations

import jax.numpy as jnp
import numpyro.distributions as dist
from jaxtyping import Array

from ..training import check_finite


def check_training_data(theta: Array, x: Array, prior) -> tuple[Array, Array]:
    """Checks ``theta`` (n, dim_theta), ``x`` (n, ...), their lengths, the prior and finiteness.

    Returns both as float jnp arrays.
    """
    if not isinstance(prior, dist.Distribution):
        raise TypeError(
            "`prior` must be a numpyro Distribution over the flat parameter vector (e.g. "
            f"task.prior or simulator.prior), got {type(prior).__name__}."
        )
    theta = jnp.asarray(theta)
    x = jnp.asarray(x)
    if theta.ndim != 2:
        raise ValueError(
            f"`theta` must have shape (num_simulations, dim_theta), got shape {theta.shape}."
        )
    if x.ndim < 2:
        raise ValueError(
            f"`x` must have shape (num_simulations, dim_x) (or (num_simulations, *x_shape)), "
            f"got shape {x.shape}."
        )
    if theta.shape[0] != x.shape[0]:
        raise ValueError(
            f"`theta` and `x` must have the same number of rows; got {theta.shape[0]} parameter "
            f"vectors and {x.shape[0]} observations."
        )
    if prior.batch_shape != () or prior.event_shape != (theta.shape[1],):
        raise ValueError(
            f"the prior's event shape must be ({theta.shape[1]},) to match theta of shape "
            f"{theta.shape}; got event shape {prior.event_shape} and batch shape "
            f"{prior.batch_shape}."
        )
    if not jnp.issubdtype(theta.dtype, jnp.floating) or not jnp.issubdtype(x.dtype, jnp.floating):
        theta, x = theta.astype(jnp.float32), x.astype(jnp.float32)
    check_finite((theta, x), ("theta", "x"))
    return theta, x


def check_observation(x_o: Array, x_shape: tuple[int, ...], *, iid: bool) -> Array:
    """Checks one observation of shape ``x_shape`` (or a stack ``(n_obs, *x_shape)`` if ``iid``).

    Returns ``x_o`` as a jnp array; a stack is returned with a leading axis.
    """
    x_o = jnp.asarray(x_o)
    if x_o.shape == tuple(x_shape):
        return x_o
    if iid and x_o.ndim == len(x_shape) + 1 and x_o.shape[1:] == tuple(x_shape):
        return x_o
    expected = f"{tuple(x_shape)}" + (f" or (n_obs, {', '.join(map(str, x_shape))})" if iid else "")
    extra = (
        ""
        if iid
        else " This method conditions on one observation; NLE and NRE can take a stack of "
        "i.i.d. observations."
    )
    raise ValueError(f"`x_o` must have shape {expected}, got shape {x_o.shape}.{extra}")


def check_theta_points(theta: Array, dim_theta: int) -> Array:
    """Checks θ of shape ``(dim_theta,)`` or ``(n, dim_theta)`` for ``log_prob``."""
    theta = jnp.asarray(theta)
    if theta.ndim not in (1, 2) or theta.shape[-1] != dim_theta:
        raise ValueError(
            f"`theta` must have shape ({dim_theta},) or (n, {dim_theta}), got shape {theta.shape}."
        )
    return theta


def check_num_samples(num_samples) -> int:
    if not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(f"num_samples must be a positive integer, got {num_samples!r}.")
    return num_samples
