"""The one home of input checks: keys, counts, shapes at trace time, finiteness where values exist.

Every public entry point (methods' ``fit``, posteriors' ``sample`` / ``log_prob``, the
diagnostics, ``sk.simulate``) checks its arguments with these helpers, so that a mistake gives the
same kind of message everywhere: the function, the argument, what was expected and what arrived.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
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

    Outside ``jit`` the check runs on the values and raises ``ValueError`` with the count; under
    ``jit`` it is an ``eqx.error_if`` that raises when the compiled function runs.
    """
    what = "NaN or +inf" if allow_neg_inf else "NaN or inf"
    if is_concrete(x):
        v = np.asarray(x)
        bad = np.isnan(v) | (v == np.inf) if allow_neg_inf else ~np.isfinite(v)
        if bad.any():
            raise ValueError(
                f"{fn}: `{name}` contains {int(bad.sum())} {what} value(s); {fn} needs finite "
                "inputs (sk.simulate drops failed simulations for you)."
            )
        return x
    bad = jnp.isnan(x) | (x == jnp.inf) if allow_neg_inf else ~jnp.isfinite(x)
    return eqx.error_if(x, jnp.any(bad), f"{fn}: `{name}` contains {what} values.")


def check_finite_rows(x: Array, name: str, fn: str) -> None:
    """Raises ValueError naming how many rows of ``x`` (n, ...) hold NaN or inf."""
    bad = ~np.isfinite(np.asarray(x).reshape(len(x), -1)).all(axis=1)
    if bad.any():
        raise ValueError(
            f"{fn}: `{name}` holds {int(bad.sum())} rows with NaN or inf; training needs finite "
            "data (sk.simulate drops such rows for you)."
        )


def check_key(key, fn: str):
    """The one key policy: one new-style key (``jax.random.key``) or one legacy uint32 key
    (``jax.random.PRNGKey``); returns a new-style key.

    A legacy key is wrapped (``jax.random.wrap_key_data``), so it gives exactly the numbers of
    the new-style key with the same seed. Anything else (an int seed, a NumPy array, ``None``,
    a batch of keys) is a ``TypeError`` that shows how to make a key. Callers use the returned
    key.
    """
    if isinstance(key, jax.Array) and not is_concrete(key):
        if key.dtype == jnp.uint32 and key.shape == (2,):
            return jax.random.wrap_key_data(key)
        return key  # traced: shape and dtype were checked by whoever traced it
    if isinstance(key, jax.Array) and key.dtype == jnp.uint32 and key.shape == (2,):
        return jax.random.wrap_key_data(key)
    ok = isinstance(key, jax.Array) and (
        jnp.issubdtype(key.dtype, jax.dtypes.prng_key) and key.shape == ()
    )
    if not ok:
        what = (
            f"{type(key).__name__} {key!r}"
            if not isinstance(key, jax.Array)
            else f"an array of shape {key.shape} and dtype {key.dtype}"
        )
        raise TypeError(
            f"{fn}: `key` must be one JAX PRNG key such as jax.random.key(0), got {what}."
        )
    return key


def check_positive_int(value, name: str, fn: str) -> int:
    """``value`` as an int if it is a positive integer (Python or NumPy; not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{fn}: `{name}` must be a positive integer, got {value!r}.")
    return int(value)


def check_flag(value, name: str, fn: str) -> None:
    """A function argument that must be ``True`` or ``False`` (not 0, 1 or a string)."""
    if not isinstance(value, bool):
        raise TypeError(f"{fn}: `{name}` must be True or False, got {value!r}.")


def check_setting_bool(owner: str, field: str, value) -> None:
    """A configuration field that must be ``True`` or ``False``, e.g. ``NSF.affine``."""
    if not isinstance(value, bool):
        raise TypeError(f"{owner}: {field} must be True or False, got {value!r}.")


def check_setting_positive_int(owner: str, field: str, value) -> None:
    """A configuration field that must be a Python int ≥ 1 (not a bool), e.g. ``num_steps``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{owner}: {field} must be a positive integer, got {value!r}.")


def check_setting_nonnegative_int(owner: str, field: str, value) -> None:
    """A configuration field that must be a Python int ≥ 0 (not a bool), e.g. a seed."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{owner}: {field} must be a non-negative integer, got {value!r}.")


def check_setting_positive_number(owner: str, field: str, value) -> None:
    """A configuration field that must be a finite number > 0, e.g. a solver tolerance."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{owner}: {field} must be a finite number, got {value!r}.")
    if not value > 0:
        raise ValueError(f"{owner}: {field} must be > 0, got {value!r}.")


def check_setting_fraction(owner: str, field: str, value, *, low_open: bool = True) -> None:
    """A configuration field in (0, 1) (``low_open``) or [0, 1)."""
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not (0 < value < 1 if low_open else 0 <= value < 1):
        bound = "(0, 1)" if low_open else "[0, 1)"
        raise ValueError(f"{owner}: {field} must be a number in {bound}, got {value!r}.")


def check_prior(prior, dim_theta: int, fn: str) -> None:
    """A numpyro distribution over flat parameter vectors of length ``dim_theta``."""
    if not isinstance(prior, dist.Distribution):
        raise TypeError(
            f"{fn}: `prior` must be a numpyro Distribution over the flat parameter vector (e.g. "
            f"task.prior or simulator.prior), got {type(prior).__name__}."
        )
    if prior.batch_shape != () or prior.event_shape != (dim_theta,):
        raise ValueError(
            f"{fn}: the prior's event shape must be ({dim_theta},) to match theta with "
            f"{dim_theta} columns; got event shape {prior.event_shape} and batch shape "
            f"{prior.batch_shape}."
        )


def _numeric_array(value, name: str, fn: str) -> Array:
    """``value`` as a real jnp array (bool and integers allowed); TypeError naming ``name``."""
    try:
        arr = jnp.asarray(value)
    except TypeError as e:
        raise TypeError(
            f"{fn}: `{name}` must be a numeric array, got {type(value).__name__} ({e})."
        ) from None
    if not (
        jnp.issubdtype(arr.dtype, jnp.floating)
        or jnp.issubdtype(arr.dtype, jnp.integer)
        or arr.dtype == jnp.bool_
    ):
        raise TypeError(f"{fn}: `{name}` must hold real numbers, got dtype {arr.dtype}.")
    return arr


def min_training_rows(validation_fraction: float) -> int:
    """The fewest simulations that leave 2 for training after the validation split.

    Mirrors the split of :func:`sbi_kit.training.train`: ``max(1, round(fraction · n))`` held out.
    """
    n = 3
    while n - max(1, int(round(validation_fraction * n))) < 2:
        n += 1
    return n


def check_training_data(
    theta, x, prior, fn: str, *, validation_fraction: float = 0.1
) -> tuple[Array, Array]:
    """Checks ``theta`` (n, dim_theta), ``x`` (n, ...), their lengths, the prior and finiteness.

    ``n`` must leave at least 2 training rows after the validation split of
    ``validation_fraction``. Returns both as float jnp arrays.
    """
    theta = _numeric_array(theta, "theta", fn)
    x = _numeric_array(x, "x", fn)
    if theta.ndim != 2:
        raise ValueError(
            f"{fn}: `theta` must have shape (num_simulations, dim_theta), got shape {theta.shape}."
        )
    if x.ndim < 2:
        raise ValueError(
            f"{fn}: `x` must have shape (num_simulations, dim_x) (or (num_simulations, *x_shape)),"
            f" got shape {x.shape}."
        )
    if theta.shape[0] != x.shape[0]:
        raise ValueError(
            f"{fn}: `theta` and `x` must have the same number of rows; got {theta.shape[0]} "
            f"parameter vectors and {x.shape[0]} observations."
        )
    needed = min_training_rows(validation_fraction)
    if theta.shape[0] < needed:
        raise ValueError(
            f"{fn}: `theta` and `x` hold {theta.shape[0]} simulations; at least {needed} are "
            f"needed (validation_fraction {validation_fraction} holds some out and training "
            "needs 2)."
        )
    if theta.shape[1] == 0 or x.size == 0:
        raise ValueError(
            f"{fn}: `theta` and `x` must have at least one column, got shapes {theta.shape} and "
            f"{x.shape}."
        )
    check_prior(prior, theta.shape[1], fn)
    if not jnp.issubdtype(theta.dtype, jnp.floating) or not jnp.issubdtype(x.dtype, jnp.floating):
        theta, x = theta.astype(jnp.float32), x.astype(jnp.float32)
    check_finite_rows(theta, "theta", fn)
    check_finite_rows(x, "x", fn)
    return theta, x


def check_observation(x_o, x_shape: tuple[int, ...], fn: str, *, iid: bool) -> Array:
    """Checks one observation of shape ``x_shape`` (or a stack ``(n_obs, *x_shape)`` if ``iid``).

    Returns ``x_o`` as a jnp array; a stack is returned with its leading axis.
    """
    x_o = jnp.asarray(x_o)
    x_shape = tuple(x_shape)
    if x_o.shape != x_shape and not (
        iid and x_o.ndim == len(x_shape) + 1 and x_o.shape[1:] == x_shape
    ):
        expected = f"{x_shape}" + (f" or (n_obs, {', '.join(map(str, x_shape))})" if iid else "")
        extra = "" if iid else " This posterior conditions on one observation at a time."
        raise ValueError(f"{fn}: `x_o` must have shape {expected}, got shape {x_o.shape}.{extra}")
    return check_finite(x_o, "x_o", fn)  # under jit: the checked value carries the error_if


def check_theta_points(theta, dim_theta: int, fn: str) -> Array:
    """Checks θ of shape ``(dim_theta,)`` or ``(n, dim_theta)`` for ``log_prob``."""
    theta = jnp.asarray(theta)
    if theta.ndim not in (1, 2) or theta.shape[-1] != dim_theta:
        raise ValueError(
            f"{fn}: `theta` must have shape ({dim_theta},) or (n, {dim_theta}), got shape "
            f"{theta.shape}."
        )
    return theta
